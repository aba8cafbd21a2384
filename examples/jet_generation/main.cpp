// Jet generation: train EPiC-GAN's O(N) generator (models/epic_training.hpp) on toy top jets (30 particles, JetNet
// layout), evaluate it with JetNet's metrics (w1m, w1p, w1efp, fpd, kpd, cov / mmd) against held-out toy jets and
// against the truth-vs-truth floor (held-out jets against a second real sample of the same size), evaluate MPGAN's
// published trained generators (FPND with JetNet's ParticleNet, data in ../shared/data), time generation at 30 and
// 150 particles, write SVG histograms (particle eta_rel, phi_rel, pT_rel, jet mass: real vs generated) and
// optionally a JSON metrics file.
//
//   example_jet_generation [--quick] [--train-jets N] [--test-jets N] [--steps N] [--max-train-seconds S]
//                          [--batch N] [--hidden N] [--lr X] [--eval-every N] [--mpgan-jets N] [--seed S]
//                          [--out DIR] [--metrics-out FILE] [--data DIR] [--checkpoint DIR] [--resume] [--raw] [--input-sigma S]
//
// Training keeps the generator of the step with the best validation score (w1m and w1p over their truth floors, on a
// validation sample that is neither the training nor the test sample): GAN training see-saws, and MPGAN's own runs
// likewise keep the best epoch. --checkpoint DIR writes the GAN's checkpoint (models/gan_checkpoint.hpp: both
// networks, Adam state, step, noise and batch generators) every --eval-every steps; --resume continues from it.
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "../common/svg_plot.hpp"
#include "hepgnn/data/jet_conventions.hpp"
#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/io/checkpoint.hpp"
#include "hepgnn/models/gan_checkpoint.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/torch_pt.hpp"
#include "hepgnn/metrics/coverage.hpp"
#include "hepgnn/metrics/generation.hpp"
#include "hepgnn/models/epic_training.hpp"
#include "hepgnn/models/fpnd.hpp"
#include "hepgnn/models/mpgan.hpp"

