"""Reference outputs of PyTorch for hepgnn's dense layers, losses and optimizers (tests/nn/test_dense_reference.cpp).

Run with Debian's PyTorch:  /usr/bin/python3 tests/reference/dense_reference.py > tests/data/dense_reference.txt
Inputs are closed-form (value(i) = 2 sin(0.37 i + offset)) so the C++ test rebuilds them without a shared RNG.
Each output line: `<name> <count> v0 v1 ...` (float64, row-major).
"""
import math

import torch

torch.set_default_dtype(torch.float64)


def wave(n, offset, scale=2.0):
    return torch.tensor([scale * math.sin(0.37 * i + offset) for i in range(n)])


def emit(name, t):
    v = t.detach().reshape(-1).tolist()
    print(name, len(v), " ".join(repr(float(x)) for x in v))


N, F = 5, 4
x = wave(N * F, 0.1).reshape(N, F)

# Activations (forward), PyTorch defaults.
emit("relu", torch.relu(x))
emit("leaky_relu", torch.nn.functional.leaky_relu(x))
emit("elu", torch.nn.functional.elu(x))
emit("gelu", torch.nn.functional.gelu(x))
emit("silu", torch.nn.functional.silu(x))
emit("tanh", torch.tanh(x))
emit("sigmoid", torch.sigmoid(x))

# Linear 4 -> 3 with given weights.
lin = torch.nn.Linear(F, 3)
with torch.no_grad():
    lin.weight.copy_(wave(12, 0.5, 0.5).reshape(3, F))
    lin.bias.copy_(wave(3, 0.9, 0.3))
emit("linear", lin(x))

# Norms: LayerNorm (weight/bias set), BatchNorm1d training forward + running stats, eval forward.
ln = torch.nn.LayerNorm(F)
with torch.no_grad():
    ln.weight.copy_(wave(F, 1.3, 1.0))
    ln.bias.copy_(wave(F, 1.7, 0.5))
emit("layer_norm", ln(x))
bn = torch.nn.BatchNorm1d(F)
with torch.no_grad():
    bn.weight.copy_(wave(F, 2.1, 1.0))
    bn.bias.copy_(wave(F, 2.3, 0.5))
bn.train()
emit("batch_norm_train", bn(x))
emit("batch_norm_running_mean", bn.running_mean)
emit("batch_norm_running_var", bn.running_var)
bn.eval()
emit("batch_norm_eval", bn(x * 0.5))

# Losses (mean reduction) and their gradients w.r.t. the prediction / logits.
pred = wave(N * F, 0.2).reshape(N, F).requires_grad_()
target = wave(N * F, 1.1).reshape(N, F)
loss = torch.nn.functional.mse_loss(pred, target)
loss.backward()
emit("mse", loss.reshape(1)); emit("mse_grad", pred.grad)
pred.grad = None
loss = torch.nn.functional.huber_loss(pred, target, delta=0.7)
loss.backward()
emit("huber", loss.reshape(1)); emit("huber_grad", pred.grad)

logits = wave(N, 0.4, 3.0).reshape(N, 1).requires_grad_()
y = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0]])
loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=torch.tensor([2.5]))
loss.backward()
emit("bce", loss.reshape(1)); emit("bce_grad", logits.grad)

C = 3
logits = wave(N * C, 0.8, 2.0).reshape(N, C).requires_grad_()
labels = torch.tensor([0, 2, 1, 2, 0])
weights = torch.tensor([0.5, 2.0, 1.0])
loss = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
loss.backward()
emit("cross_entropy", loss.reshape(1)); emit("cross_entropy_grad", logits.grad)

# Optimizers: 5 steps on f(w) = sum(c * w^2) + sum(w), w and c from wave().
def trajectory(make_opt):
    w = wave(6, 0.3).clone().requires_grad_()
    c = wave(6, 2.7, 1.0).abs() + 0.1
    opt = make_opt([w])
    for _ in range(5):
        opt.zero_grad()
        f = (c * w * w).sum() + w.sum()
        f.backward()
        opt.step()
    return w

emit("sgd", trajectory(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)))
emit("adam", trajectory(lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.01)))
emit("adamw", trajectory(lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.05)))
