// Training MPGAN: the least-squares GAN losses (values, finite differences), RMSprop (PyTorch's formula by hand,
// torch.optim.RMSprop's own numbers from tests/reference/mpgan_training_reference.py, bad options), the training
// data layout, one training step bit-identical at 1 and 2 threads, and a short run on toy jets that moves the
// discriminator loss and brings the generated jet masses closer to the real ones.
#include "support/doctest.hpp"

#include <chrono>
#include <filesystem>
#include <cmath>
#include <string>
#include <vector>

#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/io/jetnet_npy.hpp"
#include "hepgnn/loss/least_squares_gan.hpp"
#include "hepgnn/metrics/generation.hpp"
#include "hepgnn/models/mpgan_training.hpp"
#include "hepgnn/optim/rmsprop.hpp"
#include "hepgnn/train/gradient_check.hpp"
#include "support/gnn_layers_reference.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_mpgan_training {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

/// One parameter vector with a gradient, as a model for the optimizers.
struct one_vector {
  using scalar = double;
  matrix<double> w, g;
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "w", make_parameter(w, g, {w.cols()}));
  }
};

one_vector start_vector() {
  one_vector m;
  m.w.resize(1, 7);
  m.g.setZero(1, 7);
  for (int i = 0; i < 7; ++i) m.w(0, i) = 0.3 * std::sin(1.3 * i);
  return m;
}

void set_test_gradient(one_vector& m, int step) {
  for (int i = 0; i < 7; ++i) m.g(0, i) = std::sin(0.37 * i + step) + 0.1 * m.w(0, i);
}

/// A small MPGAN on 30-particle jets (the published one takes seconds per step on 2 cores).
template <class T = double>
mpgan_gan<T> small_gan(double lr_gen, double lr_disc) {
  mpgan_generator_config g;
  g.noise_features = 8;
  g.hidden = 8;
  g.fe = {16, 16};
  g.fn = {16};
  g.seed = 3;
  mpgan_discriminator_config d;
  d.hidden = 8;
  d.fe = {16, 16};
  d.fn = {16};
  d.seed = 4;
  mpgan_training_config t;
  t.lr_gen = lr_gen;
  t.lr_disc = lr_disc;
  t.seed = 5;
  return mpgan_gan<T>(g, d, t);
}

template <class Model>
std::vector<double> all_weights(Model& m) {
  std::vector<double> v;
  m.for_each_param("", [&](const std::string&, auto p) { v.insert(v.end(), p.value, p.value + p.size()); });
  return v;
}

}  // namespace

