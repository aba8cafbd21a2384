#!/usr/bin/python3
"""W1 of WORKLOADS.md: exact kNN graph in PyTorch (torch.cdist + topk; chunked over queries for big N).
Usage: knn.py W1a | W1b | W1c | W1d   (threads from OMP_NUM_THREADS)
Prints `<workload> pytorch <threads> <median_seconds>`; the number of rows that differ from an exact float64
brute force (2000 sampled queries) goes to stderr (cdist computes |x|^2 + |y|^2 - 2 x.y in float32, so a few
near-ties may differ on W1b/W1c, see WORKLOADS.md).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rb_common import median_seconds, rb_randint, rb_u01, report, threads_from_env  # noqa: E402

WORKLOADS = {"W1a": (1, 10000, 3, 16, 101), "W1b": (1, 100000, 3, 16, 102),
             "W1c": (1, 10000, 16, 16, 103), "W1d": (512, 64, 2, 16, 104)}
CHUNK = 4096  # query rows per cdist call: bounds the distance block to CHUNK x N floats


def knn_single(x, k):
    n = x.shape[0]
    out = torch.empty((n, k), dtype=torch.int64)
    for a in range(0, n, CHUNK):
        d = torch.cdist(x[a:a + CHUNK], x)
        d[torch.arange(d.shape[0]), torch.arange(a, a + d.shape[0])] = float("inf")  # self excluded
        out[a:a + CHUNK] = torch.topk(d, k, dim=1, largest=False, sorted=True).indices
    return out


def knn_batched(x, graphs, points, k):
    xb = x.view(graphs, points, -1)
    d = torch.cdist(xb, xb)
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    idx = torch.topk(d, k, dim=2, largest=False, sorted=True).indices
    return (idx + (torch.arange(graphs) * points).view(graphs, 1, 1)).view(graphs * points, k)


def main():
    wid = sys.argv[1]
    graphs, points, d, k, seed = WORKLOADS[wid]
    threads = threads_from_env()
    torch.set_num_threads(threads)
    n = graphs * points
    x = torch.from_numpy(rb_u01(seed, n * d).reshape(n, d))
    fn = (lambda: knn_single(x, k)) if graphs == 1 else (lambda: knn_batched(x, graphs, points, k))
    with torch.no_grad():
        result = [None]

        def run():
            result[0] = fn()
        t = median_seconds(run)
    report(wid, "pytorch", threads, t)
    ids = result[0].numpy()
    xd = x.numpy().astype(np.float64)
    queries = rb_randint(999, min(n, 2000), n) if n > 2000 else np.arange(n)
    bad = 0
    for i in queries:
        g0 = (i // points) * points
        dist = ((xd[g0:g0 + points] - xd[i]) ** 2).sum(axis=1)
        dist[i - g0] = np.inf
        ref = np.lexsort((np.arange(points), dist))[:k] + g0
        bad += not np.array_equal(ref, ids[i])
    print(f"{wid}: {bad} of {len(queries)} checked rows differ from the float64 brute force", file=sys.stderr)


if __name__ == "__main__":
    main()
