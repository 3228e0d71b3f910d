#!/usr/bin/env python3
"""Renders the README speed tables (markdown) from one session's JSON files, as written by
tools/speed_table.sh: bench.json (bnspec bench --json), peers.json
(tools/bench_frameworks.py --json) and bounds.json (tools/bounds.sh --json).

Usage: python3 tools/speed_table.py DIR [DIR ...]

With several session directories (runs of tools/speed_table.sh), the tables are the first run's,
followed by each goal over all the runs: its figures, verdicts and bounds run by run.
"""
import json
import os
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit("speed_table: error: usage: speed_table.py DIR [DIR ...] (each with bench.json, peers.json, bounds.json)")
    runs = []
    for d in sys.argv[1:]:
        try:
            runs.append((json.load(open(os.path.join(d, "bench.json"))), json.load(open(os.path.join(d, "peers.json")))))
        except (OSError, ValueError) as e:
            sys.exit(f"speed_table: error: cannot read the session files in {d} ({e})")
    bench, peers = runs[0]
    in_cache, out_cache = [32, 64, 28, 28], [64, 256, 56, 56]
    cols = [(m, s) for m in ("training", "inference", "backward") for s in (in_cache, out_cache)]
    m = bench["machine"]
    print(f"Kernels at the {m['isa']} level, {m['cores']} cores, load average {m['load_before']} before and "
          f"{m['load_after']} after the bench run.\n")
    print("| | " + " | ".join(f"{mode} {'in' if s == in_cache else 'out'}" for mode, s in cols) + " |")
    print("|---|" + "---|" * len(cols))

    def row(label, pick):
        cells = []
        for mode, shape in cols:
            r = pick(mode, shape)
            cells.append(f"{r:.2f}" if r is not None else "–")
        print(f"| {label} | " + " | ".join(cells) + " |")

    res = bench["results"]

    def ours(kernel, layout="NCHW", dtype=None):
        def pick(mode, shape):
            for r in res:
                if (r["series"] == "main" and r["kernel"] == kernel and r["mode"] == mode and r["layout"] == layout
                        and r["shape"] == shape and (dtype is None or r["dtype"] == dtype)):
                    return r["ratio"]
            return None
        return pick

    row("**fused**, 1 thread", ours("fused"))
    row(f"**threaded**, {m['threaded_threads']} threads", ours("threaded"))
    row("fused, NHWC", ours("fused", "NHWC"))
    row("fused-float16 (vs 16-bit memcpy)", ours("fused-float16"))
    row("fused-bfloat16 (vs 16-bit memcpy)", ours("fused-bfloat16"))
    row("simd", ours("simd"))
    row("scalar", ours("scalar"))
    for name in dict.fromkeys(p["kernel"] for p in peers["speed"]):
        version = next(p["version"] for p in peers["speed"] if p["kernel"] == name)

        def pick(mode, shape, name=name):
            for p in peers["speed"]:
                if p["kernel"] == name and p["mode"] == mode and p["shape"] == shape:
                    return p["ratio"]
            return None
        row(f"{name} {version}", pick)
    print("\nGoals (issue 20), same run:\n")
    print("| goal | limit | measured | bound | status |")
    print("|---|---|---|---|---|")
    for g in bench["goals"]:
        meas = f"{g['measured']:.2f}" if g["measured"] is not None else "–"
        bound = f"{g['bound']:.2f}" if g.get("bound") is not None else ""
        print(f"| {g['goal']} | {g['comparison']} {g['limit']:.2f} | {meas} | {bound} | {g['status']} |")
    if len(runs) > 1:
        print(f"\nGoal by goal over the {len(runs)} runs (figures, verdicts and bounds run by run; worst configuration of the last run):\n")
        print("| goal | limit | measured | status | bound | worst configuration (last run) |")
        print("|---|---|---|---|---|---|")

        def fmt(v):
            return f"{v:.2f}" if v is not None else "–"
        for g in bench["goals"]:
            same = [next((h for h in b["goals"] if h["goal"] == g["goal"]), None) for b, _ in runs]
            meas = " / ".join(fmt(h and h["measured"]) for h in same)
            status = " / ".join(h["status"] if h else "–" for h in same)
            bounds = [fmt(h and h.get("bound")) for h in same]
            bound = " / ".join(bounds) if any(b != "–" for b in bounds) else ""
            last = same[-1]["configuration"] if same[-1] else ""
            print(f"| {g['goal']} | {g['comparison']} {g['limit']:.2f} | {meas} | {status} | {bound} | {last} |")


if __name__ == "__main__":
    main()
