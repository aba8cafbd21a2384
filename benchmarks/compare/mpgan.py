#!/usr/bin/python3
"""W6 (issue 23, Targets "Speed") in PyTorch: MPGAN's generator and discriminator written in plain PyTorch with
the structure of MPGAN's MPGenerator / MPDiscriminator (mask_c, 2 iterations, fe 96-160-192, fn 256-256, noise 32,
fully connected jets with self loops, sum of the messages, node input [m_i, h_i], LeakyReLU(0.2), tanh output;
discriminator with dropout 0.5 after every layer, masked sum pooling, Linear 32 -> 1, sigmoid).

Usage: mpgan.py W6/{generate/b256,generate/b1,train/b256,generate150/b256}
Prints `<workload> torch-<form> <threads> <median_s>` for the forms:
  mpgan        MPGAN's own form: [h_i, h_j] concatenated per pair as a dense [B, N, N, 2F] tensor (generation at
               30 particles only)
  dense        the first edge Linear split into per-particle products, A h_i + B h_j + b broadcast to [B, N, N, 96],
               the later edge layers on the dense [B, N, N, .] tensor (the best eager form; training uses it)
  dense+compile  the dense form through torch.compile (PyTorch 2.x, generation only)
Weights and inputs: the rb generator (rb_common.py), as compare_mpgan builds them (mpgan.cpp). stderr: checksums;
with HEPGNN_MPGAN_DUMP=DIR holding compare_mpgan's dumps, the element-by-element differences.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(__file__))
from rb_common import median_time, rb_randint, rb_upm1, report, threads_from_env  # noqa: E402

FE, FN, NOISE, HIDDEN, OUT, ITERS, SLOPE = [96, 160, 192], [256, 256], 32, 32, 3, 2, 0.2


def rb_linear(fan_in, fan_out, seed):
    b = np.float32(1.0 / np.sqrt(float(fan_in)))
    w = (b * rb_upm1(seed, fan_in * fan_out)).reshape(fan_out, fan_in)
    bias = b * rb_upm1(seed + 1, fan_out)
    return [torch.from_numpy(w.astype(np.float32)), torch.from_numpy(bias.astype(np.float32))]


def make_layers(fin, hidden, fout, base):
    """Per iteration: (edge layers, node layers) as [weight, bias] lists, seeds base + 2k in for_each_param order."""
    seed, its = base, []
    for t in range(ITERS):
        i, o = (fin if t == 0 else hidden), (fout if t + 1 == ITERS else hidden)
        fe, w = [], 2 * i
        for width in FE:
            fe.append(rb_linear(w, width, seed))
            seed, w = seed + 2, width
        fn, w = [], i + FE[-1]
        for width in FN + [o]:
            fn.append(rb_linear(w, width, seed))
            seed, w = seed + 2, width
        its.append((fe, fn))
    return its, seed


def leaky(x):
    return Fn.leaky_relu(x, SLOPE)


def mp_iteration(h, mask, fe, fn, last, drop, form):
    """One MPLayer: h [B, N, F], mask [B, N] (source weights); drop: dropout probability or 0."""
    B, N, F = h.shape
    w0, b0 = fe[0]
    if form == "mpgan":  # [h_i, h_j] per pair, as MPGAN builds it
        pairs = torch.cat([h.unsqueeze(2).expand(B, N, N, F), h.unsqueeze(1).expand(B, N, N, F)], 3)
        z = leaky(Fn.linear(pairs, w0, b0))
    else:  # A h_i + B h_j + b
        a = Fn.linear(h, w0[:, :F], b0)
        c = Fn.linear(h, w0[:, F:])
        z = leaky(a.unsqueeze(2) + c.unsqueeze(1))
    if drop:
        z = Fn.dropout(z, drop, True)
    for w, b in fe[1:]:
        z = leaky(Fn.linear(z, w, b))
        if drop:
            z = Fn.dropout(z, drop, True)
    m = (z * mask[:, None, :, None]).sum(2)  # messages of padded particles (senders j) zeroed
    x = torch.cat([m, h], 2)
    for k, (w, b) in enumerate(fn):
        x = Fn.linear(x, w, b)
        if k + 1 < len(fn):
            x = leaky(x)
        if drop:
            x = Fn.dropout(x, drop, True)
    return x


class Generator(torch.nn.Module):
    def __init__(self, form):
        super().__init__()
        its, _ = make_layers(NOISE, HIDDEN, OUT, 6000)
        self.params = torch.nn.ParameterList([torch.nn.Parameter(p) for fe, fn in its for l in fe + fn for p in l])
        self.form = form

    def iterations(self):
        ps, k, its = list(self.params), 0, []
        for _ in range(ITERS):
            fe = [ps[k + 2 * l: k + 2 * l + 2] for l in range(len(FE))]
            k += 2 * len(FE)
            fn = [ps[k + 2 * l: k + 2 * l + 2] for l in range(len(FN) + 1)]
            k += 2 * (len(FN) + 1)
            its.append((fe, fn))
        return its

    def forward(self, noise, n):
        """noise [B, N, 32], n [B] multiplicities -> g_raw [B, N, 4] (tanh'ed features, mask - 0.5)."""
        order = torch.argsort(noise[:, :, 0], dim=1, stable=True)
        rank = torch.argsort(order, dim=1)
        mask = (rank < n[:, None]).to(noise.dtype)  # mask_c
        h = noise
        for t, (fe, fn) in enumerate(self.iterations()):
            h = mp_iteration(h, mask, fe, fn, t + 1 == ITERS, 0.0, self.form)
        return torch.cat([torch.tanh(h), (mask - 0.5).unsqueeze(2)], 2)


class Discriminator(torch.nn.Module):
    def __init__(self, form="dense", dropout=0.5):
        super().__init__()
        its, seed = make_layers(OUT, HIDDEN, HIDDEN, 7000)
        ps = [p for fe, fn in its for l in fe + fn for p in l] + rb_linear(HIDDEN, 1, seed)
        self.params = torch.nn.ParameterList([torch.nn.Parameter(p) for p in ps])
        self.form, self.dropout = form, dropout

    def forward(self, x):
        """x [B, N, 4] (eta, phi, pt - 0.5, mask - 0.5) -> D(x) [B, 1]."""
        ps, k = list(self.params), 0
        drop = self.dropout if self.training else 0.0
        mask = x[:, :, 3] + 0.5
        h = x[:, :, :3]
        for t in range(ITERS):
            fe = [ps[k + 2 * l: k + 2 * l + 2] for l in range(len(FE))]
            k += 2 * len(FE)
            fn = [ps[k + 2 * l: k + 2 * l + 2] for l in range(len(FN) + 1)]
            k += 2 * (len(FN) + 1)
            h = mp_iteration(h, mask, fe, fn, t + 1 == ITERS, drop, self.form)
        pooled = (h * mask.unsqueeze(2)).sum(1)
        y = Fn.linear(pooled, ps[k], ps[k + 1])
        if drop:
            y = Fn.dropout(y, drop, True)
        return torch.sigmoid(y)


def inputs(B, N):
    noise = torch.from_numpy((np.float32(0.34641016) * rb_upm1(601, B * N * NOISE)).reshape(B, N, NOISE))
    n = torch.from_numpy(1 + rb_randint(602, B, N))
    u = rb_upm1(603, B * N * 3).reshape(B, N, 3)
    real = np.zeros((B, N, 4), np.float32)
    is_real = np.arange(N)[None, :] < n.numpy()[:, None]
    real[:, :, :3] = np.where(is_real[:, :, None], np.float32(0.5) * u, 0)
    real[:, :, 2] = np.where(is_real, real[:, :, 2], -0.5)
    real[:, :, 3] = np.where(is_real, 0.5, -0.5)
    return noise, n, torch.from_numpy(real)


def grad_norm(m):
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.parameters())))


