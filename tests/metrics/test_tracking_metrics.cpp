// Tracking metrics on hand-made events with known answers, and on the real event with perfect labels.
#include "support/doctest.hpp"

#include <unordered_map>

#include "hepgnn/metrics/tracking.hpp"
#include "support/data.hpp"

namespace hepgnn_test_tracking_metrics {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

/// 25 hits on the x axis (true position = 10 * index): particles A (hits 0-3, pT 2), B (4-6, pT 0.5),
/// C (7-8, pT 5), D (10-15, pT 1.5), F (20-21, pT 1), E (22-24, pT 3); noise 9, 16-19. Weight 1 per non-noise hit.
trackml::event hand_event() {
  trackml::event ev;
  ev.resize(25, true);
  const std::int64_t A = 1, B = 2, C = 3, D = 4, E = 5, F = 6;
  const std::int64_t pid[25] = {A, A, A, A, B, B, B, C, C, 0, D, D, D, D, D, D, 0, 0, 0, 0, F, F, E, E, E};
  for (int i = 0; i < 25; ++i) {
    ev.hit_id[i] = 100 + i;
    ev.x[i] = ev.tx[i] = 10.0 * (i + 1);
    ev.particle_id[i] = pid[i];
    ev.weight[i] = pid[i] ? 1.0 : 0.0;
  }
  auto add = [&](std::int64_t id, double pt) { ev.particles.push_back({id, 211, 0, 0, 0, pt, 0, 0, 1, 0}); };
  add(A, 2), add(B, 0.5), add(C, 5), add(D, 1.5), add(E, 3), add(F, 1);
  return ev;
}

std::vector<index_t> hand_labels() {
  std::vector<index_t> l(25, -1);
  for (int i : {0, 1, 2}) l[i] = 0;        // A 3/4: matched
  for (int i : {4, 5, 9}) l[i] = 1;        // B 2/3 of the track, 2/3 of B: matched
  for (int i : {6, 7, 8}) l[i] = 2;        // C 2/3 of the track, all of C: matched
  for (int i : {10, 11, 12, 13}) l[i] = 3; // D 4/6: matched
  for (int i : {14, 15, 16}) l[i] = 4;     // majority D, but D is matched by track 3: duplicate
  for (int i : {17, 18, 19}) l[i] = 5;     // noise: fake
  for (int i : {20, 21}) l[i] = 6;         // F: matched but below min_track_hits
  return l;                                // E (22-24) unassigned
}

}  // namespace

TEST_CASE("tracking metrics: truth graph joins consecutive hits of each particle") {
  const auto ev = hand_event();
  const auto t = tracking::truth_edges(ev);
  CHECK(t.size() == 3 + 2 + 1 + 5 + 1 + 2);
  CHECK(t.src[0] == 0);
  CHECK(t.dst[0] == 1);
  for (std::size_t e = 0; e < t.size(); ++e) {
    CHECK(ev.particle_id[t.src[e]] == ev.particle_id[t.dst[e]]);
    CHECK(t.dst[e] == t.src[e] + 1);  // ordered by distance from the vertex
  }
}

TEST_CASE("tracking metrics: edge efficiency and purity") {
  const auto ev = hand_event();
  const auto truth = tracking::truth_edges(ev);
  const std::vector<index_t> src{0, 2, 0, 3, 9}, dst{1, 1, 3, 4, 16};
  const auto m = tracking::evaluate_edges(ev, src, dst, truth);
  CHECK(m.found == 2);  // 0-1 and 1-2 (reversed)
  CHECK(m.efficiency == doctest::Approx(2.0 / 14));
  CHECK(m.same_particle == 3);
  CHECK(m.purity == doctest::Approx(0.6));
  // the same through a graph, with a score cut dropping the 0 -> 3 edge
  const auto g = graph::from_edges(25, src, dst);
  std::vector<float> scores(g.sources.size(), 1.0f);
  const auto dsts = g.destinations();
  for (std::size_t e = 0; e < scores.size(); ++e)
    if (g.sources[e] == 0 && dsts[e] == 3) scores[e] = 0.1f;
  const auto mg = tracking::evaluate_edges<float>(ev, g, truth, scores, 0.5f);
  CHECK(mg.candidates == 4);
  CHECK(mg.same_particle == 2);
  CHECK(mg.found == 2);
  CHECK_THROWS_WITH_AS(tracking::evaluate_edges(ev, std::vector<index_t>{0}, std::vector<index_t>{25}, truth),
                       doctest::Contains("dst[0] = 25 is not a hit index in [0, 25)"), hepgnn::error);
}

