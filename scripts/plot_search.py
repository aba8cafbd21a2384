#!/usr/bin/env python3
"""Plots a hyperparameter search's rungs: metric versus resource, one line per trial, from the CSV that
hepgnn::search_result::write_csv writes (columns trial,status,resource,metric,wall_seconds,<dimensions>,error).

Lines are coloured by the trial's final status (completed, stopped, failed, ...); the best completed trial is drawn
thick. Needs matplotlib; without it, prints a text summary per rung instead (so a headless machine still gets
something). Standard library otherwise.

Usage: scripts/plot_search.py results.csv [-o rungs.png] [--log-x] [--log-y] [--maximize] [--title TEXT]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict


def read(path: str):
    trials = defaultdict(lambda: {"status": "", "points": []})
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            t = trials[int(row["trial"])]
            t["status"] = row["status"]
            if row["resource"] and row["metric"] and row["metric"] != "null":
                t["points"].append((float(row["resource"]), float(row["metric"])))
    return dict(trials)


def best_trial(trials, maximize: bool):
    done = [(i, t) for i, t in trials.items() if t["status"] == "completed" and t["points"]]
    if not done:
        return None
    key = (lambda it: -it[1]["points"][-1][1]) if maximize else (lambda it: it[1]["points"][-1][1])
    return min(done, key=key)[0]


def summary(trials, maximize: bool) -> str:
    rungs = defaultdict(list)
    for t in trials.values():
        for r, m in t["points"]:
            rungs[r].append(m)
    lines = ["resource  trials  best        median"]
    for r in sorted(rungs):
        ms = sorted(rungs[r])
        best = ms[-1] if maximize else ms[0]
        lines.append(f"{r:<9g} {len(ms):<7d} {best:<11.5g} {ms[len(ms) // 2]:.5g}")
    b = best_trial(trials, maximize)
    if b is not None:
        lines.append(f"best completed trial: {b} (metric {trials[b]['points'][-1][1]:.6g})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("-o", "--output", default="search_rungs.png")
    ap.add_argument("--log-x", action="store_true")
    ap.add_argument("--log-y", action="store_true")
    ap.add_argument("--maximize", action="store_true", help="higher metric is better")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    trials = read(args.csv)
    if not trials:
        print(f"{args.csv}: no trials", file=sys.stderr)
        return 1
    print(summary(trials, args.maximize))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: text summary only", file=sys.stderr)
        return 0
    colours = {"completed": "tab:green", "stopped": "tab:gray", "failed": "tab:red", "paused": "tab:orange",
               "running": "tab:blue"}
    best = best_trial(trials, args.maximize)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen = set()
    for i, t in sorted(trials.items()):
        pts = [p for p in t["points"] if math.isfinite(p[1])]
        if not pts:
            continue
        xs, ys = zip(*pts)
        label = t["status"] if t["status"] not in seen else None
        seen.add(t["status"])
        ax.plot(xs, ys, marker="o", markersize=3, lw=2.5 if i == best else 0.8,
                color=colours.get(t["status"], "black"), alpha=1.0 if i == best else 0.6, label=label)
    if best is not None:
        ax.annotate(f"best: trial {best}", xy=trials[best]["points"][-1], xytext=(5, 5), textcoords="offset points")
    ax.set_xlabel("resource (e.g. epochs)")
    ax.set_ylabel("metric")
    if args.log_x:
        ax.set_xscale("log")
    if args.log_y:
        ax.set_yscale("log")
    ax.set_title(args.title or f"{len(trials)} trials")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