def check(w, tag, G, noise, n, real, out):
    """Element-by-element comparison with compare_mpgan's dumps (HEPGNN_MPGAN_DUMP)."""
    d = os.environ.get("HEPGNN_MPGAN_DUMP")
    if not d or not os.path.exists(f"{d}/{tag}_g_raw.npy"):
        return
    ref = np.load(f"{d}/{tag}_g_raw.npy").reshape(out.shape)
    print(f"{w} agreement: g_raw max |torch - hepgnn| {np.abs(out.numpy() - ref).max():.3g} "
          f"(mask column equal: {bool((out.numpy()[..., 3] == ref[..., 3]).all())})", file=sys.stderr)
    nb = 32
    D = Discriminator("dense").eval()
    with torch.no_grad():
        dref = np.load(f"{d}/{tag}_d.npy")
        dr, df = D(real[:nb])[:, 0].numpy(), D(out[:nb])[:, 0].numpy()
    print(f"{w} agreement: D(real) max |diff| {np.abs(dr - dref[:, 0]).max():.3g}, D(g_raw) max |diff| "
          f"{np.abs(df - dref[:, 1]).max():.3g} (values ~{dr.mean():.4f}, {df.mean():.4f})", file=sys.stderr)
    # gradients without dropout (dropout masks cannot agree between the two)
    D.train()
    D.dropout = 0.0
    dl = ((D(real[:nb]) - 1) ** 2).mean() + (D(out[:nb]) ** 2).mean()
    dl.backward()
    dn = grad_norm(D)
    D.zero_grad()
    Gd = Generator("dense")
    gl = ((D(Gd(noise[:nb], n[:nb])) - 1) ** 2).mean()
    gl.backward()
    v = np.load(f"{d}/{tag}_grad.npy").reshape(-1)
    mine = [float(dl), dn, float(gl), grad_norm(Gd)]
    print(f"{w} agreement: no-dropout D loss, |grad D|, G loss, |grad G|: torch "
          + " ".join(f"{x:.7g}" for x in mine) + " hepgnn " + " ".join(f"{x:.7g}" for x in v)
          + " max rel diff " + f"{max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(mine, v)):.3g}", file=sys.stderr)


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W6/generate/b256"
    threads = threads_from_env()
    torch.set_num_threads(threads)
    n150 = "generate150" in w
    N = 150 if n150 else 30
    B = 1 if w.endswith("/b1") else 256
    noise, n, real = inputs(B, N)

    if "/train/" in w:
        G, D = Generator("dense"), Discriminator("dense")
        optG = torch.optim.RMSprop(G.parameters(), lr=2e-5)
        optD = torch.optim.RMSprop(D.parameters(), lr=6e-5)
        torch.manual_seed(1)
        losses = []

        def step():  # MPGAN's train_D then train_G (LSGAN)
            D.train()
            optD.zero_grad()
            d_real = D(real)
            with torch.no_grad():
                fake = G(0.2 * torch.randn(B, N, NOISE), n)
            d_fake = D(fake)
            dl = ((d_real - 1) ** 2).mean() + (d_fake ** 2).mean()
            dl.backward()
            optD.step()
            optG.zero_grad()
            gl = ((D(G(0.2 * torch.randn(B, N, NOISE), n)) - 1) ** 2).mean()
            gl.backward()
            optG.step()
            losses[:] = [float(dl), float(gl)]

        report(w, "torch-dense", threads, median_time(step, 2, 0.0))
        print(f"{w} torch-dense: last step d_loss {losses[0]:.5g} g_loss {losses[1]:.5g}", file=sys.stderr)
        return

    chunk = 32 if n150 else B
    forms = [("mpgan", Generator("mpgan")), ("dense", Generator("dense"))]
    if n150:  # MPGAN's form is 2x slower than dense and would take minutes per batch at 150 particles
        forms = forms[1:]
    if hasattr(torch, "compile"):  # PyTorch 2.x: TorchInductor
        forms.append(("dense+compile", torch.compile(dict(forms)["dense"])))
    out = None
    for name, G in forms:
        def generate(jets=B):
            r = []
            for q in range(0, jets, chunk):
                r.append(G(noise[q:q + chunk], n[q:q + chunk]))
            return torch.cat(r)
        with torch.no_grad():
            if n150:
                generate(chunk)  # warm-up (and compilation): one chunk
                clock = time.process_time if os.environ.get("REFBENCH_CPU_TIME") == "1" else time.perf_counter
                a = clock()  # one timed batch (tens of seconds)
                y = generate()
                s = clock() - a
            else:
                s = median_time(generate, 7 if B == 1 else 5, 1.0)
                y = generate()
        report(w, "torch-" + name, threads, s)
        print(f"{w} torch-{name}: {s / B * 1e6:.4g} us per jet, {B / s:.4g} jets/s", file=sys.stderr)
        if out is None:
            out = y
        else:
            print(f"{w} torch-{name}: max |diff| to torch-{forms[0][0]} {float((y - out).abs().max()):.3g}", file=sys.stderr)
    print(f"{w} checksum g_raw: sum {float(out.sum()):.7g} sum|.| {float(out.abs().sum()):.7g} first "
          + " ".join(f"{v:.7g}" for v in out.reshape(-1)[:4].tolist()), file=sys.stderr)
    if B == 256:
        check(w, "n150" if n150 else "n30", None, noise, n, real, out)


if __name__ == "__main__":
    main()