using namespace hepgnn;
using T = float;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct options {
  bool quick = false, resume = false, conventions = true;
  index_t train_jets = 20000, test_jets = 10000, val_jets = 2000;
  long steps = 6000;
  double max_train_seconds = 900;  // the budget is 20 minutes of training on 2 cores
  int batch = 128, hidden = 64, gen_layers = 4, disc_layers = 2, eval_every = 250;
  double lr = 3e-4;
  double input_sigma = 5;  // > 0: networks see features standardised to this standard deviation (EPiC-GAN: 5)
  index_t mpgan_jets = 3000;
  std::uint64_t seed = 2024;
  std::string out = "jet_generation_out", metrics_out, data = HEPGNN_DATA_DIR, checkpoint;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      o.quick = true;
      o.train_jets = 3000, o.test_jets = 1000, o.val_jets = 500;
      o.steps = 300, o.max_train_seconds = 25, o.eval_every = 100, o.batch = 64;
      o.mpgan_jets = 200;
    } else if (a == "--train-jets") o.train_jets = std::stol(next());
    else if (a == "--test-jets") o.test_jets = std::stol(next());
    else if (a == "--steps") o.steps = std::stol(next());
    else if (a == "--max-train-seconds") o.max_train_seconds = std::stod(next());
    else if (a == "--batch") o.batch = std::stoi(next());
    else if (a == "--hidden") o.hidden = std::stoi(next());
    else if (a == "--lr") o.lr = std::stod(next());
    else if (a == "--eval-every") o.eval_every = std::stoi(next());
    else if (a == "--mpgan-jets") o.mpgan_jets = std::stol(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--out") o.out = next();
    else if (a == "--metrics-out") o.metrics_out = next();
    else if (a == "--data") o.data = next();
    else if (a == "--checkpoint") o.checkpoint = next();
    else if (a == "--resume") o.resume = true;
    else if (a == "--raw") o.conventions = false;
    else if (a == "--input-sigma") o.input_sigma = std::stod(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (!(o.input_sigma >= 0 && std::isfinite(o.input_sigma))) {
    std::fprintf(stderr, "--input-sigma must be finite and >= 0 (0: MPGAN's maxima), got %g\n", o.input_sigma);
    std::exit(2);
  }
  o.val_jets = std::min(o.val_jets, o.train_jets);  // its floor compares it with as many training jets
  if (o.test_jets < 2 || o.train_jets < o.batch || o.val_jets < 2) {
    std::fprintf(stderr, "need --train-jets >= --batch and --test-jets >= 2\n");
    std::exit(2);
  }
  return o;
}

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

/// Everything the example reports for one generated sample against the real test sample.
struct scores {
  double w1m = 0, w1p = 0, w1efp = 0, fpd = 0, fpd_err = 0, kpd = 0, cov = 0, mmd = 0;
  std::vector<double> w1p_each, w1efp_each;
};

struct eval_sizes {
  index_t w1_samples;
  int w1_batches;
  fpd_options fpd;
  kpd_options kpd;
  cov_mmd_options cov;
};

eval_sizes sizes_for(index_t n) {
  eval_sizes s;
  s.w1_samples = std::min<index_t>(n, 10'000);  // the MPGAN paper's 10k x 5, capped by the sample
  s.w1_batches = 5;
  s.fpd.max_samples = n;
  s.fpd.min_samples = std::max<index_t>(2, n / 4);
  s.fpd.num_batches = 10;
  s.kpd.batch_size = std::min<index_t>(n, 5'000);
  s.cov = cov_mmd_options{std::min<index_t>(n, 100), 10, 42};
  return s;
}

scores evaluate(const jet_array<T>& real, const jet_array<T>& gen, const matrix<double>& real_features,
                const eval_sizes& s) {
  scores r;
  const w1_options w{s.w1_samples, s.w1_batches, 42};
  r.w1m = w1m(real, gen, w).mean;
  r.w1p_each = w1p(real, gen, w).mean;
  r.w1p = mean_of(r.w1p_each);  // JetNet's average over the three features
  r.w1efp_each = w1efp(real, gen, w).mean;
  r.w1efp = mean_of(r.w1efp_each);
  const matrix<double> f = fpd_kpd_features(gen);
  const auto d = fpd(real_features, f, s.fpd);
  r.fpd = d.value, r.fpd_err = d.error;
  r.kpd = kpd(real_features, f, s.kpd).value;
  const auto c = cov_mmd(real, gen, s.cov);
  r.cov = c.cov, r.mmd = c.mmd;
  return r;
}

/// The fast validation score: w1m and the mean w1p, each over its truth floor.
struct val_score {
  double score, w1m, w1p;
};
val_score validate(const jet_array<T>& val, const jet_array<T>& gen, double floor_m, double floor_p) {
  const w1_options w{val.num_jets, 1, 7};
  const double m = w1m(val, gen, w).mean, p = mean_of(w1p(val, gen, w).mean);
  return {m / floor_m + p / floor_p, m, p};
}

/// Histogram data: particle features of the real particles, and the jet masses.
std::vector<double> particle_feature(const jet_array<T>& jets, int col) {
  std::vector<double> v;
  for (index_t j = 0; j < jets.num_jets; ++j)
    for (index_t i = 0; i < jets.count(j); ++i) v.push_back(static_cast<double>(jets.row(j, i)(col)));
  return v;
}

/// Marginals a physicist compares first (real particles only): mean and standard deviation of each particle
/// feature, of the multiplicity, the relative jet mass, the sum of pT_rel per jet and the pT-weighted eta / phi
/// centroid per jet, and the fraction of particles with pT_rel <= 0. A generator off in one of these is off
/// systematically, whatever the metrics' batches say.
void print_marginals(const char* name, const jet_array<T>& jets) {
  auto stats = [](const std::vector<double>& v) {
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(std::max<std::size_t>(1, v.size()));
    for (double x : v) s += (x - m) * (x - m);
    return std::pair{m, std::sqrt(s / static_cast<double>(std::max<std::size_t>(1, v.size())))};
  };
  std::vector<double> f[3], mult, sum_pt, ceta, cphi;
  long nonpos = 0, total = 0;
  for (index_t j = 0; j < jets.num_jets; ++j) {
    double sp = 0, se = 0, sph = 0;
    for (index_t i = 0; i < jets.count(j); ++i) {
      const auto r = jets.row(j, i);
      for (int c = 0; c < 3; ++c) f[c].push_back(static_cast<double>(r(c)));
      const double pt = static_cast<double>(r(jet_col::pt_rel));
      sp += pt, se += pt * static_cast<double>(r(jet_col::eta_rel)), sph += pt * static_cast<double>(r(jet_col::phi_rel));
      nonpos += pt <= 0, ++total;
    }
    mult.push_back(static_cast<double>(jets.count(j)));
    sum_pt.push_back(sp);
    ceta.push_back(sp > 0 ? se / sp : 0);
    cphi.push_back(sp > 0 ? sph / sp : 0);
  }
  const auto e = stats(f[0]), ph = stats(f[1]), pt = stats(f[2]), n = stats(mult), m = stats(jet_masses(jets)),
             s = stats(sum_pt), ce = stats(ceta), cp = stats(cphi);
  std::printf("%-6s eta %.4f+-%.4f  phi %.4f+-%.4f  pt %.4f+-%.4f  n %.2f+-%.2f  m %.4f+-%.4f  sum pt %.4f+-%.4f  "
              "centroid eta %.4f+-%.4f phi %.4f+-%.4f  pt<=0 %.4f\n",
              name, e.first, e.second, ph.first, ph.second, pt.first, pt.second, n.first, n.second, m.first, m.second,
              s.first, s.second, ce.first, ce.second, cp.first, cp.second,
              static_cast<double>(nonpos) / static_cast<double>(std::max(1L, total)));
}

using gan_type = epic_gan<T>;

/// Microseconds per generated jet of an EPiC generator with this config at n particles (batch 256, full jets).
double epic_us_per_jet(epic_generator_config cfg, int n, int reps) {
  cfg.num_particles = n;
  const epic_generator<T> g(cfg);
  const long B = 256;
  rng gen(5);
  epic_noise<T> z;
  g.draw_noise(B, 1.0, gen, z);
  const std::vector<std::int64_t> mult(B, n);
  epic_generator<T>::workspace ws;
  (void)g.infer(z, mult, ws);  // warm-up: buffers allocated
  const auto t0 = clock_type::now();
  for (int r = 0; r < reps; ++r) (void)g.infer(z, mult, ws);
  return 1e6 * seconds_since(t0) / static_cast<double>(reps * B);
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  fs::create_directories(opt.out);
  const auto t_start = clock_type::now();

  // ---- toy top jets: training, validation, test, and a second real sample for the truth floor
  rng gen(opt.seed);
  const auto train = make_toy_jets<T>(opt.train_jets, jet_kind::top, gen);
  const auto val = make_toy_jets<T>(opt.val_jets, jet_kind::top, gen);
  const auto test = make_toy_jets<T>(opt.test_jets, jet_kind::top, gen);
  const auto truth = make_toy_jets<T>(opt.test_jets, jet_kind::top, gen);
  std::printf("toy top jets: %ld training, %ld validation, %ld test, %ld for the truth floor (%.1f s)\n",
              static_cast<long>(train.num_jets), static_cast<long>(val.num_jets), static_cast<long>(test.num_jets),
              static_cast<long>(truth.num_jets), seconds_since(t_start));
  std::fflush(stdout);  // before the progress lines on stderr
  // The networks' scale of each feature: standardised to a standard deviation of --input-sigma (5, EPiC-GAN's
  // norm_sigma). At MPGAN's maxima (--input-sigma 0) eta and phi spread about 0.2 and pt_rel 0.05, and the
  // discriminator never resolved them (losses at the least-squares equilibrium while the jets were far off; see
  // docs/jet_generation.md). The scale goes back out in mpgan_to_jets; pt keeps MPGAN's shift of -0.5.
  mpgan_feature_maxima scale = mpgan_maxima_of(train);
  if (opt.input_sigma > 0) {
    double sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0}, n = 0;
    for (long r = 0; r < train.particles.rows(); ++r)
      if (train.particles(r, jet_col::mask) > T(0.5)) {
        for (int k = 0; k < 3; ++k) {
          const double v = static_cast<double>(train.particles(r, k));
          sum[k] += v, sq[k] += v * v;
        }
        n += 1;
      }
    double sd[3];
    for (int k = 0; k < 3; ++k) sd[k] = std::sqrt(std::max(1e-30, sq[k] / n - (sum[k] / n) * (sum[k] / n)));
    scale = {sd[0] / opt.input_sigma, sd[1] / opt.input_sigma, sd[2] / opt.input_sigma};
  }
  const auto data = mpgan_training_data<T>::from_jets(train, scale);
  // generated jets into the data's conventions before any metric (EPiC-GAN's evaluation does the same: smallest
  // pt raised to the data's, jets centred; and pt_rel summing to 1, as every toy jet's does): --raw skips it
  jet_convention_options conv;
  conv.min_pt_rel = min_positive_pt_rel(train);
  const auto train_for_floor = [&] {  // validation floors: val against as many training jets
    auto j = jet_array<T>::zeros(val.num_jets, train.max_particles);
    j.particles = train.particles.topRows(static_cast<long>(val.num_jets) * train.max_particles);
    return j;
  }();
  const double floor_m = w1m(val, train_for_floor, w1_options{val.num_jets, 1, 7}).mean;
  const double floor_p = mean_of(w1p(val, train_for_floor, w1_options{val.num_jets, 1, 7}).mean);

  // ---- EPiC-GAN: smaller than EPiC-GAN's defaults (hidden 128, 6 + 3 layers) so that thousands of steps fit the
  // time budget on 2 cores; Adam with the learning rate decayed linearly to a tenth
  epic_generator_config gc;
  gc.hidden = opt.hidden;
  gc.layers = opt.gen_layers;
  gc.seed = opt.seed + 1;
  epic_discriminator_config dc;
  dc.hidden = opt.hidden;
  dc.layers = opt.disc_layers;
  dc.seed = opt.seed + 2;
  gan_training_config tc = gan_training_config::epic();
  tc.lr_gen = tc.lr_disc = opt.lr;
  tc.seed = opt.seed + 3;
  gan_type gan(gc, dc, tc);
  long step = 0;
  // The checkpoint (models/gan_checkpoint.hpp) holds both networks, their Adam state, the pair's noise generator
  // and these two: a resumed run draws what an uninterrupted one would. Not in it: the best generator so far (the
  // resumed run keeps its own) and the clock, so the learning-rate decay matches when the step budget drives it.
  rng draw(opt.seed + 4), noise(opt.seed + 5);
  const checkpoint_rngs example_rngs{{"batches", &draw}, {"validation_noise", &noise}};
  if (opt.resume) {
    HEPGNN_CHECK(!opt.checkpoint.empty(), "--resume needs --checkpoint DIR");
    step = load_gan_checkpoint(opt.checkpoint, gan, example_rngs).global_step;
    std::printf("resumed from %s at step %ld\n", opt.checkpoint.c_str(), step);
    std::fflush(stdout);
  }
  std::vector<std::int64_t> val_mult(static_cast<std::size_t>(val.num_jets));
  for (index_t j = 0; j < val.num_jets; ++j) val_mult[static_cast<std::size_t>(j)] = val.count(j);
  epic_generator<T> best = gan.generator();
  val_score best_score{std::numeric_limits<double>::infinity(), 0, 0};
  long best_step = -1;
  std::vector<std::size_t> items(static_cast<std::size_t>(opt.batch));
  const auto t_train = clock_type::now();
  const std::clock_t cpu_train = std::clock();  // process CPU time: on a shared machine wall time says little
  double d_loss = 0, g_loss = 0;
  const bool tty = isatty(STDERR_FILENO) != 0;
  while (step < opt.steps && seconds_since(t_train) < opt.max_train_seconds) {
    // decay by whichever budget (steps or seconds) is further used up
    const double done = std::min(1.0, std::max(static_cast<double>(step) / static_cast<double>(opt.steps),
                                               seconds_since(t_train) / opt.max_train_seconds));
    const double lr = opt.lr * (1 - 0.9 * done);
    gan.generator_optimizer().set_lr(lr);
    gan.discriminator_optimizer().set_lr(lr);
    for (auto& i : items) i = static_cast<std::size_t>(draw.below(static_cast<std::uint64_t>(data.num_jets())));
    const auto l = gan.train_step(data, items);
    d_loss = 0.98 * d_loss + 0.02 * l.d_loss, g_loss = 0.98 * g_loss + 0.02 * l.g_loss;
    ++step;
    if (step % opt.eval_every == 0 || step == opt.steps) {
      auto g = gan.generate(val_mult, data.maxima, noise);
      if (opt.conventions) apply_jet_conventions(g, conv);
      const auto v = validate(val, g, floor_m, floor_p);
      if (v.score < best_score.score) best_score = v, best = gan.generator(), best_step = step;
      if (!opt.checkpoint.empty()) {
        training_position at;
        at.global_step = step;
        save_gan_checkpoint(opt.checkpoint, gan, at, example_rngs);
      }
      std::fprintf(stderr, "%sstep %ld/%ld  %.0f s  D %.3f  G %.3f  val w1m %.2g (floor %.2g) w1p %.2g (floor %.2g)%s",
                   tty ? "\r" : "", step, opt.steps, seconds_since(t_train), d_loss, g_loss, v.w1m, floor_m, v.w1p,
                   floor_p, tty ? "   " : "\n");
    }
  }
  if (best_step < 0) best = gan.generator(), best_step = step;  // no evaluation point reached: the last one
  const double train_seconds = seconds_since(t_train);
  const double train_cpu_seconds = static_cast<double>(std::clock() - cpu_train) / CLOCKS_PER_SEC;
  std::fprintf(stderr, "%s", tty ? "\n" : "");
  std::printf("trained %ld steps of %d jets in %.1f s (%.1f s of process CPU time); best validation score %.3g at "
              "step %ld\n", step, opt.batch, train_seconds, train_cpu_seconds, best_score.score, best_step);

  // ---- evaluation on the test sample: the best generator, and the truth floor
  std::vector<std::int64_t> test_mult(static_cast<std::size_t>(test.num_jets));
  for (index_t j = 0; j < test.num_jets; ++j) test_mult[static_cast<std::size_t>(j)] = test.count(j);
  gan.generator() = best;
  rng eval_noise(opt.seed + 6);
  const auto raw_generated = gan.generate(test_mult, data.maxima, eval_noise);
  auto generated = raw_generated;
  if (opt.conventions) apply_jet_conventions(generated, conv);
  const auto sizes = sizes_for(test.num_jets);
  const auto t_eval = clock_type::now();
  const matrix<double> real_features = fpd_kpd_features(test);
  const scores sg = evaluate(test, generated, real_features, sizes);
  const scores st = evaluate(test, truth, real_features, sizes);
  std::printf("evaluated in %.1f s (W1: %ld jets x %d batches; cov/mmd: %ld x %d)\n", seconds_since(t_eval),
              static_cast<long>(sizes.w1_samples), sizes.w1_batches, static_cast<long>(sizes.cov.num_eval_samples),
              sizes.cov.num_batches);
  print_marginals("real", test);
  if (opt.conventions) print_marginals("raw", raw_generated);
  print_marginals("EPiC", generated);
  std::printf("%-8s %12s %12s %8s   (targets: W1m <= 2x, W1p and W1efp <= 4x, FPD <= 5x the floor)\n", "metric",
              "EPiC", "truth floor", "ratio");
  auto row = [](const char* name, double a, double b) {
    std::printf("%-8s %12.4g %12.4g %8.2f\n", name, a, b, b != 0 ? a / b : NAN);
  };
  row("w1m", sg.w1m, st.w1m);
  row("w1p", sg.w1p, st.w1p);
  row("w1efp", sg.w1efp, st.w1efp);
  row("fpd", sg.fpd, st.fpd);
  row("kpd", sg.kpd, st.kpd);
  row("cov", sg.cov, st.cov);
  row("mmd", sg.mmd, st.mmd);

  // ---- generation time per jet (batch 256, full jets, OMP threads as set), the example's widths
  const int reps = opt.quick ? 2 : 8;
  const double us30 = epic_us_per_jet(gc, 30, reps), us150 = epic_us_per_jet(gc, 150, reps);
  std::printf("EPiC generation (hidden %d, %d layers, batch 256): %.1f us per jet at 30 particles, %.1f at 150\n",
              gc.hidden, gc.layers, us30, us150);

  // ---- MPGAN's published generators: FPND against JetNet's stored statistics
  std::map<std::string, double> mpgan_fpnd, mpgan_us;
  const fs::path gen_dir = fs::path(opt.data) / "mpgan_trained_generators",
                 pnet_dir = fs::path(opt.data) / "jetnet_particlenet_fpnd";
  if (!fs::exists(gen_dir / "mp_t" / "G_best_epoch.pt") || !fs::exists(pnet_dir / "pnet_weights.npz")) {
    std::printf("MPGAN: skipped (no %s or %s; --data DIR names shared/data)\n", gen_dir.c_str(), pnet_dir.c_str());
  } else {
    rng pg(1);
    particlenet<T> net(pg);
    (void)load_weights(net, npz_file::open(pnet_dir / "pnet_weights.npz"));
    for (const char* type : {"g", "q", "t"}) {
      mpgan_generator<T> g;
      (void)load_weights(g, torch_state_dict::load(gen_dir / (std::string("mp_") + type) / "G_best_epoch.pt"));
      // JetNet's 30-particle jets are nearly all full and its sample is not in shared/data: n = 30 for every jet
      const std::vector<std::int64_t> mult(static_cast<std::size_t>(opt.mpgan_jets), 30);
      rng mg(opt.seed + 7);
      matrix<T> z;
      g.draw_noise(opt.mpgan_jets, 0.2, mg, z);
      mpgan_generator<T>::workspace ws;
      const auto t0 = clock_type::now();
      const matrix<T> raw = g.infer(z, mult, ws);
      mpgan_us[type] = 1e6 * seconds_since(t0) / static_cast<double>(opt.mpgan_jets);
      const mpgan_jet_type jt = type[0] == 'g' ? mpgan_jet_type::gluon
                                : type[0] == 'q' ? mpgan_jet_type::light_quark
                                                 : mpgan_jet_type::top;
      const auto jets = mpgan_generated_jets(raw, mpgan_feature_maxima::of(jt), 30);
      mpgan_fpnd[type] = fpnd(net, jets, fpnd_statistics::load(pnet_dir, type));
      std::printf("MPGAN mp_%s: FPND %.3f on %ld jets (published, 50k jets: g 0.12, t 0.37); %.0f us per jet\n", type,
                  mpgan_fpnd[type], static_cast<long>(opt.mpgan_jets), mpgan_us[type]);
    }
  }

  // ---- plots: real (test) vs generated
  const fs::path out(opt.out);
  const char* names[] = {"particle eta_rel", "particle phi_rel", "particle pT_rel"};
  std::vector<svg_plot::histogram> hs(4);
  for (int c = 0; c < 3; ++c) {
    hs[c].title = names[c];
    hs[c].xlabel = names[c];
    hs[c].bins = 50;
    hs[c].density = true;
    hs[c].log_y = c == 2;
    hs[c].add("real (toy top)", particle_feature(test, c));
    hs[c].add("EPiC", particle_feature(generated, c));
  }
  hs[3].title = "relative jet mass";
  hs[3].xlabel = "m / pT";
  hs[3].bins = 50;
  hs[3].density = true;
  hs[3].add("real (toy top)", jet_masses(test));
  hs[3].add("EPiC", jet_masses(generated));
  const char* files[] = {"particle_eta.svg", "particle_phi.svg", "particle_pt.svg", "jet_mass.svg"};
  for (int k = 0; k < 4; ++k) hs[k].save((out / files[k]).string());
  svg_plot::save_grid((out / "distributions.svg").string(), {&hs[0], &hs[1], &hs[2], &hs[3]}, 2);
  std::printf("plots written to %s/\n", opt.out.c_str());

  // ---- metrics file
  if (!opt.metrics_out.empty()) {
    std::ofstream js(opt.metrics_out);
    js << "{\n  \"toy\": {\n";
    auto put = [&](const char* name, double v, bool last = false) {
      js << "    \"" << name << "\": " << num(v) << (last ? "\n" : ",\n");
    };
    put("w1m", sg.w1m), put("w1p", sg.w1p), put("w1efp", sg.w1efp), put("fpd", sg.fpd), put("kpd", sg.kpd);
    put("cov", sg.cov), put("mmd", sg.mmd);
    put("truth_w1m", st.w1m), put("truth_w1p", st.w1p), put("truth_w1efp", st.w1efp);
    put("truth_fpd", st.fpd), put("truth_kpd", st.kpd), put("truth_cov", st.cov), put("truth_mmd", st.mmd, true);
    js << "  },\n  \"mpgan\": {";
    bool first = true;
    for (const auto& [type, v] : mpgan_fpnd) {
      js << (first ? "\n" : ",\n") << "    \"" << type << "\": {\"fpnd\": " << num(v)
         << ", \"us_per_jet\": " << num(mpgan_us[type]) << "}";
      first = false;
    }
    js << (first ? "},\n" : "\n  },\n");
    js << "  \"train_seconds\": " << num(train_seconds) << ",\n  \"train_cpu_seconds\": " << num(train_cpu_seconds)
     << ",\n  \"train_steps\": " << step
       << ",\n  \"best_step\": " << best_step << ",\n  \"generate_us_per_jet_30\": " << num(us30)
       << ",\n  \"generate_us_per_jet_150\": " << num(us150) << ",\n  \"total_seconds\": "
       << num(seconds_since(t_start)) << "\n}\n";
    std::printf("metrics written to %s\n", opt.metrics_out.c_str());
  }
  return 0;
}
