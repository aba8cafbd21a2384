// hepgnn quickstart: a diphoton resonance search in a few seconds.
//
// Signal: H -> gamma gamma with m = 125 GeV; background: a falling continuum of photon pairs from 100 GeV up.
// The classifier only sees photon kinematics (log pT of each photon, delta eta, cos and sin delta phi), so it has to
// learn the invariant mass m^2 = 2 pT1 pT2 (cosh d_eta - cos d_phi) by itself. It trains with Adam and
// binary cross entropy, prints the accuracy, saves the weights as safetensors, reloads them into a fresh model and
// checks the reloaded model gives identical outputs.
#include <hepgnn/io/safetensors.hpp>
#include <hepgnn/loss/classification.hpp>
#include <hepgnn/nn/activation.hpp>
#include <hepgnn/nn/dense.hpp>
#include <hepgnn/nn/sequential.hpp>
#include <hepgnn/optim/adam.hpp>
#include <hepgnn/train/trainer.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

using namespace hepgnn;
using T = float;

// The model: 5 features -> 64 -> 64 -> 1 logit, widths checked at compile time.
using classifier = sequential<T, dense<T, 5, 64>, relu<T>, dense<T, 64, 64>, relu<T>, dense<T, 64, 1>>;

struct dataset {
  matrix<T> x;  // N x 5
  matrix<T> y;  // N x 1, 1 = signal
};

// Two photons from a parent of mass m with transverse momentum pt and rapidity eta, decaying isotropically.
static void photons(rng& g, double m, dataset& d, long row, int label) {
  const double pt = g.exponential(40.0), eta = g.uniform(-2.0, 2.0), phi = g.uniform(-std::numbers::pi, std::numbers::pi);
  const double mt = std::sqrt(m * m + pt * pt);
  const double px = pt * std::cos(phi), py = pt * std::sin(phi), pz = mt * std::sinh(eta), e = mt * std::cosh(eta);
  const double cos_t = g.uniform(-1, 1), sin_t = std::sqrt(1 - cos_t * cos_t), phi_d = g.uniform(0, 2 * std::numbers::pi);
  const double k[3] = {m / 2 * sin_t * std::cos(phi_d), m / 2 * sin_t * std::sin(phi_d), m / 2 * cos_t};
  const double b[3] = {px / e, py / e, pz / e}, b2 = b[0] * b[0] + b[1] * b[1] + b[2] * b[2];
  const double gamma = 1 / std::sqrt(1 - b2);
  double p1[4], p2[4];
  for (int s = 0; s < 2; ++s) {  // boost (m/2, +-k) to the lab frame
    const double sign = s == 0 ? 1 : -1, bk = sign * (b[0] * k[0] + b[1] * k[1] + b[2] * k[2]);
    double* p = s == 0 ? p1 : p2;
    for (int i = 0; i < 3; ++i) p[i] = sign * k[i] + ((gamma - 1) * bk / b2 + gamma * m / 2) * b[i];
    p[3] = gamma * (m / 2 + bk);
  }
  auto pt_of = [](const double* p) { return std::hypot(p[0], p[1]); };
  auto eta_of = [&](const double* p) { return std::asinh(p[2] / pt_of(p)); };
  const double dphi = std::atan2(p1[1], p1[0]) - std::atan2(p2[1], p2[0]);
  d.x.row(row) << T(std::log(pt_of(p1))), T(std::log(pt_of(p2))), T(eta_of(p1) - eta_of(p2)), T(std::cos(dphi)),
      T(std::sin(dphi));
  d.y(row, 0) = T(label);
}

static dataset simulate(long n, std::uint64_t seed) {
  rng g(seed);
  dataset d{matrix<T>(n, 5), matrix<T>(n, 1)};
  for (long i = 0; i < n; ++i) {
    const bool signal = i % 2 == 0;
    const double m = signal ? g.normal(125.0, 2.0) : 100.0 + g.exponential(25.0);
    photons(g, m, d, i, signal);
  }
  return d;
}

static double accuracy(const matrix<T>& logits, const matrix<T>& y) {
  long right = 0;
  for (long i = 0; i < y.rows(); ++i) right += (logits(i, 0) > 0) == (y(i, 0) > T(0.5));
  return static_cast<double>(right) / static_cast<double>(y.rows());
}

// Shift and scale every feature to zero mean and unit variance with the training set's statistics: without this the
// log pT features (around 4) swamp the angles and the network never finds the narrow mass window.
static void standardize(matrix<T>& x, const row_vector<T>& mean, const row_vector<T>& sd) {
  x = ((x.rowwise() - mean).array().rowwise() / sd.array()).matrix();
}

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  dataset train = simulate(40000, 1), test = simulate(20000, 2);
  const row_vector<T> mean = train.x.colwise().mean();
  const row_vector<T> sd = ((train.x.rowwise() - mean).array().square().colwise().mean()).sqrt().matrix();
  standardize(train.x, mean, sd);
  standardize(test.x, mean, sd);

  rng init(42);
  classifier model{dense<T, 5, 64>{init}, relu<T>{}, dense<T, 64, 64>{init}, relu<T>{}, dense<T, 64, 1>{init}};
  adam<T> opt({.lr = 3e-3});
  classifier::cache cache;
  matrix<T> xb, yb, out, dout;

  auto history = fit(train.x.rows(), {.epochs = 20, .batch_size = 128, .label = "quickstart"},
                     [&](std::span<const std::size_t> items) {
                       const long n = static_cast<long>(items.size());
                       xb.resize(n, 5);
                       yb.resize(n, 1);
                       for (long k = 0; k < n; ++k) {
                         xb.row(k) = train.x.row(static_cast<long>(items[k]));
                         yb.row(k) = train.y.row(static_cast<long>(items[k]));
                       }
                       zero_grad(model);
                       model.forward(xb, out, cache);
                       const T loss = bce_with_logits(out, yb, {}, &dout);
                       model.backward(xb, out, dout, cache, nullptr);
                       opt.step(model);
                       return static_cast<double>(loss);
                     });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  matrix<T> logits;
  model.infer(test.x, logits, cache);
  const double acc = accuracy(logits, test.y);
  std::printf("trained %zu epochs on %ld events in %.1f s: loss %.4f -> %.4f\n", history.epochs.size(),
              static_cast<long>(train.x.rows()), seconds, history.epochs.front().train_loss,
              history.epochs.back().train_loss);
  std::printf("test accuracy (signal vs background, 50/50): %.2f%%\n", 100 * acc);

  // Save, reload into a freshly initialised model, compare outputs bit for bit.
  const auto path = (std::filesystem::temp_directory_path() / "hepgnn_quickstart.safetensors").string();
  save_weights(model, path);
  rng other(7);
  classifier reloaded{dense<T, 5, 64>{other}, relu<T>{}, dense<T, 64, 64>{other}, relu<T>{}, dense<T, 64, 1>{other}};
  load_weights(reloaded, path);
  matrix<T> logits2;
  classifier::cache cache2;
  reloaded.infer(test.x, logits2, cache2);
  const bool identical = logits2 == logits;
  std::printf("weights saved to %s and reloaded: outputs %s\n", path.c_str(), identical ? "identical" : "DIFFER");
  if (!identical || acc < 0.85) {
    std::printf("FAILED: %s\n", identical ? "accuracy below 85%" : "reloaded model differs");
    return 1;
  }
  return 0;
}
