// EPiC-GAN (models/epic_generator.hpp, models/epic_discriminator.hpp, models/epic_training.hpp): finite
// differences of both networks (parameters and inputs), padded particles that change nothing, infer == forward,
// bad input named, save / load, training bit-identical at 1 and 2 threads through the GAN step MPGAN uses, a short
// run on toy jets at 30 particles that improves w1m, and one training step at 150 particles.
#include "support/doctest.hpp"

#include <chrono>
#include <cmath>
#include <utility>
#include <filesystem>
#include <string>
#include <vector>

#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/metrics/generation.hpp"
#include "hepgnn/models/epic_training.hpp"
#include "support/check_layer.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_epic_gan {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

epic_generator_config tiny_generator(int num_particles = 5) {
  epic_generator_config c;
  c.num_particles = num_particles;
  c.local_noise = 2;
  c.latent = 3;
  c.hidden = 6;
  c.layers = 2;
  c.negative_slope = 0.2;  // a visible slope: the gradient checks see both branches
  c.seed = 7;
  return c;
}

epic_discriminator_config tiny_discriminator(int num_particles = 5) {
  epic_discriminator_config c;
  c.num_particles = num_particles;
  c.latent = 3;
  c.hidden = 6;
  c.layers = 2;
  c.negative_slope = 0.2;
  c.seed = 8;
  return c;
}

/// A small EPiC-GAN on jets of `num_particles` slots.
template <class T = double>
epic_gan<T> small_gan(double lr, int num_particles = 30) {
  epic_generator_config g;
  g.num_particles = num_particles;
  g.hidden = 32;
  g.latent = 8;
  g.layers = 2;
  g.seed = 3;
  epic_discriminator_config d;
  d.num_particles = num_particles;
  d.hidden = 32;
  d.latent = 8;
  d.layers = 2;
  d.seed = 4;
  gan_training_config t = gan_training_config::epic();
  t.lr_gen = lr;
  t.lr_disc = lr;
  t.seed = 5;
  return epic_gan<T>(g, d, t);
}

epic_noise<double> random_noise(long jets, const epic_generator_config& c, std::uint64_t seed) {
  epic_generator<double> g(c);
  rng gen(seed);
  epic_noise<double> z;
  g.draw_noise(jets, 1.0, gen, z);
  return z;
}

matrix<double> random_matrix(long rows, long cols, std::uint64_t seed) {
  rng gen(seed);
  matrix<double> m(rows, cols);
  for (long k = 0; k < m.size(); ++k) m.data()[k] = gen.uniform() * 2 - 1;
  return m;
}

/// Discriminator input: 3 jets of 5 particles, multiplicities 5, 2, 3; padded rows hold garbage features.
matrix<double> discriminator_input() {
  matrix<double> x = random_matrix(15, 4, 21);
  const int n[3] = {5, 2, 3};
  for (int q = 0; q < 3; ++q)
    for (int i = 0; i < 5; ++i) x(q * 5 + i, 3) = i < n[q] ? 0.5 : -0.5;
  return x;
}

template <class Model>
std::vector<double> all_weights(Model& m) {
  std::vector<double> v;
  m.for_each_param("", [&](const std::string&, auto p) { v.insert(v.end(), p.value, p.value + p.size()); });
  return v;
}

}  // namespace

TEST_CASE("epic_generator: finite differences of parameters and of both noises") {
  const auto cfg = tiny_generator();
  epic_generator<double> g(cfg);
  auto z = random_noise(3, cfg, 5);
  const std::vector<std::int64_t> n{5, 2, 4};
  const matrix<double> R = random_matrix(15, 4, 6);
  epic_generator<double>::workspace ws;
  epic_noise<double> dz;
  const auto loss = [&] { return g.forward(z, n, ws).cwiseProduct(R).sum(); };
  const auto backward = [&] {
    g.forward(z, n, ws);
    g.backward(z, R, ws, &dz);
  };
  hepgnn_test::check_gradients(g, loss, backward, {{"noise.local", &z.local, &dz.local}, {"noise.global", &z.global, &dz.global}},
                               {.tol = 1e-6});
}

