// MPGAN's generator: the published trained generators (mp_g, mp_q, mp_t) loaded from their .pt files must
// reproduce MPGAN's own outputs on fixed noise (shared/data/mpgan_trained_generators, g_raw and gen.py's jets,
// float32 and float64); finite-difference gradients; bad input; save/load round trip.
#include "support/doctest.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/torch_pt.hpp"
#include "hepgnn/models/mpgan.hpp"
#include "support/check_layer.hpp"
#include "support/data.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_mpgan {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

double worst_difference(const matrix<double>& got, const std::vector<double>& want) {
  REQUIRE(static_cast<std::size_t>(got.size()) == want.size());
  double w = 0;
  for (long i = 0; i < got.size(); ++i) w = std::max(w, std::abs(got.data()[i] - want[i]));
  return w;
}

template <class T>
void check_reference(const std::filesystem::path& dir, const char* jet, mpgan_jet_type type, const char* precision,
                     double tol) {
  const std::string what = std::string(jet) + " " + precision;
  CAPTURE(what);
  mpgan_generator<T> g;
  const auto report = load_weights(g, torch_state_dict::load(dir / jet / "G_best_epoch.pt"));
  CHECK(report.loaded.size() == 24);
  const auto ref = dir / jet / (std::string("reference_seed0_") + precision);
  const npy_array noise = read_npy(ref / "noise.npy");
  REQUIRE(noise.shape == std::vector<std::int64_t>{16, 30, 32});
  const auto n = read_npy(ref / "nparticles.npy").as<std::int64_t>();
  REQUIRE(n.size() == 16);
  const auto values = noise.as<T>();
  const matrix<T> x = Eigen::Map<const matrix<T>>(values.data(), 16 * 30, 32);
  typename mpgan_generator<T>::workspace ws;
  const matrix<T> raw = g.infer(x, n, ws);
  const npy_array want_raw = read_npy(ref / "g_raw.npy");
  REQUIRE(want_raw.shape == std::vector<std::int64_t>{16, 30, 4});
  const double d_raw = worst_difference(raw.template cast<double>(), want_raw.as<double>());
  // The mask column must match exactly (it decides which particles exist).
  const auto want_v = want_raw.as<double>();
  long mask_mismatch = 0;
  for (long r = 0; r < raw.rows(); ++r) mask_mismatch += double(raw(r, 3)) != want_v[static_cast<std::size_t>(r * 4 + 3)];
  CHECK(mask_mismatch == 0);
  const matrix<T> jets = mpgan_to_jets(raw, type);
  const npy_array want_jets = read_npy(ref / "jets.npy");
  REQUIRE(want_jets.shape == std::vector<std::int64_t>{16, 30, 3});
  const double d_jets = worst_difference(jets.template cast<double>(), want_jets.as<double>());
  MESSAGE(what << ": max |g_raw - reference| = " << d_raw << ", max |jets - reference| = " << d_jets);
  CHECK(d_raw < tol);
  CHECK(d_jets < tol);
  // The same workspace again: identical.
  CHECK(g.infer(x, n, ws) == raw);
}

}  // namespace

TEST_CASE("mpgan_generator reproduces MPGAN's trained generators (g, q, t) in float32 and float64") {
  HEPGNN_REQUIRE_DATA(dir, "mpgan_trained_generators");
  const std::pair<const char*, mpgan_jet_type> jets[] = {
      {"mp_g", mpgan_jet_type::gluon}, {"mp_q", mpgan_jet_type::light_quark}, {"mp_t", mpgan_jet_type::top}};
  for (const auto& [jet, type] : jets) {
    check_reference<float>(dir, jet, type, "float32", 1e-5);
    check_reference<double>(dir, jet, type, "float64", 1e-10);
  }
}

TEST_CASE("mpgan_generator: mask_c marks the n particles with the smallest first noise feature") {
  const std::vector<double> first{0.3, -1.0, 2.0, 0.1, -0.5};
  std::vector<double> mask(5);
  std::vector<long> order;
  mpgan_generator<double>::mask_c(first.data(), 1, 5, 2, mask.data(), order);
  CHECK(mask == std::vector<double>{0, 1, 0, 0, 1});
  mpgan_generator<double>::mask_c(first.data(), 1, 5, 5, mask.data(), order);
  CHECK(mask == std::vector<double>{1, 1, 1, 1, 1});
}

