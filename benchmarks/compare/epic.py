#!/usr/bin/python3
"""W6/epic* (issue 23, Targets "Speed") in PyTorch: EPiC-GAN's generator (Buhmann, Kasieczka, Thaler,
arXiv:2301.08128) in plain PyTorch, the network hepgnn's epic_generator computes (models/epic_generator.hpp,
nn/epic_layer.hpp): hidden 128, latent 10, local noise 3, 6 EPiC layers, leaky ReLU 0.01, sum_scale 1e-2;
  p0 = lrelu(W z_i + b), g0 = lrelu(W lrelu(W z_g + b) + b);
  per layer: a = lrelu(W_g1 [mean_i p_i, s sum_i p_i, g] + b), g' = lrelu(W_g2 a + b + g),
             c_i = lrelu(W_l1 [p_i, g'] + b), p'_i = lrelu(W_l2 c_i + b + p_i); then g = g' + g0, p = p' + p0;
  out_i = W p_i + b, with the mask column (0.5: every particle real) of MPGAN's g_raw layout.
b256: every jet full (multiplicity N), so the particles are a dense [B, N, 128] tensor without masks (PyTorch's
best case). u256: multiplicities uniform in 1..N (rb seed 613), the first n slots of a jet real: PyTorch runs the
dense tensor with masked pools (mean over the real particles, as hepgnn) and zeroes the padded outputs (hepgnn
computes only the real particles).

Usage: epic.py W6/{epic/b256,epic150/b256,epic/u256,epic150/u256}
Prints `<workload> torch-<form> <threads> <median_s>` for the forms:
  epicgan        EPiC-GAN's own layer: [p_i, g'] concatenated per particle ([B, N, 138]) before W_l1
  split          W_l1 = [W_lp | W_lg] as hepgnn computes it: W_lg g' once per jet, broadcast onto W_lp p_i + b
  split+compile  the split form through torch.compile (PyTorch 2.x)
Weights and noise: the rb generator (rb_common.py), as compare_epic builds them (epic.cpp). stderr: checksums;
with HEPGNN_EPIC_DUMP=DIR holding compare_epic's dump, the element-by-element difference.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(__file__))
from mpgan import timed  # noqa: E402  (rb_common.median_seconds, on process CPU time with REFBENCH_CPU_TIME=1)
from rb_common import linear_params, rb_randint, rb_upm1, report, threads_from_env  # noqa: E402

HIDDEN, LATENT, LOCAL, LAYERS, OUT, SLOPE, SUM_SCALE = 128, 10, 3, 6, 3, 0.01, 1e-2


def lrelu(x):
    return Fn.leaky_relu(x, SLOPE)


def make_params(base):
    """[weight, bias] of every Linear in epic_generator's for_each_param order, the k-th from seed base + 2k."""
    shapes = [(LOCAL, HIDDEN, True), (LATENT, HIDDEN, True), (HIDDEN, LATENT, True)]
    for _ in range(LAYERS):  # fc_global1, fc_global2, fc_local1, fc_local1_global (no bias), fc_local2
        shapes += [(2 * HIDDEN + LATENT, HIDDEN, True), (HIDDEN, LATENT, True), (HIDDEN, HIDDEN, True),
                   (LATENT, HIDDEN, False), (HIDDEN, HIDDEN, True)]
    shapes.append((HIDDEN, OUT, True))
    ps = []
    for k, (fin, fout, bias) in enumerate(shapes):
        w, b = linear_params(fin, fout, base + 2 * k)
        ps.append([torch.from_numpy(w), torch.from_numpy(b) if bias else None])
    return ps


