#!/usr/bin/env python3
"""Reference values for tests/metrics/test_generation_metrics.cpp, computed with the real JetNet and energyflow.

Setup (the versions these values came from: jetnet 0.2.5, energyflow 1.4.0, scipy 1.17.1, numpy 1.26.4):
    python3 -m venv venv && venv/bin/pip install energyflow jetnet scipy numpy
    venv/bin/pip uninstall -y pyarrow   # pip brings a pyarrow that needs numpy 2, while jetnet keeps numpy 1.26,
                                        # and awkward then fails to import; jetnet does not need pyarrow
    venv/bin/python tests/reference/generation_metrics_reference.py [path/to/shared/data]
Writes tests/data/generation_metrics_reference.txt, lines `<name> <count> v0 v1 ...` (support/reference.hpp).

Inputs are closed-form jets (wave_jets below; the test builds the same jets in C++), so nothing is stored but the
outputs. JetNet draws its evaluation batches with numpy's generator; to compare exactly, its module-level `rng` (and
numpy.random.default_rng inside fpd / kpd) is replaced by a stand-in whose choice() returns closed-form index lists
(fixed_rows below, rebuilt in C++ too), so JetNet's own w1m / w1p / w1efp / fpd / kpd code runs on known batches.
With a data folder (shared/data, default ../shared/data from the repository root), the EFPs of its 26 real FastJet
jets are added (the jets themselves are GPL data and stay there; only the EFP values are written).
"""
import os
import sys

import numpy as np
import energyflow as ef
from scipy.optimize import curve_fit

from jetnet import utils
from jetnet.evaluation import gen_metrics as gm

here = os.path.dirname(os.path.abspath(__file__))
out_path = os.path.join(here, "..", "data", "generation_metrics_reference.txt")
P = 30


def wave_jets(sample, n):
    """Jets [n, 30, 4] (eta_rel, phi_rel, pt_rel, mask); multiplicity 5..30, zero padding. Sample 1's pt_rel sum to
    1 + 0.1 sin(1.3 j) (generated jets need not sum to 1); jet 3 of sample 0 spreads phi over +-2 (phi wrap-around)."""
    jets = np.zeros((n, P, 4))
    for j in range(n):
        m = 5 + (7 * j + 11 * sample) % 26
        i = np.arange(m)
        k = (sample * 1000 + j) * P + i
        eta = 0.35 * np.sin(0.37 * k + 0.2 * sample)
        phi = (2.0 if (sample == 0 and j == 3) else 0.3) * np.sin(0.71 * k + 1.1)
        pt = np.exp(-0.12 * i) * (1.2 + np.sin(0.53 * k))
        pt = pt / pt.sum()
        if sample == 1:
            pt = pt * (1 + 0.1 * np.sin(1.3 * j))
        jets[j, :m, 0], jets[j, :m, 1], jets[j, :m, 2], jets[j, :m, 3] = eta, phi, pt, 1.0
    return jets


def fixed_rows(call, n, size):
    """The index list of draw number `call`: (a k + c) mod n with a = 11 + 2 call, c = 3 call + 1."""
    return (np.arange(size) * (11 + 2 * call) + 3 * call + 1) % n


class FixedChoice:
    """Stands in for numpy's Generator: choice(n, size) returns fixed_rows(call, n, size), call = 0, 1, ..."""

    def __init__(self, first_call=0):
        self.call = first_call

    def choice(self, n, size):
        rows = fixed_rows(self.call, n, size)
        self.call += 1
        return rows


lines = []


def put(name, values):
    v = np.asarray(values, dtype=np.float64).ravel()
    lines.append(f"{name} {v.size} " + " ".join(repr(float(x)) for x in v))


NA, NB = 200, 180
a, b = wave_jets(0, NA), wave_jets(1, NB)
a3, b3 = a[:, :, :3].copy(), b[:, :, :3].copy()

# per-jet quantities
put("mass_a", utils.jet_features(a3)["mass"])
put("mass_b", utils.jet_features(b3)["mass"])
efp5_a, efp5_b = utils.efps(a3, efp_jobs=1), utils.efps(b3, efp_jobs=1)
efp36_a = gm.get_fpd_kpd_jet_features(a3, efp_jobs=1)
efp36_b = gm.get_fpd_kpd_jet_features(b3, efp_jobs=1)
assert efp5_a.shape == (NA, 5) and efp36_a.shape == (NA, 36)
put("efp5_a_first24", efp5_a[:24])
put("efp5_b_first24", efp5_b[:24])
put("efp36_a_first24", efp36_a[:24])
put("efp36_b_first24", efp36_b[:24])
put("efp5_a_colsum", efp5_a.sum(axis=0))
put("efp36_b_colsum", efp36_b.sum(axis=0))

