// run_search: trials continue (not restart), failures are recorded, results are reproducible, several threads
// give a consistent table, a journal resumes a killed search to the same table, CSV/JSON output.
#include "support/doctest.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hepgnn/dist/search_run.hpp"

namespace hepgnn_test_search_run {

using namespace hepgnn;

// A synthetic trial: metric(config, r) = a(config) + b / r, where the state (the resource trained so far) lives
// in a map keyed by trial id, as a real model would; a job that does not start where the state is fails the test.
struct search_fake_trainer {
  std::mutex m;
  std::map<std::size_t, double> state;
  std::atomic<int> calls{0}, restarts{0};
  bool strict = true;
  double curve(const trial_config& c, double r) const {
    const double x = c.get<double>("x");
    return (x - 0.3) * (x - 0.3) + (c.get<std::string>("opt") == "adam" ? 0.0 : 0.2) + 1.0 / r;
  }
  double train(const trial_context& ctx) {
    ++calls;
    {
      std::lock_guard lk(m);
      if (ctx.from == 0) {
        if (state.count(ctx.id)) ++restarts;
        state[ctx.id] = 0;
      }
      const auto it = state.find(ctx.id);
      if (strict) REQUIRE(it != state.end());
      if (strict) REQUIRE(it->second == ctx.from);
      state[ctx.id] = ctx.to;
    }
    if (ctx.config.get<std::int64_t>("fail") == 1 && ctx.to > 1) throw std::runtime_error("diverged at r > 1");
    return curve(ctx.config, ctx.to);
  }
  search_callbacks callbacks() {
    search_callbacks cb;
    cb.train = [this](const trial_context& c) { return train(c); };
    return cb;
  }
};

search_space search_run_space() {
  search_space s;
  s.add_uniform("x", 0, 1).add_choice("opt", {"adam", "sgd"}).add_integer("fail", 0, 5);
  return s;
}

struct search_tmpdir : hepgnn_test::temp_dir {
  search_tmpdir() : temp_dir("hepgnn_search") {}
};

// The table without wall times (which differ between runs).
std::string search_table(const search_result& r) {
  std::string out;
  for (const auto& t : r.trials) {
    out += std::to_string(t.id);
    out += ' ';
    out += to_string(t.status);
    out += ' ';
    out += t.config.to_json();
    out += " [";
    out += t.error;
    out += ']';
    for (const auto& x : t.results) {
      out += ' ';
      out += search_json_number(x.resource);
      out += ':';
      out += search_json_number(x.metric);
    }
    out += '\n';
  }
  return out;
}

search_result search_run_asha(std::uint64_t seed, std::size_t workers, search_fake_trainer& f,
                              const search_options& extra = {}) {
  const search_space space = search_run_space();
  random_sampler sampler(seed);
  asha_scheduler sched({1, 27, 3, 30, 0, search_mode::minimize});
  search_options o = extra;
  o.workers = workers;
  return run_search(space, sampler, sched, f.callbacks(), o);
}

TEST_CASE("run_search ASHA: promoted trials continue, failures are recorded, the search goes on") {
  search_fake_trainer f;
  const search_result r = search_run_asha(7, 1, f);
  REQUIRE(r.trials.size() == 30);
  CHECK(f.restarts == 0);
  double units = 0;
  std::size_t failed = 0;
  for (const auto& t : r.trials) {
    CHECK(t.status != search_status::running);
    CHECK(t.status != search_status::paused);
    if (t.status == search_status::failed) {
      ++failed;
      CHECK(t.config.get<std::int64_t>("fail") == 1);
      CHECK(t.error == "diverged at r > 1");
      CHECK(t.results.size() == 1);  // its rung-1 result stays in the table
    }
    if (t.status == search_status::completed) CHECK(t.last_resource() == 27);
    if (t.status == search_status::failed) units += 3 - 1;  // the job that threw (1 -> 3) counts too
    for (std::size_t k = 0; k < t.results.size(); ++k) {
      CHECK(t.results[k].metric == f.curve(t.config, t.results[k].resource));
      if (k > 0) CHECK(t.results[k].resource > t.results[k - 1].resource);
    }
    units += t.last_resource();
  }
  CHECK(failed > 0);
  CHECK(r.count(search_status::stopped) > 0);
  CHECK(r.units_used == units);
  const auto* best = r.best();
  REQUIRE(best != nullptr);
  CHECK(best->status == search_status::completed);
  for (const auto& t : r.trials)
    if (t.status == search_status::completed) CHECK(best->last_metric() <= t.last_metric());
}

TEST_CASE("run_search: the same seed gives the same table; another seed another one") {
  search_fake_trainer f1, f2, f3;
  const std::string a = search_table(search_run_asha(11, 1, f1)), b = search_table(search_run_asha(11, 1, f2));
  CHECK(a == b);
  CHECK(a != search_table(search_run_asha(12, 1, f3)));
}

TEST_CASE("run_search: several worker threads (whatever OMP_NUM_THREADS says)") {
  // ASHA: who stops depends on arrival order, but every trial is accounted for and continues, never restarts.
  search_fake_trainer f;
  const search_result r = search_run_asha(5, 4, f);
  REQUIRE(r.trials.size() == 30);
  CHECK(f.restarts == 0);
  double units = 0;
  for (const auto& t : r.trials) {
    CHECK(t.status != search_status::running);
    units += t.last_resource() + (t.status == search_status::failed ? 3 - 1 : 0);
  }
  CHECK(r.units_used == units);
  // Hyperband with the random sampler: decisions wait for whole rungs, so the table equals the one-worker table.
  const search_space space = search_run_space();
  const auto run_hb = [&](std::size_t workers) {
    search_fake_trainer g;
    random_sampler sampler(3);
    hyperband_scheduler sched({9, 1, 3, 1, 0, search_mode::minimize});
    search_options o;
    o.workers = workers;
    const search_result res = run_search(space, sampler, sched, g.callbacks(), o);
    CHECK(g.restarts == 0);
    return res;
  };
  const search_result one = run_hb(1), three = run_hb(3);
  CHECK(one.trials.size() == 9 + 5 + 3);
  CHECK(search_table(one) == search_table(three));
  CHECK(one.units_used == three.units_used);
  CHECK(one.units_used > 0);
  CHECK(one.units_used <= (9 * 1 + 3 * 2 + 1 * 6) + (5 * 3 + 1 * 6) + 3 * 9);  // Li et al.'s plan, less failures
}

// Random proposals; records how many pending (training) trials each call saw, and that each is a trial proposed
// earlier (not the one asked for).
struct search_pending_probe : search_sampler {
  random_sampler inner{4};
  std::size_t max_pending = 0, calls = 0;
  std::vector<std::string> proposed;
  trial_config sample(const search_space& sp, std::size_t id, const std::vector<search_observation>& h) override {
    ++calls;  // run_search calls samplers under its lock
    std::size_t pending = 0;
    for (const auto& o : h) {
      if (!o.pending) continue;
      ++pending;
      CHECK(std::isnan(o.loss));
      CHECK(std::count(proposed.begin(), proposed.end(), o.config.to_json()) == 1);
    }
    max_pending = std::max(max_pending, pending);
    trial_config c = inner.sample(sp, id, h);
    proposed.push_back(c.to_json());
    return c;
  }
};

TEST_CASE("run_search: samplers see the trials being trained as pending observations (constant liar's input)") {
  const search_space space = search_run_space();
  for (const std::size_t workers : {std::size_t{1}, std::size_t{3}}) {
    INFO(workers, " workers");
    search_pending_probe probe;
    asha_scheduler sched({1, 9, 3, 12, 0, search_mode::minimize});
    search_callbacks cb;
    cb.train = [](const trial_context& c) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // long enough for the workers to overlap
      return c.config.get<double>("x") + 1.0 / c.to;
    };
    search_options o;
    o.workers = workers;
    const search_result r = run_search(space, probe, sched, cb, o);
    CHECK(r.trials.size() == 12);
    CHECK(probe.calls == 12);
    if (workers == 1) CHECK(probe.max_pending == 0);  // the only worker is the one asking
    else CHECK(probe.max_pending >= 1);
    CHECK(probe.max_pending <= workers - 1);
  }
}

