// W6 (issue 23, Targets "Speed") in hepgnn: MPGAN (Kansal et al., NeurIPS 2021) generation and training, the
// published configuration (30 particles, mask_c, 2 iterations, fe 96-160-192, fn 256-256, noise 32).
//   W6/generate/b256     generator inference, 256 jets per call        (seconds per batch)
//   W6/generate/b1       generator inference, 1 jet per call           (seconds per batch)
//   W6/train/b256        one training step (D step on real and fake, G step through D; LSGAN, RMSprop, D dropout
//                        0.5) on 256 real jets, as models/mpgan_training.hpp's mpgan_gan::train_step
//   W6/generate150/b256  the generator at 150 particles, 256 jets in chunks of 32 (the whole batch at once would
//                        hold 2 x 10 GiB of edge activations); one warm-up chunk, one timed batch
// Usage: compare_mpgan W6/...   prints `<workload> hepgnn <threads> <median_s>`.
// Weights: every Linear (in for_each_param order) from the rb generator (rb.hpp), generator seeds 6000 + 2k,
// discriminator 7000 + 2k; inputs from rb too (mpgan.py builds the same ones). stderr: checksums of g_raw and of
// D's output. With HEPGNN_MPGAN_DUMP=DIR (W6/generate/b256 and W6/generate150/b256 only) the outputs go to
// DIR/<tag>_*.npy for mpgan.py to compare element by element: g_raw, D(real) and D(g_raw) in eval mode, and the
// parameter-gradient norms of one D loss and one G loss without dropout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/io/npy.hpp"
#include "hepgnn/loss/least_squares_gan.hpp"
#include "hepgnn/models/mpgan.hpp"
#include "hepgnn/models/mpgan_discriminator.hpp"
#include "hepgnn/models/mpgan_training.hpp"
#include "rb.hpp"

using namespace hepgnn;

