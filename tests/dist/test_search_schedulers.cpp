// ASHA and Hyperband promotion decisions, driven directly with scripted arrival orders (no threads), so every
// answer is exact; Hyperband's brackets against the paper's table (R = 81, eta = 3); bad settings.
#include "support/doctest.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/dist/search_predictor.hpp"
#include "hepgnn/dist/search_scheduler.hpp"

namespace hepgnn_test_search_schedulers {

using namespace hepgnn;

search_job search_take(search_scheduler& s) {
  const std::optional<search_job> j = s.next();
  REQUIRE(j.has_value());
  return *j;
}

TEST_CASE("search_quantile: linear interpolation between order statistics") {
  CHECK(search_quantile({3.0}, 0.75) == 3.0);
  CHECK(search_quantile({4.0, 1.0, 2.0, 3.0}, 0.5) == doctest::Approx(2.5));
  CHECK(search_quantile({1.0, 2.0, 3.0}, 2.0 / 3) == doctest::Approx(2 + 1.0 / 3));
  CHECK_THROWS_AS(search_quantile({}, 0.5), hepgnn::error);
}

TEST_CASE("asha: rungs at grace * eta^k below max_t (MLPF's settings: 10, 40, 160)") {
  asha_scheduler mlpf({10, 200, 4, 10, 0, search_mode::minimize});
  CHECK(mlpf.rungs() == std::vector<double>{10, 40, 160});
  asha_scheduler exact({1, 9, 3, 10, 0, search_mode::minimize});
  CHECK(exact.rungs() == std::vector<double>{1, 3});  // 9 is completion, not a rung
}

TEST_CASE("asha: trials arriving out of order are stopped against the results already at their rung") {
  // eta 2, rungs 1 and 2, completion at 4. Four trials start; results arrive in the order 2, 0, 3, 1.
  asha_scheduler s({1, 4, 2, 4, 0, search_mode::minimize});
  for (std::size_t i = 0; i < 4; ++i) {
    const search_job j = search_take(s);
    CHECK(j.trial == i);
    CHECK(j.new_trial);
    CHECK(j.from == 0);
    CHECK(j.to == 1);
  }
  CHECK_FALSE(s.next().has_value());  // all four started, none reported: nothing to do, not finished
  CHECK_FALSE(s.finished());
  CHECK(s.report(2, 1, 0.5) == search_status::running);  // the first arrival continues: nothing to compare
  CHECK(s.report(0, 1, 0.9) == search_status::stopped);  // worse than the median of {0.5}
  CHECK(s.report(3, 1, 0.2) == search_status::running);  // median of {0.5, 0.9} is 0.7
  CHECK(s.report(1, 1, 0.6) == search_status::stopped);  // median of {0.5, 0.9, 0.2} is 0.5
  const std::vector<std::pair<std::size_t, search_status>> ended{{0, search_status::stopped}, {1, search_status::stopped}};
  CHECK(s.take_ended() == ended);
  search_job a = search_take(s), b = search_take(s);  // promoted trials continue where they are, in arrival order
  CHECK(a.trial == 2);
  CHECK(b.trial == 3);
  CHECK(a.from == 1);
  CHECK(a.to == 2);
  CHECK_FALSE(a.new_trial);
  CHECK(s.report(3, 2, 0.1) == search_status::running);  // first at rung 2
  CHECK(s.report(2, 2, 0.3) == search_status::stopped);
  const search_job c = search_take(s);
  CHECK(c.trial == 3);
  CHECK(c.from == 2);
  CHECK(c.to == 4);
  CHECK(s.report(3, 4, 0.05) == search_status::completed);
  CHECK_FALSE(s.next().has_value());
  CHECK(s.finished());
  CHECK(s.units_issued() == 4 * 1 + 2 * 1 + 2);
}

TEST_CASE("asha: learning curves a + 1/r in sequence, maximising mode mirrors minimising") {
  // eta 3, rungs 1 and 3, completion at 9; one trial at a time, as with one worker.
  const std::vector<double> a{0.5, 0.3, 0.7, 0.1, 0.4};
  for (const search_mode mode : {search_mode::minimize, search_mode::maximize}) {
    asha_scheduler s({1, 9, 3, 5, 0, mode});
    const double sign = mode == search_mode::minimize ? 1 : -1;
    std::vector<search_status> final(a.size(), search_status::running);
    std::vector<int> reports(a.size(), 0);
    while (auto j = s.next()) {
      const double metric = sign * (a[j->trial] + 1.0 / j->to);
      ++reports[j->trial];
      final[j->trial] = s.report(j->trial, j->to, metric);
    }
    CHECK(s.finished());
    // Trial 2 (1.7 at r = 1) is below the 2/3 quantile of {1.5, 1.3} (1.3667); trial 4 (1.4) of
    // {1.5, 1.3, 1.7, 1.1} (1.3); trial 3 passes both rungs.
    const std::vector<search_status> expected{search_status::completed, search_status::completed,
                                              search_status::stopped, search_status::completed,
                                              search_status::stopped};
    CHECK(final == expected);
    CHECK(reports == std::vector<int>{3, 3, 1, 3, 1});
    CHECK(s.units_issued() == 9 + 9 + 1 + 9 + 1);
  }
}

TEST_CASE("asha: a failed trial frees its place; max_units stops new trials") {
  asha_scheduler s({1, 4, 2, 3, 0, search_mode::minimize});
  const search_job j0 = search_take(s);
  s.report_failure(j0.trial);
  const std::vector<std::pair<std::size_t, search_status>> ended{{0, search_status::failed}};
  CHECK(s.take_ended() == ended);
  CHECK(search_take(s).trial == 1);
  asha_scheduler budget({1, 4, 2, 100, 2.5, search_mode::minimize});
  CHECK(search_take(budget).trial == 0);
  CHECK(search_take(budget).trial == 1);
  CHECK(search_take(budget).trial == 2);  // 2 units issued < 2.5
  CHECK_FALSE(budget.next().has_value());
  for (std::size_t t = 0; t < 3; ++t) budget.report(t, 1, 1.0 + static_cast<double>(t));
  while (auto j = budget.next()) budget.report(j->trial, j->to, 0.1);
  CHECK(budget.finished());
}

TEST_CASE("hyperband: brackets for R = 81, eta = 3 match Li et al.'s table") {
  hyperband_scheduler s({81, 1, 3, 1, 0, search_mode::minimize});
  const auto& p = s.plans();
  REQUIRE(p.size() == 5);
  CHECK(p[0].s == 4);
  CHECK(p[0].n == std::vector<std::size_t>{81, 27, 9, 3, 1});
  CHECK(p[0].r == std::vector<double>{1, 3, 9, 27, 81});
  CHECK(p[1].n == std::vector<std::size_t>{34, 11, 3, 1});
  CHECK(p[1].r == std::vector<double>{3, 9, 27, 81});
  CHECK(p[2].n == std::vector<std::size_t>{15, 5, 1});
  CHECK(p[2].r == std::vector<double>{9, 27, 81});
  CHECK(p[3].n == std::vector<std::size_t>{8, 2});
  CHECK(p[3].r == std::vector<double>{27, 81});
  CHECK(p[4].n == std::vector<std::size_t>{5});
  CHECK(p[4].r == std::vector<double>{81});
  hyperband_scheduler two({8, 1, 2, 2, 0, search_mode::minimize});  // eta 2, R 8, repeated twice
  REQUIRE(two.plans().size() == 8);
  CHECK(two.plans()[0].n == std::vector<std::size_t>{8, 4, 2, 1});
  CHECK(two.plans()[1].n == std::vector<std::size_t>{6, 3, 1});
  CHECK(two.plans()[2].n == std::vector<std::size_t>{4, 2});
  CHECK(two.plans()[3].n == std::vector<std::size_t>{4});
  CHECK(two.plans()[4].n == two.plans()[0].n);
}

TEST_CASE("hyperband: a rung keeps its top 1/eta whatever order results arrive in; promoted trials continue") {
  // max_t 9, eta 3: bracket s = 2 runs 9 trials at r = 1, keeps 3 at r = 3, then 1 at r = 9.
  const std::vector<double> metric{0.8, 0.3, 0.9, 0.1, 0.5, 0.3, 0.7, 0.6, 0.2};  // trials 1 and 5 tie
  const std::vector<std::size_t> forward{0, 1, 2, 3, 4, 5, 6, 7, 8}, scrambled{7, 3, 0, 8, 5, 2, 1, 6, 4};
  for (const auto& order : {forward, scrambled}) {
    hyperband_scheduler s({9, 1, 3, 1, 0, search_mode::minimize});
    for (std::size_t i = 0; i < 9; ++i) {
      const search_job j = search_take(s);
      CHECK(j.trial == i);
      CHECK(j.to == 1);
    }
    for (std::size_t k = 0; k < 9; ++k) CHECK(s.report(order[k], 1, metric[order[k]]) == search_status::paused);
    std::vector<std::size_t> stopped;
    for (const auto& [t, st] : s.take_ended()) {
      CHECK(st == search_status::stopped);
      stopped.push_back(t);
    }
    std::sort(stopped.begin(), stopped.end());
    CHECK(stopped == std::vector<std::size_t>{0, 2, 4, 5, 6, 7});  // the tie at 0.3 goes to the lower id
    std::vector<std::size_t> promoted;
    for (int k = 0; k < 3; ++k) {
      const search_job j = search_take(s);
      CHECK(j.from == 1);
      CHECK(j.to == 3);
      CHECK_FALSE(j.new_trial);
      promoted.push_back(j.trial);
    }
    CHECK(promoted == std::vector<std::size_t>{3, 8, 1});  // best first
    CHECK(s.report(1, 3, 0.05) == search_status::paused);
    CHECK(s.report(8, 3, 0.25) == search_status::paused);
    CHECK(s.report(3, 3, 0.15) == search_status::paused);
    const search_job last = search_take(s);
    CHECK(last.trial == 1);
    CHECK(last.to == 9);
    CHECK(s.report(1, 9, 0.01) == search_status::completed);
    // Next bracket (s = 1): 5 new trials at r = 3.
    const search_job n = search_take(s);
    CHECK(n.trial == 9);
    CHECK(n.new_trial);
    CHECK(n.to == 3);
  }
}

TEST_CASE("hyperband: an idle worker starts the next bracket while a rung waits") {
  hyperband_scheduler s({9, 1, 3, 1, 0, search_mode::minimize});
  for (int i = 0; i < 9; ++i) search_take(s);
  const search_job j = search_take(s);  // bracket s = 2 waits for 9 results: bracket s = 1 starts
  CHECK(j.trial == 9);
  CHECK(j.to == 3);
  for (int i = 0; i < 4; ++i) search_take(s);
  const search_job k = search_take(s);  // bracket s = 0: 3 trials at r = 9
  CHECK(k.trial == 14);
  CHECK(k.to == 9);
  search_take(s);
  search_take(s);
  CHECK_FALSE(s.next().has_value());  // every bracket started, all waiting
  CHECK_FALSE(s.finished());
  for (std::size_t t = 0; t < 17; ++t) s.report(t, t < 9 ? 1 : t < 14 ? 3 : 9, static_cast<double>(t));
  std::size_t jobs = 0;
  while (auto n = s.next()) {
    ++jobs;
    s.report(n->trial, n->to, 1.0);
  }
  CHECK(jobs == 3 + 1 + 1);  // bracket 2: 3 then 1; bracket 1: 1
  CHECK(s.finished());
}

TEST_CASE("curve_predictor: kernel ridge regression learns a smooth map from partial curves") {
  rng g(4);
  curve_predictor p(15);
  const auto truth = [](double a, double b) { return 0.8 * a + 0.3 * b * b; };
  for (int i = 0; i < 40; ++i) {
    const double a = g.uniform(), b = g.uniform();
    CHECK(p.ready() == (i >= 15));
    p.add({a, b}, truth(a, b));
  }
  double worst = 0;
  for (int i = 0; i < 50; ++i) {
    const double a = 0.1 + 0.8 * g.uniform(), b = 0.1 + 0.8 * g.uniform();
    worst = std::max(worst, std::abs(p.predict({a, b}) - truth(a, b)));
  }
  CHECK(worst < 0.05);  // the targets span about 1.1
  curve_predictor q(15);
  CHECK_THROWS_WITH_AS(q.predict({1.0}), doctest::Contains("needs 15 fully trained curves, has 0"), hepgnn::error);
  q.add({1.0, 2.0}, 3.0);
  CHECK_THROWS_WITH_AS(q.add({1.0}, 3.0), doctest::Contains("curves must have 2 points, got 1"), hepgnn::error);
}

// Swift-Hyperband on curves a + 1/r (max_t 4, eta 4: bracket s = 1 runs 4 trials to 1 then one to 4; bracket
// s = 0 runs 2 trials to 4), each rung first trained to its midpoint.
struct search_swift_run {
  std::vector<search_status> status;
  std::vector<double> reached, a;
  double units = 0;
};
search_swift_run search_run_swift(bool swift, std::size_t iterations) {
  hyperband_options o{4, 1, 4, iterations, 0, search_mode::minimize};
  o.swift = swift;
  hyperband_scheduler s(o);
  search_swift_run out;
  rng g(8);
  while (auto j = s.next()) {
    if (j->new_trial) {
      out.a.push_back(g.uniform());
      out.status.push_back(search_status::running);
      out.reached.push_back(0);
    }
    out.reached[j->trial] = j->to;
    out.status[j->trial] = s.report(j->trial, j->to, out.a[j->trial] + 1.0 / j->to);
    for (const auto& [t, st] : s.take_ended()) out.status[t] = st;
  }
  CHECK(s.finished());
  out.units = s.units_issued();
  return out;
}

TEST_CASE("hyperband swift: once the predictor has 15 curves, only the predicted best complete a rung") {
  const search_swift_run plain = search_run_swift(false, 12), swift = search_run_swift(true, 12);
  REQUIRE(swift.status.size() == 12 * 6);
  REQUIRE(plain.status.size() == swift.status.size());
  CHECK(swift.units < plain.units);
  // Bracket s = 0 (trials 4, 5 of each iteration of 6): rung 0 -> 4 has the midpoint 2. Its predictor learns from
  // the trials that complete, two per iteration until it has 15 curves (iteration 8), then one of the two stops
  // at 2: the one with the worse (larger) a, since the final metric a + 1/4 is monotone in the midpoint a + 1/2.
  int stopped_half = 0;
  for (std::size_t it = 0; it < 12; ++it) {
    const std::size_t t = 6 * it + 4, u = t + 1;
    CAPTURE(it);
    CHECK(plain.status[t] == search_status::completed);
    if (it < 8) {
      CHECK(swift.status[t] == search_status::completed);
      CHECK(swift.status[u] == search_status::completed);
    } else {
      const std::size_t worse = swift.a[t] > swift.a[u] ? t : u, better = worse == t ? u : t;
      CHECK(swift.status[better] == search_status::completed);
      CHECK(swift.status[worse] == search_status::stopped);
      CHECK(swift.reached[worse] == 2);
      ++stopped_half;
    }
  }
  CHECK(stopped_half == 4);
  // Bracket s = 1's first rung (0 -> 1, midpoint 0.5) gets 4 curves per iteration: ready after 4 iterations;
  // from then on one trial of the four completes it (the 25 % quantile of 4 keeps 1, the one promoted).
  for (std::size_t it = 4; it < 12; ++it) {
    int reached_one = 0;
    for (std::size_t k = 0; k < 4; ++k) reached_one += swift.reached[6 * it + k] >= 1;
    CHECK(reached_one == 1);
  }
}

TEST_CASE("schedulers: bad settings are refused naming the argument") {
  CHECK_THROWS_WITH_AS(asha_scheduler({1, 10, 1.5, 10, 0, search_mode::minimize}),
                       doctest::Contains("eta must be >= 2"), hepgnn::error);
  CHECK_THROWS_WITH_AS(asha_scheduler({20, 10, 3, 10, 0, search_mode::minimize}),
                       doctest::Contains("max_t must be >= grace"), hepgnn::error);
  CHECK_THROWS_WITH_AS(asha_scheduler({0, 10, 3, 10, 0, search_mode::minimize}),
                       doctest::Contains("grace must be > 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(asha_scheduler({1, 10, 3, 0, 0, search_mode::minimize}),
                       doctest::Contains("num_trials must be >= 1"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hyperband_scheduler({81, 1, 1, 1, 0, search_mode::minimize}),
                       doctest::Contains("eta must be >= 2"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hyperband_scheduler({1, 3, 3, 1, 0, search_mode::minimize}),
                       doctest::Contains("max_t must be >= min_t"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hyperband_scheduler({81, 1, 3, 0, 0, search_mode::minimize}),
                       doctest::Contains("iterations must be >= 1"), hepgnn::error);
  asha_scheduler s({1, 4, 2, 2, 0, search_mode::minimize});
  CHECK_THROWS_WITH_AS(s.report(0, 1, 0.5), doctest::Contains("no job is running"), hepgnn::error);
  search_take(s);
  CHECK_THROWS_WITH_AS(s.report(0, 1.5, 0.5), doctest::Contains("is not a rung"), hepgnn::error);
}

}  // namespace hepgnn_test_search_schedulers