TEST_CASE("run_search: a non-finite metric fails the trial; TPE and maximising mode run") {
  const search_space space = search_run_space();
  tpe_sampler sampler(2, tpe_options{5, 24, 1.0, 25});
  asha_scheduler sched({1, 9, 3, 20, 0, search_mode::maximize});
  search_callbacks cb;
  cb.train = [](const trial_context& c) {
    if (c.config.get<std::int64_t>("fail") == 2) return std::nan("");
    return -c.config.get<double>("x") * c.to;
  };
  const search_result r = run_search(space, sampler, sched, cb);
  CHECK(r.mode == search_mode::maximize);
  for (const auto& t : r.trials)
    if (t.config.get<std::int64_t>("fail") == 2) {
      CHECK(t.status == search_status::failed);
      CHECK(t.error.find("non-finite") != std::string::npos);
    }
  REQUIRE(r.best() != nullptr);
  for (const auto& t : r.trials)
    if (t.status == search_status::completed) CHECK(r.best()->last_metric() >= t.last_metric());
}

TEST_CASE("run_search: resume from a journal after a kill gives the uninterrupted table") {
  const search_tmpdir dir;
  search_fake_trainer ref;
  const search_result full = search_run_asha(21, 1, ref);
  const std::string expected = search_table(full);
  for (const bool checkpoints : {true, false}) {
    for (const std::size_t kill_after : {std::size_t{1}, std::size_t{17}, std::size_t{40}}) {
      CAPTURE(checkpoints);
      CAPTURE(kill_after);
      const std::string journal = (dir.path / ("j" + std::to_string(kill_after) + (checkpoints ? "c" : "n"))).string();
      search_options o;
      o.journal = journal;
      o.stop_after_events = kill_after;
      search_fake_trainer first;
      const search_result part = search_run_asha(21, 1, first, o);
      CHECK(part.interrupted);
      { std::ofstream(journal, std::ios::app) << "{\"event\": \"res"; }  // killed mid-line
      // The second process has no trial state; with checkpoints, load restores it from "disk" (the first
      // trainer's map stands in for the checkpoint files).
      search_fake_trainer second;
      search_callbacks cb = second.callbacks();
      std::atomic<int> loads{0};
      if (checkpoints) {
        cb.save = [](const trial_context&) {};
        cb.load = [&](std::size_t id, const trial_config&, double resource) {
          ++loads;
          std::lock_guard lk(second.m);
          second.state[id] = resource;
          return true;
        };
      }
      const search_space space = search_run_space();
      random_sampler sampler(21);
      asha_scheduler sched({1, 27, 3, 30, 0, search_mode::minimize});
      search_options o2;
      o2.journal = journal;
      const search_result resumed = run_search(space, sampler, sched, cb, o2);
      CHECK_FALSE(resumed.interrupted);
      CHECK(search_table(resumed) == expected);
      if (kill_after > 1) CHECK(resumed.units_replayed > 0);
      if (checkpoints) CHECK(resumed.units_used + resumed.units_replayed == full.units_used);
      else CHECK(resumed.units_used + resumed.units_replayed >= full.units_used);
      if (!checkpoints) CHECK(loads == 0);
      // The journal now holds the whole search: a third run replays everything and trains nothing.
      search_fake_trainer third;
      random_sampler s3(21);
      asha_scheduler sched3({1, 27, 3, 30, 0, search_mode::minimize});
      const search_result again = run_search(space, s3, sched3, third.callbacks(), o2);
      CHECK(third.calls == 0);
      CHECK(search_table(again) == expected);
    }
  }
}

