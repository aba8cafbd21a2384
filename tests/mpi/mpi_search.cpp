// Runs under mpirun for tests/mpi/run_mpi_search_tests.sh (ctest's mpi/search_* tests): run_search_mpi
// (dist/search_mpi.hpp) with ASHA and the random sampler on synthetic learning curves, metric = a(config) + 1/r
// (no training; a job sleeps 2 ms per unit so that ranks overlap). Rank 0 compares the result with run_search on
// one thread (the reference) and exits non-zero on a mismatch:
//   mpi_search asha [--load] [--funneled]
//       the same best configuration as the reference; at 1 and 2 ranks (one trainer) the whole table; trial 5
//       (throws) and trial 9 (NaN) failed, no other; units_used equal to the units the ranks really trained; no
//       trial state left on any rank (releases delivered).
//       --load: the load callback restores even trials and refuses odd ones (a trial moved to another rank then
//       restarts from 0). --funneled: initialise MPI with MPI_THREAD_FUNNELED (must fail beyond 2 ranks).
//   mpi_search resume --journal FILE [--stop-after K] [--load] [--replayed]
//       with --stop-after: stops after K journal events, as a kill would; without: resumes FILE and checks the
//       result against the uninterrupted reference (whole table at 1 and 2 ranks, best configuration otherwise);
//       --replayed: results must have come from the journal.
// The trainer checks that every job starts where the trial's state on that rank is (or at 0): a scheduling or
// bookkeeping error shows up as an extra failed trial.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "hepgnn/dist/search_mpi.hpp"

namespace {

using namespace hepgnn;

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

search_space make_space() {
  search_space s;
  s.add_uniform("x", 0.0, 1.0).add_uniform("y", 0.0, 1.0).add_choice("k", std::vector<double>{1, 2, 3});
  return s;
}

asha_options asha_settings() { return {/*grace=*/1, /*max_t=*/27, /*eta=*/3, /*num_trials=*/40}; }

// One process's fake trainer: the trials' resources it holds and the units it really trained.
struct fake_trainer {
  bool load_even = false;
  std::mutex m;
  std::map<std::size_t, double> held;
  double trained = 0;

  search_callbacks callbacks() {
    search_callbacks cb;
    cb.train = [this](const trial_context& c) {
      {
        std::lock_guard lk(m);
        const auto h = held.find(c.id);
        if (c.from > 0 && (h == held.end() || h->second != c.from))
          throw std::runtime_error("state mismatch: trial " + std::to_string(c.id) + " asked from " +
                                   std::to_string(c.from));
        trained += c.more();
        held.erase(c.id);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * static_cast<int>(c.more())));
      if (c.id == 5) throw std::runtime_error("injected failure of trial 5");
      if (c.id == 9) return std::nan("");
      const double x = c.config.get<double>("x"), y = c.config.get<double>("y"), k = c.config.get<double>("k");
      std::lock_guard lk(m);
      held[c.id] = c.to;
      return (x - 0.3) * (x - 0.3) + (y - 0.6) * (y - 0.6) + 0.05 * k + 1.0 / c.to;
    };
    cb.release = [this](std::size_t id) {
      std::lock_guard lk(m);
      held.erase(id);
    };
    if (load_even)
      cb.load = [this](std::size_t id, const trial_config&, double r) {
        if (id % 2) return false;
        std::lock_guard lk(m);
        held[id] = r;  // as if read from a checkpoint on a shared filesystem
        return true;
      };
    return cb;
  }
};

search_result reference() {
  const search_space space = make_space();
  random_sampler sampler(11);
  asha_scheduler asha(asha_settings());
  fake_trainer t;
  return run_search(space, sampler, asha, t.callbacks());
}

search_result run_mpi(mpi_communicator& comm, fake_trainer& t, const search_options& o) {
  const search_space space = make_space();
  random_sampler sampler(11);
  asha_scheduler asha(asha_settings());
  return run_search_mpi(comm, space, sampler, asha, t.callbacks(), o);
}

