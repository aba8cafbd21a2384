#!/usr/bin/python3
"""Reference values for tests/loss/test_emd.cpp and tests/loss/test_sinkhorn.cpp, computed with POT (python3-pot 0.8.2).

Run with the system python (which has POT):  /usr/bin/python3 tests/reference/set_losses_pot.py
Writes tests/data/set_losses_pot.txt: whitespace-separated numbers, one case after another:
  kind(0 = emd, 1 = sinkhorn) n m d beta reg num_iter_max stop_thr value
  xa (n*d numbers, row-major) wa (n) xb (m*d) wb (m)
The ground cost is ot.dist(xa, xb, 'euclidean') ** beta, weights are normalised histograms; emd cases use
ot.emd2, sinkhorn cases ot.sinkhorn2(method='sinkhorn_log') (cost = <plan, M>).
"""
import os

import numpy as np
import ot

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "data", "set_losses_pot.txt")
rs = np.random.RandomState(20261122)


def points(n, d):
    return rs.uniform(-1.0, 1.0, size=(n, d))


def weights(n, uniform=False):
    w = np.ones(n) if uniform else rs.uniform(0.05, 1.0, size=n)
    return w / w.sum()


def cost(xa, xb, beta):
    M = ot.dist(xa, xb, metric="euclidean")
    return M if beta == 1 else M ** beta


cases = []
for (n, m, d, beta, uni) in [(1, 1, 2, 1, False), (5, 7, 2, 1, False), (30, 30, 2, 1, False), (40, 25, 3, 1, False),
                             (64, 64, 2, 1, False), (128, 100, 2, 1, False), (30, 30, 2, 2, False),
                             (50, 50, 3, 1, True), (20, 20, 2, 2, True), (3, 60, 4, 1, False)]:
    xa, xb = points(n, d), points(m, d)
    wa, wb = weights(n, uni), weights(m, uni)
    val = ot.emd2(wa, wb, cost(xa, xb, beta), numItermax=10_000_000)
    cases.append((0, n, m, d, beta, 0.0, 0, 0.0, val, xa, wa, xb, wb))

for (n, m, d, beta, reg, iters, thr) in [(20, 30, 2, 1, 0.1, 1000, 1e-9), (64, 64, 2, 1, 0.01, 1000, 1e-9),
                                         (10, 12, 3, 2, 0.05, 1000, 1e-9), (30, 30, 2, 1, 0.5, 5000, 1e-12),
                                         (16, 16, 2, 1, 0.02, 37, 1e-9)]:
    xa, xb = points(n, d), points(m, d)
    wa, wb = weights(n), weights(m)
    val = ot.sinkhorn2(wa, wb, cost(xa, xb, beta), reg, method="sinkhorn_log", numItermax=iters, stopThr=thr,
                       warn=False)
    cases.append((1, n, m, d, beta, reg, iters, thr, float(val), xa, wa, xb, wb))

with open(out, "w") as f:
    f.write(f"{len(cases)}\n")
    for (kind, n, m, d, beta, reg, iters, thr, val, xa, wa, xb, wb) in cases:
        f.write(f"{kind} {n} {m} {d} {beta} {reg!r} {iters} {thr!r} {val!r}\n")
        for arr in (xa.ravel(), wa, xb.ravel(), wb):
            f.write(" ".join(repr(float(x)) for x in arr) + "\n")
print("wrote", out)
