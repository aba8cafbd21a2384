// FPND with JetNet's trained ParticleNet: fpnd_norm against the stored network inputs, the value on the 26 FastJet
// jets against JetNet's Frechet function on the stored activations (tests/reference/generation_metrics_reference.py),
// the statistics reader and bad input.
#include "support/doctest.hpp"

#include <cmath>

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/models/fpnd.hpp"
#include "support/data.hpp"
#include "support/reference.hpp"

namespace hepgnn_test_fpnd {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

TEST_CASE("fpnd of the 26 FastJet jets matches JetNet's Frechet distance of its ParticleNet activations") {
  HEPGNN_REQUIRE_DATA(dir, "jetnet_particlenet_fpnd");
  const auto want = hepgnn_test::read_reference("tests/data/generation_metrics_reference.txt");
  if (!want.contains("fpnd_fastjet_g")) {
    MESSAGE("skipped: the reference file has no FPND entries");
    return;
  }
  rng gen(1);
  particlenet<double> net(gen);
  (void)load_weights(net, npz_file::open(dir / "pnet_weights.npz"));
  const auto ref = dir / "reference_on_fastjet_jets";
  const auto raw = read_npy(ref / "jets_etarel_phirel_ptrel.npy").as<double>();
  REQUIRE(raw.size() == 26 * 30 * 3);
  auto jets = jet_array<double>::zeros(26, 30);
  for (long r = 0; r < 26 * 30; ++r) {
    for (int c = 0; c < 3; ++c) jets.particles(r, c) = raw[3 * r + c];
    jets.particles(r, jet_col::mask) = 1;  // every jet has >= 33 constituents
  }
  // JetNet's fpnd_norm, as the reference network saw it
  const auto norm = read_npy(ref / "float64" / "jets_in.npy").as<double>();
  const matrix<double> x = fpnd_inputs(jets, 0, 26);
  CHECK(hepgnn_test::max_rel_diff(x, norm) <= 1e-15);
  for (const char* t : {"g", "q", "t"}) {
    CAPTURE(std::string(t));
    const auto stats = fpnd_statistics::load(dir, t);
    const double v = fpnd(net, jets, stats), w = want.at(std::string("fpnd_fastjet_") + t)[0];
    MESSAGE("FPND (" << std::string(t) << ") " << v << ", JetNet's Frechet function " << w << ", relative deviation "
                     << std::abs(v - w) / w);
    // 26 jets give a covariance of rank 25 in 256 dimensions: scipy's sqrtm adds ~sqrt(eps) per zero eigenvalue
    // of the product, which trace_sqrt_product counts as 0 (see frechet.hpp), hence the 6e-7
    CHECK(std::abs(v - w) <= 1.5e-6 * w);
    // ... and with that the value does not depend on the order of the two Gaussians
    const gaussian_fit g = fit_gaussian(fpnd_activations(net, jets));
    const double swapped = frechet_distance(g.mean, g.cov, stats.mu, stats.sigma);
    CHECK(std::abs(swapped - v) <= 1e-11 * v);
  }
  // batching does not change the activations
  const matrix<double> a1 = fpnd_activations(net, jets, 50'000, 26), a2 = fpnd_activations(net, jets, 50'000, 5);
  CHECK((a1 - a2).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK(fpnd_activations(net, jets, 10).rows() == 10);
}

TEST_CASE("fpnd refuses bad input by name") {
  rng gen(3);
  particlenet<double> net(gen);
  fpnd_statistics s;
  s.mu = vector<double>::Zero(256);
  s.sigma = matrix<double>::Identity(256, 256);
  CHECK_THROWS_WITH_AS(fpnd(net, jet_array<double>::zeros(1, 30), s), doctest::Contains("at least 2 jets"), hepgnn::error);
  CHECK_THROWS_WITH_AS(fpnd(net, jet_array<double>::zeros(4, 20), s), doctest::Contains("30 particles per jet, got 20"),
                       hepgnn::error);
  fpnd_statistics small = s;
  small.mu = vector<double>::Zero(10);
  CHECK_THROWS_WITH_AS(fpnd(net, jet_array<double>::zeros(4, 30), small), doctest::Contains("real statistics must be 256"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(fpnd_statistics::load(".", "w"), doctest::Contains("jet_type must be"), hepgnn::error);
  CHECK_THROWS_WITH_AS(fpnd_statistics::load("/nonexistent", "g"), doctest::Contains("cannot open"), hepgnn::error);
}

}  // namespace hepgnn_test_fpnd