TEST_CASE("tracking metrics: two-way matching, fakes, duplicates and binned efficiency") {
  const auto ev = hand_event();
  const auto labels = hand_labels();
  const auto m = tracking::evaluate_tracks(ev, labels);
  CHECK(m.reconstructable == 3);  // A, D, E (B: pT 0.5; C and F: 2 hits)
  CHECK(m.matched == 2);
  CHECK(m.efficiency == doctest::Approx(2.0 / 3));
  CHECK(m.tracks == 6);
  CHECK(m.fakes == 1);
  CHECK(m.duplicates == 1);
  CHECK(m.fake_rate == doctest::Approx(1.0 / 6));
  CHECK(m.duplicate_rate == doctest::Approx(1.0 / 6));
  tracking::track_selection loose;
  loose.pt_min = 0;
  loose.min_hits = 1;
  CHECK(tracking::evaluate_tracks(ev, labels, loose).efficiency == doctest::Approx(4.0 / 6));  // F's track is too short
  loose.min_track_hits = 2;
  CHECK(tracking::evaluate_tracks(ev, labels, loose).efficiency == doctest::Approx(5.0 / 6));  // all but E
  const std::vector<double> edges{1, 2.5, 10};
  const auto bins = tracking::efficiency_binned(m, edges, false);
  REQUIRE(bins.size() == 2);
  CHECK(bins[0].reconstructable == 2);  // A (2), D (1.5)
  CHECK(bins[0].efficiency() == 1.0);
  CHECK(bins[1].reconstructable == 1);  // E (3)
  CHECK(bins[1].efficiency() == 0.0);
}

TEST_CASE("tracking metrics: TrackML score") {
  const auto ev = hand_event();
  // matched tracks of any size: A 3, B 2, C 2, D 4, F 2 of 20 weighted hits
  CHECK(tracking::trackml_score(ev, hand_labels()) == doctest::Approx(13.0 / 20));
  std::vector<index_t> perfect(25);
  for (int i = 0; i < 25; ++i) perfect[i] = static_cast<index_t>(ev.particle_id[i]);
  CHECK(tracking::trackml_score(ev, perfect) == doctest::Approx(1.0));
  std::vector<index_t> none(25, -1);
  CHECK(tracking::trackml_score(ev, none) == 0.0);
  auto no_weights = ev;
  no_weights.weight.clear();
  CHECK_THROWS_WITH_AS(tracking::trackml_score(no_weights, perfect), doctest::Contains("no truth weights"),
                       hepgnn::error);
}

TEST_CASE("tracking metrics: perfect labels on the real event") {
  if (!have_zlib()) return;
  const auto ev = trackml::read_event(hepgnn_test::source_path("tests/data/trackml/event000000001"));
  std::unordered_map<std::int64_t, index_t> id;
  std::vector<index_t> labels(ev.num_hits(), -1);
  for (std::size_t i = 0; i < ev.num_hits(); ++i)
    if (ev.particle_id[i] != 0) labels[i] = id.emplace(ev.particle_id[i], static_cast<index_t>(id.size())).first->second;
  const auto m = tracking::evaluate_tracks(ev, labels);
  CHECK(m.efficiency == 1.0);
  CHECK(m.fake_rate == 0.0);
  CHECK(m.reconstructable > 50);
  CHECK(tracking::trackml_score(ev, labels) == doctest::Approx(1.0));
  const auto truth = tracking::truth_edges(ev);
  CHECK(tracking::evaluate_edges(ev, truth.src, truth.dst, truth).efficiency == 1.0);
}

TEST_CASE("tracking metrics: bad input") {
  const auto ev = hand_event();
  CHECK_THROWS_WITH_AS(tracking::evaluate_tracks(ev, std::vector<index_t>(3, 0)),
                       doctest::Contains("labels must have one entry per hit (25), got 3"), hepgnn::error);
  auto bad = hand_labels();
  bad[4] = -7;
  CHECK_THROWS_WITH_AS(tracking::evaluate_tracks(ev, bad), doctest::Contains("labels[4] = -7"), hepgnn::error);
  trackml::event empty;
  const auto m = tracking::evaluate_tracks(empty, std::vector<index_t>{});
  CHECK(m.tracks == 0);
  CHECK(m.efficiency == 0.0);
  trackml::event no_truth = ev;
  no_truth.particle_id.clear();
  CHECK_THROWS_WITH_AS(tracking::truth_edges(no_truth), doctest::Contains("the event has no truth"), hepgnn::error);
  const std::vector<double> edges{1, 1};
  CHECK_THROWS_WITH_AS(tracking::efficiency_binned(m, edges, false), doctest::Contains("edges must ascend"),
                       hepgnn::error);
}

}  // namespace hepgnn_test_tracking_metrics
