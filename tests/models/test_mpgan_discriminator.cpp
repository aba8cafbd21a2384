// MPGAN's discriminator: against a PyTorch build of MPDiscriminator's structure (tests/reference/
// mpgan_training_reference.py), finite-difference gradients with and without dropout, infer equal to a forward
// without dropout, dropout as MPGAN's LinearNet (after every layer, the last included), MPGAN's parameter names
// and count, bad input.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/models/mpgan_discriminator.hpp"
#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"

namespace hepgnn_test_mpgan_discriminator {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

mpgan_discriminator_config small_disc_config() {
  mpgan_discriminator_config cfg;
  cfg.num_particles = 4;
  cfg.hidden = 5;
  cfg.fe = {6, 4};
  cfg.fn = {7};
  cfg.seed = 9;
  return cfg;
}

/// B jets of N particles: random features, the given multiplicities at scattered slots.
matrix<double> disc_input(rng& gen, long N, const std::vector<int>& n) {
  matrix<double> x(static_cast<long>(n.size()) * N, 4);
  for (long q = 0; q < static_cast<long>(n.size()); ++q)
    for (long i = 0; i < N; ++i) {
      for (int k = 0; k < 3; ++k) x(q * N + i, k) = 0.5 * gen.normal();
      x(q * N + i, 3) = ((i * 3 + q) % N) < n[static_cast<std::size_t>(q)] ? 0.5 : -0.5;
    }
  return x;
}

void compare_with_torch(const std::string& name, mpgan_discriminator_config cfg) {
  CAPTURE(name);
  const auto ref = gnn_ref::load_file("tests/data/mpgan_discriminator_" + name + ".txt");
  mpgan_discriminator<double> d(cfg);
  gnn_ref::set_params(d, ref);
  mpgan_discriminator<double>::workspace ws;
  const matrix<double>& x = gnn_ref::at(ref, "x");
  const matrix<double> y = d.infer(x, ws);
  const double dy_err = gnn_ref::rel_diff(y, gnn_ref::at(ref, "y"));
  zero_grad(d);
  d.forward(x, ws);
  matrix<double> dx;
  d.backward(x, gnn_ref::at(ref, "dy"), ws, &dx);
  const double dx_err = gnn_ref::rel_diff(matrix<double>(dx.leftCols(3)), gnn_ref::at(ref, "grad_x"));
  const double dp_err = gnn_ref::grad_diff(d, ref);
  MESSAGE(name << ": output " << dy_err << ", d input " << dx_err << ", d parameters " << dp_err
               << " (relative, against torch)");
  CHECK(dy_err < 1e-12);
  CHECK(dx_err < 1e-11);
  CHECK(dp_err < 1e-11);
  CHECK(dx.col(3).isZero(0));
  // float inference
  mpgan_discriminator<float> f(cfg);
  gnn_ref::set_params(f, ref);
  mpgan_discriminator<float>::workspace wf;
  CHECK(gnn_ref::rel_diff(f.infer(x.cast<float>(), wf), gnn_ref::at(ref, "y")) < 1e-5);
}

}  // namespace

TEST_CASE("mpgan_discriminator matches a PyTorch MPDiscriminator (output, input and parameter gradients)") {
  mpgan_discriminator_config a;
  a.num_particles = 5;
  a.hidden = 4;
  a.fe = {6, 5};
  a.fn = {7};
  compare_with_torch("published_fnd", a);
  mpgan_discriminator_config b;
  b.num_particles = 4;
  b.hidden = 5;
  b.iterations = 3;
  b.fe = {4, 6};
  b.fn = {6, 5};
  b.fnd = {3};
  compare_with_torch("fnd_hidden", b);
}

TEST_CASE("mpgan_discriminator: the published configuration has MPGAN's parameter names and count") {
  mpgan_discriminator<float> d;
  std::set<std::string> names;
  d.for_each_param("", [&](const std::string& n, auto) { names.insert(n); });
  CHECK(parameter_count(d) == 355617);  // MPGAN's MPDiscriminator with the args.txt of mp_t
  CHECK(names.size() == 26);
  CHECK(names.count("mp_layers.0.fe.net.0.weight") == 1);
  CHECK(names.count("mp_layers.1.fn.net.2.bias") == 1);
  CHECK(names.count("fnd_layer.net.0.weight") == 1);
}

TEST_CASE("mpgan_discriminator: backward against finite differences (double), without and with dropout") {
  const auto cfg = small_disc_config();
  rng gen(3);
  matrix<double> x = disc_input(gen, 4, {4, 2, 1});
  matrix<double> R(3, 1);
  R << 0.7, -1.3, 0.4;
  for (const bool with_dropout : {false, true}) {
    CAPTURE(with_dropout);
    mpgan_discriminator<double> d(cfg);
    mpgan_discriminator<double>::workspace ws;
    matrix<double> dx, features = x.leftCols(3), dfeatures;
    // Every evaluation draws the same masks: a fresh generator with the same seed.
    const auto run = [&] {
      matrix<double> xx(x.rows(), 4);
      xx << features, x.col(3);
      rng drop(77);
      return with_dropout ? matrix<double>(d.forward(xx, ws, drop)) : matrix<double>(d.forward(xx, ws));
    };
    const auto loss = [&] { return run().cwiseProduct(R).sum(); };
    const auto backward = [&] {
      run();
      matrix<double> xx(x.rows(), 4);
      xx << features, x.col(3);
      d.backward(xx, R, ws, &dx);
      dfeatures = dx.leftCols(3);
    };
    hepgnn_test::check_gradients(d, loss, backward, {{"x", &features, &dfeatures}}, {.tol = 1e-6});
  }
}

