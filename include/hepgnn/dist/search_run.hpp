#pragma once
/// @file search_run.hpp
/// @brief hepgnn::run_search: runs a hyperparameter search on worker threads: a sampler proposes configurations,
/// a scheduler (ASHA, Hyperband) decides which trial trains how far, the user's function trains. Results go to a
/// hepgnn::search_result and, optionally, to a journal from which a killed search resumes.

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/search_journal.hpp"
#include "hepgnn/dist/search_results.hpp"
#include "hepgnn/dist/search_sampler.hpp"
#include "hepgnn/dist/search_scheduler.hpp"
#include "hepgnn/dist/search_space.hpp"

namespace hepgnn {

/// @brief What the trial function is told: bring trial `id` (configuration `config`) from resource `from` to `to`.
/// from == 0: a fresh trial (build its model). Otherwise the trial's state, kept by the user between calls (keyed
/// by id) or restored by the load callback, is at `from`: train `more()` units further.
struct trial_context {
  std::size_t id;
  const trial_config& config;
  double from;
  double to;
  double more() const { return to - from; }
};

/// @brief The user's side of a search. Only `train` is required.
struct search_callbacks {
  /// Trains as trial_context says and returns the metric at `to` (lower is better unless the scheduler
  /// maximises). Throwing, or returning a non-finite metric, fails the trial (recorded; the search goes on).
  /// Called concurrently from several workers (for different trials).
  std::function<double(const trial_context&)> train;
  /// Optional: after a successful job, checkpoint trial ctx.id at resource ctx.to (so a resumed search continues
  /// it instead of starting it again). Called on the worker, outside the search's lock.
  std::function<void(const trial_context&)> save;
  /// Optional, on resume: restore trial `id` at `resource` from its checkpoint; false if there is none (the trial
  /// then restarts from 0). Called on the worker, outside the lock.
  std::function<bool(std::size_t id, const trial_config& config, double resource)> load;
  /// Optional: trial `id` stopped, completed or failed; its state may be freed. Called under the search's lock
  /// (keep it short; it must not call run_search).
  std::function<void(std::size_t id)> release;
};

/// @brief How to run a search.
struct search_options {
  std::size_t workers = 1;        ///< threads that train (1: the calling thread; deterministic)
  std::string journal;            ///< journal file (empty: none)
  bool resume = true;             ///< read an existing journal and replay it (false: start the file afresh)
  std::size_t stop_after_events = 0;  ///< testing and drills: stop after writing this many events, as a kill would
};

namespace search_run_detail {

struct state {
  const search_space& space;
  search_sampler& sampler;
  search_scheduler& scheduler;
  const search_callbacks& cb;
  const search_options& opt;
  search_journal_contents replay;
  search_journal_writer journal;
  std::vector<search_trial_record> records;
  std::vector<double> live;  // resource of the user's state of each trial in this process (-1: none)
  std::vector<char> busy;    // a worker is training the trial now
  std::vector<search_observation> history;
  double units_used = 0, units_replayed = 0;
  std::size_t events = 0;
  bool stop = false;
  std::exception_ptr error;
  std::mutex m;
  std::condition_variable cv;

  state(const search_space& sp, search_sampler& sa, search_scheduler& sc, const search_callbacks& c,
        const search_options& o)
      : space(sp), sampler(sa), scheduler(sc), cb(c), opt(o) {}
  double loss_of(double metric) const { return scheduler.mode() == search_mode::maximize ? -metric : metric; }
  void count_event() {
    ++events;
    if (opt.stop_after_events > 0 && events >= opt.stop_after_events) stop = true;
  }
  void ensure(std::size_t id) {
    if (records.size() <= id) {
      const std::size_t old = records.size();
      records.resize(id + 1);
      live.resize(id + 1, -1.0);
      busy.resize(id + 1, 0);
      for (std::size_t i = old; i <= id; ++i) records[i].id = i;
    }
  }
  // what a sampler sees: every result, then the trials being trained now (for TPE's constant liar)
  std::vector<search_observation> sampling_history() const {
    std::vector<search_observation> h = history;
    for (std::size_t i = 0; i < busy.size(); ++i)
      if (busy[i]) h.push_back({records[i].config, 0, std::numeric_limits<double>::quiet_NaN(), true});
    return h;
  }
  void settle_ended() {
    for (const auto& [id, s] : scheduler.take_ended()) {
      ensure(id);
      records[id].status = s;
      live[id] = -1;
      if (cb.release) cb.release(id);
    }
  }
  void record_result(const search_job& j, double metric, double wall) {
    records[j.trial].results.push_back({j.to, metric, wall});
    history.push_back({records[j.trial].config, j.to, loss_of(metric)});
    const search_status s = scheduler.report(j.trial, j.to, metric);
    if (s != search_status::stopped && s != search_status::completed) records[j.trial].status = s;
    settle_ended();
  }
  void record_failure(const search_job& j, const std::string& message) {
    records[j.trial].error = message;
    scheduler.report_failure(j.trial);
    settle_ended();
    records[j.trial].status = search_status::failed;
  }

