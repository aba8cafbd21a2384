#!/usr/bin/python3
"""W7 (issue 21's anchors) in PyTorch: one GravNetConv layer, PyTorch Geometric semantics (see gravnet.cpp).

Usage: gravnet.py W7/{infer,train} [FORM]   (FORM: run only that form)
Prints `<workload> torch-<form> <threads> <median_s>` for
  dense                    kNN per event by torch.cdist (direct differences) + topk, neighbours gathered as
                           (N, k, P), mean and amax over k: the fixed k makes the aggregation a reshape
  dense+compile            the same through torch.compile (PyTorch 2.x)
  pyg-GravNetConv          torch_geometric.nn.GravNetConv with the same weights, when its kNN kernel (pyg-lib's
                           torch.ops.pyg.knn) is installed; otherwise
  pyg-GravNetConv+torch-knn  the same PyG layer (its message passing, mean+max multi-aggregation) with
                           torch.ops.pyg.knn supplied by this script: the dense form's cdist + topk per event
                           (pyg-lib has no PyPI wheel; PyG >= 2.7 takes the kNN from pyg-lib, not torch_cluster)
The neighbour selection carries no gradient (as in PyG); gradients reach lin_s through the weights exp(-10 d^2).
Timed: infer = forward under no_grad; train = forward + backward of y.sum() (gradients w.r.t. x and every weight).
REFBENCH_CPU_TIME=1 times process CPU time (rb_common.median_time). The checksum goes to stderr; with
HEPGNN_COMPARE_DUMP=DIR holding compare_gravnet's dumps (run first), the element-by-element differences too.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as fn_

sys.path.insert(0, os.path.dirname(__file__))
from rb_common import linear_params, median_time, report, rb_upm1, threads_from_env  # noqa: E402

G, NPG, F, S, P, OUT, K = 4, 2048, 64, 4, 22, 64, 40
N = G * NPG
PARAM_NAMES = ["lin_s.weight", "lin_s.bias", "lin_h.weight", "lin_h.bias", "lin_out1.weight", "lin_out2.weight",
               "lin_out2.bias"]


def knn_per_event(s_ref, s_query, ptr_ref, ptr_query, k):
    """[query ids, reference ids] (2, M*k) of the k nearest reference rows (self included) per event, by
    torch.cdist with direct differences (no |a|^2 + |b|^2 - 2ab cancellation) and topk."""
    rows, cols = [], []
    for g in range(ptr_query.numel() - 1):
        q0, q1 = int(ptr_query[g]), int(ptr_query[g + 1])
        r0, r1 = int(ptr_ref[g]), int(ptr_ref[g + 1])
        d = torch.cdist(s_query[q0:q1], s_ref[r0:r1], compute_mode="donot_use_mm_for_euclid_dist")
        idx = d.topk(min(k, r1 - r0), dim=1, largest=False).indices
        rows.append(torch.arange(q0, q1).repeat_interleave(idx.shape[1]))
        cols.append((idx + r0).reshape(-1))
    return torch.stack([torch.cat(rows), torch.cat(cols)])


def dense_neighbours(s):
    """(N, K) global neighbour ids, all events at once (uniform events)."""
    sg = s.view(G, NPG, S)
    d = torch.cdist(sg, sg, compute_mode="donot_use_mm_for_euclid_dist")
    idx = d.topk(K, dim=-1, largest=False).indices
    return (idx + (torch.arange(G) * NPG).view(G, 1, 1)).view(N, K)


def gravnet_dense(x, ws, bs, wh, bh, w1, w2, b2):
    s = fn_.linear(x, ws, bs)
    h = fn_.linear(x, wh, bh)
    with torch.no_grad():
        idx = dense_neighbours(s.detach())
    d2 = (s.unsqueeze(1) - s[idx]).pow(2).sum(-1)            # (N, K)
    m = h[idx] * torch.exp(-10.0 * d2).unsqueeze(-1)         # (N, K, P)
    return fn_.linear(x, w1) + fn_.linear(torch.cat([m.mean(1), m.amax(1)], 1), w2, b2)


_knn_library = None  # keeps the substitute op registered


def pyg_forms(params):
    try:
        import torch_geometric.typing as pyg_typing
        from torch_geometric.nn import GravNetConv
    except ImportError:
        print("torch_geometric not installed: no PyG row", file=sys.stderr)
        return []
    name = "pyg-GravNetConv"
    if not pyg_typing.WITH_KNN:
        # PyG's GravNetConv calls torch.ops.pyg.knn(x, y, ptr_x, ptr_y, k, cosine, num_workers) of pyg-lib, which
        # PyPI does not carry: supply that op (same schema, [y ids, x ids] out) from torch.cdist + topk.
        global _knn_library
        _knn_library = torch.library.Library("pyg", "DEF")
        _knn_library.define("knn(Tensor x, Tensor y, Tensor? ptr_x, Tensor? ptr_y, int k, bool cosine, "
                            "int num_workers) -> Tensor")

        def knn(x, y, ptr_x, ptr_y, k, cosine, num_workers):
            assert not cosine
            px = ptr_x if ptr_x is not None else torch.tensor([0, x.shape[0]])
            py = ptr_y if ptr_y is not None else torch.tensor([0, y.shape[0]])
            with torch.no_grad():
                return knn_per_event(x.detach(), y.detach(), px, py, k)

        _knn_library.impl("knn", knn, "CompositeImplicitAutograd")
        pyg_typing.WITH_KNN = True
        name = "pyg-GravNetConv+torch-knn"
        print("pyg-lib not installed: PyG's GravNetConv runs with torch.ops.pyg.knn = cdist + topk per event",
              file=sys.stderr)
    conv = GravNetConv(F, OUT, S, P, K)
    batch = torch.arange(G).repeat_interleave(NPG)

    with torch.no_grad():  # the same weights, copied in once
        for pn, p in zip(PARAM_NAMES, params):
            conv.get_parameter(pn).copy_(p)
    return [(name, lambda x, *ps: conv(x, batch), conv)]


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W7/infer"
    if w not in ("W7/infer", "W7/train"):
        sys.exit("usage: gravnet.py W7/{infer,train} [FORM]")
    train = w == "W7/train"
    threads = threads_from_env()
    torch.set_num_threads(threads)
    x0 = torch.from_numpy(rb_upm1(701, N * F).reshape(N, F))
    ws, bs = (torch.from_numpy(a) for a in linear_params(F, S, 711))
    wh, bh = (torch.from_numpy(a) for a in linear_params(F, P, 713))
    w1 = torch.from_numpy(linear_params(F, OUT, 715)[0])
    w2, b2 = (torch.from_numpy(a) for a in linear_params(2 * P, OUT, 717))
    params = [ws, bs, wh, bh, w1, w2, b2]

    forms = [("dense", gravnet_dense, None)]
    if hasattr(torch, "compile"):
        forms.append(("dense+compile", torch.compile(gravnet_dense), None))
    forms += pyg_forms(params)
    if len(sys.argv) > 2:
        forms = [f for f in forms if f[0] == sys.argv[2]]
        if not forms:
            sys.exit(f"unknown form {sys.argv[2]}")
    ref = None
    for name, fn, module in forms:
        x = x0.clone().requires_grad_(train)
        ps = [p.clone().requires_grad_(train) for p in params] if module is None else list(module.parameters())
        if module is not None:
            for p in ps:
                p.requires_grad_(train)

        def grads():
            if module is None:
                return [x.grad] + [p.grad for p in ps]
            return [x.grad] + [module.get_parameter(pn).grad for pn in PARAM_NAMES]

        if train:
            def step():
                x.grad = None
                for p in ps:
                    p.grad = None
                fn(x, *ps).sum().backward()
        else:
            def step():
                with torch.no_grad():
                    fn(x, *ps)
        report(w, "torch-" + name, threads, median_time(step))
        if train:
            step()
            y = fn(x, *ps).detach()
            result = [y] + [g.detach().clone() for g in grads()]
        else:
            with torch.no_grad():
                result = [fn(x, *ps)]
        if ref is None:
            ref = result
            check(w, train, result, x0, params)
        else:
            print(f"{w} torch-{name}: max |diff| to torch-{forms[0][0]}: y {float((result[0] - ref[0]).abs().max()):.3g}"
                  + (f", dx {float((result[1] - ref[1]).abs().max()):.3g}" if train else ""), file=sys.stderr)
    y = ref[0]
    print(f"{w} checksum: sum {float(y.sum()):.7g} sum|.| {float(y.abs().sum()):.7g} out[0][:4] "
          + " ".join(f"{v:.7g}" for v in y[0, :4].tolist()), file=sys.stderr)
    if train:
        print(f"{w} gradients: sum|dx| {float(ref[1].abs().sum()):.7g}, "
              + ", ".join(f"sum|d {pn}| {float(g.abs().sum()):.7g}" for pn, g in zip(PARAM_NAMES, ref[2:])),
              file=sys.stderr)


def check(w, train, result, x0, params):
    """Element-by-element comparison with compare_gravnet's dumps (HEPGNN_COMPARE_DUMP)."""
    d = os.environ.get("HEPGNN_COMPARE_DUMP")
    tag = f"{d}/W7_{'train' if train else 'infer'}_"
    if not d or not os.path.exists(tag + "y.f32"):
        return
    theirs = np.fromfile(tag + "neighbours.i32", dtype=np.int32).reshape(N, K)
    with torch.no_grad():
        mine = dense_neighbours(torch.nn.functional.linear(x0, params[0], params[1])).numpy()
    differ = int((np.sort(theirs, 1) != np.sort(mine, 1)).any(1).sum())
    y = result[0].numpy()
    yref = np.fromfile(tag + "y.f32", dtype=np.float32).reshape(y.shape)
    rows_same = (np.sort(theirs, 1) == np.sort(mine, 1)).all(1)
    # a differing set is a float32 near tie at the k-th neighbour (hepgnn's s and torch's differ by rounding)
    print(f"{w} agreement: neighbour sets differ for {differ} of {N} nodes; y max |torch - hepgnn| "
          f"{np.abs(y - yref).max():.3g} (nodes with the same neighbours: "
          f"{np.abs(y - yref)[rows_same].max():.3g}; |y| max {np.abs(yref).max():.3g})", file=sys.stderr)
    if train:
        names = ["dx"] + ["d_" + pn for pn in PARAM_NAMES]
        parts = []
        scale = 1.0
        for nm, g in zip(names, result[1:]):
            gref = np.fromfile(tag + nm + ".f32", dtype=np.float32).reshape(g.shape)
            if nm == "d_lin_s.bias":  # zero in exact arithmetic (a shift of s moves no distance): rounding only
                parts.append(f"{nm} {np.abs(g.numpy() - gref).max() / scale:.2g} (of max |d_lin_s.weight|)")
                continue
            scale = max(np.abs(gref).max(), 1e-30)
            parts.append(f"{nm} {np.abs(g.numpy() - gref).max() / scale:.2g}")
        print(f"{w} agreement: gradients, max |torch - hepgnn| / max |hepgnn|: " + ", ".join(parts)
              + " (the nodes with other neighbours included)", file=sys.stderr)


if __name__ == "__main__":
    main()
