// Toy particle-flow detector: determinism, class fractions, energy bookkeeping, target assignment,
// resolutions and bad configuration.
#include "support/doctest.hpp"

#include <cmath>
#include <set>

#include "hepgnn/data/toy_pf_detector.hpp"

namespace hepgnn_test_pf_detector {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using namespace hepgnn::pf;

namespace {
toy_pf_config quiet() {  // no noise, no thresholds: every deposited GeV ends in a cluster
  toy_pf_config c;
  c.ecal_noise = c.hcal_noise = 0;
  c.ecal_threshold = c.hcal_threshold = 0;
  return c;
}
double stddev(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}
}  // namespace

TEST_CASE("toy_pf_detector: seeded, thousands of elements, well-formed rows") {
  const toy_pf_detector det;
  const auto a = det.simulate(42, 3), b = det.simulate(42, 3), c = det.simulate(43, 1);
  for (int i = 0; i < 3; ++i) {
    CHECK(a[i].features == b[i].features);
    CHECK(a[i].target_class == b[i].target_class);
    CHECK(a[i].num_elements() > 800);
    CHECK(a[i].features.cols() == feature::count);
    CHECK(a[i].target.rows() == a[i].num_elements());
    for (index_t r = 0; r < a[i].num_elements(); ++r) {
      const double t = a[i].features(r, feature::type);
      REQUIRE((t == 1.0 || t == 2.0 || t == 3.0));
      REQUIRE(a[i].features.row(r).allFinite());
    }
  }
  CHECK(c[0].features.rows() != a[0].features.rows());  // a different seed gives a different event
}

TEST_CASE("toy_pf_detector: generated class fractions follow the configuration") {
  toy_pf_config cfg;
  cfg.soft_particles = 0;
  cfg.prompt_lepton_probability = 0;
  const toy_pf_detector det(cfg);
  rng gen(7);
  std::array<double, num_classes> n{};
  double total = 0;
  for (int e = 0; e < 400; ++e)
    for (const auto& p : det.generate(gen)) {
      n[p.cls] += 1;
      total += 1;
      REQUIRE(p.charge == ((p.cls == neutral_hadron || p.cls == photon) ? 0 : p.charge));
      if (p.cls == charged_hadron || p.cls == electron || p.cls == muon) REQUIRE(std::abs(p.charge) == 1);
    }
  REQUIRE(total > 10000);
  const double sum = 0.58 + 0.11 + 0.28 + 0.02 + 0.01;
  for (index_t c = 1; c < num_classes; ++c) {
    const double expected = cfg.fractions[c - 1] / sum;
    const double sigma = std::sqrt(expected * (1 - expected) / total);
    CHECK(std::abs(n[c] / total - expected) < 5 * sigma + 1e-4);
  }
}

TEST_CASE("toy_pf_detector: calorimeter energy is conserved by clustering") {
  for (bool with_noise : {false, true}) {
    toy_pf_config cfg = with_noise ? toy_pf_config{} : quiet();
    const auto evs = toy_pf_detector(cfg).simulate(5, 4);
    for (const auto& ev : evs) {
      double clustered = 0;
      for (index_t r = 0; r < ev.num_elements(); ++r)
        if (ev.features(r, feature::type) != track) clustered += ev.features(r, feature::energy);
      CHECK(clustered + ev.calo_below_threshold == doctest::Approx(ev.calo_deposited).epsilon(1e-9));
      if (!with_noise) CHECK(ev.calo_below_threshold == 0);
    }
  }
}

TEST_CASE("toy_pf_detector: targets are consistent with the particles") {
  const auto evs = toy_pf_detector().simulate(11, 3);
  for (const auto& ev : evs) {
    // each particle goes to at most one element, and that element's leading particle is assigned to it
    std::vector<double> e_sum(static_cast<std::size_t>(ev.num_elements()), 0.0);
    for (std::size_t i = 0; i < ev.particles.size(); ++i) {
      const index_t el = ev.particle_element[i];
      if (el < 0) continue;
      REQUIRE(el < ev.num_elements());
      e_sum[el] += ev.particles[i].energy();
    }
    for (index_t r = 0; r < ev.num_elements(); ++r) {
      const index_t cls = ev.target_class[r];
      const double type = ev.features(r, feature::type);
      if (type == track) {  // every track comes from a charged particle, which is its target
        REQUIRE((cls == charged_hadron || cls == electron || cls == muon));
        REQUIRE(ev.particle_element[ev.element_particle[r]] == r);
        CHECK(ev.target(r, target::pt) == doctest::Approx(ev.particles[ev.element_particle[r]].pt));
      } else {  // calorimeter-only targets are neutral
        REQUIRE((cls == none || cls == neutral_hadron || cls == photon));
      }
      if (cls == none) {
        CHECK(e_sum[r] == 0);
        CHECK(ev.element_particle[r] == -1);
      } else {
        CHECK(ev.target(r, target::energy) == doctest::Approx(e_sum[r]).epsilon(1e-12));
        const double s = ev.target(r, target::sin_phi), c = ev.target(r, target::cos_phi);
        CHECK(s * s + c * c == doctest::Approx(1.0));
      }
    }
  }
}

TEST_CASE("toy_pf_detector: tracking efficiency and calorimeter resolution") {
  toy_pf_config cfg = quiet();
  const toy_pf_detector det(cfg);
  rng gen(3);
  int tracked = 0, produced = 0;
  std::vector<double> photon_e, hadron_track_pt;
  for (int k = 0; k < 2000; ++k) {
    auto ev = det.simulate_particles(gen, {particle{charged_hadron, 20.0, 0.3, 1.0, 1}});
    ++produced;
    for (index_t r = 0; r < ev.num_elements(); ++r)
      if (ev.features(r, feature::type) == track) {
        ++tracked;
        hadron_track_pt.push_back(ev.features(r, feature::pt) / 20.0);
      }
    auto ph = det.simulate_particles(gen, {particle{photon, 50.0, 0.0, -2.0, 0}});
    double e = 0;
    for (index_t r = 0; r < ph.num_elements(); ++r) e += ph.features(r, feature::energy);
    photon_e.push_back(e / 50.0);
  }
  CHECK(static_cast<double>(tracked) / produced == doctest::Approx(cfg.track_efficiency).epsilon(0.03));
  const double track_sigma = std::hypot(cfg.track_pt_stochastic, cfg.track_pt_slope * 20);
  CHECK(stddev(hadron_track_pt) == doctest::Approx(track_sigma).epsilon(0.1));
  const double ecal_sigma = std::hypot(cfg.ecal_stochastic / std::sqrt(50.0), cfg.ecal_constant);
  CHECK(stddev(photon_e) == doctest::Approx(ecal_sigma).epsilon(0.1));
}

TEST_CASE("toy_pf_detector: nearby showers merge into one cluster") {
  const toy_pf_detector det(quiet());
  rng gen(9);
  // two photons 0.01 apart merge into one ECAL cluster; 0.5 apart they stay separate
  auto close = det.simulate_particles(gen, {particle{photon, 10, 0.5, 0.2, 0}, particle{photon, 8, 0.51, 0.2, 0}});
  auto far = det.simulate_particles(gen, {particle{photon, 10, 0.5, 0.2, 0}, particle{photon, 8, 1.0, 0.2, 0}});
  CHECK(close.num_elements() == 1);
  CHECK(far.num_elements() == 2);
  // the merged cluster's target is the sum of both photons, labelled photon
  CHECK(close.target_class[0] == photon);
  CHECK(close.target(0, target::energy) ==
        doctest::Approx(close.particles[0].energy() + close.particles[1].energy()));
}

TEST_CASE("toy_pf_detector: bad configuration and particles") {
  toy_pf_config cfg;
  cfg.min_jets = 5;
  cfg.max_jets = 2;
  CHECK_THROWS_WITH_AS(toy_pf_detector{cfg}, doctest::Contains("min_jets <= max_jets"), hepgnn::error);
  cfg = {};
  cfg.track_efficiency = 1.5;
  CHECK_THROWS_WITH_AS(toy_pf_detector{cfg}, doctest::Contains("track_efficiency must be in [0, 1]"), hepgnn::error);
  cfg = {};
  cfg.fractions = {0, 0, 0, 0, 0};
  CHECK_THROWS_WITH_AS(toy_pf_detector{cfg}, doctest::Contains("fractions"), hepgnn::error);
  const toy_pf_detector det;
  rng gen(1);
  CHECK_THROWS_WITH_AS(det.simulate_particles(gen, {particle{7, 1, 0, 0, 0}}), doctest::Contains("has class 7"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(det.simulate_particles(gen, {particle{photon, std::nan(""), 0, 0, 0}}),
                       doctest::Contains("finite pt > 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(det.simulate(1, -1), doctest::Contains("event count must be >= 0"), hepgnn::error);
  // an event with no particles and no noise has no elements
  toy_pf_config q = quiet();
  const auto empty = toy_pf_detector(q).simulate_particles(gen, {});
  CHECK(empty.num_elements() == 0);
  CHECK(empty.features.cols() == feature::count);
}

}  // namespace hepgnn_test_pf_detector