TEST_CASE("lsgan losses: MPGAN's values and finite-difference gradients") {
  matrix<double> real(3, 1), fake(2, 1);
  real << 0.9, 0.2, 0.6;
  fake << 0.3, 0.8;
  lsgan_gradients<double> g;
  const double d = lsgan_discriminator_loss(real, fake, {}, &g);
  CHECK(d == doctest::Approx((0.01 + 0.64 + 0.16) / 3 + (0.09 + 0.64) / 2).epsilon(1e-15));
  matrix<double> gg;
  const double gl = lsgan_generator_loss(fake, {}, &gg);
  CHECK(gl == doctest::Approx((0.49 + 0.04) / 2).epsilon(1e-15));
  // finite differences
  const auto fd = [](matrix<double>& v, const auto& f) {
    matrix<double> out(v.rows(), 1);
    for (long i = 0; i < v.rows(); ++i) {
      const double keep = v(i, 0);
      v(i, 0) = keep + 1e-6;
      const double up = f();
      v(i, 0) = keep - 1e-6;
      const double down = f();
      v(i, 0) = keep;
      out(i, 0) = (up - down) / 2e-6;
    }
    return out;
  };
  const lsgan_options<double> smooth{.real_label = 0.9, .fake_label = 0.1};
  lsgan_gradients<double> gs;
  lsgan_discriminator_loss(real, fake, smooth, &gs);
  const auto dl = [&] { return lsgan_discriminator_loss(real, fake, smooth); };
  CHECK((fd(real, dl) - gs.real).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((fd(fake, dl) - gs.fake).cwiseAbs().maxCoeff() < 1e-9);
  const auto gen_loss = [&] { return lsgan_generator_loss(fake); };
  CHECK((fd(fake, gen_loss) - gg).cwiseAbs().maxCoeff() < 1e-9);
  // bad input
  CHECK_THROWS_WITH_AS(lsgan_discriminator_loss(matrix<double>(2, 2), fake), doctest::Contains("real_scores must be B x 1"),
                       error);
  CHECK_THROWS_WITH_AS(lsgan_generator_loss(matrix<double>(0, 1)), doctest::Contains("fake_scores must be B x 1"), error);
  CHECK_THROWS_WITH_AS(lsgan_generator_loss(fake, {.real_label = NAN}), doctest::Contains("must be finite"), error);
}

TEST_CASE("rmsprop: PyTorch's update by hand (default, momentum, centered)") {
  for (const int variant : {0, 1, 2}) {
    CAPTURE(variant);
    rmsprop_options o;
    if (variant == 1) o.momentum = 0.9;
    if (variant == 2) o.centered = true;
    rmsprop<double> opt(o);
    one_vector m = start_vector();
    std::vector<double> w(7), v(7, 0), mu(7, 0), b(7, 0);
    for (int i = 0; i < 7; ++i) w[i] = m.w(0, i);
    for (int s = 0; s < 4; ++s) {
      set_test_gradient(m, s);
      opt.step(m);
      for (int i = 0; i < 7; ++i) {
        const double g = std::sin(0.37 * i + s) + 0.1 * w[i];
        v[i] = 0.99 * v[i] + 0.01 * g * g;
        double avg = v[i];
        if (variant == 2) {
          mu[i] = 0.99 * mu[i] + 0.01 * g;
          avg -= mu[i] * mu[i];
        }
        const double step = g / (std::sqrt(avg) + 1e-8);
        if (variant == 1) {
          b[i] = 0.9 * b[i] + step;
          w[i] -= 0.01 * b[i];
        } else {
          w[i] -= 0.01 * step;
        }
        CHECK(m.w(0, i) == doctest::Approx(w[i]).epsilon(1e-14));
      }
    }
    CHECK(opt.steps() == 4);
  }
}

TEST_CASE("rmsprop: equal to torch.optim.RMSprop (reference file)") {
  const auto ref = gnn_ref::load_file("tests/data/rmsprop_reference.txt");
  const std::pair<const char*, rmsprop_options> cases[] = {
      {"default", {}},
      {"momentum", {.momentum = 0.9}},
      {"centered", {.centered = true}},
      {"all", {.lr = 0.02, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.1, .momentum = 0.5, .centered = true}},
  };
  for (const auto& [case_name, o] : cases) {
    const std::string name = case_name;
    CAPTURE(name);
    const matrix<double>& want = gnn_ref::at(ref, "w:" + name);
    REQUIRE(want.rows() == 6);
    rmsprop<double> opt(o);
    one_vector m = start_vector();
    double worst = 0;
    for (int s = 0; s < 6; ++s) {
      set_test_gradient(m, s);
      opt.step(m);
      worst = std::max(worst, (m.w.row(0) - want.row(s)).cwiseAbs().maxCoeff());
    }
    MESSAGE("rmsprop " << name << ": max |w - torch| over 6 steps = " << worst);
    CHECK(worst < 1e-14);
  }
}

TEST_CASE("rmsprop: bad options are refused naming them") {
  CHECK_THROWS_WITH_AS(rmsprop<float>({.lr = -1}), doctest::Contains("lr must be >= 0"), error);
  CHECK_THROWS_WITH_AS(rmsprop<float>({.alpha = 1.5}), doctest::Contains("alpha must be in [0, 1]"), error);
  CHECK_THROWS_WITH_AS(rmsprop<float>({.eps = 0}), doctest::Contains("eps must be finite and > 0"), error);
  CHECK_THROWS_WITH_AS(rmsprop<float>({.weight_decay = -0.1}), doctest::Contains("weight_decay"), error);
  CHECK_THROWS_WITH_AS(rmsprop<float>({.momentum = NAN}), doctest::Contains("momentum"), error);
  rmsprop<float> opt;
  CHECK_THROWS_WITH_AS(opt.set_lr(NAN), doctest::Contains("lr must be >= 0 and finite"), error);
}

TEST_CASE("mpgan training data: MPGAN's normalisation and multiplicities; generated jets back in the JetNet layout") {
  jet_array<double> jets = jet_array<double>::zeros(2, 3);
  jets.row(0, 0) << 0.2, -0.1, 0.7, 1;
  jets.row(0, 1) << -0.4, 0.05, 0.3, 1;
  jets.row(1, 0) << 0.1, 0.2, 1.0, 1;
  const auto d = mpgan_training_data<double>::from_jets(jets);
  CHECK(d.maxima.eta == 0.4);
  CHECK(d.maxima.phi == 0.2);
  CHECK(d.maxima.pt == 1.0);
  CHECK(d.multiplicity == std::vector<std::int64_t>{2, 1});
  CHECK(d.x(1, 0) == -1.0);
  CHECK(d.x(0, 2) == doctest::Approx(0.2));
  CHECK(d.x(2, 2) == -0.5);  // padding: zeros, then the shifts
  CHECK(d.x(2, 3) == -0.5);
  CHECK(d.x(3, 3) == 0.5);
  // back: g_raw rows of jet 0 (mask - 0.5 in column 3), real ones first by descending pt
  matrix<double> raw(3, 4);
  raw << 0.5, 0.5, -0.2, 0.5,  //
      0.1, 0.1, 0.1, -0.5,     //
      -0.5, 0.25, 0.3, 0.5;
  const auto back = mpgan_generated_jets(raw, d.maxima, 3);
  CHECK(back.count(0) == 2);
  CHECK(back.row(0, 0)(0) == doctest::Approx(-0.2));
  CHECK(back.row(0, 0)(2) == doctest::Approx(0.8));
  CHECK(back.row(0, 1)(2) == doctest::Approx(0.3));
  CHECK(back.row(0, 2).isZero(0));
  // bad input
  jet_array<double> empty_jet = jet_array<double>::zeros(1, 3);
  CHECK_THROWS_WITH_AS(mpgan_training_data<double>::from_jets(empty_jet), doctest::Contains("jet 0 has no particle"), error);
  CHECK_THROWS_WITH_AS(mpgan_training_data<double>::from_jets(jets, {1, 0, 1}), doctest::Contains("maxima must be"), error);
  CHECK_THROWS_WITH_AS(mpgan_generated_jets(raw, d.maxima, 2), doctest::Contains("multiple of num_particles = 2"), error);
}

TEST_CASE("mpgan_gan: bad input to a training step is refused naming it") {
  auto gan = small_gan(1e-3, 1e-3);
  rng gen(1);
  const auto jets = make_toy_jets<double>(4, jet_kind::top, gen);
  const auto data = mpgan_training_data<double>::from_jets(jets);
  const std::vector<std::size_t> none, outside{0, 9};
  CHECK_THROWS_WITH_AS(gan.train_step(data, none), doctest::Contains("items is empty"), error);
  CHECK_THROWS_WITH_AS(gan.train_step(data, outside), doctest::Contains("item 9 is outside the 4 jets"), error);
  toy_jet_options o;
  o.max_particles = 20;
  const auto data20 = mpgan_training_data<double>::from_jets(make_toy_jets<double>(4, jet_kind::top, gen, o));
  const std::vector<std::size_t> two{0, 1};
  CHECK_THROWS_WITH_AS(gan.train_step(data20, two), doctest::Contains("data has 20 particles per jet"), error);
  mpgan_discriminator_config d;
  d.num_particles = 20;
  CHECK_THROWS_WITH_AS(mpgan_gan<double>({}, d), doctest::Contains("the discriminator reads 20 x 3"), error);
}

TEST_CASE("mpgan_gan: training steps are bit-identical at 1 and 2 threads") {
  rng gen(2);
  const auto data = mpgan_training_data<double>::from_jets(make_toy_jets<double>(16, jet_kind::top, gen));
  const auto train = [&] {
    auto gan = small_gan(1e-3, 1e-3);
    std::vector<double> losses;
    fit_options o;
    o.epochs = 1;
    o.batch_size = 8;
    o.progress = false;
    std::vector<mpgan_step_losses> log;
    train_mpgan(gan, data, o, &log);
    for (const auto& l : log) losses.insert(losses.end(), {l.d_loss, l.d_real, l.d_fake, l.g_loss});
    auto w = all_weights(gan);
    w.insert(w.end(), losses.begin(), losses.end());
    return w;
  };
  const auto one = hepgnn_test::at_threads(1, train);
  const auto two = hepgnn_test::at_threads(2, train);
  REQUIRE(one.size() == two.size());
  CHECK(one == two);
  // and the steps changed the weights
  auto fresh = small_gan(1e-3, 1e-3);
  const auto w0 = all_weights(fresh);
  CHECK(std::vector<double>(one.begin(), one.begin() + static_cast<long>(w0.size())) != w0);
}

TEST_CASE("mpgan_gan: a short run on toy top jets moves the discriminator loss and improves the generated w1m") {
  const auto t0 = std::chrono::steady_clock::now();
  rng gen(3);
  const auto jets = make_toy_jets<double>(256, jet_kind::top, gen);
  const auto data = mpgan_training_data<double>::from_jets(jets);
  auto gan = small_gan(3e-4, 3e-4);  // MPGAN's 2e-5 / 6e-5 need thousands of steps; RMSprop steps ~ lr per entry
  const w1_options eval{256, 3, 7};
  rng noise(11);
  const double before = w1m(jets, gan.generate(data.multiplicity, data.maxima, noise), eval).mean;
  fit_options o;
  o.epochs = 3;
  o.batch_size = 32;
  o.progress = false;
  std::vector<mpgan_step_losses> log;
  const fit_history h = train_mpgan(gan, data, o, &log);
  rng noise2(11);
  const double after = w1m(jets, gan.generate(data.multiplicity, data.maxima, noise2), eval).mean;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("toy top, " << log.size() << " steps: D loss " << log.front().d_loss << " -> " << log.back().d_loss
                      << ", G loss " << log.front().g_loss << " -> " << log.back().g_loss << "; w1m " << before
                      << " -> " << after << " (" << seconds << " s)");
  REQUIRE(h.epochs.size() == 3);
  MESSAGE("D loss per epoch: " << h.epochs[0].train_loss << ", " << h.epochs[1].train_loss << ", "
                               << h.epochs[2].train_loss);
  CHECK(std::abs(h.epochs.back().train_loss - h.epochs.front().train_loss) > 0.01);
  CHECK(after < 0.5 * before);
}

TEST_CASE("mpgan_gan: trains in float on JetNet-layout .npy files (float32 on disk), a smaller last batch included") {
  rng gen(4);
  const auto jets = make_toy_jets<double>(16, jet_kind::top, gen);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mpgan_training_jets.npy";
  write_jetnet_npy(jets, path);
  const auto back = read_jetnet_npy<float>(path);
  std::filesystem::remove(path);
  REQUIRE(back.num_jets == 16);
  const auto data = mpgan_training_data<float>::from_jets(back);
  CHECK(data.multiplicity == mpgan_training_data<double>::from_jets(jets).multiplicity);
  auto gan = small_gan<float>(3e-4, 3e-4);
  const auto w0 = all_weights(gan);
  fit_options o;
  o.epochs = 1;
  o.batch_size = 6;  // 6, 6, 4: the last batch is smaller
  std::vector<mpgan_step_losses> log;
  o.progress = false;
  const fit_history h = train_mpgan(gan, data, o, &log);
  CHECK(std::isfinite(h.epochs.at(0).train_loss));
  CHECK(log.size() == 3);
  CHECK(all_weights(gan) != w0);
}

}  // namespace hepgnn_test_mpgan_training
