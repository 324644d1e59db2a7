// The live view: every second, /api/stats (the summary and the shard
// table) and /metrics (the chart, latency, status classes, connections
// and upstreams). Nothing is loaded from outside the binary.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
// Five minutes of one-second samples.
const HISTORY = 300;
const samples = [];

function renderStats(stats) {
  $("shards-total").textContent = String(stats.shards_total);
  $("total-requests").textContent = String(stats.total_requests);
  $("uptime").textContent = stats.uptime_seconds.toFixed(0) + " s";
  const body = $("shards");
  body.replaceChildren();
  for (const s of stats.shards) {
    const row = document.createElement("tr");
    row.dataset.shard = String(s.shard);
    for (const value of [s.shard, s.core, s.requests, s.connections]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
}

// The Prometheus text format, as edgeshard writes it: one sample a line,
// `name{label="value",...} number`.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[2] || "")) !== null) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// What one scrape says, summed the way the page shows it.
function sampleOf(parsed, t) {
  const s = { t, shards: {}, total: 0, status: {}, buckets: {}, open: 0, upstreams: {} };
  for (const { name, labels, value } of parsed) {
    if (name === "edgeshard_shard_requests_total") {
      s.shards[labels.shard] = value;
      s.total += value;
    } else if (name === "edgeshard_requests_total") {
      s.status[labels.status] = (s.status[labels.status] || 0) + value;
    } else if (name === "edgeshard_request_duration_seconds_bucket") {
      s.buckets[labels.le] = (s.buckets[labels.le] || 0) + value;
    } else if (name === "edgeshard_connections_open") {
      s.open += value;
    } else if (name === "edgeshard_upstream_requests_total") {
      const u = (s.upstreams[labels.upstream] ||= { ok: 0, failed: 0 });
      if (labels.outcome === "ok") u.ok += value;
      else u.failed += value;
    }
  }
  return s;
}

// The bucket bound at or under which a share `q` of the requests fell.
function percentile(buckets, q) {
  const bounds = Object.keys(buckets)
    .map((le) => [le === "+Inf" ? Infinity : Number(le), buckets[le]])
    .sort((a, b) => a[0] - b[0]);
  const count = bounds.length ? bounds[bounds.length - 1][1] : 0;
  if (count <= 0) return null;
  for (const [le, cum] of bounds) {
    if (cum >= q * count) return le;
  }
  return Infinity;
}

function showSeconds(le) {
  if (le === null) return "–";
  if (le === Infinity) return "> 30 s";
  if (le < 0.001) return "≤ " + Math.round(le * 1e6) + " µs";
  if (le < 1) return "≤ " + +(le * 1e3).toFixed(1) + " ms";
  return "≤ " + le + " s";
}

// Bucket counts between two scrapes (the latency of the last interval).
function delta(now, before) {
  const d = {};
  for (const le of Object.keys(now.buckets)) {
    d[le] = now.buckets[le] - ((before && before.buckets[le]) || 0);
  }
  return d;
}

function drawChart() {
  const svg = $("chart");
  svg.replaceChildren();
  const W = 600, H = 180, PAD = 30;
  // Rates between consecutive samples: total and per shard.
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = (b.t - a.t) / 1000 || 1;
    const shards = {};
    for (const k of Object.keys(b.shards)) shards[k] = Math.max(0, (b.shards[k] - (a.shards[k] || 0)) / dt);
    points.push({ t: b.t, total: b.total, rate: Math.max(0, (b.total - a.total) / dt), shards, sample: b });
  }
  const max = Math.max(1, ...points.map((p) => p.rate));
  const t0 = samples.length ? samples[0].t : 0;
  const span = Math.max(1, (samples.length ? samples[samples.length - 1].t : 0) - t0);
  const x = (t) => PAD + ((t - t0) / span) * (W - PAD - 5);
  const y = (v) => H - PAD / 2 - (v / max) * (H - PAD);
  const axis = document.createElementNS(SVG, "text");
  axis.setAttribute("x", "2");
  axis.setAttribute("y", "12");
  axis.setAttribute("class", "axis");
  axis.textContent = Math.round(max) + " req/s";
  svg.appendChild(axis);
  const shardIds = points.length ? Object.keys(points[points.length - 1].shards).sort((a, b) => a - b) : [];
  const series = [["total", (p) => p.rate], ...shardIds.map((id) => ["shard " + id, (p) => p.shards[id] || 0])];
  series.forEach(([name, value], i) => {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.map((p) => x(p.t).toFixed(1) + "," + y(value(p)).toFixed(1)).join(" "));
    line.setAttribute("class", "series s" + i);
    line.dataset.series = name;
    svg.appendChild(line);
  });
  // The total's points, each with the counters it was drawn from.
  for (const p of points) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x(p.t).toFixed(1));
    dot.setAttribute("cy", y(p.rate).toFixed(1));
    dot.setAttribute("r", "2");
    dot.setAttribute("class", "point");
    dot.dataset.total = String(p.total);
    dot.dataset.shards = shardIds.map((id) => String(p.sample.shards[id] || 0)).join(",");
    dot.dataset.rate = p.rate.toFixed(2);
    svg.appendChild(dot);
  }
  const legend = $("legend");
  legend.replaceChildren();
  series.forEach(([name], i) => {
    const item = document.createElement("span");
    item.className = "key s" + i;
    item.textContent = name;
    legend.appendChild(item);
  });
  $("rate").textContent = points.length ? points[points.length - 1].rate.toFixed(0) + " req/s" : "…";
}

