#!/usr/bin/python3
"""W2 of shared/benchmarks/WORKLOADS.md in PyTorch: EdgeConv (PyG semantics) on the exact W1d kNN graph.

Usage: edge_conv.py W2/{infer,train}/{mean,max} [FORM]   (FORM: run only that form, e.g. for its peak memory)
Prints `<workload> torch-<form> <threads> <median_s>` for the forms of WORKLOADS.md:
  scatter           gather x_i, x_j per edge, MLP on every edge, scatter_reduce
  decomposed        Linear1 split as (W1a - W1b) x_i + W1b x_j + b1 per node, gathered per edge
  decomposed+dense  as decomposed, aggregation by reshaping the messages to (N, 16, 64) (fixed in-degree)
and, where installed, decomposed+dense+compile (torch.compile, PyTorch 2.x) and pyg-EdgeConv (torch_geometric).
The checksum (sum, sum |.|, out[0][:4]) of the first form run and the peak resident memory go to stderr.
"""
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rb_common import linear_params, median_seconds, rb_u01, rb_upm1, report, threads_from_env  # noqa: E402

K, G, NPG, F = 16, 512, 64, 64


def w1d_graph():
    """Exact kNN (self excluded) in float64, ties to the lower index, nearest first; edge e = 16 i + r."""
    pts = rb_u01(104, G * NPG * 2).reshape(G, NPG, 2).astype(np.float64)
    d = ((pts[:, :, None, :] - pts[:, None, :, :]) ** 2).sum(-1)
    idx = np.arange(NPG)
    d[:, idx, idx] = np.inf
    order = np.lexsort((np.broadcast_to(idx, d.shape), d), axis=-1)[:, :, :K]  # by distance, then index
    src = (order + (np.arange(G) * NPG)[:, None, None]).reshape(-1)
    dst = np.repeat(np.arange(G * NPG), K)
    return torch.from_numpy(src.astype(np.int64)), torch.from_numpy(dst.astype(np.int64))


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def pyg_forms(aggr, src, dst, params):
    """PyTorch Geometric's EdgeConv with the same weights, when torch_geometric is installed."""
    try:
        from torch_geometric.nn import EdgeConv
    except ImportError:
        print("torch_geometric not installed: no PyG row", file=sys.stderr)
        return []
    w1, b1, w2, b2 = params
    lin1, lin2 = torch.nn.Linear(2 * F, 64), torch.nn.Linear(64, 64)
    with torch.no_grad():
        for lin, (wt, bs) in ((lin1, (w1, b1)), (lin2, (w2, b2))):
            lin.weight.copy_(wt)
            lin.bias.copy_(bs)
    conv = EdgeConv(torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2, torch.nn.ReLU()), aggr=aggr)
    edge_index = torch.stack([src, dst])
    return [("pyg-EdgeConv", lambda x, *ps: conv(x, edge_index))]


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W2/infer/max"
    train = "/train/" in w
    aggr = "mean" if "mean" in w else "max"
    threads = threads_from_env()
    torch.set_num_threads(threads)
    src, dst = w1d_graph()
    n = G * NPG
    x0 = torch.from_numpy(rb_upm1(201, n * F).reshape(n, F))
    w1, b1 = (torch.from_numpy(a) for a in linear_params(2 * F, 64, 211))
    w2, b2 = (torch.from_numpy(a) for a in linear_params(64, 64, 213))
    params = [w1, b1, w2, b2]
    red = {"mean": "mean", "max": "amax"}[aggr]
    idx = dst.view(-1, 1).expand(-1, 64)

    def scatter(x, w1, b1, w2, b2):
        xi, xj = x[dst], x[src]
        h = torch.relu(torch.nn.functional.linear(torch.cat([xi, xj - xi], 1), w1, b1))
        h = torch.relu(torch.nn.functional.linear(h, w2, b2))
        return torch.zeros(n, 64).scatter_reduce(0, idx, h, red, include_self=False)

    def messages_decomposed(x, w1, b1, w2, b2):
        wa, wb = w1[:, :F], w1[:, F:]
        p = torch.nn.functional.linear(x, wa - wb, b1)
        q = x @ wb.t()
        h = torch.relu(p[dst] + q[src])
        return torch.relu(torch.nn.functional.linear(h, w2, b2))

    def decomposed(x, *ps):
        return torch.zeros(n, 64).scatter_reduce(0, idx, messages_decomposed(x, *ps), red, include_self=False)

    def decomposed_dense(x, *ps):
        m = messages_decomposed(x, *ps).view(n, K, 64)
        return m.mean(1) if aggr == "mean" else m.amax(1)

    forms = [("scatter", scatter), ("decomposed", decomposed), ("decomposed+dense", decomposed_dense)]
    if hasattr(torch, "compile"):  # PyTorch 2.x: the best hand-written form through TorchInductor
        forms.append(("decomposed+dense+compile", torch.compile(decomposed_dense)))
    forms += pyg_forms(aggr, src, dst, params)
    if len(sys.argv) > 2:
        forms = [f for f in forms if f[0] == sys.argv[2]]
        if not forms:
            sys.exit(f"unknown form {sys.argv[2]} (scatter, decomposed, decomposed+dense, "
                     "decomposed+dense+compile, pyg-EdgeConv)")
    setup_rss = max_rss_mib()
    out = None
    for name, fn in forms:
        if train:
            x = x0.clone().requires_grad_(True)
            ps = [p.clone().requires_grad_(True) for p in params]

            def step():
                for t in [x] + ps:
                    t.grad = None
                fn(x, *ps).sum().backward()
        else:
            x, ps = x0, params

            def step():
                with torch.no_grad():
                    fn(x, *ps)
        cpu = []

        def timed():
            a = time.process_time()
            step()
            cpu.append(time.process_time() - a)

        report(w, "torch-" + name, threads, median_seconds(timed))
        print(f"{w} torch-{name}: median process CPU time per call {sorted(cpu)[len(cpu) // 2]:.4g} s", file=sys.stderr)
        if out is None:
            with torch.no_grad():
                out = fn(x0, *params)
    print(f"{w} torch ({', '.join(f[0] for f in forms)}): max RSS {max_rss_mib():.1f} MiB "
          f"({setup_rss:.1f} MiB before the first call)", file=sys.stderr)
    print(f"{w} checksum: sum {out.sum().item():.6g} sum|.| {out.abs().sum().item():.6g} out[0][:4] "
          + " ".join(f"{v:.6g}" for v in out[0, :4].tolist()), file=sys.stderr)


if __name__ == "__main__":
    main()
