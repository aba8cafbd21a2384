// apply_jet_conventions: pt_rel floor and sum, centring on the four-vector axis, ordering; what it leaves
// unchanged (jet mass under the centring, jets that already hold the conventions); and why it matters: a few
// per cent of spread in the pt sums moves the EFP metrics far above their floor.
#include "support/doctest.hpp"

#include <cmath>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/data/jet_conventions.hpp"
#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/metrics/generation.hpp"

namespace hepgnn_test_jet_conventions {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
/// px, py, pz of jet j's massless particles.
std::vector<double> axis_sums(const jet_array<double>& jets, index_t j) {
  double px = 0, py = 0, pz = 0;
  for (index_t i = 0; i < jets.count(j); ++i) {
    const auto r = jets.row(j, i);
    px += r(2) * std::cos(r(1)), py += r(2) * std::sin(r(1)), pz += r(2) * std::sinh(r(0));
  }
  return {px, py, pz};
}
}  // namespace

TEST_CASE("apply_jet_conventions: floor, sum, axis and order of a hand-made jet") {
  auto jets = jet_array<double>::zeros(2, 4);
  // jet 0: three particles, the last a generated ghost with pt 0, the axis off (0.05, -0.03)
  const double p[3][3] = {{0.10, -0.02, 0.3}, {0.02, -0.05, 0.6}, {-0.04, 0.01, 0.0}};
  for (int i = 0; i < 3; ++i) jets.row(0, i) << p[i][0], p[i][1], p[i][2], 1;
  // jet 1: empty (all padding)
  auto flat = jets;
  apply_jet_conventions(flat, {.min_pt_rel = 0.01, .pt_rel_sum = 1, .center = false});
  // floor, then sum 1, then order by pt: 0.6, 0.3, 0.01 over 0.91
  CHECK(flat.row(0, 0)(2) == doctest::Approx(0.6 / 0.91).epsilon(1e-14));
  CHECK(flat.row(0, 1)(2) == doctest::Approx(0.3 / 0.91).epsilon(1e-14));
  CHECK(flat.row(0, 2)(2) == doctest::Approx(0.01 / 0.91).epsilon(1e-14));
  CHECK(flat.row(0, 0)(0) == 0.02);  // the particle moved with its angles
  CHECK(flat.row(0, 0)(1) == -0.05);
  CHECK(flat.row(0, 3).isZero());
  CHECK(flat.count(0) == 3);
  CHECK(flat.particles.bottomRows(4).isZero());

  auto centred = jets;
  apply_jet_conventions(centred, {.min_pt_rel = 0.01});
  const auto s = axis_sums(centred, 0);
  CHECK(std::abs(s[1]) < 1e-15);  // phi of the axis 0
  CHECK(s[0] > 0.9);
  // eta_rel is measured from the axis' pseudorapidity (as the toy jets and EPiC-GAN's center_jets do), so every
  // particle moves by asinh(pz / pt) of the uncentred sum; the centred sum's pz is then small, not 0 (a massive
  // jet's rapidity and pseudorapidity differ)
  const auto s0 = axis_sums(flat, 0);
  const double jeta = std::asinh(s0[2] / std::hypot(s0[0], s0[1])), jphi = std::atan2(s0[1], s0[0]);
  for (index_t i = 0; i < 3; ++i) {
    CHECK(centred.row(0, i)(0) == doctest::Approx(flat.row(0, i)(0) - jeta).epsilon(1e-14));
    CHECK(centred.row(0, i)(1) == doctest::Approx(flat.row(0, i)(1) - jphi).epsilon(1e-14));
  }
  CHECK(std::abs(jeta) > 0.01);         // it did move
  CHECK(std::abs(s[2]) < 0.1 * std::abs(s0[2]));
  // a longitudinal boost and a rotation: the jet mass stays
  CHECK(jet_masses(centred)[0] == doctest::Approx(jet_masses(flat)[0]).epsilon(1e-12));
  CHECK(centred.particles.bottomRows(4).isZero());
}

TEST_CASE("apply_jet_conventions: toy jets already hold them; scaled pt sums come back, and matter to w1efp") {
  rng g(5);
  const auto real = make_toy_jets<double>(600, jet_kind::top, g);
  // the toy jets' pt_rel sum to 1: nothing but the centring (their axis uses all cone particles) changes them
  auto same = real;
  apply_jet_conventions(same, {.center = false});
  CHECK((same.particles - real.particles).cwiseAbs().maxCoeff() < 1e-15);
  auto centred = real;
  apply_jet_conventions(centred);  // the kept particles' axis is close to the cone's: a small move
  CHECK((centred.particles - real.particles).cwiseAbs().maxCoeff() < 0.05);

  // each jet's pt_rel times 1 + 10 % noise: an unconstrained generator's sums spread more (the example's EPiC
  // generator after 250 steps: 1.34 +- 0.30)
  auto scaled = real;
  rng s(6);
  for (index_t j = 0; j < scaled.num_jets; ++j) {
    const double f = 1 + 0.1 * s.normal(0, 1);
    for (index_t i = 0; i < scaled.count(j); ++i) scaled.row(j, i)(2) *= f;
  }
  const auto other = make_toy_jets<double>(600, jet_kind::top, g);
  const w1_options w{600, 1, 3};
  const double floor_efp = w1efp(real, other, w).mean[0], off = w1efp(real, scaled, w).mean[0];
  const double floor_m = w1m(real, other, w).mean, off_m = w1m(real, scaled, w).mean;
  CAPTURE(floor_efp);
  CAPTURE(off);
  CHECK(off > 1.5 * floor_efp);  // 1.8x here (600 jets, seeded)
  CHECK(off_m > 1.5 * floor_m);
  apply_jet_conventions(scaled, {.center = false});
  CHECK((scaled.particles - real.particles).cwiseAbs().maxCoeff() < 1e-14);  // the same jets again
}

TEST_CASE("apply_jet_conventions: bad options are refused naming them") {
  auto jets = jet_array<double>::zeros(1, 3);
  jets.row(0, 0) << 0.1, 0.1, 1, 1;
  CHECK_THROWS_WITH_AS(apply_jet_conventions(jets, {.min_pt_rel = -1}),
                       doctest::Contains("options.min_pt_rel must be finite and >= 0, got -1"), error);
  CHECK_THROWS_WITH_AS(apply_jet_conventions(jets, {.pt_rel_sum = NAN}),
                       doctest::Contains("options.pt_rel_sum must be finite and >= 0"), error);
  jets.row(0, 1) << 0.1, 0.1, -1, 1;  // negative pt: not a jet
  CHECK_THROWS_AS(apply_jet_conventions(jets), error);
  CHECK(min_positive_pt_rel(jet_array<double>::zeros(2, 3)) == 0);
}

}  // namespace hepgnn_test_jet_conventions
