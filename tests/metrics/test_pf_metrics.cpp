// Particle-flow metrics: quantiles, confusion matrix, anti-kT against a brute-force clustering, jet matching,
// MET, the evaluator on hand-made events, bad input.
#include "support/doctest.hpp"

#include <cmath>
#include <numbers>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/metrics/particle_flow.hpp"

namespace hepgnn_test_pf_metrics {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using namespace hepgnn::pf;

namespace {
// Textbook anti-kT: recompute every distance at every step (O(N^3)).
std::vector<std::vector<int>> brute_antikt(const std::vector<jets::pseudojet>& in, double r, double ptmin) {
  struct item {
    jets::pseudojet p;
    std::vector<int> idx;
  };
  std::vector<item> act;
  for (int i = 0; i < static_cast<int>(in.size()); ++i) act.push_back({in[i], {i}});
  std::vector<item> done;
  while (!act.empty()) {
    double best = 1e300;
    int bi = -1, bj = -1;
    for (int i = 0; i < static_cast<int>(act.size()); ++i) {
      const double ki = 1 / act[i].p.pt2();
      if (ki < best) best = ki, bi = i, bj = -1;
      for (int j = i + 1; j < static_cast<int>(act.size()); ++j) {
        const double dy = act[i].p.rapidity() - act[j].p.rapidity();
        double dp = std::abs(act[i].p.phi() - act[j].p.phi());
        if (dp > std::numbers::pi) dp = 2 * std::numbers::pi - dp;
        const double d = std::min(ki, 1 / act[j].p.pt2()) * (dy * dy + dp * dp) / (r * r);
        if (d < best) best = d, bi = i, bj = j;
      }
    }
    if (bj < 0) {
      if (act[bi].p.pt() >= ptmin) done.push_back(act[bi]);
      act.erase(act.begin() + bi);
    } else {
      act[bi].p += act[bj].p;
      act[bi].idx.insert(act[bi].idx.end(), act[bj].idx.begin(), act[bj].idx.end());
      act.erase(act.begin() + bj);
    }
  }
  std::sort(done.begin(), done.end(), [](const item& a, const item& b) { return a.p.pt2() > b.p.pt2(); });
  std::vector<std::vector<int>> out;
  for (auto& d : done) {
    std::sort(d.idx.begin(), d.idx.end());
    out.push_back(d.idx);
  }
  return out;
}
candidates make(std::vector<index_t> cls, std::vector<std::array<double, 3>> pt_eta_phi) {
  candidates c{std::move(cls), matrix<double>::Zero(static_cast<index_t>(pt_eta_phi.size()), target::count)};
  for (std::size_t i = 0; i < pt_eta_phi.size(); ++i) {
    const auto [pt, eta, phi] = pt_eta_phi[i];
    c.p4.row(static_cast<index_t>(i)) << pt, eta, std::sin(phi), std::cos(phi), pt * std::cosh(eta);
  }
  return c;
}
}  // namespace

TEST_CASE("quantile and response summary match numpy's linear interpolation") {
  CHECK(quantile({4, 1, 3, 2}, 0.5) == doctest::Approx(2.5));
  CHECK(quantile({4, 1, 3, 2}, 0.25) == doctest::Approx(1.75));  // numpy.quantile([1,2,3,4], 0.25)
  CHECK(quantile({4, 1, 3, 2}, 0.75) == doctest::Approx(3.25));
  CHECK(quantile({5}, 0.3) == 5);
  CHECK(std::isnan(quantile({}, 0.5)));
  const auto s = summarize_response({0.8, 0.9, 1.0, 1.1, 1.2});
  CHECK(s.count == 5);
  CHECK(s.median == doctest::Approx(1.0));
  CHECK(s.iqr == doctest::Approx(0.2));
  CHECK(s.resolution == doctest::Approx(0.2));
  CHECK(std::isnan(summarize_response({}).resolution));
  CHECK_THROWS_WITH_AS(quantile({1, 2}, 1.5), doctest::Contains("q must be in [0, 1], got 1.5"), hepgnn::error);
}

TEST_CASE("confusion matrix: efficiency and fake rate by hand") {
  confusion_matrix m;
  // 4 charged hadrons: 3 right, 1 called photon; 2 photons right; 1 'none' called charged hadron
  for (int i = 0; i < 3; ++i) m.add(charged_hadron, charged_hadron);
  m.add(charged_hadron, photon);
  m.add(photon, photon);
  m.add(photon, photon);
  m.add(none, charged_hadron);
  CHECK(m.efficiency(charged_hadron) == doctest::Approx(0.75));
  CHECK(m.fake_rate(charged_hadron) == doctest::Approx(0.25));
  CHECK(m.efficiency(photon) == doctest::Approx(1.0));
  CHECK(m.fake_rate(photon) == doctest::Approx(1.0 / 3));
  CHECK(std::isnan(m.efficiency(muon)));
  CHECK(std::isnan(m.fake_rate(muon)));
  const auto n = m.normalized();
  CHECK(n[charged_hadron][photon] == doctest::Approx(0.25));
  CHECK(n[muon][muon] == 0);
}

TEST_CASE("anti-kT: hand cases") {
  using jets::pseudojet;
  // two particles 0.3 apart merge with R = 0.4, not with R = 0.2; a third far away is its own jet
  std::vector<pseudojet> p = {pseudojet::from_pt_eta_phi(50, 0, 0), pseudojet::from_pt_eta_phi(10, 0.3, 0),
                              pseudojet::from_pt_eta_phi(30, 0, 2)};
  auto j = jets::cluster_antikt(p, 0.4);
  REQUIRE(j.size() == 2);
  CHECK(j[0].constituents == std::vector<int>{0, 1});
  CHECK(j[0].p.pt() == doctest::Approx(60).epsilon(0.01));
  CHECK(j[1].constituents == std::vector<int>{2});
  CHECK(jets::cluster_antikt(p, 0.2).size() == 3);
  CHECK(jets::cluster_antikt(p, 0.4, 40).size() == 1);  // ptmin
  // across the phi = pi seam
  std::vector<pseudojet> seam = {pseudojet::from_pt_eta_phi(20, 0, 3.1), pseudojet::from_pt_eta_phi(20, 0, -3.1)};
  CHECK(jets::cluster_antikt(seam, 0.4).size() == 1);
  CHECK(jets::cluster_antikt(std::vector<pseudojet>{}, 0.4).empty());
  CHECK_THROWS_WITH_AS(jets::cluster_antikt(p, -1), doctest::Contains("radius R must be positive"), hepgnn::error);
  p[1].px = std::nan("");
  CHECK_THROWS_WITH_AS(jets::cluster_antikt(p, 0.4), doctest::Contains("particle 1 has a non-finite"), hepgnn::error);
}

TEST_CASE("anti-kT: nearest-neighbour clustering equals brute force on random events") {
  rng gen(77);
  for (int ev = 0; ev < 12; ++ev) {
    std::vector<jets::pseudojet> p;
    const int n = 20 + static_cast<int>(gen.below(150));
    for (int i = 0; i < n; ++i) {
      // clumps plus soft background, so merges of all kinds happen
      const double eta0 = (i % 3 == 0) ? gen.uniform(-2, 2) : 0.5 * (i % 5);
      const double phi0 = (i % 3 == 0) ? gen.uniform(-3.14, 3.14) : 1.0 * (i % 5) - 2.5;
      p.push_back(jets::pseudojet::from_pt_eta_phi(0.5 + gen.exponential(5), eta0 + gen.normal(0, 0.2),
                                                   phi0 + gen.normal(0, 0.2)));
    }
    const double r = ev % 2 ? 0.4 : 0.8;
    const auto fast = jets::cluster_antikt(p, r, 1.0);
    const auto slow = brute_antikt(p, r, 1.0);
    REQUIRE(fast.size() == slow.size());
    for (std::size_t k = 0; k < fast.size(); ++k) CHECK(fast[k].constituents == slow[k]);
  }
}

TEST_CASE("jet matching, MET and the evaluator on hand-made events") {
  const candidates ref = make({charged_hadron, photon, neutral_hadron, none},
                              {{{40, 0, 0}}, {{20, 0.1, 0.1}}, {{30, 1, 2.5}}, {{0, 0, 0}}});
  SUBCASE("perfect reconstruction") {
    pf_evaluator ev;
    ev.add_event(ref, ref);
    const auto r = ev.report();
    CHECK(r.confusion.efficiency(charged_hadron) == 1);
    CHECK(r.confusion.fake_rate(photon) == 0);
    CHECK(r.jet_response.median == doctest::Approx(1));
    CHECK(r.jet_response.resolution == doctest::Approx(0));
    CHECK(r.jet_matching_efficiency == 1);
    CHECK(r.jet_response.count == 2);  // (40 + 20) and 30
    CHECK(r.met_response.median == doctest::Approx(1));
    CHECK(r.met_x_sigma == doctest::Approx(0));
    CHECK(r.pt_response[photon].median == doctest::Approx(1));
  }
  SUBCASE("scaled neutral hadron, missed photon, fake muon") {
    candidates reco = ref;
    reco.p4.row(2) *= 1.0;
    reco.p4(2, target::pt) = 36;     // 20 % high
    reco.p4(2, target::energy) *= 1.2;
    reco.cls[1] = none;              // photon lost: the first jet drops from 60 to 40
    reco.cls[3] = muon;              // fake with zero momentum
    pf_evaluator ev;
    ev.add_event(ref, reco);
    const auto r = ev.report();
    CHECK(r.confusion.efficiency(photon) == 0);
    CHECK(r.confusion.fake_rate(muon) == 1);
    CHECK(r.pt_response[neutral_hadron].median == doctest::Approx(1.2));
    CHECK(r.energy_response[neutral_hadron].median == doctest::Approx(1.2));
    std::vector<double> ratios = r.jet_ratios;
    std::sort(ratios.begin(), ratios.end());
    REQUIRE(ratios.size() == 2);
    const double j1 = std::hypot(40 + 20 * std::cos(0.1), 20 * std::sin(0.1));
    CHECK(ratios[0] == doctest::Approx(40 / j1));
    CHECK(ratios[1] == doctest::Approx(1.2));
    // MET by hand
    const auto m_ref = missing_pt(ref), m_reco = missing_pt(reco);
    CHECK(m_ref[0] == doctest::Approx(-(40 + 20 * std::cos(0.1) + 30 * std::cos(2.5))));
    CHECK(m_reco[1] == doctest::Approx(-(36 * std::sin(2.5))));
    CHECK(r.met_ratios[0] == doctest::Approx(std::hypot(m_reco[0], m_reco[1]) / std::hypot(m_ref[0], m_ref[1])));
  }
  SUBCASE("bad input") {
    pf_evaluator ev;
    candidates short_reco = make({none}, {{{0, 0, 0}}});
    CHECK_THROWS_WITH_AS(ev.add_event(ref, short_reco), doctest::Contains("reference has 4 elements but reco has 1"),
                         hepgnn::error);
    candidates bad = ref;
    bad.cls[0] = 9;
    CHECK_THROWS_WITH_AS(ev.add_event(ref, bad), doctest::Contains("class of element 0 must be in [0, 6), got 9"),
                         hepgnn::error);
    bad = ref;
    bad.p4(1, target::pt) = std::nan("");
    CHECK_THROWS_WITH_AS(ev.add_event(ref, bad), doctest::Contains("element 1 has a non-finite momentum"),
                         hepgnn::error);
    bad = ref;
    bad.p4.resize(4, 3);
    CHECK_THROWS_WITH_AS(ev.add_event(ref, bad), doctest::Contains("p4 must be 4 x 5"), hepgnn::error);
    // an empty event is fine
    ev.add_event(candidates{{}, matrix<double>(0, target::count)}, candidates{{}, matrix<double>(0, target::count)});
    CHECK(ev.report().events == 1);
  }
}

}  // namespace hepgnn_test_pf_metrics