TEST_CASE("mpgan_generator: messages of padded particles do not reach real ones") {
  mpgan_generator_config cfg;
  cfg.num_particles = 4;
  cfg.noise_features = 3;
  cfg.hidden = 5;
  cfg.fe = {6, 4};
  cfg.fn = {7};
  mpgan_generator<double> g(cfg);
  matrix<double> x(4, 3);
  x << 0.1, 0.2, 0.3, -0.4, 0.5, -0.6, 0.7, 0.8, -0.9, -1.0, 1.1, 1.2;  // first features: 0.1, -0.4, 0.7, -1.0
  mpgan_generator<double>::workspace ws;
  const matrix<double> a = g.infer(x, {2}, ws);  // real: particles 1 and 3
  matrix<double> x2 = x;
  x2.row(0) << 0.15, 5.0, -3.0;  // a padded particle's other features change, its rank does not
  const matrix<double> b = g.infer(x2, {2}, ws);
  CHECK(a.col(3) == b.col(3));
  CHECK(a.row(1) == b.row(1));  // real particles: unchanged (they only hear real ones)
  CHECK(a.row(3) == b.row(3));
  CHECK(a.row(0) != b.row(0));  // the padded particle itself changes
}

TEST_CASE("mpgan_generator: bad input is refused naming the argument") {
  mpgan_generator<float> g;
  mpgan_generator<float>::workspace ws;
  const matrix<float> x = matrix<float>::Zero(60, 32);
  CHECK_THROWS_WITH_AS(g.infer(matrix<float>::Zero(59, 32), {3, 4}, ws), doctest::Contains("noise must be (B * 30) x 32"),
                       error);
  CHECK_THROWS_WITH_AS(g.infer(matrix<float>::Zero(60, 31), {3, 4}, ws), doctest::Contains("got 60 x 31"), error);
  CHECK_THROWS_WITH_AS(g.infer(x, {0, 4}, ws), doctest::Contains("nparticles[0] = 0 is outside 1..30"), error);
  CHECK_THROWS_WITH_AS(g.infer(x, {3, 31}, ws), doctest::Contains("nparticles[1] = 31"), error);
  CHECK_THROWS_WITH_AS(g.infer(x, {}, ws), doctest::Contains("nparticles is empty"), error);
  matrix<float> nan = x;
  nan(33, 2) = std::nanf("");
  CHECK_THROWS_WITH_AS(g.infer(nan, {3, 4}, ws), doctest::Contains("non-finite value (nan) at row 33, column 2"), error);
  CHECK_THROWS_WITH_AS(mpgan_to_jets(matrix<float>(matrix<float>::Zero(2, 3)), mpgan_jet_type::top),
                       doctest::Contains("4 columns"), error);
  mpgan_generator_config bad;
  bad.num_particles = 0;
  CHECK_THROWS_WITH_AS(mpgan_generator<float>{bad}, doctest::Contains("num_particles"), error);
}

TEST_CASE("mpgan_to_jets: gen.py's scaling, masking and pt clipping") {
  matrix<double> raw(3, 4);
  raw << 0.5, -0.25, 0.1, 0.5,  //
      0.2, 0.3, -0.9, 0.5,      // pt + 0.5 < 0: clipped to 0
      0.7, 0.7, 0.7, -0.5;      // padded: all zero
  const auto m = mpgan_feature_maxima::of(mpgan_jet_type::gluon);
  const matrix<double> j = mpgan_to_jets(raw, m);
  CHECK(j(0, 0) == 0.5 * m.eta);
  CHECK(j(0, 1) == -0.25 * m.phi);
  CHECK(j(0, 2) == (0.1 + 0.5) * m.pt);
  CHECK(j(1, 2) == 0.0);
  CHECK(j(1, 0) == 0.2 * m.eta);
  CHECK(j.row(2).isZero(0));
}

