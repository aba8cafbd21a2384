// Hyperparameter search of the MLPF particle-flow model on the toy detector (issue 25): ASHA with MLPF's
// settings scaled to this machine (MLPF: max_t 200, eta 4, grace 10; here by default max_t 16 epochs, eta 4,
// grace 1: rungs at 1 and 4 epochs; --unit-epochs U makes a resource unit U epochs, so that the first rung ranks
// configurations on more than one noisy epoch) and TPE proposals, against random search at the same budget (the
// same number of training epochs, every trial trained to max_t), and against the example's default configuration
// trained max_t epochs. Searched: learning rate, width, graph layers, LSH bin size, dropout of the FFNs.
// "Best" is the configuration with the lowest validation loss (the search's metric) of both searches; it and the
// default are then measured on held-out test events: test loss and jet pT resolution (IQR / median of the matched
// jets' reco / true pT, as MLPF reports it; --test-events sets how many events, i.e. how noisy it is). ASHA's and
// random search's best are measured there too, so the two searches are compared on events neither ranked on.
// Writes the results tables (CSV, JSON; plot them with scripts/plot_search.py) and optionally a metrics file.
//
//   example_hpo [--quick] [--train-events N] [--val-events N] [--test-events N] [--trials N] [--max-epochs N]
//               [--unit-epochs U] [--grace G] [--eta E] [--workers N] [--soft N] [--seed S] [--out DIR]
//               [--metrics-out FILE]
//   mpirun -np N example_hpo ...   (MPI builds, N > 1: rank 0 schedules, ranks 1..N-1 train; --workers ignored)
// (--soft: soft particles per toy event, the detector's default if 0; --quick: 16/8/8 events with 300, 6 trials,
// 4 epochs; --grace: in units)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hepgnn/dist/communicator.hpp"
#include "hepgnn/dist/search_run.hpp"
#ifdef HEPGNN_EXAMPLE_MPI
#include "hepgnn/dist/search_mpi.hpp"
#endif
#include "hepgnn/metrics/particle_flow.hpp"
#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"

using namespace hepgnn;
using namespace hepgnn::pf;
using T = float;
using model_type = mlpf<T>;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  int train_events = 96, val_events = 48, test_events = 300, trials = 24, max_epochs = 16, workers = 2, soft = 0;
  int unit_epochs = 1, grace = 1, eta = 4;
  std::uint64_t seed = 2024;
  std::string out = "hpo_out", metrics_out;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      o.train_events = 16;
      o.val_events = 8;
      o.test_events = 8;
      o.trials = 6;
      o.max_epochs = 4;
      o.soft = 300;
    } else if (a == "--train-events") o.train_events = std::stoi(next());
    else if (a == "--val-events") o.val_events = std::stoi(next());
    else if (a == "--test-events") o.test_events = std::stoi(next());
    else if (a == "--trials") o.trials = std::stoi(next());
    else if (a == "--max-epochs") o.max_epochs = std::stoi(next());
    else if (a == "--unit-epochs") o.unit_epochs = std::stoi(next());
    else if (a == "--grace") o.grace = std::stoi(next());
    else if (a == "--eta") o.eta = std::stoi(next());
    else if (a == "--workers") o.workers = std::stoi(next());
    else if (a == "--soft") o.soft = std::stoi(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--out") o.out = next();
    else if (a == "--metrics-out") o.metrics_out = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.unit_epochs < 1 || o.max_epochs % o.unit_epochs != 0 || o.grace < 1 || o.eta < 2) {
    std::fprintf(stderr, "--unit-epochs must divide --max-epochs, --grace >= 1, --eta >= 2\n");
    std::exit(2);
  }
  return o;
}

struct dataset {
  std::vector<pf::event> events;
  std::vector<matrix<T>> x, r;
  explicit dataset(std::vector<pf::event> e) : events(std::move(e)) {
    for (const auto& ev : events) {
      x.push_back(mlpf_inputs<T>(ev.features));
      r.push_back(mlpf_regression_targets<T>(ev.features, ev.target_class, ev.target));
    }
  }
};