  void work() {
    std::unique_lock lk(m);
    while (!stop) {
      std::optional<search_job> job;
      try {
        job = scheduler.next();
      } catch (...) {
        error = std::current_exception();
        stop = true;
        break;
      }
      if (!job) {
        if (scheduler.finished()) break;
        cv.wait(lk);
        continue;
      }
      const search_job j = *job;
      ensure(j.trial);
      try {
        if (j.new_trial) {
          const auto it = replay.configs.find(j.trial);
          if (it != replay.configs.end()) {
            records[j.trial].config = it->second;
          } else {
            records[j.trial].config = sampler.sample(space, j.trial, sampling_history());
            journal.trial(j.trial, records[j.trial].config);
            count_event();
          }
        }
        records[j.trial].status = search_status::running;
        if (stop) break;
        if (const auto r = replay.results.find({j.trial, j.to}); r != replay.results.end()) {
          units_replayed += j.to - r->second.from;
          live[j.trial] = -1;  // this process holds no state for it
          record_result(j, r->second.metric, r->second.wall_seconds);
          cv.notify_all();
          continue;
        }
        if (const auto f = replay.failures.find({j.trial, j.to}); f != replay.failures.end()) {
          record_failure(j, f->second);
          cv.notify_all();
          continue;
        }
      } catch (...) {
        error = std::current_exception();
        stop = true;
        break;
      }
      const trial_config config = records[j.trial].config;
      const bool need_load = j.from > 0 && live[j.trial] != j.from;
      busy[j.trial] = 1;
      lk.unlock();
      double from = j.from, metric = 0;
      std::string message;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        if (need_load && !(cb.load && cb.load(j.trial, config, j.from))) from = 0;  // no checkpoint: start again
        const trial_context ctx{j.trial, config, from, j.to};
        metric = cb.train(ctx);
        if (!std::isfinite(metric)) message = "the trial function returned a non-finite metric (" + std::to_string(metric) + ")";
        else if (cb.save) cb.save(ctx);
      } catch (const std::exception& e) {
        message = e.what();
        if (message.empty()) message = "exception without a message";
      } catch (...) {
        message = "unknown exception";
      }
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      lk.lock();
      busy[j.trial] = 0;
      if (stop) break;  // killed: an unfinished job leaves no trace, as in a real kill
      units_used += j.to - from;
      try {
        if (!message.empty()) {
          live[j.trial] = -1;
          journal.failure(j.trial, j.to, message);
          record_failure(j, message);
        } else {
          live[j.trial] = j.to;
          journal.result(j.trial, from, j.to, metric, wall);
          record_result(j, metric, wall);
        }
        count_event();
      } catch (...) {
        error = std::current_exception();
        stop = true;
      }
      cv.notify_all();
    }
    cv.notify_all();
  }
};

}  // namespace search_run_detail

/// @brief Runs a search to the end (or to options.stop_after_events). The scheduler and sampler must be fresh
/// (as constructed). With a journal and resume = true, results already in the journal are replayed without
/// training: the search takes the same decisions as before the kill (exactly so with one worker), trials are
/// given the journal's configurations, and a trial whose next job is new continues from its checkpoint (load) or,
/// without one, restarts from 0. The table then equals that of an uninterrupted run (one worker; wall times come
/// from the journal). With several workers, which trial is trained when depends on timing, so the table
/// (which trials ASHA stops, which configurations TPE proposes) may differ from run to run; the random sampler's
/// configuration of trial k does not (it depends on seed and k only).
inline search_result run_search(const search_space& space, search_sampler& sampler, search_scheduler& scheduler,
                                const search_callbacks& callbacks, const search_options& options = {}) {
  HEPGNN_CHECK(!space.empty(), "run_search: the search space has no dimensions");
  HEPGNN_CHECK(static_cast<bool>(callbacks.train), "run_search: callbacks.train is empty");
  HEPGNN_CHECK(options.workers >= 1, "run_search: workers must be >= 1, got ", options.workers);
  const auto t0 = std::chrono::steady_clock::now();
  search_run_detail::state st(space, sampler, scheduler, callbacks, options);
  if (!options.journal.empty()) {
    if (options.resume) {
      st.replay = read_search_journal(options.journal, space);
      if (st.replay.truncated_tail) std::filesystem::resize_file(options.journal, st.replay.valid_bytes);
    } else {
      std::filesystem::remove(options.journal);
    }
    st.journal.open(options.journal);
  }
  if (options.workers == 1) {
    st.work();
  } else {
    std::vector<std::thread> threads;
    threads.reserve(options.workers);
    for (std::size_t w = 0; w < options.workers; ++w) threads.emplace_back([&st] { st.work(); });
    for (auto& t : threads) t.join();
  }
  if (st.error) std::rethrow_exception(st.error);
  search_result out;
  out.trials = std::move(st.records);
  out.mode = scheduler.mode();
  out.units_used = st.units_used;
  out.units_replayed = st.units_replayed;
  out.interrupted = st.stop;
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace hepgnn
