#!/usr/bin/python3
"""W8 (issue 21's anchors) in PyTorch: global mean / max / sum pooling of 256 jets x 30-100 particles x 64 features
(see pooling.cpp).

Usage: pooling.py W8/{infer,train}/{mean,max,sum} [FORM]   (FORM: run only that form)
Prints `<workload> torch-<form> <threads> <median_s>` for
  scatter_reduce           torch.zeros(256, 64).scatter_reduce(0, batch, x, mean/amax/sum, include_self=False)
  segment_reduce           torch.segment_reduce(x, mean/max/sum, lengths=...) (sorted segments)
  scatter_reduce+compile   the first through torch.compile (PyTorch 2.x)
  pyg-global_<aggr>_pool   torch_geometric.nn.global_mean_pool / global_max_pool / global_add_pool(x, batch, 256)
Timed: infer = forward under no_grad; train = forward + backward of y.sum() (the gradient w.r.t. x).
REFBENCH_CPU_TIME=1 times process CPU time (rb_common.median_time). The checksum goes to stderr; with
HEPGNN_COMPARE_DUMP=DIR holding compare_pooling's dumps (run first), the element-by-element differences too.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from rb_common import median_time, rb_randint, rb_upm1, report, threads_from_env  # noqa: E402

G, F = 256, 64


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W8/infer/mean"
    parts = w.split("/")
    if len(parts) != 3 or parts[0] != "W8" or parts[1] not in ("infer", "train") or parts[2] not in ("mean", "max", "sum"):
        sys.exit("usage: pooling.py W8/{infer,train}/{mean,max,sum} [FORM]")
    train, aggr = parts[1] == "train", parts[2]
    threads = threads_from_env()
    torch.set_num_threads(threads)
    sizes = torch.from_numpy(30 + rb_randint(802, G, 71))
    n = int(sizes.sum())
    x0 = torch.from_numpy(rb_upm1(801, n * F).reshape(n, F))
    batch = torch.arange(G).repeat_interleave(sizes)
    idx = batch.view(-1, 1).expand(-1, F)
    red = {"mean": "mean", "max": "amax", "sum": "sum"}[aggr]

    def scatter_reduce(x):
        return torch.zeros(G, F).scatter_reduce(0, idx, x, red, include_self=False)

    def segment_reduce(x):
        return torch.segment_reduce(x, aggr, lengths=sizes, axis=0)

    forms = [("scatter_reduce", scatter_reduce), ("segment_reduce", segment_reduce)]
    if hasattr(torch, "compile"):
        forms.append(("scatter_reduce+compile", torch.compile(scatter_reduce)))
    try:
        import torch_geometric.nn as pyg_nn
        pool = {"mean": pyg_nn.global_mean_pool, "max": pyg_nn.global_max_pool, "sum": pyg_nn.global_add_pool}[aggr]
        forms.append((f"pyg-global_{'add' if aggr == 'sum' else aggr}_pool", lambda x: pool(x, batch, G)))
    except ImportError:
        print("torch_geometric not installed: no PyG row", file=sys.stderr)
    if len(sys.argv) > 2:
        forms = [f for f in forms if f[0] == sys.argv[2]]
        if not forms:
            sys.exit(f"unknown form {sys.argv[2]}")
    ref = None
    for name, fn in forms:
        x = x0.clone().requires_grad_(train)
        if train:
            def step():
                x.grad = None
                fn(x).sum().backward()
        else:
            def step():
                with torch.no_grad():
                    fn(x)
        try:
            s = median_time(step)
        except RuntimeError as e:  # e.g. a backward that this torch does not implement
            print(f"{w} torch-{name}: {str(e).splitlines()[0]}", file=sys.stderr)
            continue
        report(w, "torch-" + name, threads, s)
        if train:
            step()
            result = [fn(x).detach(), x.grad.detach().clone()]
        else:
            with torch.no_grad():
                result = [fn(x)]
        if ref is None:
            ref = result
            check(w, train, aggr, result)
        else:
            print(f"{w} torch-{name}: max |diff| to the first form: y {float((result[0] - ref[0]).abs().max()):.3g}"
                  + (f", dx {float((result[1] - ref[1]).abs().max()):.3g}" if train else ""), file=sys.stderr)
    y = ref[0]
    print(f"{w} checksum ({n} rows): sum {float(y.sum()):.7g} sum|.| {float(y.abs().sum()):.7g} out[0][:4] "
          + " ".join(f"{v:.7g}" for v in y[0, :4].tolist()), file=sys.stderr)


def check(w, train, aggr, result):
    """Element-by-element comparison with compare_pooling's dumps (HEPGNN_COMPARE_DUMP)."""
    d = os.environ.get("HEPGNN_COMPARE_DUMP")
    tag = f"{d}/W8_{'train' if train else 'infer'}_{aggr}_"
    if not d or not os.path.exists(tag + "y.f32"):
        return
    msg = []
    for nm, t in zip(["y", "dx"], result):
        ref = np.fromfile(tag + nm + ".f32", dtype=np.float32).reshape(t.shape)
        msg.append(f"{nm} max |torch - hepgnn| {np.abs(t.numpy() - ref).max():.3g} (max |.| {np.abs(ref).max():.3g})")
    print(f"{w} agreement: " + ", ".join(msg), file=sys.stderr)


if __name__ == "__main__":
    main()