class Generator(torch.nn.Module):
    def __init__(self, form):
        super().__init__()
        self.form = form
        ps = make_params(8000)
        self.local0, self.global0, self.global1, self.out = ps[0], ps[1], ps[2], ps[-1]
        self.layers = [ps[3 + 5 * l: 8 + 5 * l] for l in range(LAYERS)]
        # EPiC-GAN's form: one Linear on [p_i, g'] (weight [W_lp | W_lg], the bias of the particle part)
        self.cat_w = [torch.cat([l[2][0], l[3][0]], 1).contiguous() for l in self.layers]

    def forward(self, z, zg, mask=None):
        """z [B, N, 3] local noise, zg [B, 10] global noise, mask [B, N, 1] (1 real, 0 padded; None: all real)
        -> g_raw [B, N, 4]."""
        B, N, _ = z.shape
        p0 = lrelu(Fn.linear(z, *self.local0))
        g0 = lrelu(Fn.linear(lrelu(Fn.linear(zg, *self.global0)), *self.global1))
        p, g = p0, g0
        for k, (fg1, fg2, fl1, flg, fl2) in enumerate(self.layers):
            if mask is None:
                pooled = torch.cat([p.mean(1), SUM_SCALE * p.sum(1), g], 1)
            else:
                s = (p * mask).sum(1)
                pooled = torch.cat([s / mask.sum(1), SUM_SCALE * s, g], 1)
            gn = lrelu(Fn.linear(lrelu(Fn.linear(pooled, *fg1)), *fg2) + g)
            if self.form == "epicgan":
                c = lrelu(Fn.linear(torch.cat([p, gn.unsqueeze(1).expand(B, N, LATENT)], 2), self.cat_w[k], fl1[1]))
            else:
                c = lrelu(Fn.linear(p, *fl1) + Fn.linear(gn, flg[0]).unsqueeze(1))
            pn = lrelu(Fn.linear(c, *fl2) + p)
            g, p = gn + g0, pn + p0
        y = Fn.linear(p, *self.out)
        if mask is None:
            return torch.cat([y, torch.full((B, N, 1), 0.5, dtype=y.dtype)], 2)
        return torch.cat([y * mask, mask - 0.5], 2)


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "W6/epic/b256"
    threads = threads_from_env()
    torch.set_num_threads(threads)
    N = 150 if "epic150" in w else 30
    B = 256
    s3 = np.float32(1.7320508)
    z = torch.from_numpy((s3 * rb_upm1(611, B * N * LOCAL)).reshape(B, N, LOCAL))
    zg = torch.from_numpy((s3 * rb_upm1(612, B * LATENT)).reshape(B, LATENT))
    mask = None
    if "/u" in w:  # uniform multiplicities 1..N, the first n slots real
        n = 1 + rb_randint(613, B, N)
        mask = torch.from_numpy((np.arange(N)[None, :] < n[:, None]).astype(np.float32)).unsqueeze(2)
    forms = [("epicgan", Generator("epicgan")), ("split", Generator("split"))]
    if hasattr(torch, "compile"):  # PyTorch 2.x: TorchInductor
        forms.append(("split+compile", torch.compile(Generator("split"))))
    out = None
    for name, G in forms:
        with torch.no_grad():
            s = timed(lambda: G(z, zg, mask), 5, 2.0 if N == 150 else 1.0)
            y = G(z, zg, mask)
        report(w, "torch-" + name, threads, s)
        print(f"{w} torch-{name}: {s / B * 1e6:.4g} us per jet, {B / s:.4g} jets/s", file=sys.stderr)
        if out is None:
            out = y
        else:
            print(f"{w} torch-{name}: max |diff| to torch-{forms[0][0]} {float((y - out).abs().max()):.3g}",
                  file=sys.stderr)
    print(f"{w} checksum g_raw: sum {float(out.sum()):.7g} sum|.| {float(out.abs().sum()):.7g} first "
          + " ".join(f"{v:.7g}" for v in out.reshape(-1)[:4].tolist()), file=sys.stderr)
    d, tag = os.environ.get("HEPGNN_EPIC_DUMP"), f"epic{N}" + ("u" if mask is not None else "")
    if d and os.path.exists(f"{d}/{tag}_g_raw.npy"):
        ref = np.load(f"{d}/{tag}_g_raw.npy").reshape(out.shape)
        diff = np.abs(out.numpy() - ref)
        print(f"{w} agreement: g_raw max |torch - hepgnn| {diff.max():.3g}, relative to max |g_raw| "
              f"{diff.max() / np.abs(ref[..., :OUT]).max():.3g} (mask column equal: "
              f"{bool((out.numpy()[..., OUT] == ref[..., OUT]).all())})", file=sys.stderr)


if __name__ == "__main__":
    main()