TEST_CASE("epic_discriminator: finite differences of parameters and of the input") {
  epic_discriminator<double> d(tiny_discriminator());
  matrix<double> x = discriminator_input();
  matrix<double> features = x.leftCols(3);  // the mask column is not differentiable: only the features move
  const matrix<double> R = random_matrix(3, 1, 9);
  epic_discriminator<double>::workspace ws;
  matrix<double> dx, dfeatures;
  const auto loss = [&] {
    x.leftCols(3) = features;
    return d.forward(x, ws).cwiseProduct(R).sum();
  };
  const auto backward = [&] {
    x.leftCols(3) = features;
    d.forward(x, ws);
    d.backward(x, R, ws, &dx);
    dfeatures = dx.leftCols(3);
  };
  hepgnn_test::check_gradients(d, loss, backward, {{"x features", &features, &dfeatures}}, {.tol = 1e-6});
  // padded rows and the mask column get no gradient
  for (int q = 0; q < 3; ++q) CHECK(dx(q * 5 + 4, 3) == 0.0);
  CHECK(dx.row(5 + 3).norm() == 0.0);
  CHECK(dx.row(0).norm() > 0.0);
}

TEST_CASE("epic: padded particles change nothing, infer equals forward, one jet does not see another") {
  epic_discriminator<double> d(tiny_discriminator());
  epic_discriminator<double>::workspace ws;
  matrix<double> x = discriminator_input();
  const matrix<double> s = d.forward(x, ws);
  CHECK(d.infer(x, ws) == s);
  x(5 + 3, 0) = 1e6;  // jet 1, padded
  x(10 + 4, 2) = -7;  // jet 2, padded
  CHECK(d.infer(x, ws) == s);
  x(0, 1) += 0.1;  // jet 0, real: only its score moves
  const matrix<double> s2 = d.infer(x, ws);
  CHECK(s2(0, 0) != s(0, 0));
  CHECK(s2.bottomRows(2) == s.bottomRows(2));

  const auto cfg = tiny_generator();
  epic_generator<double> g(cfg);
  epic_generator<double>::workspace wg;
  auto z = random_noise(2, cfg, 3);
  const std::vector<std::int64_t> n{3, 5};
  const matrix<double> out = g.forward(z, n, wg);
  CHECK(g.infer(z, n, wg) == out);
  for (int i = 0; i < 5; ++i) CHECK(out(i, 3) == (i < 3 ? 0.5 : -0.5));
  CHECK(out.row(4).leftCols(3).norm() == 0.0);
  z.local(3, 0) = 100;  // jet 0's padded slots
  z.local(4, 1) = -100;
  CHECK(g.infer(z, n, wg) == out);
  z.local(5, 0) += 0.5;  // jet 1, real: jet 0 unchanged
  const matrix<double> out2 = g.infer(z, n, wg);
  CHECK(out2.topRows(5) == out.topRows(5));
  CHECK(out2.bottomRows(5) != out.bottomRows(5));
}

TEST_CASE("epic_generator: infer in chunks of jets equals forward at 1 and 2 threads; backward needs forward") {
  const auto cfg = tiny_generator(60);
  epic_generator<double> g(cfg);
  const long B = 200;  // about 6,000 real particles: several of infer's chunks
  const auto z = random_noise(B, cfg, 5);
  rng gen(6);
  std::vector<std::int64_t> n(static_cast<std::size_t>(B));
  for (auto& k : n) k = 1 + static_cast<std::int64_t>(gen.uniform() * 60);
  long rows = 0;
  for (auto k : n) rows += k;
  REQUIRE(rows > 3 * epic_generator<double>::infer_chunk_rows);
  epic_generator<double>::workspace wf;
  const matrix<double> out = g.forward(z, n, wf);
  const auto infer_at = [&](int threads) {
    return hepgnn_test::at_threads(threads, [&] {
      epic_generator<double>::workspace wi;
      return matrix<double>(g.infer(z, n, wi));
    });
  };
  CHECK(infer_at(1) == out);
  CHECK(infer_at(2) == out);
  // infer keeps nothing for backward: a workspace last used by infer is refused
  const matrix<double> dout = matrix<double>::Ones(out.rows(), out.cols());
  g.infer(z, n, wf);
  CHECK_THROWS_WITH_AS(g.backward(z, dout, wf, nullptr), doctest::Contains("call forward with this noise first"),
                       hepgnn::error);
}