TEST_CASE("run_search: Hyperband with Swift's rule and TPE resumes to the same table too") {
  const search_tmpdir dir;
  const search_space space = search_run_space();
  const auto run = [&](search_fake_trainer& f, const search_options& o) {
    tpe_sampler sampler(4, tpe_options{6, 24, 1.0, 25});
    hyperband_options ho{9, 1, 3, 3, 0, search_mode::minimize};
    ho.swift = true;
    ho.swift_min_curves = 6;
    hyperband_scheduler sched(ho);
    return run_search(space, sampler, sched, f.callbacks(), o);
  };
  search_fake_trainer ref;
  const search_result full = run(ref, search_options{});
  REQUIRE(full.trials.size() == 3 * 17);
  std::size_t half_way = 0;  // Swift stopped some trials at a rung's midpoint (0.5, 2, 6; 1.5, 6; 4.5)
  for (const auto& t : full.trials) {
    const double r = t.last_resource();
    if (t.status == search_status::stopped && (r == 0.5 || r == 1.5 || r == 2 || r == 4.5 || r == 6)) ++half_way;
  }
  CHECK(half_way > 0);
  search_options o;
  o.journal = (dir.path / "hb.journal").string();
  o.stop_after_events = 60;
  search_fake_trainer first, second;
  CHECK(run(first, o).interrupted);
  o.stop_after_events = 0;
  const search_result resumed = run(second, o);
  CHECK(search_table(resumed) == search_table(full));
}