namespace {

/// Noise (B*N) x 32: uniform with MPGAN's standard deviation 0.2 (0.2 sqrt 3 * U[-1, 1)); multiplicities 1..N.
matrix<float> make_noise(long B, long N, std::uint64_t seed) {
  matrix<float> z(B * N, 32);
  for (long k = 0; k < z.size(); ++k) z.data()[k] = 0.34641016f * rb::upm1(seed, std::uint64_t(k));
  return z;
}
std::vector<std::int64_t> make_counts(long B, long N, std::uint64_t seed) {
  std::vector<std::int64_t> n(static_cast<std::size_t>(B));
  for (long q = 0; q < B; ++q) n[static_cast<std::size_t>(q)] = 1 + rb::randint(seed, std::uint64_t(q), std::uint32_t(N));
  return n;
}
/// Real jets in D's layout (eta, phi, pt - 0.5, mask - 0.5): the first n particles real, the others zero (padded).
matrix<float> make_real(const std::vector<std::int64_t>& n, long N, std::uint64_t seed) {
  const long B = static_cast<long>(n.size());
  matrix<float> x(B * N, 4);
  for (long q = 0; q < B; ++q)
    for (long i = 0; i < N; ++i) {
      const long r = q * N + i;
      const bool real = i < n[static_cast<std::size_t>(q)];
      for (int k = 0; k < 3; ++k) {
        const float u = rb::upm1(seed, std::uint64_t(r) * 3 + k);
        x(r, k) = real ? 0.5f * u : (k == 2 ? -0.5f : 0.0f);  // padded: all zero before pt - 0.5
      }
      x(r, 3) = real ? 0.5f : -0.5f;
    }
  return x;
}

template <class Model>
double grad_norm(Model& m) {
  double s = 0;
  m.for_each_param("", [&](const std::string&, auto p) {
    for (long k = 0; k < p.size(); ++k) s += double(p.grad[k]) * double(p.grad[k]);
  });
  return std::sqrt(s);
}

void checksum(const std::string& w, const char* what, const matrix<float>& m) {
  std::fprintf(stderr, "%s checksum %s: sum %.7g sum|.| %.7g first %.7g %.7g %.7g %.7g\n", w.c_str(), what,
               double(m.sum()), double(m.cwiseAbs().sum()), double(m.data()[0]), double(m.data()[1]),
               double(m.data()[2]), double(m.data()[3]));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W6/generate/b256";
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const bool n150 = w.find("generate150") != std::string::npos;
  const long N = n150 ? 150 : 30;
  const long B = w.ends_with("/b1") ? 1 : 256;
  mpgan_generator_config gc;
  gc.num_particles = static_cast<int>(N);
  mpgan_discriminator_config dc;
  dc.num_particles = static_cast<int>(N);
  const matrix<float> noise = make_noise(B, N, 601);
  const std::vector<std::int64_t> counts = make_counts(B, N, 602);

  if (w.find("/train/") != std::string::npos) {
    mpgan_gan<float> gan(gc, dc, mpgan_training_config::for_jet_type(mpgan_jet_type::top));
    rb::init_linears(gan.generator(), 6000);
    rb::init_linears(gan.discriminator(), 7000);
    mpgan_training_data<float> data;
    data.num_particles = N;
    data.multiplicity = counts;
    data.x = make_real(counts, N, 603);
    std::vector<std::size_t> items(static_cast<std::size_t>(B));
    for (long q = 0; q < B; ++q) items[static_cast<std::size_t>(q)] = static_cast<std::size_t>(q);
    mpgan_step_losses l;
    const double s = rb::median_seconds([&] { l = gan.train_step(data, items); }, 2, 0.0);
    std::fprintf(stderr, "%s hepgnn: last step d_loss %.5g d_real %.5g d_fake %.5g g_loss %.5g\n", w.c_str(), l.d_loss,
                 l.d_real, l.d_fake, l.g_loss);
    rb::report(w, "hepgnn", threads, s);
    return 0;
  }

  mpgan_generator<float> G(gc);
  rb::init_linears(G, 6000);
  const long chunk = n150 ? 32 : B;
  std::vector<mpgan_generator<float>::workspace> ws(1);
  matrix<float> out(B * N, 4);
  auto generate = [&](long jets) {
    for (long q0 = 0; q0 < jets; q0 += chunk) {
      const long nb = std::min(chunk, jets - q0);
      const matrix<float> z = noise.middleRows(q0 * N, nb * N);
      const std::vector<std::int64_t> n(counts.begin() + q0, counts.begin() + q0 + nb);
      out.middleRows(q0 * N, nb * N) = G.infer(z, n, ws[0]);
    }
  };
  double s;
  if (n150) {
    generate(chunk);  // warm-up: one chunk
    const char* cpu = std::getenv("REFBENCH_CPU_TIME");  // one timed batch, on CPU time as rb::median_seconds
    auto now = [cpu_time = cpu && std::string(cpu) == "1"] {
      if (cpu_time) return double(std::clock()) / CLOCKS_PER_SEC;
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
    const double a = now();
    generate(B);
    s = now() - a;
  } else {
    s = rb::median_seconds([&] { generate(B); }, B == 1 ? 7 : 5, 1.0);
  }
  checksum(w, "g_raw", out);
  std::fprintf(stderr, "%s hepgnn: %.4g us per jet, %.4g jets/s (%d threads)\n", w.c_str(), s / double(B) * 1e6,
               double(B) / s, threads);

  if (const char* dir = std::getenv("HEPGNN_MPGAN_DUMP"); dir && B == 256) {
    const std::string tag = std::string(dir) + "/" + (n150 ? "n150" : "n30");
    write_npy(tag + "_g_raw.npy", npy_array::from_matrix(out));
    // D on real jets and on the generated ones (eval mode), first 32 jets
    const long nb = 32;
    mpgan_discriminator<float> D(dc);
    rb::init_linears(D, 7000);
    const matrix<float> real = make_real(counts, N, 603).topRows(nb * N);
    const matrix<float> fake = out.topRows(nb * N);
    mpgan_discriminator<float>::workspace wr, wf;
    matrix<float> d(nb, 2);
    d.col(0) = D.infer(real, wr);
    d.col(1) = D.infer(fake, wf);
    write_npy(tag + "_d.npy", npy_array::from_matrix(d));
    checksum(w, "D(real), D(fake)", d);
    // gradients without dropout: D loss on (real, fake) into D; G loss through D into G (first 32 jets)
    zero_grad(D);
    const matrix<float> dr = D.forward(real, wr);
    const matrix<float> df = D.forward(fake, wf);
    lsgan_gradients<float> gd;
    const double dloss = lsgan_discriminator_loss(dr, df, {}, &gd);
    D.backward(real, gd.real, wr, nullptr);
    D.backward(fake, gd.fake, wf, nullptr);
    const double dnorm = grad_norm(D);
    zero_grad(D);
    zero_grad(G);
    mpgan_generator<float>::workspace wg;
    const std::vector<std::int64_t> n(counts.begin(), counts.begin() + nb);
    const matrix<float> z = noise.topRows(nb * N);
    const matrix<float> g = G.forward(z, n, wg);
    const matrix<float>& dg = D.forward(g, wf);
    matrix<float> dscore, dfake;
    const double gloss = lsgan_generator_loss(dg, {}, &dscore);
    D.backward(g, dscore, wf, &dfake);
    G.backward(z, dfake, wg, nullptr);
    matrix<float> v(1, 4);
    v << float(dloss), float(dnorm), float(gloss), float(grad_norm(G));
    write_npy(tag + "_grad.npy", npy_array::from_matrix(v));
    std::fprintf(stderr, "%s hepgnn: no-dropout D loss %.7g |grad D| %.7g G loss %.7g |grad G| %.7g\n", w.c_str(),
                 v(0, 0), v(0, 1), v(0, 2), v(0, 3));
  }
  rb::report(w, "hepgnn", threads, s);
}