TEST_CASE("epic: bad input is refused naming the argument and the expected shape") {
  const auto cfg = tiny_generator();
  epic_generator<double> g(cfg);
  epic_generator<double>::workspace wg;
  auto z = random_noise(2, cfg, 3);
  CHECK_THROWS_WITH_AS(g.infer(z, {3}, wg), doctest::Contains("noise.local must be (B * 5) x 2 = 5 x 2"), error);
  CHECK_THROWS_WITH_AS(g.infer(z, {3, 6}, wg), doctest::Contains("nparticles[1] = 6 is outside 1..5"), error);
  CHECK_THROWS_WITH_AS(g.infer(z, {}, wg), doctest::Contains("nparticles is empty"), error);
  auto zg = z;
  zg.global.resize(2, 4);
  CHECK_THROWS_WITH_AS(g.infer(zg, {3, 3}, wg), doctest::Contains("noise.global must be B x 3 = 2 x 3, got 2 x 4"),
                       error);
  z.local(0, 0) = std::nan("");
  CHECK_THROWS_WITH_AS(g.infer(z, {3, 3}, wg), doctest::Contains("non-finite"), error);
  z.local(0, 0) = 0;
  g.forward(z, {3, 3}, wg);
  CHECK_THROWS_WITH_AS(g.backward(z, matrix<double>::Zero(10, 3), wg, nullptr),
                       doctest::Contains("output gradient dout"), error);

  epic_discriminator<double> d(tiny_discriminator());
  epic_discriminator<double>::workspace wd;
  matrix<double> x = discriminator_input();
  CHECK_THROWS_WITH_AS(d.infer(matrix<double>(x.leftCols(3)), wd), doctest::Contains("x must have 4 columns"), error);
  CHECK_THROWS_WITH_AS(d.infer(matrix<double>(x.topRows(7)), wd), doctest::Contains("x must have B * 5 rows"), error);
  x(2, 3) = 1;
  CHECK_THROWS_WITH_AS(d.infer(x, wd), doctest::Contains("mask column (3) must be -0.5 (padded) or 0.5"), error);
  x = discriminator_input();
  x(1, 2) = INFINITY;
  CHECK_THROWS_WITH_AS(d.infer(x, wd), doctest::Contains("non-finite value (inf) at row 1, column 2"), error);
  x = discriminator_input();
  d.infer(x, wd);
  CHECK_THROWS_WITH_AS(d.backward(x, matrix<double>::Zero(3, 1), wd, nullptr), doctest::Contains("forward"), error);

  epic_discriminator_config dc;
  dc.num_particles = 20;
  CHECK_THROWS_WITH_AS(epic_gan<double>({}, dc), doctest::Contains("epic_gan: the generator writes 30 x 3"), error);
  epic_generator_config bad;
  bad.layers = 0;
  CHECK_THROWS_AS(epic_generator<double>{bad}, error);
}

TEST_CASE("epic: save_model / load_model round trip") {
  const auto cfg = tiny_generator();
  epic_generator<float> g(cfg);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_epic_generator.safetensors";
  save_model(g, path);
  const auto back = load_model<epic_generator<float>>(path);
  std::filesystem::remove(path);
  CHECK(back.config().hidden == 6);
  epic_noise<float> z;
  rng gen(1);
  g.draw_noise(2, 1.0, gen, z);
  epic_generator<float>::workspace w1, w2;
  CHECK(g.infer(z, {2, 5}, w1) == back.infer(z, {2, 5}, w2));
  epic_discriminator<float> d(tiny_discriminator());
  save_model(d, path);
  auto dback = load_model<epic_discriminator<float>>(path);
  std::filesystem::remove(path);
  CHECK(all_weights(dback) == all_weights(d));
}

