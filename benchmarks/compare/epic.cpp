// W6/epic* (issue 23, Targets "Speed") in hepgnn: EPiC-GAN's O(N) generator (models/epic_generator.hpp) at
// EPiC-GAN's widths (hidden 128, latent 10, local noise 3, 6 EPiC layers, leaky ReLU 0.01, sum_scale 1e-2).
//   W6/epic/b256      generator inference, 256 jets of 30 particles, every jet full      (seconds per batch)
//   W6/epic150/b256   generator inference, 256 jets of 150 particles, every jet full     (seconds per batch)
//   W6/epic/u256, W6/epic150/u256   the same with multiplicities uniform in 1..N (rb seed 613)
// b256: every jet full (multiplicity N), so that PyTorch can run its best form, dense [B, N, H] tensors without
// masks. u256: hepgnn computes the real particles only, PyTorch the dense tensor with masked pools.
// Usage: compare_epic W6/epic...   prints `<workload> hepgnn <threads> <median_s>` (epic_generator::infer, float).
// Weights: every Linear in for_each_param order from the rb generator (rb.hpp), seeds 8000 + 2k for the k-th
// Linear (weight from seed, bias from seed + 1; the bias-free fc_local1_global takes a seed of its own too);
// noise from rb as well, unit standard deviation (sqrt 3 * U[-1, 1)): local seed 611, global 612 (epic.py builds
// the same). stderr: a checksum of g_raw. With HEPGNN_EPIC_DUMP=DIR, g_raw goes to DIR/epic<N>[u]_g_raw.npy for
// epic.py to compare element by element.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/io/npy.hpp"
#include "hepgnn/models/epic_generator.hpp"
#include "rb.hpp"

using namespace hepgnn;

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W6/epic/b256";
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const long N = w.find("epic150") != std::string::npos ? 150 : 30;
  const long B = 256;
  epic_generator_config cfg;  // EPiC-GAN's widths (the defaults)
  cfg.num_particles = static_cast<int>(N);
  epic_generator<float> G(cfg);
  rb::init_linears(G, 8000);
  epic_noise<float> z;
  z.local.resize(B * N, cfg.local_noise);
  z.global.resize(B, cfg.latent);
  for (long k = 0; k < z.local.size(); ++k) z.local.data()[k] = 1.7320508f * rb::upm1(611, std::uint64_t(k));
  for (long k = 0; k < z.global.size(); ++k) z.global.data()[k] = 1.7320508f * rb::upm1(612, std::uint64_t(k));
  const bool uniform = w.find("/u") != std::string::npos;
  std::vector<std::int64_t> n(static_cast<std::size_t>(B), N);  // b256: every jet full
  if (uniform)
    for (long q = 0; q < B; ++q) n[static_cast<std::size_t>(q)] = 1 + rb::randint(613, std::uint64_t(q), std::uint32_t(N));

  epic_generator<float>::workspace ws;
  matrix<float> out;
  double flop = 0;  // per batch: 2 x the multiply-adds of each jet's real particles
  for (const std::int64_t m : n) flop += 2.0 * G.multiply_adds(static_cast<long>(m));
  const double s = rb::median_seconds([&] { out = G.infer(z, n, ws); }, 5, N == 150 ? 2.0 : 1.0);
  std::fprintf(stderr, "%s checksum g_raw: sum %.7g sum|.| %.7g first %.7g %.7g %.7g %.7g\n", w.c_str(),
               double(out.sum()), double(out.cwiseAbs().sum()), double(out.data()[0]), double(out.data()[1]),
               double(out.data()[2]), double(out.data()[3]));
  std::fprintf(stderr, "%s hepgnn: %.4g us per jet, %.4g jets/s (%d threads, %.3g GFLOP/s)\n", w.c_str(),
               s / double(B) * 1e6, double(B) / s, threads, flop / s * 1e-9);
  if (const char* dir = std::getenv("HEPGNN_EPIC_DUMP"))
    write_npy(std::string(dir) + "/epic" + std::to_string(N) + (uniform ? "u" : "") + "_g_raw.npy",
              npy_array::from_matrix(out));
  rb::report(w, "hepgnn", threads, s);
}