TEST_CASE("mpgan_discriminator: infer is a forward without dropout; dropout follows every layer, the last included") {
  const auto cfg = small_disc_config();
  mpgan_discriminator<double> d(cfg);
  rng gen(4);
  const matrix<double> x = disc_input(gen, 4, {3, 4, 2, 1, 4, 2});
  mpgan_discriminator<double>::workspace w1, w2;
  const matrix<double> yi = d.infer(x, w1);
  CHECK(d.forward(x, w2) == yi);
  // With dropout: other outputs, reproducible for the same generator state.
  rng a(5), b(5), c(6);
  const matrix<double> ya = d.forward(x, w2, a);
  CHECK(ya != yi);
  CHECK(d.forward(x, w2, b) == ya);
  CHECK(d.forward(x, w2, c) != ya);
  // The final Linear 5 -> 1 is followed by dropout: its one logit is zeroed in about half the jets, which then
  // score exactly sigmoid(0) = 0.5 (a dropped earlier layer leaves the logit non-zero).
  rng many(8);
  const matrix<double> xs = disc_input(many, 4, std::vector<int>(400, 3));
  rng drop(9);
  const matrix<double> ys = d.forward(xs, w2, drop);
  long half = 0;
  for (long q = 0; q < ys.rows(); ++q) half += ys(q, 0) == 0.5;
  CHECK(half > 150);
  CHECK(half < 250);
  // infer keeps none of it
  const matrix<double> yi_many = d.infer(xs, w1);
  CHECK((yi_many.array() != 0.5).all());
}

TEST_CASE("mpgan_discriminator: padded particles do not change the output") {
  mpgan_discriminator<double> d(small_disc_config());
  rng gen(5);
  matrix<double> x = disc_input(gen, 4, {2, 3});
  mpgan_discriminator<double>::workspace ws;
  const matrix<double> y = d.infer(x, ws);
  for (long r = 0; r < x.rows(); ++r)
    if (x(r, 3) < 0) x.row(r).leftCols(3) << 9.0, -7.0, 3.0;
  CHECK(d.infer(x, ws) == y);
  // and a real particle does
  x(0, 0) += 0.1;
  REQUIRE(x(0, 3) == 0.5);
  CHECK(d.infer(x, ws) != y);
}

TEST_CASE("mpgan_discriminator: bad input is refused naming the argument") {
  mpgan_discriminator<float> d;
  mpgan_discriminator<float>::workspace ws;
  matrix<float> x = matrix<float>::Zero(60, 4);
  x.col(3).setConstant(0.5f);
  CHECK_THROWS_WITH_AS(d.infer(matrix<float>::Zero(60, 3), ws), doctest::Contains("x must have 4 columns"), error);
  CHECK_THROWS_WITH_AS(d.infer(matrix<float>(x.topRows(59)), ws), doctest::Contains("B * 30 rows"), error);
  CHECK_THROWS_WITH_AS(d.infer(matrix<float>::Zero(0, 4), ws), doctest::Contains("B * 30 rows"), error);
  matrix<float> bad = x;
  bad(31, 3) = 1.0f;
  CHECK_THROWS_WITH_AS(d.infer(bad, ws), doctest::Contains("mask column (3) must be -0.5 (padded) or 0.5 (real), got 1 at row 31"),
                       error);
  bad = x;
  bad(7, 1) = std::nanf("");
  CHECK_THROWS_WITH_AS(d.infer(bad, ws), doctest::Contains("non-finite value (nan) at row 7, column 1"), error);
  rng gen(1);
  d.forward(x, ws, gen);
  CHECK_THROWS_WITH_AS(d.backward(x, matrix<float>::Zero(3, 1), ws, nullptr), doctest::Contains("output gradient dout"),
                       error);
  CHECK_THROWS_WITH_AS(d.backward(matrix<float>(x.topRows(30)), matrix<float>::Zero(1, 1), ws, nullptr),
                       doctest::Contains("input x differs from the one the cache's forward saw"), error);
  matrix<float> other = x;
  other(5, 0) = 0.25f;
  CHECK_THROWS_WITH_AS(d.backward(other, matrix<float>::Zero(2, 1), ws, nullptr), doctest::Contains("differs"), error);
  d.backward(x, matrix<float>::Zero(2, 1), ws, nullptr);  // the forward's own input
  d.infer(x, ws);
  CHECK_THROWS_WITH_AS(d.backward(x, matrix<float>::Zero(2, 1), ws, nullptr), doctest::Contains("call forward first"),
                       error);
  mpgan_discriminator_config cfg;
  cfg.dropout = 1.0;
  CHECK_THROWS_WITH_AS(mpgan_discriminator<float>{cfg}, doctest::Contains("dropout"), error);
  cfg = {};
  cfg.fe = {};
  CHECK_THROWS_WITH_AS(mpgan_discriminator<float>{cfg}, doctest::Contains("fe"), error);
}

TEST_CASE("mpgan_discriminator: save_model / load_model round trip") {
  auto cfg = small_disc_config();
  cfg.fnd = {3};
  mpgan_discriminator<float> d(cfg);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mpgan_disc_roundtrip.safetensors";
  save_model(d, path);
  const auto back = load_model<mpgan_discriminator<float>>(path);
  std::filesystem::remove(path);
  CHECK(back.config().fnd == cfg.fnd);
  rng gen(2);
  const matrix<float> x = disc_input(gen, 4, {1, 4}).cast<float>();
  mpgan_discriminator<float>::workspace w1, w2;
  CHECK(d.infer(x, w1) == back.infer(x, w2));
}

}  // namespace hepgnn_test_mpgan_discriminator
