#pragma once
/// @file search_scheduler.hpp
/// @brief Trial schedulers as state machines: they hand out jobs ("train trial t from resource a to b") and
/// take results. hepgnn::asha_scheduler (asynchronous successive halving, stopping rule as in Ray Tune's
/// AsyncHyperBandScheduler) and hepgnn::hyperband_scheduler (Li et al. 2018, synchronous per rung within a
/// bracket). run_search (search_run.hpp) drives them from threads; tests drive them directly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/search_predictor.hpp"

namespace hepgnn {

/// @brief Whether lower (loss) or higher (accuracy) metrics are better.
enum class search_mode { minimize, maximize };

/// @brief A trial's state.
enum class search_status { running, paused, stopped, completed, failed };

inline const char* to_string(search_status s) {
  switch (s) {
    case search_status::running: return "running";
    case search_status::paused: return "paused";
    case search_status::stopped: return "stopped";
    case search_status::completed: return "completed";
    case search_status::failed: return "failed";
  }
  return "?";
}

/// @brief One unit of work: bring trial `trial` from resource `from` to `to`. `new_trial`: the trial is created
/// by this job (its configuration must be sampled first).
struct search_job {
  std::size_t trial = 0;
  double from = 0, to = 0;
  bool new_trial = false;
};

/// @brief The interface run_search drives. Trials are numbered 0, 1, ... in the order their first job is issued.
class search_scheduler {
 public:
  virtual ~search_scheduler() = default;
  /// @brief The next job, or nothing: then either finished() or a running job must report first.
  virtual std::optional<search_job> next() = 0;
  /// @brief Trial `trial` reached `resource` (the `to` of its job) with `metric`; returns its new status.
  virtual search_status report(std::size_t trial, double resource, double metric) = 0;
  /// @brief Trial `trial`'s job failed: the trial is dropped.
  virtual void report_failure(std::size_t trial) = 0;
  /// @brief No job left and none running.
  virtual bool finished() const = 0;
  /// @brief Trials that stopped, completed or failed since the last call, with that status (a Hyperband rung
  /// stops the trials it does not promote when its last result arrives, not when theirs did).
  std::vector<std::pair<std::size_t, search_status>> take_ended() { return std::exchange(ended_, {}); }
  virtual search_mode mode() const = 0;
  /// @brief Resource handed out in jobs so far (sum of to - from).
  double units_issued() const { return issued_; }

