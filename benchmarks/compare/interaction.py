#!/usr/bin/python3
"""W3 of WORKLOADS.md: interaction-network edge classifier (Exa.TrkX style) in PyTorch.
Usage: interaction.py W3/forward | W3/train   (threads from OMP_NUM_THREADS)
Prints `<workload> pytorch <threads> <median_seconds>`, with PyTorch 2.x also `torch-compile` (the same module through
torch.compile), and for W3/forward `onnxruntime` when onnxruntime and onnx are installed; a checksum line goes to
stderr (compare with interaction.cpp).
REFBENCH_CPU_TIME=1 times with process CPU time instead of wall time (a loaded machine; not the MEASURING.md rule).
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rb_common import linear_params, median_seconds, rb_randint, rb_u01, report, threads_from_env  # noqa: E402

if os.environ.get("REFBENCH_CPU_TIME") == "1":
    time.perf_counter = time.process_time


def make_linear(fan_in, fan_out, seed):
    lin = torch.nn.Linear(fan_in, fan_out)
    w, b = linear_params(fan_in, fan_out, seed)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    return lin


class InteractionNetwork(torch.nn.Module):
    def __init__(self, hidden=64, iterations=4):
        super().__init__()
        seeds = iter(range(3100, 3120, 2))
        relu = torch.nn.ReLU

        def mlp(i, o, last_relu=True):
            layers = [make_linear(i, hidden, next(seeds)), relu(), make_linear(hidden, o, next(seeds))]
            return torch.nn.Sequential(*(layers + [relu()] if last_relu else layers))

        self.node_encoder = mlp(3, hidden)
        self.edge_encoder = mlp(6, hidden)
        self.edge_network = mlp(3 * hidden, hidden)
        self.node_network = mlp(2 * hidden, hidden)
        self.output = mlp(hidden, 1, last_relu=False)
        self.iterations = iterations
        self.scatter_form = False  # ONNX export: index_add_ with repeated indices does not export, scatter_add_ does

    def forward(self, x, src, dst):
        h = self.node_encoder(x)
        e = self.edge_encoder(torch.cat([x[src], x[dst]], dim=1))
        for _ in range(self.iterations):
            e = e + self.edge_network(torch.cat([h[src], h[dst], e], dim=1))
            if self.scatter_form:
                a = torch.zeros_like(h).scatter_add_(0, dst.unsqueeze(1).expand(-1, h.shape[1]), e)
            else:
                a = torch.zeros_like(h).index_add_(0, dst, e)
            h = h + self.node_network(torch.cat([h, a], dim=1))
        return self.output(e).squeeze(1)


def onnx_forward(w, net, x, src, dst, threads):
    """ONNX Runtime on the exported forward (the graph given as inputs), when onnxruntime and onnx are installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        print(f"{w}: onnxruntime not installed, skipped", file=sys.stderr)
        return
    import tempfile

    path = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False).name
    net.scatter_form = True
    try:
        torch.onnx.export(net, (x, src, dst), path, input_names=["x", "src", "dst"], dynamo=False, opset_version=17)
    except Exception as err:  # an exporter that cannot express the scatter: no ONNX Runtime row
        print(f"{w}: ONNX export failed ({type(err).__name__}: {str(err)[:200]}), skipped", file=sys.stderr)
        return
    finally:
        net.scatter_form = False
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy(), "src": src.numpy(), "dst": dst.numpy()}
    logits = sess.run(None, feed)[0]
    print(f"W3 check onnxruntime: sum(logits) {float(logits.astype(np.float64).sum()):.4f}", file=sys.stderr)
    report(w, "onnxruntime", threads, median_seconds(lambda: sess.run(None, feed)))


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W3/forward"
    if w not in ("W3/forward", "W3/train"):
        sys.exit(f"unknown workload {w} (W3/forward, W3/train)")
    threads = threads_from_env()
    torch.set_num_threads(threads)
    n, ne = 20000, 200000
    x = torch.from_numpy(rb_u01(301, n * 3).reshape(n, 3))
    src = rb_randint(302, ne, n)
    dst = rb_randint(303, ne, n)
    dst = np.where(dst == src, (dst + 1) % n, dst)
    src, dst = torch.from_numpy(src), torch.from_numpy(dst)
    y = torch.from_numpy((rb_u01(304, ne) < 0.5).astype(np.float32))
    net = InteractionNetwork()
    bce = torch.nn.BCEWithLogitsLoss()  # = binary cross entropy of sigmoid(logits), mean over edges

    def fwd():
        with torch.no_grad():
            net(x, src, dst)

    def train():
        net.zero_grad(set_to_none=False)
        loss = bce(net(x, src, dst), y)
        loss.backward()

    seconds = median_seconds(fwd if w == "W3/forward" else train)
    report(w, "pytorch", threads, seconds)
    if hasattr(torch, "compile"):  # PyTorch 2.x: TorchInductor's generated C++ for this CPU
        compiled = torch.compile(net)

        def fwd_compiled():
            with torch.no_grad():
                compiled(x, src, dst)

        def train_compiled():
            net.zero_grad(set_to_none=False)
            bce(compiled(x, src, dst), y).backward()

        report(w, "torch-compile", threads, median_seconds(fwd_compiled if w == "W3/forward" else train_compiled))
    if w == "W3/forward":
        onnx_forward(w, net, x, src, dst, threads)
    net.zero_grad(set_to_none=False)
    logits = net(x, src, dst)
    loss = bce(logits, y)
    loss.backward()
    gsum = sum(float(p.grad.abs().double().sum()) for p in net.parameters())
    print(f"W3 check pytorch: loss {float(loss):.6f} sum(logits) {float(logits.double().sum()):.4f} sum|grad| {gsum:.6f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
