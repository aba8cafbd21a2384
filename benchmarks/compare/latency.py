#!/usr/bin/python3
"""W5 of shared/benchmarks/WORKLOADS.md in PyTorch: single-jet latency of the ParticleNet-Lite-like network.

Usage: latency.py W5   prints `W5 torch-eager 1 <median_s>`, `W5 torch-jit 1 <median_s>` (jit.trace + freeze),
`W5 torch-compile 1 <median_s>` (PyTorch 2.x) and `W5 onnxruntime 1 <median_s>` (when onnxruntime is installed);
stderr: the output probabilities (compare with compare_latency).
"""
import sys
import time

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rb_common import linear_params, report, rb_upm1  # noqa: E402

K = 7
N = 30  # points per jet in W5


def linear(fan_in, fan_out, seed):
    lin = torch.nn.Linear(fan_in, fan_out)
    w, b = linear_params(fan_in, fan_out, seed)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    return lin


class Block(torch.nn.Module):
    def __init__(self, c_in, channels, seed):
        super().__init__()
        widths = [2 * c_in] + channels
        layers = []
        for i in range(3):
            layers += [linear(widths[i], widths[i + 1], seed + 2 * i), torch.nn.ReLU()]
        self.mlp = torch.nn.Sequential(*layers)
        self.shortcut = linear(c_in, channels[-1], seed + 6)
        # A constant (W5 has 30 points): torch.diag/torch.eye do not export to ONNX Runtime's CPU kernels.
        self.register_buffer("self_excluded", torch.diag(torch.full((N,), float("inf"))))

    def forward(self, coords, x):
        d = torch.cdist(coords, coords)
        d = d + self.self_excluded  # inf on the diagonal: a point is not its own neighbour
        nb = torch.topk(d, K, dim=1, largest=False).indices  # (N, K)
        xi = x.unsqueeze(1).expand(-1, K, -1)
        xj = x[nb]
        h = self.mlp(torch.cat([xi, xj - xi], dim=2)).mean(1)
        return torch.relu(h + self.shortcut(x))


class LiteNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = Block(7, [32, 32, 32], 5100)
        self.b2 = Block(32, [64, 64, 64], 5108)
        self.fc1 = linear(64, 128, 5116)
        self.fc2 = linear(128, 2, 5118)

    def forward(self, points, features):
        h = self.b1(points, features)
        h = self.b2(h, h)
        g = h.mean(0, keepdim=True)
        return torch.softmax(self.fc2(torch.relu(self.fc1(g))), dim=1)


def latency(fn, name, warmup=200, calls=2000):
    for _ in range(warmup):
        fn()
    t, cpu = [], []
    for _ in range(calls):
        c = time.thread_time()
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
        cpu.append(time.thread_time() - c)
    t.sort()
    cpu.sort()
    print(f"W5 {name}: median thread CPU time {cpu[len(cpu) // 2] * 1e6:.3g} us", file=sys.stderr)
    return t[len(t) // 2]


def onnx_latency(w, net, points, features):
    """ONNX Runtime on the exported network (single thread), when onnxruntime and onnx are installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        print(f"{w}: onnxruntime not installed, skipped", file=sys.stderr)
        return
    import tempfile

    path = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False).name
    torch.onnx.export(net, (points, features), path, input_names=["points", "features"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {"points": points.numpy(), "features": features.numpy()}
    prob = sess.run(None, feed)[0]
    report(w, "onnxruntime", 1, latency(lambda: sess.run(None, feed), "onnxruntime"))
    print(f"{w}: onnxruntime probabilities " + " ".join(f"{v:.6f}" for v in prob[0].tolist()), file=sys.stderr)


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W5"
    torch.set_num_threads(1)
    points = (torch.tensor(0.4, dtype=torch.float32) * torch.from_numpy(rb_upm1(501, 60))).reshape(30, 2)
    features = torch.from_numpy(rb_upm1(502, 210)).reshape(30, 7)
    net = LiteNet().eval()
    with torch.no_grad():
        prob = net(points, features)
        report(w, "torch-eager", 1, latency(lambda: net(points, features), "torch-eager"))
        traced = torch.jit.freeze(torch.jit.trace(net, (points, features)))
        report(w, "torch-jit", 1, latency(lambda: traced(points, features), "torch-jit"))
        if hasattr(torch, "compile"):  # PyTorch 2.x: TorchInductor's generated C++ for this CPU
            compiled = torch.compile(net)
            compiled(points, features)
            report(w, "torch-compile", 1, latency(lambda: compiled(points, features), "torch-compile"))
    onnx_latency(w, net, points, features)
    print(f"{w}: probabilities " + " ".join(f"{v:.6f}" for v in prob[0].tolist()), file=sys.stderr)


if __name__ == "__main__":
    main()
