// Fetches /api/stats every second and shows each shard's counters.
"use strict";

const $ = (id) => document.getElementById(id);

function render(stats) {
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
  $("status").textContent = "live";
}

async function refresh() {
  try {
    const response = await fetch("/api/stats", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (err) {
    $("status").textContent = "error: " + err.message;
  }
}

refresh();
setInterval(refresh, 1000);