mlpf_loss_options loss_options() {
  mlpf_loss_options lo;
  lo.regression_weight = 10;
  lo.class_weights = {1, 1, 2, 1, 3, 3};  // as examples/particle_flow
  return lo;
}

// One trial's state, kept between the scheduler's calls: a promoted trial continues training.
struct trial_state {
  model_type model;
  adam<T> optim;
  model_type::workspace ws;
  rng order;
  trial_state(const mlpf_config& c, double lr, std::uint64_t seed) : model(c), optim({.lr = lr}), order(seed) {}
};

mlpf_config config_of(const trial_config& c, std::uint64_t seed) {
  mlpf_config mc;
  mc.hidden = c.get<int>("hidden");
  mc.head_hidden = mc.hidden;
  mc.num_convs = c.get<int>("num_convs");
  mc.bin_size = static_cast<index_t>(c.get<double>("bin_size"));
  mc.dropout = c.get<double>("dropout");
  mc.seed = seed;
  return mc;
}

void train_epochs(trial_state& s, const dataset& train, int epochs) {
  const mlpf_loss_options lo = loss_options();
  std::vector<std::size_t> order(train.events.size());
  for (int e = 0; e < epochs; ++e) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    s.order.shuffle(order);
    for (const std::size_t i : order) {
      zero_grad(s.model);
      s.model.train_step(train.x[i], batch::single(train.events[i].num_elements()), train.events[i].target_class,
                         train.r[i], s.ws, lo);
      clip_grad_norm(s.model, 5.0);
      s.optim.step(s.model);
    }
  }
}

double val_loss(trial_state& s, const dataset& val) {
  const mlpf_loss_options lo = loss_options();
  double sum = 0;
  for (std::size_t i = 0; i < val.events.size(); ++i) {
    s.model.infer(val.x[i], batch::single(val.events[i].num_elements()), s.ws);
    sum += s.model.loss(val.events[i].target_class, val.r[i], s.ws, false, lo).total;
  }
  return sum / static_cast<double>(val.events.size());
}

double jet_resolution(trial_state& s, const dataset& test) {
  pf_evaluator ev;
  for (const auto& e : test.events) ev.add_event(truth_candidates(e), s.model.reconstruct(e.features, s.ws));
  return ev.report().jet_response.resolution;
}

// A trained model on the held-out test events (val_loss on them is the test loss).
struct test_scores {
  double val = std::nan(""), test_loss = std::nan(""), jet_res = std::nan("");
};
test_scores score(trial_state& s, const dataset& val, const dataset& test) {
  return {val_loss(s, val), val_loss(s, test), jet_resolution(s, test)};
}

std::string num(double v) { return search_json_number(v); }