TEST_CASE("mpgan_generator: backward against finite differences (double)") {
  mpgan_generator_config cfg;
  cfg.num_particles = 4;
  cfg.noise_features = 3;
  cfg.hidden = 4;
  cfg.output_features = 3;
  cfg.fe = {5, 4};
  cfg.fn = {6};
  cfg.seed = 7;
  mpgan_generator<double> g(cfg);
  rng gen(5);
  matrix<double> x(8, 3);
  for (long k = 0; k < x.size(); ++k) x.data()[k] = gen.normal();
  const std::vector<std::int64_t> n{3, 4};
  matrix<double> R(8, 4);
  for (long k = 0; k < R.size(); ++k) R.data()[k] = gen.uniform() * 2 - 1;
  mpgan_generator<double>::workspace ws;
  matrix<double> dx;
  // The mask is piecewise constant in the noise: small steps keep every rank, so the loss stays differentiable.
  const auto loss = [&] { return g.forward(x, n, ws).cwiseProduct(R).sum(); };
  const auto backward = [&] {
    g.forward(x, n, ws);
    g.backward(x, R, ws, &dx);
  };
  hepgnn_test::check_gradients(g, loss, backward, {{"noise", &x, &dx}}, {.tol = 1e-6});
}

TEST_CASE("mpgan_generator: infer in chunks of jets equals forward at 1 and 2 threads; backward needs forward") {
  mpgan_generator_config cfg;
  cfg.num_particles = 10;
  cfg.noise_features = 3;
  cfg.hidden = 4;
  cfg.output_features = 3;
  cfg.fe = {6, 5};
  cfg.fn = {7};
  cfg.seed = 8;
  const mpgan_generator<double> g(cfg);
  const long B = 130;  // 100 pairs per jet: four of infer's chunks, the last one short
  REQUIRE(B * 100 > 3 * mpgan_generator<double>::infer_chunk_pairs);
  rng gen(6);
  matrix<double> x;
  g.draw_noise(B, 0.2, gen, x);
  std::vector<std::int64_t> n(static_cast<std::size_t>(B));
  for (auto& k : n) k = 1 + static_cast<std::int64_t>(gen.uniform() * 10);
  mpgan_generator<double>::workspace wf;
  const matrix<double> out = g.forward(x, n, wf);
  const auto infer_at = [&](int threads) {
    return hepgnn_test::at_threads(threads, [&] {
      mpgan_generator<double>::workspace wi;
      return matrix<double>(g.infer(x, n, wi));
    });
  };
  CHECK(infer_at(1) == out);
  CHECK(infer_at(2) == out);
  g.infer(x, n, wf);
  CHECK_THROWS_WITH_AS(mpgan_generator<double>(cfg).backward(x, out, wf, nullptr),
                       doctest::Contains("call forward with this noise first"), error);
}

TEST_CASE("mpgan_generator: save_model / load_model round trip") {
  mpgan_generator_config cfg;
  cfg.num_particles = 5;
  cfg.noise_features = 4;
  cfg.hidden = 6;
  cfg.fe = {7, 5};
  cfg.fn = {8};
  cfg.seed = 3;
  mpgan_generator<float> g(cfg);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mpgan_roundtrip.safetensors";
  save_model(g, path);
  const auto back = load_model<mpgan_generator<float>>(path);
  std::filesystem::remove(path);
  CHECK(back.config().fe == cfg.fe);
  CHECK(back.config().num_particles == 5);
  matrix<float> x(10, 4);
  for (long k = 0; k < x.size(); ++k) x.data()[k] = std::sin(0.7f * static_cast<float>(k));
  mpgan_generator<float>::workspace w1, w2;
  CHECK(g.infer(x, {2, 5}, w1) == back.infer(x, {2, 5}, w2));
  // Another seed gives other weights, so the comparison above can fail.
  cfg.seed = 4;
  mpgan_generator<float> other(cfg);
  CHECK(other.infer(x, {2, 5}, w2) != g.infer(x, {2, 5}, w1));
}

}  // namespace hepgnn_test_mpgan
