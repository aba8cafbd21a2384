// Rule-based particle flow: hand-made element lists with known answers, single-particle events, bad input.
#include "support/doctest.hpp"

#include <cmath>

#include "hepgnn/models/pf_baseline.hpp"

namespace hepgnn_test_pf_baseline {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using namespace hepgnn::pf;

namespace {
// One element row; phi at the calorimeter equals phi (a straight track) unless given.
void put(matrix<double>& f, int r, int type, double pt, double eta, double phi, double e, double muon_hits = 0) {
  f.row(r).setZero();
  f(r, feature::type) = type;
  f(r, feature::pt) = pt;
  f(r, feature::eta) = eta;
  f(r, feature::sin_phi) = std::sin(phi);
  f(r, feature::cos_phi) = std::cos(phi);
  f(r, feature::energy) = e;
  if (type == track) {
    f(r, feature::charge) = 1;
    f(r, feature::eta_calo) = eta;
    f(r, feature::sin_phi_calo) = std::sin(phi);
    f(r, feature::cos_phi_calo) = std::cos(phi);
    f(r, feature::muon_hits) = muon_hits;
  }
}
toy_pf_config quiet() {
  toy_pf_config c;
  c.ecal_noise = c.hcal_noise = 0;
  return c;
}
struct tally {
  int n[num_classes] = {};
  double e[num_classes] = {};
};
tally count(const candidates& c) {
  tally t;
  for (index_t i = 0; i < c.size(); ++i) {
    ++t.n[c.cls[i]];
    t.e[c.cls[i]] += c.p4(i, target::energy);
  }
  return t;
}
}  // namespace

TEST_CASE("pf_baseline: hand-made blocks with known answers") {
  const pf_baseline base;
  SUBCASE("track plus HCAL excess gives a charged and a neutral hadron") {
    matrix<double> f(2, feature::count);
    put(f, 0, track, 10, 0.5, 1.0, 10 * std::cosh(0.5));
    const double p = 10 * std::cosh(0.5);
    put(f, 1, hcal_cluster, 0, 0.52, 1.02, 0.9 * (p + 12.0));  // calibrated: p + 12 GeV
    const auto c = base.reconstruct(f);
    CHECK(c.cls[0] == charged_hadron);
    CHECK(c.p4(0, target::pt) == doctest::Approx(10));
    CHECK(c.p4(0, target::energy) == doctest::Approx(p));
    CHECK(c.cls[1] == neutral_hadron);
    CHECK(c.p4(1, target::energy) == doctest::Approx(12.0));
    CHECK(c.p4(1, target::eta) == doctest::Approx(0.52));
  }
  SUBCASE("a compatible HCAL deposit is absorbed by the track") {
    matrix<double> f(2, feature::count);
    put(f, 0, track, 10, 0.5, 1.0, 10 * std::cosh(0.5));
    put(f, 1, hcal_cluster, 0, 0.52, 1.02, 0.9 * 10 * std::cosh(0.5));
    const auto c = base.reconstruct(f);
    CHECK(c.cls[0] == charged_hadron);
    CHECK(c.cls[1] == none);
  }
  SUBCASE("isolated ECAL cluster is a photon, isolated HCAL cluster a calibrated neutral hadron") {
    matrix<double> f(2, feature::count);
    put(f, 0, ecal_cluster, 0, -1.0, 2.0, 7.0);
    put(f, 1, hcal_cluster, 0, 1.0, -2.0, 9.0);
    const auto c = base.reconstruct(f);
    CHECK(c.cls[0] == photon);
    CHECK(c.p4(0, target::energy) == doctest::Approx(7.0));
    CHECK(c.p4(0, target::pt) == doctest::Approx(7.0 / std::cosh(1.0)));
    CHECK(c.cls[1] == neutral_hadron);
    CHECK(c.p4(1, target::energy) == doctest::Approx(10.0));
  }
  SUBCASE("identification: muon hits and E/p") {
    matrix<double> f(3, feature::count);
    put(f, 0, track, 20, 0.0, 0.0, 20, 3);    // muon
    put(f, 1, track, 15, 1.0, 2.5, 15 * std::cosh(1.0));  // electron: narrow ECAL cluster with E/p = 1
    put(f, 2, ecal_cluster, 0, 1.0, 2.5, 15 * std::cosh(1.0));
    const auto c = base.reconstruct(f);
    CHECK(c.cls[0] == muon);
    CHECK(c.cls[1] == electron);
    CHECK(c.cls[2] == none);
  }
  SUBCASE("far-away clusters are not linked") {
    matrix<double> f(2, feature::count);
    put(f, 0, track, 10, 0.0, 0.0, 10);
    put(f, 1, ecal_cluster, 0, 0.0, 0.5, 10);
    const auto c = base.reconstruct(f);
    CHECK(c.cls[1] == photon);
  }
}

TEST_CASE("pf_baseline: single-particle events from the toy detector") {
  const toy_pf_detector det(quiet());
  const pf_baseline base;
  rng gen(21);
  constexpr int trials = 300;
  int ok[num_classes] = {};
  double e_sum[num_classes] = {};
  int tracked = 0;
  for (int k = 0; k < trials; ++k) {
    const double eta = gen.uniform(-2, 2), phi = gen.uniform(-3, 3);
    for (index_t cls : {charged_hadron, neutral_hadron, photon, electron, muon}) {
      const double pt = 30;
      auto ev = det.simulate_particles(gen, {particle{cls, pt, eta, phi, cls == neutral_hadron || cls == photon ? 0 : 1}});
      const bool has_track = std::count_if(ev.target_class.begin(), ev.target_class.end(), [&](index_t t) {
        return t == charged_hadron || t == electron || t == muon;
      }) > 0;
      if (cls == charged_hadron) tracked += has_track;
      if (cls != neutral_hadron && cls != photon && !has_track) continue;  // untracked: nothing to identify
      const auto t = count(base.reconstruct(ev.features));
      const int charged = t.n[charged_hadron] + t.n[electron] + t.n[muon];
      if (cls == neutral_hadron) {
        // split hadron showers may give several neutral pieces; the neutral energy must add up
        if (t.n[neutral_hadron] >= 1 && charged == 0) ++ok[cls];
        e_sum[cls] += (t.e[neutral_hadron] + t.e[photon]) / ev.particles[0].energy();
        continue;
      }
      // exactly one candidate of the right class
      if (t.n[cls] == 1 && (cls == photon ? charged == 0 : charged == 1)) ++ok[cls];
      e_sum[cls] += t.e[cls] / ev.particles[0].energy();
    }
  }
  CHECK(tracked > 0.85 * trials);
  CHECK(ok[photon] > 0.97 * trials);
  CHECK(e_sum[photon] / ok[photon] == doctest::Approx(1.0).epsilon(0.02));
  CHECK(ok[neutral_hadron] > 0.95 * trials);
  CHECK(e_sum[neutral_hadron] / trials == doctest::Approx(1.0).epsilon(0.1));
  CHECK(ok[charged_hadron] > 0.97 * tracked);
  CHECK(ok[electron] > 0.8 * trials);
  CHECK(ok[muon] > 0.8 * trials);
}

TEST_CASE("pf_baseline: on full events charged hadrons are found and candidates are finite") {
  const auto evs = toy_pf_detector().simulate(2, 2);
  const pf_baseline base;
  for (const auto& ev : evs) {
    const auto c = base.reconstruct(ev.features);
    REQUIRE(c.size() == ev.num_elements());
    REQUIRE(c.p4.allFinite());
    long right = 0, total = 0;
    for (index_t i = 0; i < c.size(); ++i)
      if (ev.target_class[i] == charged_hadron) {
        ++total;
        right += c.cls[i] == charged_hadron;
      }
    CHECK(static_cast<double>(right) / static_cast<double>(total) > 0.95);
  }
}

TEST_CASE("pf_baseline: bad input") {
  const pf_baseline base;
  const auto empty = base.reconstruct(matrix<double>(0, feature::count));
  CHECK(empty.size() == 0);
  CHECK(empty.p4.rows() == 0);
  matrix<double> f(2, feature::count);
  put(f, 0, track, 10, 0.0, 0.0, 10);
  put(f, 1, ecal_cluster, 0, 0.0, 0.0, 10);
  matrix<double> bad = f;
  bad(1, feature::energy) = std::nan("");
  CHECK_THROWS_WITH_AS(base.reconstruct(bad), doctest::Contains("element 1 has a non-finite feature"), hepgnn::error);
  bad = f;
  bad(0, feature::type) = 7;
  CHECK_THROWS_WITH_AS(base.reconstruct(bad), doctest::Contains("unknown element type 7"), hepgnn::error);
  CHECK_THROWS_WITH_AS(base.reconstruct(matrix<double>(3, 4)), doctest::Contains("must have 15 columns, got 3 x 4"),
                       hepgnn::error);
}

}  // namespace hepgnn_test_pf_baseline