 protected:
  /// Larger is better whatever the mode.
  double reward(double metric) const { return mode() == search_mode::maximize ? metric : -metric; }
  search_job issue(search_job j) {
    issued_ += j.to - j.from;
    ++running_;
    return j;
  }
  std::vector<std::pair<std::size_t, search_status>> ended_;
  double issued_ = 0;
  std::size_t running_ = 0;
};

/// @brief The q-quantile of `v` with linear interpolation between order statistics (numpy's default).
inline double search_quantile(std::vector<double> v, double q) {
  HEPGNN_CHECK(!v.empty(), "search_quantile: no values");
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// @brief ASHA settings. MLPF's search used max_t 200, eta 4, grace 10 (rungs at 10, 40, 160).
struct asha_options {
  double grace = 1;             ///< resource of the first rung
  double max_t = 81;            ///< resource at which a trial is complete
  double eta = 3;               ///< reduction factor: rungs at grace * eta^k; the top 1/eta continue
  std::size_t num_trials = 20;  ///< configurations to try
  double max_units = 0;         ///< no new trial once this much resource is handed out (0: no limit)
  search_mode mode = search_mode::minimize;
};

/// @brief Asynchronous successive halving in its stopping form (Li et al. 2020; Ray Tune's ASHAScheduler): a new
/// trial runs to the first rung; whenever a trial reaches a rung it is compared with the results already recorded
/// there: it stops if its reward is strictly below their (1 - 1/eta) quantile (linear interpolation), else it
/// continues to the next rung; its result is recorded either way. The first arrival at a rung always continues
/// (nothing to compare with). No trial waits for another. Rungs: grace * eta^k below max_t; then max_t completes.
/// Continuing trials are served before new ones.
class asha_scheduler : public search_scheduler {
 public:
  explicit asha_scheduler(asha_options o) : o_(o) {
    HEPGNN_CHECK(o_.eta >= 2, "asha_scheduler: eta must be >= 2, got ", o_.eta);
    HEPGNN_CHECK(o_.grace > 0 && std::isfinite(o_.grace), "asha_scheduler: grace must be > 0, got ", o_.grace);
    HEPGNN_CHECK(std::isfinite(o_.max_t) && o_.max_t >= o_.grace, "asha_scheduler: max_t must be >= grace (",
                 o_.grace, "), got ", o_.max_t);
    HEPGNN_CHECK(o_.num_trials >= 1, "asha_scheduler: num_trials must be >= 1, got ", o_.num_trials);
    HEPGNN_CHECK(o_.max_units >= 0, "asha_scheduler: max_units must be >= 0, got ", o_.max_units);
    for (double r = o_.grace; r < o_.max_t * (1 - 1e-12); r *= o_.eta) rungs_.push_back(r);
    recorded_.resize(rungs_.size());
  }
  /// @brief The rung resources (the last stop before max_t included; max_t itself is completion).
  const std::vector<double>& rungs() const { return rungs_; }
  /// @brief The rewards recorded at rung k (larger is better), in arrival order.
  const std::vector<double>& recorded(std::size_t k) const { return recorded_.at(k); }
  search_mode mode() const override { return o_.mode; }

  std::optional<search_job> next() override {
    if (!queue_.empty()) {
      const search_job j = queue_.front();
      queue_.pop_front();
      return issue(j);
    }
    if (started_ < o_.num_trials && (o_.max_units <= 0 || issued_ < o_.max_units)) {
      const double first = rungs_.empty() ? o_.max_t : rungs_.front();
      return issue({started_++, 0, first, true});
    }
    return std::nullopt;
  }
  search_status report(std::size_t trial, double resource, double metric) override {
    HEPGNN_CHECK(running_ > 0, "asha_scheduler::report: no job is running");
    --running_;
    if (resource >= o_.max_t * (1 - 1e-12)) return end(trial, search_status::completed);
    const std::size_t k = rung_of(resource);
    const double r = reward(metric);
    bool stop = false;
    if (!recorded_[k].empty()) stop = r < search_quantile(recorded_[k], 1 - 1 / o_.eta);
    recorded_[k].push_back(r);
    if (stop) return end(trial, search_status::stopped);
    queue_.push_back({trial, resource, k + 1 < rungs_.size() ? rungs_[k + 1] : o_.max_t, false});
    return search_status::running;
  }
  void report_failure(std::size_t trial) override {
    HEPGNN_CHECK(running_ > 0, "asha_scheduler::report_failure: no job is running");
    --running_;
    end(trial, search_status::failed);
  }
  bool finished() const override {
    return running_ == 0 && queue_.empty() &&
           (started_ >= o_.num_trials || (o_.max_units > 0 && issued_ >= o_.max_units));
  }

 private:
  std::size_t rung_of(double resource) const {
    for (std::size_t k = 0; k < rungs_.size(); ++k)
      if (std::abs(resource - rungs_[k]) <= 1e-9 * rungs_[k]) return k;
    fail("asha_scheduler::report: resource ", resource, " is not a rung");
  }
  search_status end(std::size_t trial, search_status s) {
    ended_.emplace_back(trial, s);
    return s;
  }
  asha_options o_;
  std::vector<double> rungs_;
  std::vector<std::vector<double>> recorded_;
  std::deque<search_job> queue_;
  std::size_t started_ = 0;
};

/// @brief Hyperband settings (Li et al. 2018): resource runs from min_t to max_t = R * min_t.
struct hyperband_options {
  double max_t = 81;            ///< R: the most resource one configuration gets
  double min_t = 1;             ///< the least (the first rung of the most aggressive bracket)
  double eta = 3;               ///< reduction factor
  std::size_t iterations = 1;   ///< how many times all brackets are run
  double max_units = 0;         ///< no new bracket once this much resource is handed out (0: no limit)
  search_mode mode = search_mode::minimize;
  bool swift = false;                 ///< Swift-Hyperband's predictor rule (see hyperband_scheduler)
  std::size_t swift_min_curves = 15;  ///< fully trained curves a rung's predictor needs before it decides
  double swift_quantile = 0.25;       ///< complete those predicted at or below this quantile of the predictions
};

/// @brief One bracket's plan: n configurations at resource r, then floor(n_i / eta) kept per rung.
struct hyperband_bracket_plan {
  std::size_t s = 0;
  std::vector<std::size_t> n;  ///< configurations per rung
  std::vector<double> r;       ///< resource per configuration per rung
};

/// @brief Hyperband: s_max = floor(log_eta(max_t / min_t)); bracket s = s_max..0 starts
/// n = ceil((s_max + 1) / (s + 1) * eta^s) configurations at r = max_t * eta^-s; rung i trains n_i at
/// r_i = r * eta^i and keeps the best floor(n_i / eta) (ties: lower trial id). Within a bracket a rung waits for
/// all its results (synchronous); when the open brackets have no job ready, the next bracket starts, so idle
/// workers run it (with one worker, brackets run strictly one after another). Promoted trials continue from r_i.
///
/// swift = true adds Swift-Hyperband's predictor rule: each rung's configurations first train half way (from the
/// previous rung's resource to the midpoint); a curve_predictor (kernel ridge regression, see
/// search_predictor.hpp) maps the trial's curve so far (all its reported metrics) to its metric at the end of the
/// rung, trained on the trials that did complete that rung in the same kind of bracket; once it has
/// swift_min_curves of them, only the configurations predicted at or below the swift_quantile quantile of the
/// rung's predictions (and at least as many as the rung then promotes, best predicted first) complete the rung;
/// the others stop half way. Before that, every configuration completes (and feeds the predictor).
class hyperband_scheduler : public search_scheduler {
 public:
  explicit hyperband_scheduler(hyperband_options o) : o_(o) {
    HEPGNN_CHECK(o_.eta >= 2, "hyperband_scheduler: eta must be >= 2, got ", o_.eta);
    HEPGNN_CHECK(o_.min_t > 0 && std::isfinite(o_.min_t), "hyperband_scheduler: min_t must be > 0, got ", o_.min_t);
    HEPGNN_CHECK(std::isfinite(o_.max_t) && o_.max_t >= o_.min_t, "hyperband_scheduler: max_t must be >= min_t (",
                 o_.min_t, "), got ", o_.max_t);
    HEPGNN_CHECK(o_.iterations >= 1, "hyperband_scheduler: iterations must be >= 1, got ", o_.iterations);
    HEPGNN_CHECK(o_.max_units >= 0, "hyperband_scheduler: max_units must be >= 0, got ", o_.max_units);
    HEPGNN_CHECK(o_.swift_quantile > 0 && o_.swift_quantile <= 1,
                 "hyperband_scheduler: swift_quantile must be in (0, 1], got ", o_.swift_quantile);
    HEPGNN_CHECK(o_.swift_min_curves >= 2, "hyperband_scheduler: swift_min_curves must be >= 2, got ",
                 o_.swift_min_curves);
    const auto s_max = static_cast<std::size_t>(std::floor(std::log(o_.max_t / o_.min_t) / std::log(o_.eta) + 1e-9));
    for (std::size_t it = 0; it < o_.iterations; ++it)
      for (std::size_t s = s_max + 1; s-- > 0;) plans_.push_back(plan(s, s_max));
  }
  /// @brief The plan of every bracket, in the order they run.
  const std::vector<hyperband_bracket_plan>& plans() const { return plans_; }
  search_mode mode() const override { return o_.mode; }

  std::optional<search_job> next() override {
    for (auto& b : open_)
      if (!b.ready.empty()) {
        const search_job j = b.ready.front();
        b.ready.pop_front();
        return issue(j);
      }
    if (next_plan_ < plans_.size() && (o_.max_units <= 0 || issued_ < o_.max_units)) {
      bracket b;
      b.plan = next_plan_++;
      std::vector<std::size_t> ids;
      for (std::size_t i = 0; i < plans_[b.plan].n[0]; ++i) {
        ids.push_back(trials_++);
        owner_.push_back(open_.size() + closed_);
        curves_.emplace_back();
      }
      start_rung(b, ids, true);
      open_.push_back(std::move(b));
      return next();
    }
    return std::nullopt;
  }
  search_status report(std::size_t trial, double resource, double metric) override {
    bracket& b = bracket_of(trial, "report");
    --running_;
    const auto& p = plans_[b.plan];
    curves_[trial].push_back({resource, metric});
    if (b.half) {
      b.results.push_back({0.0, trial});
      if (--b.waiting == 0) select(b);
      return search_status::paused;
    }
    if (o_.swift && curves_[trial].size() >= 2) {  // a completed rung teaches the predictor of its midpoint
      const auto& c = curves_[trial];
      predictors_.try_emplace(key(c, c.size() - 1), o_.swift_min_curves).first->second.add(features(c, c.size() - 1), metric);
    }
    if (b.rung + 1 >= p.n.size()) {
      --b.waiting;
      ended_.emplace_back(trial, search_status::completed);
      close_if_done();
      return search_status::completed;
    }
    b.results.push_back({reward(metric), trial});
    --b.waiting;
    if (b.waiting == 0) promote(b);
    close_if_done();
    return search_status::paused;
  }
  void report_failure(std::size_t trial) override {
    bracket& b = bracket_of(trial, "report_failure");
    --running_;
    --b.waiting;
    ended_.emplace_back(trial, search_status::failed);
    if (b.waiting == 0 && b.half) select(b);
    else if (b.waiting == 0 && b.rung + 1 < plans_[b.plan].n.size()) promote(b);
    close_if_done();
  }
  bool finished() const override {
    return running_ == 0 && open_.empty() &&
           (next_plan_ >= plans_.size() || (o_.max_units > 0 && issued_ >= o_.max_units));
  }

 private:
  hyperband_bracket_plan plan(std::size_t s, std::size_t s_max) const {
    hyperband_bracket_plan p;
    p.s = s;
    const double eta_s = std::pow(o_.eta, static_cast<double>(s));
    auto n = static_cast<std::size_t>(std::ceil(static_cast<double>(s_max + 1) / static_cast<double>(s + 1) * eta_s - 1e-9));
    double r = o_.max_t / eta_s;
    for (std::size_t i = 0; i <= s && n > 0; ++i) {
      p.n.push_back(n);
      p.r.push_back(i == s ? o_.max_t : r);  // the last rung is max_t exactly (no rounding drift)
      n = static_cast<std::size_t>(std::floor(static_cast<double>(n) / o_.eta + 1e-9));
      r *= o_.eta;
    }
    return p;
  }
  struct bracket {
    std::size_t plan = 0, rung = 0, waiting = 0;
    bool half = false;  // swift: the current stage trains to the rung's midpoint
    std::deque<search_job> ready;
    std::vector<std::pair<double, std::size_t>> results;  // (reward, trial) of the current rung
  };
  bracket& bracket_of(std::size_t trial, const char* what) {
    HEPGNN_CHECK(trial < owner_.size() && running_ > 0, "hyperband_scheduler::", what, ": trial ", trial,
                 " has no running job");
    const std::size_t k = owner_[trial];
    HEPGNN_CHECK(k >= closed_ && k - closed_ < open_.size(), "hyperband_scheduler::", what, ": trial ", trial,
                 "'s bracket is closed");
    return open_[k - closed_];
  }
  void promote(bracket& b) {
    const auto& p = plans_[b.plan];
    std::stable_sort(b.results.begin(), b.results.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    const std::size_t keep = std::min(p.n[b.rung + 1], b.results.size());
    std::vector<std::size_t> ids;
    for (std::size_t i = 0; i < b.results.size(); ++i)
      if (i < keep) ids.push_back(b.results[i].second);
      else ended_.emplace_back(b.results[i].second, search_status::stopped);
    ++b.rung;
    b.results.clear();
    start_rung(b, ids, false);
  }
  /// Jobs for rung b.rung: to its resource, or (swift) to its midpoint first.
  void start_rung(bracket& b, const std::vector<std::size_t>& ids, bool fresh) {
    const auto& p = plans_[b.plan];
    const double from = b.rung == 0 ? 0.0 : p.r[b.rung - 1], to = p.r[b.rung];
    b.half = o_.swift;
    for (const std::size_t id : ids) b.ready.push_back({id, from, o_.swift ? from + 0.5 * (to - from) : to, fresh});
    b.waiting = ids.size();
  }
  /// Swift: every midpoint result of the rung is in; choose who completes the rung.
  void select(bracket& b) {
    const auto& p = plans_[b.plan];
    std::vector<std::pair<double, std::size_t>> pred;  // (predicted loss-like value, trial)
    for (const auto& [unused, t] : b.results) {
      const auto& c = curves_[t];
      const auto it = predictors_.find(key(c, c.size()));
      if (it == predictors_.end() || !it->second.ready()) {
        pred.clear();
        break;
      }
      pred.push_back({-reward(it->second.predict(features(c, c.size()))), t});
    }
    std::vector<std::size_t> keep;
    if (pred.empty()) {
      for (const auto& r : b.results) keep.push_back(r.second);
    } else {
      std::vector<double> values;
      for (const auto& x : pred) values.push_back(x.first);
      const double cut = search_quantile(values, o_.swift_quantile);
      std::stable_sort(pred.begin(), pred.end(), [](const auto& x, const auto& y) {
        return x.first != y.first ? x.first < y.first : x.second < y.second;
      });
      const std::size_t need = b.rung + 1 < p.n.size() ? p.n[b.rung + 1] : 1;
      for (std::size_t i = 0; i < pred.size(); ++i)
        if (pred[i].first <= cut || i < need) keep.push_back(pred[i].second);
        else ended_.emplace_back(pred[i].second, search_status::stopped);
    }
    b.results.clear();
    b.half = false;
    for (const std::size_t t : keep) b.ready.push_back({t, curves_[t].back().first, p.r[b.rung], false});
    b.waiting = keep.size();
  }
  /// The first n points of a curve: the metrics (features) and the resources (which predictor they belong to).
  static std::vector<double> features(const std::vector<std::pair<double, double>>& c, std::size_t n) {
    std::vector<double> f;
    for (std::size_t i = 0; i < n; ++i) f.push_back(c[i].second);
    return f;
  }
  static std::vector<double> key(const std::vector<std::pair<double, double>>& c, std::size_t n) {
    std::vector<double> k;
    for (std::size_t i = 0; i < n; ++i) k.push_back(c[i].first);
    return k;
  }
  void close_if_done() {
    // Brackets close in order (owner_ indexes them by position), so only a finished front bracket is dropped.
    while (!open_.empty() && open_.front().waiting == 0 && open_.front().ready.empty()) {
      open_.pop_front();
      ++closed_;
    }
  }

  hyperband_options o_;
  std::vector<hyperband_bracket_plan> plans_;
  std::deque<bracket> open_;
  std::vector<std::size_t> owner_;
  std::vector<std::vector<std::pair<double, double>>> curves_;  // (resource, metric) reported, by trial
  std::map<std::vector<double>, curve_predictor> predictors_;   // by the resources of the curve they read
  std::size_t next_plan_ = 0, trials_ = 0, closed_ = 0;
};

}  // namespace hepgnn