TEST_CASE("search_result: CSV and JSON tables") {
  const search_tmpdir dir;
  search_fake_trainer f;
  const search_result r = search_run_asha(9, 1, f);
  const std::string csv = r.to_csv();
  CHECK(csv.rfind("trial,status,resource,metric,wall_seconds,x,opt,fail,error\n", 0) == 0);
  std::size_t rows = 0, results = 0;
  for (const char c : csv) rows += c == '\n';
  for (const auto& t : r.trials) results += std::max<std::size_t>(t.results.size(), 1);
  CHECK(rows == results + 1);
  CHECK(csv.find(",failed,") != std::string::npos);
  CHECK(csv.find("diverged at r > 1") != std::string::npos);
  const std::string json = r.to_json();
  CHECK(json.find("\"best_trial\": " + std::to_string(r.best()->id)) != std::string::npos);
  CHECK(json.find("\"status\": \"stopped\"") != std::string::npos);
  r.write_csv((dir.path / "t.csv").string());
  r.write_json((dir.path / "t.json").string());
  CHECK(std::filesystem::file_size(dir.path / "t.csv") == csv.size());
  CHECK(std::filesystem::file_size(dir.path / "t.json") == json.size());
  CHECK_THROWS_AS(r.write_csv((dir.path / "no" / "such" / "t.csv").string()), hepgnn::error);
}

TEST_CASE("run_search: bad input") {
  const search_space space = search_run_space();
  random_sampler sampler(1);
  asha_scheduler sched({1, 9, 3, 5, 0, search_mode::minimize});
  search_callbacks none;
  CHECK_THROWS_WITH_AS(run_search(space, sampler, sched, none), doctest::Contains("callbacks.train is empty"),
                       hepgnn::error);
  search_fake_trainer f;
  CHECK_THROWS_WITH_AS(run_search(search_space(), sampler, sched, f.callbacks()), doctest::Contains("no dimensions"),
                       hepgnn::error);
  search_options o;
  o.workers = 0;
  CHECK_THROWS_WITH_AS(run_search(space, sampler, sched, f.callbacks(), o), doctest::Contains("workers must be >= 1"),
                       hepgnn::error);
  const search_tmpdir dir;
  const std::string bad = (dir.path / "bad.journal").string();
  { std::ofstream(bad) << "{\"event\": \"trial\", \"id\": 0, \"config\": \"{\\\"x\\\": 7}\"}\n"; }
  o.workers = 1;
  o.journal = bad;
  CHECK_THROWS_AS(run_search(space, sampler, sched, f.callbacks(), o), hepgnn::error);  // x = 7 is out of range
}

}  // namespace hepgnn_test_search_run
