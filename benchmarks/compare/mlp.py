"""Workload mlp_train in PyTorch (same definition as mlp.cpp): MLP 64-128-128-1, forward + backward + Adam step;
with PyTorch 2.x also the model through torch.compile (`torch-compile`)."""
import sys

import torch

from rb_common import linear_params, median_seconds, rb_u01, rb_upm1, report, threads_from_env

workload = sys.argv[1] if len(sys.argv) > 1 else "mlp_train"
threads = threads_from_env()
torch.set_num_threads(threads)
n = 32768
x = torch.from_numpy(rb_upm1(701, n * 64).reshape(n, 64).copy())
y = torch.from_numpy(rb_u01(702, n).reshape(n, 1).copy())
layers = [torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1)]
for layer, seed in zip(layers[::2], (7100, 7102, 7104)):
    w, b = linear_params(layer.in_features, layer.out_features, seed)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
model = torch.nn.Sequential(*layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def step():
    opt.zero_grad(set_to_none=False)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss


report(workload, "torch", threads, median_seconds(step))
if hasattr(torch, "compile"):  # PyTorch 2.x: forward and backward through TorchInductor, the same Adam step
    compiled = torch.compile(model)

    def step_compiled():
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.mse_loss(compiled(x), y)
        loss.backward()
        opt.step()
        return loss

    report(workload, "torch-compile", threads, median_seconds(step_compiled))