TEST_CASE("epic_gan: training steps are bit-identical at 1 and 2 threads") {
  rng gen(2);
  // batches of 64 jets (~1,900 particles): large enough that the products and pools split across threads
  const auto data = mpgan_training_data<double>::from_jets(make_toy_jets<double>(128, jet_kind::top, gen));
  const auto train = [&] {
    auto gan = small_gan(1e-3);
    fit_options o;
    o.epochs = 1;
    o.batch_size = 64;
    o.progress = false;
    std::vector<gan_step_losses> log;
    train_gan(gan, data, o, &log);
    auto w = all_weights(gan);
    for (const auto& l : log) w.insert(w.end(), {l.d_loss, l.d_real, l.d_fake, l.g_loss});
    return w;
  };
  const auto one = hepgnn_test::at_threads(1, train);
  const auto two = hepgnn_test::at_threads(2, train);
  REQUIRE(one.size() == two.size());
  CHECK(one == two);
  auto fresh = small_gan(1e-3);
  const auto w0 = all_weights(fresh);
  CHECK(std::vector<double>(one.begin(), one.begin() + static_cast<long>(w0.size())) != w0);
}

namespace {
/// Trains a small EPiC-GAN on toy top jets of `num_particles` slots; returns w1m before and after.
std::pair<double, double> short_run(int num_particles, long num_jets, int epochs) {
  const auto t0 = std::chrono::steady_clock::now();
  rng gen(3);
  toy_jet_options jo;
  jo.max_particles = num_particles;
  const auto jets = make_toy_jets<float>(num_jets, jet_kind::top, gen, jo);
  const auto data = mpgan_training_data<float>::from_jets(jets);
  auto gan = small_gan<float>(1e-3, num_particles);
  const w1_options eval{static_cast<index_t>(num_jets), 3, 7};
  rng noise(11);
  const double before = w1m(jets, gan.generate(data.multiplicity, data.maxima, noise), eval).mean;
  fit_options o;
  o.epochs = epochs;
  o.batch_size = 64;
  o.progress = false;
  std::vector<gan_step_losses> log;
  train_gan(gan, data, o, &log);
  rng noise2(11);
  const double after = w1m(jets, gan.generate(data.multiplicity, data.maxima, noise2), eval).mean;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("toy top, " << num_particles << " particles, " << log.size() << " steps: D loss " << log.front().d_loss
                      << " -> " << log.back().d_loss << ", G loss " << log.front().g_loss << " -> "
                      << log.back().g_loss << "; w1m " << before << " -> " << after << " (" << seconds << " s)");
  return {before, after};
}
}  // namespace

TEST_CASE("epic_gan: a short run on toy top jets at 30 particles improves the generated w1m") {
  const auto [before, after] = short_run(30, 512, 5);
  CHECK(after < 0.5 * before);
}

TEST_CASE("epic_gan: a short run on toy top jets at 150 particles improves the generated w1m") {
  const auto [before, after] = short_run(150, 256, 9);
  CHECK(after < 0.5 * before);
}

TEST_CASE("epic_gan: one training step at 150 particles with EPiC-GAN's widths") {
  rng gen(4);
  toy_jet_options jo;
  jo.max_particles = 150;
  const auto data = mpgan_training_data<float>::from_jets(make_toy_jets<float>(8, jet_kind::top, gen, jo));
  epic_generator_config g;  // hid_d 128, latent 10, 6 layers
  g.num_particles = 150;
  epic_discriminator_config d;  // 3 layers
  d.num_particles = 150;
  epic_gan<float> gan(g, d, gan_training_config::epic());
  const auto w0 = all_weights(gan);
  const std::vector<std::size_t> items{0, 1, 2, 3, 4, 5, 6, 7};
  const gan_step_losses l = gan.train_step(data, items);
  CHECK(std::isfinite(l.d_loss));
  CHECK(std::isfinite(l.g_loss));
  const auto w1 = all_weights(gan);
  CHECK(w1 != w0);
  for (double v : w1) REQUIRE(std::isfinite(v));
  rng noise(1);
  const auto jets = gan.generate(data.multiplicity, data.maxima, noise);
  CHECK(jets.max_particles == 150);
  for (index_t j = 0; j < jets.num_jets; ++j) CHECK(jets.count(j) <= data.multiplicity[static_cast<std::size_t>(j)]);
}

}  // namespace hepgnn_test_epic_gan