// Runs on every rank under MPI (comm: the ranks) and once otherwise (comm: nullptr).
template <class Comm>
void run_example(const options& opt, Comm* comm) {
  const bool root = !comm || comm->rank() == 0;
  if (root) std::filesystem::create_directories(opt.out);
  toy_pf_config det_cfg;
  if (opt.soft > 0) det_cfg.soft_particles = opt.soft;
  const toy_pf_detector det(det_cfg);
  const dataset train(det.simulate(opt.seed, opt.train_events)), val(det.simulate(opt.seed + 1000003, opt.val_events)),
      test(det.simulate(opt.seed + 2000003, opt.test_events));
  if (root) std::printf("events: %d train, %d validation, %d test\n", opt.train_events, opt.val_events, opt.test_events);

  search_space space;
  space.add_log_uniform("lr", 3e-4, 1e-2)
      .add_integer("hidden", 16, 96, true)
      .add_integer("num_convs", 1, 3)
      .add_choice("bin_size", std::vector<double>{16, 32, 64})
      .add_uniform("dropout", 0.0, 0.3);
  const int max_t = opt.max_epochs / opt.unit_epochs;  // in resource units

  // ---- the default configuration (examples/particle_flow's model, constant learning rate)
  trial_config defaults;
  defaults.set("lr", 2e-3);
  defaults.set("hidden", std::int64_t{64});
  defaults.set("num_convs", std::int64_t{2});
  defaults.set("bin_size", 64.0);
  defaults.set("dropout", 0.0);
  auto t0 = clock_type::now();
  test_scores def_scores;
  if (root) {  // the other ranks wait for the search meanwhile
    trial_state def(config_of(defaults, opt.seed), 2e-3, opt.seed + 7);
    train_epochs(def, train, opt.max_epochs);
    const double default_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    def_scores = score(def, val, test);
    std::printf("default %s: val loss %.4f, test loss %.4f, jet pT resolution %.4f (%.1f s for %d epochs)\n",
                defaults.to_json().c_str(), def_scores.val, def_scores.test_loss, def_scores.jet_res, default_seconds,
                opt.max_epochs);
  }

  // ---- a search: trial states in a map; completed ones are kept to evaluate the best
  struct searcher {
    std::mutex m;
    std::map<std::size_t, std::unique_ptr<trial_state>> states;
  };
  auto run = [&](search_sampler& sampler, search_scheduler& sched, searcher& st, const std::string& name) {
    search_callbacks cb;
    cb.train = [&](const trial_context& c) {
      trial_state* s;
      {
        std::lock_guard lk(st.m);
        auto& slot = st.states[c.id];
        if (c.from == 0 || !slot)
          slot = std::make_unique<trial_state>(config_of(c.config, opt.seed + c.id), c.config.get<double>("lr"),
                                               opt.seed + 7 + c.id);
        s = slot.get();
      }
      train_epochs(*s, train, static_cast<int>(c.to - c.from) * opt.unit_epochs);
      return val_loss(*s, val);
    };
    search_options so;
    so.workers = static_cast<std::size_t>(std::max(1, opt.workers));
#ifdef HEPGNN_EXAMPLE_MPI
    // one rank (no mpirun): worker threads as in builds without MPI
    const search_result r = comm->size() > 1 ? run_search_mpi(*comm, space, sampler, sched, cb, so)
                                             : run_search(space, sampler, sched, cb, so);
    if (!root) return r;
#else
    const search_result r = run_search(space, sampler, sched, cb, so);
#endif
    r.write_csv((std::filesystem::path(opt.out) / (name + ".csv")).string());
    r.write_json((std::filesystem::path(opt.out) / (name + ".json")).string());
    const auto* b = r.best();
    std::printf("%s: %zu trials (%zu completed, %zu stopped, %zu failed), %.0f epochs, %.1f s; best trial %zu %s "
                "val loss %.4f\n", name.c_str(), r.trials.size(), r.count(search_status::completed),
                r.count(search_status::stopped), r.count(search_status::failed), r.units_used * opt.unit_epochs,
                r.wall_seconds,
                b ? b->id : 0, b ? b->config.to_json().c_str() : "-", b ? b->last_metric() : std::nan(""));
    return r;
  };

  t0 = clock_type::now();
  tpe_sampler tpe(opt.seed, tpe_options{std::size_t(std::max(2, opt.trials / 3)), 24, 1.0, 25});
  asha_scheduler asha({double(opt.grace), double(max_t), double(opt.eta), std::size_t(opt.trials), 0,
                       search_mode::minimize});
  searcher asha_states;
  const search_result ra = run(tpe, asha, asha_states, "asha");
  // every rank needs the random search's size: rank 0's budget, broadcast under MPI
  double budget_epochs = ra.units_used * opt.unit_epochs;
  if (comm) comm->broadcast(&budget_epochs, 1, 0);
  const int random_trials = std::max(1, static_cast<int>(budget_epochs / opt.max_epochs));
  random_sampler rnd(opt.seed + 1);  // not TPE's seed: its first (random) proposals would be the same ones
  asha_scheduler fifo({double(max_t), double(max_t), 4, std::size_t(random_trials), 0, search_mode::minimize});
  searcher random_states;
  const search_result rr = run(rnd, fifo, random_states, "random");
  const double search_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (!root) return;

  // ---- the best trial of each search on the test events; "best" is the one with the lower validation loss
  auto measure = [&](const search_result& r, const searcher& st, const char* name) {
    test_scores sc;
    const search_trial_record* b = r.best();
    if (!b) return sc;
    // Under MPI the trial's model lives on a training rank: train it again here (same seeds, same epochs: the
    // same model, as its validation loss shows).
    std::unique_ptr<trial_state> again;
    if (!st.states.count(b->id)) {
      again = std::make_unique<trial_state>(config_of(b->config, opt.seed + b->id), b->config.get<double>("lr"),
                                            opt.seed + 7 + b->id);
      train_epochs(*again, train, opt.max_epochs);
    }
    sc = score(again ? *again : *st.states.at(b->id), val, test);
    std::printf("%s best %s: val loss %.4f (search: %.4f), test loss %.4f, jet pT resolution %.4f\n", name,
                b->config.to_json().c_str(), sc.val, b->last_metric(), sc.test_loss, sc.jet_res);
    return sc;
  };
  const test_scores asha_scores = measure(ra, asha_states, "ASHA"), random_scores = measure(rr, random_states, "random");
  const bool random_wins = rr.best() && (!ra.best() || rr.best()->last_metric() < ra.best()->last_metric());
  const test_scores& best = random_wins ? random_scores : asha_scores;
  std::printf("best (%s's): val loss %.4f (default %.4f), test loss %.4f (default %.4f), jet pT resolution %.4f "
              "(default %.4f)\n", random_wins ? "random" : "ASHA", best.val, def_scores.val, best.test_loss,
              def_scores.test_loss, best.jet_res, def_scores.jet_res);
  std::printf("budget: %.0f epochs = %.2f default trainings; ASHA best %.4f, random search best %.4f; %.1f s\n",
              budget_epochs, budget_epochs / opt.max_epochs, ra.best() ? ra.best()->last_metric() : std::nan(""),
              rr.best() ? rr.best()->last_metric() : std::nan(""), search_seconds);
  if (!opt.metrics_out.empty()) {
    std::ofstream js(opt.metrics_out);
    js << "{\n  \"default.val_loss\": " << num(def_scores.val) << ",\n  \"default.test_loss\": "
       << num(def_scores.test_loss) << ",\n  \"default.jet_pt_resolution\": " << num(def_scores.jet_res)
       << ",\n  \"best.val_loss\": " << num(best.val) << ",\n  \"best.test_loss\": " << num(best.test_loss)
       << ",\n  \"best.jet_pt_resolution\": " << num(best.jet_res) << ",\n  \"best.is_random\": " << random_wins
       << ",\n  \"asha.best_val_loss\": " << num(ra.best() ? ra.best()->last_metric() : std::nan(""))
       << ",\n  \"asha.test_loss\": " << num(asha_scores.test_loss) << ",\n  \"asha.jet_pt_resolution\": "
       << num(asha_scores.jet_res)
       << ",\n  \"random.best_val_loss\": " << num(rr.best() ? rr.best()->last_metric() : std::nan(""))
       << ",\n  \"random.test_loss\": " << num(random_scores.test_loss) << ",\n  \"random.jet_pt_resolution\": "
       << num(random_scores.jet_res)
       << ",\n  \"budget_trainings\": " << num(budget_epochs / opt.max_epochs) << ",\n  \"search_seconds\": "
       << num(search_seconds) << ",\n  \"max_epochs\": " << opt.max_epochs
       << ",\n  \"unit_epochs\": " << opt.unit_epochs << ",\n  \"grace\": " << opt.grace << ",\n  \"eta\": " << opt.eta << ",\n  \"asha_trials\": " << ra.trials.size()
       << ",\n  \"random_trials\": " << rr.trials.size() << ",\n  \"test_events\": " << opt.test_events
       << ",\n  \"val_events\": " << opt.val_events << "\n}\n";
    std::printf("metrics written to %s\n", opt.metrics_out.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
#ifdef HEPGNN_EXAMPLE_MPI
  // several threads of rank 0 talk to the training ranks (run_search_mpi)
  return mpi_main(argc, argv, [&](mpi_communicator& comm) { run_example(opt, &comm); }, MPI_THREAD_MULTIPLE);
#else
  run_example<single_process>(opt, nullptr);
  return 0;
#endif
}