void check_against_reference(const search_result& r, const search_result& ref, bool whole_table) {
  expect(r.trials.size() == ref.trials.size(), "trial count " + std::to_string(r.trials.size()) + " vs " +
                                                   std::to_string(ref.trials.size()));
  expect(r.best() && ref.best(), "a best trial");
  expect(r.best()->config.to_json() == ref.best()->config.to_json(),
         "best configuration " + r.best()->config.to_json() + " vs " + ref.best()->config.to_json());
  expect(r.best()->last_metric() == ref.best()->last_metric(), "best metric");
  expect(r.count(search_status::failed) == 2, "2 failed trials, got " + std::to_string(r.count(search_status::failed)));
  expect(r.trials[5].status == search_status::failed && r.trials[5].error == "injected failure of trial 5",
         "trial 5 failed with its message, got '" + r.trials[5].error + "'");
  expect(r.trials[9].status == search_status::failed && r.trials[9].error.find("non-finite") != std::string::npos,
         "trial 9 failed (NaN), got '" + r.trials[9].error + "'");
  if (!whole_table) return;
  for (std::size_t i = 0; i < r.trials.size(); ++i) {
    const auto &a = r.trials[i], &b = ref.trials[i];
    expect(a.config.to_json() == b.config.to_json() && a.status == b.status && a.results.size() == b.results.size(),
           "trial " + std::to_string(i) + " as in the reference");
    for (std::size_t k = 0; k < a.results.size(); ++k)
      expect(a.results[k].resource == b.results[k].resource && a.results[k].metric == b.results[k].metric,
             "trial " + std::to_string(i) + " result " + std::to_string(k) + " as in the reference");
  }
}

// units_used must count what the ranks really trained (restarts included).
void check_units(mpi_communicator& comm, const search_result& r, const fake_trainer& t) {
  double trained = t.trained;
  comm.allreduce_sum(&trained, 1);
  if (comm.rank() == 0)
    expect(r.units_used == trained, "units_used " + std::to_string(r.units_used) + " = units trained " +
                                        std::to_string(trained));
}

void body(mpi_communicator& comm, int argc, char** argv) {
  expect(argc >= 2, "usage: mpi_search asha|resume [options]");
  const std::string mode = argv[1];
  std::string journal;
  std::size_t stop_after = 0;
  bool replayed = false;
  fake_trainer t;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--load") t.load_even = true;
    else if (a == "--journal" && i + 1 < argc) journal = argv[++i];
    else if (a == "--stop-after" && i + 1 < argc) stop_after = std::stoul(argv[++i]);
    else if (a == "--replayed") replayed = true;
    else if (a != "--funneled") throw std::runtime_error("unknown argument " + a);
  }
  const search_result ref = comm.rank() == 0 ? reference() : search_result{};
  const bool whole_table = comm.size() <= 2;  // one trainer: deterministic
  if (mode == "asha") {
    const search_result r = run_mpi(comm, t, {});
    check_units(comm, r, t);
    // every trial ended, so every rank heard of it (callbacks.release) and holds no state
    double held = static_cast<double>(t.held.size());
    comm.allreduce_sum(&held, 1);
    expect(held == 0, std::to_string(held) + " trial states left on the ranks after the search");
    if (comm.rank() != 0) return;
    expect(!r.interrupted, "not interrupted");
    check_against_reference(r, ref, whole_table);
    std::printf("asha at %d ranks%s: %zu trials, best %s %.6f, %zu completed, %zu stopped, %.0f units: as the "
                "reference%s\n", comm.size(), t.load_even ? " (load)" : "", r.trials.size(),
                r.best()->config.to_json().c_str(), r.best()->last_metric(), r.count(search_status::completed),
                r.count(search_status::stopped), r.units_used, whole_table ? " (whole table)" : " (best)");
  } else if (mode == "resume") {
    expect(!journal.empty(), "resume needs --journal FILE");
    search_options o;
    o.journal = journal;
    o.stop_after_events = stop_after;
    const search_result r = run_mpi(comm, t, o);
    if (stop_after == 0) check_units(comm, r, t);  // a stopped search drops its jobs in flight, as a kill would
    if (comm.rank() != 0) return;
    if (stop_after > 0) {
      expect(r.interrupted, "interrupted after " + std::to_string(stop_after) + " events");
      std::printf("stopped after %zu events (%.0f units)\n", stop_after, r.units_used);
      return;
    }
    expect(!r.interrupted && (!replayed || r.units_replayed > 0), "resumed: results replayed from the journal");
    check_against_reference(r, ref, whole_table);
    std::printf("resumed at %d ranks%s: %.0f units replayed, %.0f trained; as the reference%s\n", comm.size(),
                t.load_even ? " (load)" : "", r.units_replayed, r.units_used,
                whole_table ? " (whole table)" : " (best)");
  } else {
    throw std::runtime_error("unknown mode " + mode);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool funneled = false;
  for (int i = 1; i < argc; ++i) funneled = funneled || std::string(argv[i]) == "--funneled";
  return mpi_main(argc, argv, [&](mpi_communicator& comm) { body(comm, argc, argv); },
                  funneled ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE);
}
