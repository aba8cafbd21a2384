#pragma once
/// @file search_mpi.hpp
/// @brief hepgnn::run_search_mpi: a hyperparameter search over MPI ranks. Rank 0 schedules (run_search with one
/// worker thread per training rank; each thread hands its job to a rank and waits for the answer), ranks 1..N-1
/// train with the user's callbacks. With one rank, rank 0 trains alone.
///
/// Part of the optional `hepgnn::mpi` CMake component (it includes dist/mpi_communicator.hpp, hence <mpi.h>);
/// nothing else in the library includes this header. docs/search.md, "MPI execution".

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/mpi_communicator.hpp"
#include "hepgnn/dist/search_json.hpp"
#include "hepgnn/dist/search_run.hpp"

namespace hepgnn {

namespace search_mpi_detail {

enum tag : int { job_tag = 7301, reply_tag = 7302, stop_tag = 7303 };

inline void send_text(const std::string& s, int dest, int tag, MPI_Comm comm) {
  HEPGNN_CHECK(s.size() <= static_cast<std::size_t>(INT_MAX), "run_search_mpi: a message of ", s.size(),
               " bytes exceeds MPI's int count (a configuration that large is not a hyperparameter set)");
  MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, dest, tag, comm);
}

// Matched probe + receive (safe when several threads of rank 0 receive at once, each from its own rank). It
// polls with short sleeps instead of blocking: Open MPI's blocking receive spins a core, and rank 0 (which only
// schedules) or an idle rank would take that core from the ranks that train; a job lasts far longer than 2 ms.
inline std::string recv_text(int source, int tag, MPI_Comm comm, int* tag_out = nullptr) {
  MPI_Message msg;
  MPI_Status st;
  int found = 0;
  for (int waited = 0;; ++waited) {
    MPI_Improbe(source, tag, comm, &found, &msg, &st);
    if (found) break;
    std::this_thread::sleep_for(std::chrono::microseconds(waited < 100 ? 50 : 2000));
  }
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string s(static_cast<std::size_t>(n), '\0');
  MPI_Mrecv(s.data(), n, MPI_CHAR, &msg, MPI_STATUS_IGNORE);
  if (tag_out) *tag_out = st.MPI_TAG;
  return s;
}

// Trials whose state a rank may free, sent with its next message ("3 8 11").
inline std::string id_list(const std::vector<std::size_t>& ids) {
  std::string s;
  for (const std::size_t id : ids) {  // appends: GCC 12 warns falsely about chained operator+ (-Wrestrict)
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

// Rank 0's side: which rank is busy, and which rank holds which trial's state (so a continuing trial goes back
// to the rank that has it when that rank is free).
class dispatcher {
 public:
  dispatcher(MPI_Comm comm, int ranks)
      : comm_(comm), busy_(static_cast<std::size_t>(ranks), false),
        pending_release_(static_cast<std::size_t>(ranks)) {}

  double train(const trial_context& c) {
    int rank = 0;
    std::string releases;
    {
      std::lock_guard lk(m_);
      const auto h = holder_.find(c.id);
      if (h != holder_.end() && !busy_[static_cast<std::size_t>(h->second)]) rank = h->second;
      for (std::size_t r = 1; rank == 0 && r < busy_.size(); ++r)
        if (!busy_[r]) rank = static_cast<int>(r);
      // run_search has as many worker threads as there are training ranks, so one is always free
      HEPGNN_CHECK(rank > 0, "run_search_mpi: no free training rank (internal error)");
      if (h != holder_.end() && h->second != rank) pending_release_[static_cast<std::size_t>(h->second)].push_back(c.id);
      holder_.erase(c.id);
      busy_[static_cast<std::size_t>(rank)] = true;
      releases = id_list(pending_release_[static_cast<std::size_t>(rank)]);
      pending_release_[static_cast<std::size_t>(rank)].clear();
    }
    send_text("{\"id\": " + std::to_string(c.id) + ", \"from\": " + search_json_number(c.from) +
                  ", \"to\": " + search_json_number(c.to) + ", \"config\": " + search_json_string(c.config.to_json()) +
                  ", \"release\": " + search_json_string(releases) + "}",
              rank, job_tag, comm_);
    double from = c.from, metric = 0;
    std::string error;
    for (auto& [k, v] : search_json_parse_flat(recv_text(rank, reply_tag, comm_), "run_search_mpi reply")) {
      if (k == "from") from = std::get<double>(v);
      else if (k == "metric") metric = std::get<double>(v);  // null (a non-finite metric) reads as NaN
      else if (k == "error") error = std::get<std::string>(v);
    }
    std::lock_guard lk(m_);
    busy_[static_cast<std::size_t>(rank)] = false;
    extra_units_ += c.from - from;  // the rank restarted the trial from `from` (no state, no checkpoint)
    holder_[c.id] = rank;  // even after a failure: its release must reach that rank (the user's state is there)
    if (!error.empty()) throw std::runtime_error(error);
    return metric;
  }
  void release(std::size_t id) {  // called by run_search under its lock; the rank hears of it with its next job
    std::lock_guard lk(m_);
    if (const auto h = holder_.find(id); h != holder_.end()) {
      pending_release_[static_cast<std::size_t>(h->second)].push_back(id);
      holder_.erase(h);
    }
  }
  void stop_all() {
    std::lock_guard lk(m_);
    for (std::size_t r = 1; r < busy_.size(); ++r)
      send_text(id_list(pending_release_[r]), static_cast<int>(r), stop_tag, comm_);
  }
  double extra_units() const { return extra_units_; }

 private:
  MPI_Comm comm_;
  std::mutex m_;
  std::vector<bool> busy_;
  std::vector<std::vector<std::size_t>> pending_release_;
  std::map<std::size_t, int> holder_;
  double extra_units_ = 0;
};

// Ranks 1..N-1: receive jobs until told to stop; the trials' resources held here are in `held`.
inline void worker_loop(const search_space& space, const search_callbacks& cb, MPI_Comm comm) {
  std::map<std::size_t, double> held;
  const auto release = [&](const std::string& ids) {
    std::istringstream in(ids);
    for (std::size_t id; in >> id;) {
      held.erase(id);
      if (cb.release) cb.release(id);
    }
  };
  for (;;) {
    int tag = 0;
    const std::string text = recv_text(0, MPI_ANY_TAG, comm, &tag);
    if (tag == stop_tag) {
      release(text);
      return;
    }
    double id = -1, from = 0, to = 0;
    std::string config_json, releases;
    for (auto& [k, v] : search_json_parse_flat(text, "run_search_mpi job")) {
      if (k == "id") id = std::get<double>(v);
      else if (k == "from") from = std::get<double>(v);
      else if (k == "to") to = std::get<double>(v);
      else if (k == "config") config_json = std::get<std::string>(v);
      else if (k == "release") releases = std::get<std::string>(v);
    }
    HEPGNN_CHECK(id >= 0 && to > from, "run_search_mpi: bad job '", text, "'");
    release(releases);
    const auto tid = static_cast<std::size_t>(id);
    const trial_config config = space.parse_config(config_json);
    std::string error;
    double metric = 0;
    try {
      // Not at `from` here (the trial trained on another rank, or this is a resume): the user's checkpoint, or
      // a restart from 0 that rank 0 counts in units_used.
      const auto h = held.find(tid);
      if (from > 0 && !(h != held.end() && h->second == from) && !(cb.load && cb.load(tid, config, from))) from = 0;
      held.erase(tid);
      const trial_context ctx{tid, config, from, to};
      metric = cb.train(ctx);
      if (std::isfinite(metric)) {
        held[tid] = to;
        if (cb.save) cb.save(ctx);
      }
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "exception without a message";
    } catch (...) {
      error = "unknown exception";
    }
    send_text("{\"from\": " + search_json_number(from) + ", \"metric\": " + search_json_number(metric) +
                  ", \"error\": " + search_json_string(error) + "}",
              0, reply_tag, comm);
  }
}

}  // namespace search_mpi_detail

/// @brief Runs a search over the ranks of `comm`; every rank calls it with the same space (the sampler, scheduler
/// and options matter on rank 0 only, the callbacks on the training ranks only; with one rank, rank 0 uses all).
/// Rank 0 schedules and writes the journal: run_search with one thread per training rank (options.workers is
/// ignored), each handing its jobs to a rank. Ranks 1..N-1 train: a trial continues on the rank that holds its
/// state when that rank is free; otherwise the rank given the job calls callbacks.load (checkpoints on a shared
/// filesystem) or restarts the trial from 0, and rank 0 adds the repeated units to units_used. A trial that
/// throws on its rank is a failed trial; the search goes on. callbacks.save runs on the training rank after each
/// successful job, callbacks.release when the rank hears that a trial ended (with its next job or at the end).
/// Returns the full result on rank 0; the other ranks return an empty table (only mode set). With more than two
/// ranks rank 0 calls MPI from several threads: MPI must be initialised with MPI_THREAD_MULTIPLE
/// (mpi_main(argc, argv, body, MPI_THREAD_MULTIPLE)). Errors of the search itself (bad settings, a journal that
/// cannot be read) throw on rank 0 after the training ranks have been told to stop.
inline search_result run_search_mpi(mpi_communicator& comm, const search_space& space, search_sampler& sampler,
                                    search_scheduler& scheduler, const search_callbacks& callbacks,
                                    const search_options& options = {}) {
  HEPGNN_CHECK(!space.empty(), "run_search_mpi: the search space has no dimensions");
  HEPGNN_CHECK(static_cast<bool>(callbacks.train), "run_search_mpi: callbacks.train is empty");
  if (comm.size() == 1) {
    search_options one = options;
    one.workers = 1;
    return run_search(space, sampler, scheduler, callbacks, one);
  }
  int level = 0;
  MPI_Query_thread(&level);
  HEPGNN_CHECK(comm.size() == 2 || level >= MPI_THREAD_MULTIPLE, "run_search_mpi: with ", comm.size(),
               " ranks rank 0 calls MPI from ", comm.size() - 1, " threads: MPI must be initialised with "
               "MPI_THREAD_MULTIPLE (mpi_main(argc, argv, body, MPI_THREAD_MULTIPLE)), got thread level ", level);
  if (comm.rank() != 0) {
    search_mpi_detail::worker_loop(space, callbacks, comm.handle());
    search_result none;
    none.mode = scheduler.mode();
    return none;
  }
  search_mpi_detail::dispatcher d(comm.handle(), comm.size());
  search_callbacks cb;
  cb.train = [&d](const trial_context& c) { return d.train(c); };
  cb.load = [](std::size_t, const trial_config&, double) { return true; };  // the training rank decides
  cb.release = [&d](std::size_t id) { d.release(id); };
  search_options o = options;
  o.workers = static_cast<std::size_t>(comm.size() - 1);
  search_result r;
  try {
    r = run_search(space, sampler, scheduler, cb, o);
  } catch (...) {
    d.stop_all();
    throw;
  }
  d.stop_all();
  r.units_used += d.extra_units();
  return r;
}

}  // namespace hepgnn
