#!/usr/bin/python3
"""W4 of shared/benchmarks/WORKLOADS.md in the reference tools: POT (exact EMD, Sinkhorn) and torch (Chamfer).

Usage: set_losses.py W4a-n30|W4a-n64|W4a-n128|W4b-n64|W4c-fwd|W4c-fwdbwd
Prints `<workload> <implementation> <threads> <median_seconds>` (per pair for W4a/W4b, per call for W4c) and a
checksum line on stderr (compare with compare_set_losses). REFBENCH_CPU_TIME=1 times with process CPU time
instead of wall time (useful on a loaded machine; not the MEASURING.md rule).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rb_common import median_seconds, rb_u01, rb_upm1, report, threads_from_env  # noqa: E402

if os.environ.get("REFBENCH_CPU_TIME") == "1":
    time.perf_counter = time.process_time


def w4_sets(n, pairs):
    """Coordinates [pairs, 2 (side), n, 2] (float32 values) and weights [pairs, 2, n] normalised per set."""
    S = 400 + n
    c = (np.float32(0.8) * rb_upm1(S, pairs * 2 * n * 2)).reshape(pairs, 2, n, 2)
    pt = -np.log(1.0 - rb_u01(S + 1, pairs * 2 * n).astype(np.float64)).reshape(pairs, 2, n)
    pt /= pt.sum(axis=2, keepdims=True)
    return c.astype(np.float64), pt


def main():
    w = sys.argv[1]
    T = threads_from_env()
    if w.startswith("W4a-n"):
        import ot
        n, pairs = int(w[5:]), 1000
        c, pt = w4_sets(n, pairs)
        out = {}

        def run():
            s = 0.0
            for p in range(pairs):
                M = ot.dist(c[p, 0], c[p, 1], metric="euclidean")
                s += ot.emd2(pt[p, 0], pt[p, 1], M)
            out["sum"] = s

        t = median_seconds(run)
        print(f"{w} pot checksum sum(cost) = {out['sum']:.12g}", file=sys.stderr)
        report(w, "pot_emd2", T, t / pairs)
    elif w == "W4b-n64":
        import ot
        n, pairs = 64, 20
        c, pt = w4_sets(n, pairs)
        for method in ("sinkhorn", "sinkhorn_log"):
            out = {}

            def run():
                s = 0.0
                for p in range(pairs):
                    M = ot.dist(c[p, 0], c[p, 1], metric="euclidean")
                    s += float(ot.sinkhorn2(pt[p, 0], pt[p, 1], M, 0.01, method=method, numItermax=1000,
                                            stopThr=1e-9, warn=False))
                out["sum"] = s

            t = median_seconds(run)
            print(f"{w} pot_{method} checksum sum(cost) = {out['sum']:.12g}", file=sys.stderr)
            report(w, f"pot_{method}", T, t / pairs)
    elif w in ("W4c-fwd", "W4c-fwdbwd"):
        import torch
        torch.set_num_threads(T)
        pairs, n = 512, 64
        A = torch.from_numpy(rb_u01(451, pairs * n * 3).reshape(pairs, n, 3))
        B = torch.from_numpy(rb_u01(452, pairs * n * 3).reshape(pairs, n, 3))
        backward = w == "W4c-fwdbwd"
        out = {}

        def run():
            a = A.clone().requires_grad_(backward)
            b = B.clone().requires_grad_(backward)
            d = torch.cdist(a, b) ** 2
            loss = (d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)).mean()
            if backward:
                loss.backward()
                out["g"] = float(a.grad.abs().sum())
            out["loss"] = float(loss)

        t = median_seconds(run)
        print(f"{w} torch checksum loss = {out['loss']:.9g} |grad a|_1 = {out.get('g', 0):.6g}", file=sys.stderr)
        report(w, "torch", T, t)
    else:
        print(f"unknown workload {w}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