# W1 metrics on fixed batches: 3 batches of 150 jets (draws 0..5: first, second, first, ...)
gm.rng = FixedChoice()
m, s = gm.w1m(a3, b3, num_eval_samples=150, num_batches=3)
put("w1m_fixed3", [m, s])
gm.rng = FixedChoice()
m, s = gm.w1p(a3, b3, mask1=a[:, :, 3], mask2=b[:, :, 3], num_eval_samples=150, num_batches=3)
put("w1p_fixed3_mean", m)
put("w1p_fixed3_std", s)
gm.rng = FixedChoice()
m, s = gm.w1efp(a3, b3, num_eval_samples=150, num_batches=3, efp_jobs=1)
put("w1efp_fixed3_mean", m)
put("w1efp_fixed3_std", s)

# FPD on the 36 EFPs: batch sizes int(1 / linspace(1/50, 1/150, 4)), 3 batches each, fixed draws
real, gen = efp36_a, efp36_b
X, Y = gm._normalise_features(real, gen)
orig_default_rng = np.random.default_rng
np.random.default_rng = lambda seed=None: FixedChoice()
try:
    val, err = gm.fpd(real, gen, min_samples=50, max_samples=150, num_batches=3, num_points=4)
finally:
    np.random.default_rng = orig_default_rng
put("fpd_fixed", [val, err])
sizes = (1 / np.linspace(1.0 / 50, 1.0 / 150, 4)).astype("int32")
put("fpd_sizes", sizes)
# the per-size means JetNet fits (same draws, recomputed with its own Frechet function)
call, means = 0, []
for n in sizes:
    vals = []
    for _ in range(3):
        r1, r2 = fixed_rows(call, len(X), n), fixed_rows(call + 1, len(Y), n)
        call += 2
        s1, s2 = X[r1], Y[r2]
        vals.append(gm._calculate_frechet_distance(s1.mean(0), np.cov(s1, rowvar=False), s2.mean(0),
                                                   np.cov(s2, rowvar=False)))
    means.append(np.mean(vals))
put("fpd_point_means", means)
# full samples, normalised: the deterministic Frechet distance
put("fd_full", [gm._calculate_frechet_distance(X.mean(0), np.cov(X, rowvar=False), Y.mean(0),
                                                np.cov(Y, rowvar=False))])
# an unconstrained and a bounded line fit (negative slope data: slope clamps to 0)
x_fit = np.array([1 / 50, 1 / 80, 1 / 110, 1 / 150])
for name, y_fit in [("fit_free", [0.9, 0.7, 0.62, 0.55]), ("fit_bounded", [0.5, 0.6, 0.62, 0.7])]:
    p, c = curve_fit(gm._linear, x_fit, y_fit, bounds=([0, 0], [np.inf, np.inf]))
    put(name, [p[0], np.sqrt(np.diag(c)[0]), p[1]])

# KPD: 5 batches of 60 rows; batch i's generator (seeded 42 + 1000 i) gets draws 2i, 2i + 1
np.random.default_rng = lambda seed=None: FixedChoice(2 * ((seed - 42) // 1000))
try:
    val, err = gm.kpd(real, gen, num_batches=5, batch_size=60)
finally:
    np.random.default_rng = orig_default_rng
put("kpd_fixed", [val, err])
put("kpd_batches", [gm._mmd_poly_quadratic_unbiased(X[fixed_rows(2 * i, len(X), 60)],
                                                     Y[fixed_rows(2 * i + 1, len(Y), 60)]) for i in range(5)])

# real jets: EFPs of the 26 FastJet jets (eta_rel, phi_rel, pt_rel of jetnet30_particle_features.npy)
data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "shared", "data")
npy = os.path.join(data, "jets_fastjet_pythia", "jetnet30_particle_features.npy")
if os.path.exists(npy):
    real_jets = np.load(npy).astype(np.float64)[:, :, :3]
    put("fastjet_efp5", utils.efps(real_jets, efp_jobs=1))
    put("fastjet_efp36", gm.get_fpd_kpd_jet_features(real_jets, efp_jobs=1))
    put("fastjet_mass", utils.jet_features(real_jets)["mass"])
else:
    print("no", npy, "- real-jet EFPs left out")

# FPND's last step on the same 26 jets: JetNet's Frechet function between the fc1 activations of its ParticleNet
# (float64 run, jetnet_particlenet_fpnd/reference_on_fastjet_jets, equal to JetNet's own network) and the stored
# real-jet statistics of each type. Needs no torch_geometric: the activations are in the data folder.
fpnd_dir = os.path.join(data, "jetnet_particlenet_fpnd")
if os.path.exists(fpnd_dir):
    act = np.load(os.path.join(fpnd_dir, "reference_on_fastjet_jets", "float64", "activations.npy")).astype(np.float64)
    for t in "gqt":
        mu1 = np.loadtxt(os.path.join(fpnd_dir, f"{t}_mu.txt"))
        sigma1 = np.loadtxt(os.path.join(fpnd_dir, f"{t}_sigma.txt"))
        put(f"fpnd_fastjet_{t}", [gm._calculate_frechet_distance(mu1, sigma1, act.mean(0), np.cov(act, rowvar=False))])

with open(out_path, "w") as f:
    f.write("# generated by tests/reference/generation_metrics_reference.py (jetnet " +
            __import__("jetnet").__version__ + ", energyflow " + ef.__version__ + ")\n")
    f.write("\n".join(lines) + "\n")
print("wrote", out_path, len(lines), "entries")