function renderMetrics() {
  const now = samples[samples.length - 1];
  const before = samples.length > 1 ? samples[samples.length - 2] : null;
  drawChart();
  $("open-connections").textContent = String(now.open);
  // Latency over the last ten seconds (since the first sample until then).
  const base = samples[Math.max(0, samples.length - 11)];
  const recent = base === now ? now.buckets : delta(now, base);
  for (const [id, q] of [["p50", 0.5], ["p90", 0.9], ["p99", 0.99]]) {
    $(id).textContent = showSeconds(percentile(recent, q));
    $(id + "-all").textContent = showSeconds(percentile(now.buckets, q));
  }
  const status = $("status-classes");
  status.replaceChildren();
  for (const cls of ["1xx", "2xx", "3xx", "4xx", "5xx"]) {
    const item = document.createElement("div");
    item.dataset.status = cls;
    item.innerHTML = '<span class="label"></span><span class="n"></span>';
    item.firstChild.textContent = cls;
    item.lastChild.textContent = String(now.status[cls] || 0);
    status.appendChild(item);
  }
  const names = Object.keys(now.upstreams).sort();
  $("upstreams-section").hidden = names.length === 0;
  const rows = $("upstreams");
  rows.replaceChildren();
  for (const name of names) {
    const u = now.upstreams[name];
    const old = (before && before.upstreams[name]) || { ok: 0, failed: 0 };
    const failing = u.failed - old.failed > 0 && u.ok - old.ok === 0;
    const row = document.createElement("tr");
    row.dataset.upstream = name;
    for (const value of [name, u.ok, u.failed, failing ? "failing" : "healthy"]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.appendChild(cell);
    }
    row.className = failing ? "failing" : "healthy";
    rows.appendChild(row);
  }
}

async function refresh() {
  try {
    const [stats, metrics] = await Promise.all([
      fetch("/api/stats", { cache: "no-store" }),
      fetch("/metrics", { cache: "no-store" }),
    ]);
    if (!stats.ok) throw new Error("HTTP " + stats.status);
    renderStats(await stats.json());
    if (metrics.ok) {
      samples.push(sampleOf(parseMetrics(await metrics.text()), Date.now()));
      if (samples.length > HISTORY) samples.shift();
      renderMetrics();
    }
    $("status").textContent = "live";
  } catch (err) {
    $("status").textContent = "error: " + err.message;
  }
}

refresh();
setInterval(refresh, 1000);
