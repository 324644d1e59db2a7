"""Medians per case and server from the harness's raw rows, as markdown.

Usage: summarize.py RAW ROUNDS DURATION [NOTE]       (markdown on stdout)
       summarize.py --readme RAW ROUNDS DURATION NOTE RESULT README

A server named "baseline" (harness --baseline) is another edgeshard build:
each case then also says edgeshard's ratio to it.
                    (replaces the README section between the harness markers)
"""
import statistics
import sys
from collections import defaultdict

PEERS = ("hyper", "may")


def load(raw):
    runs = defaultdict(list)
    for line in open(raw):
        case, server, rps, p99, errors, non2xx, requests, user, system = line.split("\t")
        requests, user, system = int(requests), float(user), float(system)
        cpu = user + system
        runs[(case, server)].append({
            "rps": float(rps),
            "p99": float(p99),
            "errors": int(errors),
            "non2xx": int(non2xx),
            "per_cpu": requests / cpu if cpu > 0 else 0.0,
            "user_us": user * 1e6 / requests if requests else 0.0,
            "sys_us": system * 1e6 / requests if requests else 0.0,
        })
    return runs


def per_round(runs, case, server, key):
    """The rounds' values of `key`, in the order they ran."""
    return [r[key] for r in runs.get((case, server), [])]


def round_ratios(runs, case, theirs):
    """Ours over theirs in req per CPU-s, round by round: the runs of one
    round are minutes apart at most, so these show how much of a median
    ratio is drift and noise."""
    ours = per_round(runs, case, "edgeshard", "per_cpu")
    peer = [max(vals) for vals in zip(*(per_round(runs, case, t, "per_cpu") for t in theirs))]
    return ", ".join(f"{a / b:.2f}" for a, b in zip(ours, peer) if b)


def medians(runs):
    out = {}
    for key, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("rps", "p99", "per_cpu", "user_us", "sys_us")}
        med["errors"] = sum(r["errors"] for r in rows)
        med["non2xx"] = sum(r["non2xx"] for r in rows)
        med["n"] = len(rows)
        out[key] = med
    return out


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def tables(med, runs):
    cases = []
    for case, _ in med:
        if case not in cases:
            cases.append(case)
    lines = []
    for case in cases:
        lines.append(f"### {case}\n")
        latency = "mean batch ms" if case == "pipelined" else "p99 ms"
        lines.append(f"| server | req/s | {latency} | errors | non-2xx | req per CPU-s | user µs/req | sys µs/req |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for (c, server), m in med.items():
            if c != case:
                continue
            lines.append(
                f"| {server} | {m['rps']:.0f} | {m['p99']:.2f} | {m['errors']} | {m['non2xx']} | "
                f"{m['per_cpu']:.0f} | {m['user_us']:.2f} | {m['sys_us']:.2f} |"
            )
        ours = med.get((case, "edgeshard"))
        if ours:
            notes = []
            nginx = med.get((case, "nginx"))
            if nginx:
                notes.append(f"vs nginx: req/s {ratio(ours['rps'], nginx['rps'])}, "
                             f"req per CPU-s {ratio(ours['per_cpu'], nginx['per_cpu'])} "
                             f"(round by round: {round_ratios(runs, case, ['nginx'])})")
            base = med.get((case, "baseline"))
            if base:
                notes.append(f"vs the baseline build: req/s {ratio(ours['rps'], base['rps'])}, "
                             f"req per CPU-s {ratio(ours['per_cpu'], base['per_cpu'])} "
                             f"(round by round: {round_ratios(runs, case, ['baseline'])}), "
                             f"user µs/req {ours['user_us']:.2f} vs {base['user_us']:.2f}")
            present = [p for p in PEERS if (case, p) in med]
            peers = [med[(case, p)] for p in present]
            if peers:
                best_rps = max(p["rps"] for p in peers)
                best_cpu = max(p["per_cpu"] for p in peers)
                least_user = min(p["user_us"] for p in peers)
                notes.append(f"vs the better of hyper and may_minihttp: req/s {ratio(ours['rps'], best_rps)}, "
                             f"req per CPU-s {ratio(ours['per_cpu'], best_cpu)} "
                             f"(round by round: {round_ratios(runs, case, present)}), "
                             f"user µs/req {ours['user_us']:.2f} vs {least_user:.2f}")
            lines.append("")
            lines.extend(f"- {n}" for n in notes)
        lines.append("")
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    readme_mode = args[0] == "--readme"
    if readme_mode:
        args = args[1:]
    raw, rounds, duration = args[:3]
    note = args[3] if len(args) > 3 else ""
    runs = load(raw)
    med = medians(runs)
    body = tables(med, runs)
    if not readme_mode:
        print(f"# Harness results\n\nMedians of {rounds} rounds of `wrk -t1 --latency -d{duration}` "
              "(wrk on CPU 0, each server alone on CPU 1; rounds rotate the servers). "
              "For the pipelined case the latency column is the mean latency of a batch of 16 "
              "(Little's law), because wrk's percentiles there are not batch latencies.\n")
        if note:
            print(f"{note}\n")
        print(body)
        return
    result, readme = args[4:6]
    text = open(readme).read()
    start, end = "<!-- harness:start -->", "<!-- harness:end -->"
    section = f"{start}\nLatest harness run (`{result}`):\n\n{body}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    open(readme, "w").write(text)


if __name__ == "__main__":
    main()
