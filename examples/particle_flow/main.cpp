// MLPF-style particle flow on the toy detector: simulate events, train the MLPF model (GNN-LSH graph layers,
// focal + Huber losses), compare truth, the rule-based baseline and MLPF on held-out events, print a table,
// write SVG plots and optionally a JSON metrics file. The model is saved with its config (save_model); --load reads
// such a file, or a weight file of an older run into the default model.
//
//   example_particle_flow [--quick] [--train-events N] [--test-events N] [--epochs N] [--seed S]
//                         [--out DIR] [--metrics-out FILE] [--load WEIGHTS] [--bin-size N] [--nhad-weight W]
//                         [--reg-weight W] [data-parallel options of examples/common/distributed.hpp]
//   mpirun -np N example_particle_flow ...   trains data-parallel over N ranks (MPI builds): each rank simulates
//                         only its micro-shards' events (seeded per micro-shard) and rank 0 evaluates. With any
//                         data-parallel option, or N > 1, a step is one event of every micro-shard.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../common/distributed.hpp"
#include "../common/svg_plot.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/metrics/particle_flow.hpp"
#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"
#include "hepgnn/train/trainer.hpp"

using namespace hepgnn;
using namespace hepgnn::pf;
using T = float;
using clock_type = std::chrono::steady_clock;

using model_type = mlpf<T>;

namespace {

struct options {
  bool quick = false;
  int train_events = 1000, test_events = 100, epochs = 10;
  std::uint64_t seed = 2024;
  int bin_size = 64;
  double nhad_weight = 2, reg_weight = 10;
  std::string out = "particle_flow_out", metrics_out, load;
  examples::distributed_options dist;
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
      o.quick = true;
      o.train_events = 24;
      o.test_events = 12;
      o.epochs = 3;
    } else if (a == "--train-events") o.train_events = std::stoi(next());
    else if (a == "--test-events") o.test_events = std::stoi(next());
    else if (a == "--epochs") o.epochs = std::stoi(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--bin-size") o.bin_size = std::stoi(next());
    else if (a == "--nhad-weight") o.nhad_weight = std::stod(next());
    else if (a == "--reg-weight") o.reg_weight = std::stod(next());
    else if (a == "--out") o.out = next();
    else if (a == "--metrics-out") o.metrics_out = next();
    else if (a == "--load") o.load = next();
    else if (o.dist.parse(a, next)) continue;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      std::exit(2);
    }
  }
  return o;
}

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

template <class Comm>
void run(Comm& comm, const options& opt) {
  const bool root = comm.rank() == 0;
  const bool distributed = comm.size() > 1 || opt.dist.requested;
  const int micro_shards = opt.dist.micro_shards > 0 ? opt.dist.micro_shards : comm.size();
  if (root) std::filesystem::create_directories(opt.out);
  toy_pf_config det_cfg;
  if (opt.quick) det_cfg.soft_particles = 300;
  const toy_pf_detector det(det_cfg);

  // ---- simulation: the whole training set, or (data-parallel) only this rank's micro-shards, each from its own seed
  auto t0 = clock_type::now();
  std::vector<pf::event> train;
  std::vector<std::vector<pf::event>> shard_events;
  if (!distributed) {
    train = det.simulate(opt.seed, opt.train_events);
  } else {
    HEPGNN_CHECK(opt.train_events >= micro_shards, "--train-events ", opt.train_events, " cannot fill ", micro_shards,
                 " micro-shards");
    shard_events.resize(static_cast<std::size_t>(micro_shards));
    for (int s : owned_shards(micro_shards, comm.rank(), comm.size()))
      shard_events[static_cast<std::size_t>(s)] =
          det.simulate(mix64(opt.seed + 7919 * static_cast<std::uint64_t>(s + 1)),
                       opt.train_events / micro_shards + (s < opt.train_events % micro_shards ? 1 : 0));
  }
  const auto test = root ? det.simulate(opt.seed + 1000003, opt.test_events) : std::vector<pf::event>{};
  long n_el = 0, n_ev = 0;
  for (const auto& e : train) n_el += e.num_elements(), ++n_ev;
  for (const auto& shard : shard_events)
    for (const auto& e : shard) n_el += e.num_elements(), ++n_ev;
  if (root)
    std::printf("simulated %ld training events%s and %d test events in %.1f s (%.0f elements per event)\n", n_ev,
                distributed ? " (rank 0's micro-shards)" : "", opt.test_events, seconds_since(t0),
                static_cast<double>(n_el) / static_cast<double>(std::max(1L, n_ev)));

  // ---- model and training
  mlpf_config mc;
  mc.hidden = 64;
  mc.head_hidden = 64;
  mc.num_convs = 2;
  mc.bin_size = opt.bin_size;
  mc.seed = opt.seed;
  mlpf_loss_options lo;
  lo.regression_weight = opt.reg_weight;
  lo.class_weights = {1, 1, opt.nhad_weight, 1, 3, 3};  // none, ch.had, n.had, photon, electron, muon
  model_type model(mc);
  if (!opt.load.empty()) {
    // a file of save_model carries its config; older weight files (the same tensor names) load into mc's model
    const auto file = safetensors_file::load(opt.load);
    if (file.metadata.count("hepgnn.family")) model = load_model<model_type>(opt.load); else load_weights(model, file);
  }
  if (root) std::printf("MLPF model: %lld parameters\n", static_cast<long long>(parameter_count(model)));
  model_type::workspace ws;
  double train_seconds = 0, train_cpu_seconds = 0, train_samples = 0;
  if (!opt.load.empty()) {
    std::printf("loaded the model from %s\n", opt.load.c_str());
  } else {
    adam<T> optim({.lr = 2e-3});
    long step = 0;
    t0 = clock_type::now();
    const std::clock_t c0 = std::clock();
    // one event's focal + Huber loss gradient, added to the model's gradients
    matrix<T> x, r;
    const auto event_gradient = [&](const pf::event& e) {
      x = mlpf_inputs<T>(e.features);
      r = mlpf_regression_targets<T>(e.features, e.target_class, e.target);
      return model.train_step(x, batch::single(e.num_elements()), e.target_class, r, ws, lo);
    };
    if (!distributed) {
      const long total_steps = static_cast<long>(opt.epochs) * static_cast<long>(train.size());
      std::vector<mlpf_loss> epoch_loss(static_cast<std::size_t>(opt.epochs));
      // one event per step, in a shuffled order per epoch
      const fit_history h = fit(model, train.size(), {.epochs = opt.epochs, .batch_size = 1, .seed = opt.seed + 7, .label = "MLPF"},
                                [&](std::span<const std::size_t> items) {
        // cosine decay to 5 % of the initial rate
        const double f = static_cast<double>(step) / static_cast<double>(std::max(1L, total_steps));
        optim.set_lr(2e-3 * (0.05 + 0.95 * 0.5 * (1 + std::cos(std::numbers::pi * f))));
        zero_grad(model);
        const auto l = event_gradient(train[items[0]]);
        clip_grad_norm(model, 5.0);
        optim.step(model);
        mlpf_loss& sum = epoch_loss[static_cast<std::size_t>(step++ / static_cast<long>(train.size()))];
        sum.total += l.total;
        sum.classification += l.classification;
        sum.regression += l.regression;
        return l.total;
      });
      const double n = static_cast<double>(train.size());
      for (const epoch_record& rec : h.epochs) {
        const mlpf_loss& sum = epoch_loss[static_cast<std::size_t>(rec.epoch - 1)];
        std::printf("epoch %2d/%d  loss %.4f (focal %.4f, huber %.4f)  %.1f s\n", rec.epoch, opt.epochs, sum.total / n,
                    sum.classification / n, sum.regression / n, rec.seconds);
      }
      train_samples = static_cast<double>(opt.epochs) * n;
    } else {
      std::vector<std::size_t> sizes;
      for (int s = 0; s < micro_shards; ++s)
        sizes.push_back(static_cast<std::size_t>(opt.train_events / micro_shards + (s < opt.train_events % micro_shards ? 1 : 0)));
      const micro_shard_sampler sampler(sizes, 1, opt.seed + 7);
      const long total_steps = static_cast<long>(opt.epochs) * static_cast<long>(sampler.steps_per_epoch());
      fit_options fo{.epochs = opt.epochs, .label = "MLPF x" + std::to_string(comm.size())};
      long steps_run = 0;
      fo.before_step = [&](int, long global_step) {  // the same cosine decay, by the global step
        ++steps_run;
        const double f = static_cast<double>(global_step) / static_cast<double>(std::max(1L, total_steps));
        optim.set_lr(2e-3 * (0.05 + 0.95 * 0.5 * (1 + std::cos(std::numbers::pi * f))));
      };
      timeline trace(comm.rank());
      const fit_history h = examples::fit_data_parallel<T>(
          comm, model, optim, opt.dist, sampler, fo,
          [&](int shard, const std::vector<std::size_t>& items) {
            shard_loss sl;
            for (std::size_t i : items) {
              sl.loss_sum += event_gradient(shard_events[static_cast<std::size_t>(shard)][i]).total;
              sl.items += 1;
            }
            return sl;
          },
          [&] { clip_grad_norm(model, 5.0); }, opt.dist.trace.empty() ? nullptr : &trace);
      if (root)
        for (const epoch_record& rec : h.epochs)
          std::printf("epoch %2d/%d  loss %.4f  %.1f s\n", rec.epoch, opt.epochs, rec.train_loss, rec.seconds);
      train_samples = static_cast<double>(steps_run) * static_cast<double>(sampler.global_batch());
      if (!opt.dist.trace.empty()) {
        trace.write_chrome_trace(opt.dist.trace + "." + std::to_string(comm.rank()) + ".json");
        const double c = trace.total_us(time_kind::compute), w = trace.total_us(time_kind::wait),
                     m = trace.total_us(time_kind::communication);
        std::printf("rank %d timeline: compute %.1f s, waiting %.2f s, communication %.3f s (%.1f %% of the step)\n",
                    comm.rank(), c * 1e-6, w * 1e-6, m * 1e-6, 100 * m / std::max(1.0, c + w + m));
      }
    }
    train_seconds = seconds_since(t0);
    train_cpu_seconds = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    if (root) {
      std::printf("training: %.1f s wall, %.1f s CPU (rank 0, all threads), %.1f samples/s over %d rank(s)\n",
                  train_seconds, train_cpu_seconds, train_samples / train_seconds, comm.size());
      save_model(model, std::filesystem::path(opt.out) / "mlpf.safetensors");
      if (!opt.dist.weights_out.empty()) save_weights(model, opt.dist.weights_out);
    }
  }
  if (!root) return;
  if (opt.dist.train_only) {
    if (!opt.metrics_out.empty()) {
      std::ofstream js(opt.metrics_out);
      js << "{\n  \"ranks\": " << comm.size() << ",\n  \"micro_shards\": " << micro_shards
         << ",\n  \"parameters\": " << parameter_count(model)
         << ",\n  \"train_seconds\": " << num(train_seconds) << ",\n  \"samples\": " << num(train_samples)
         << ",\n  \"samples_per_second\": " << num(train_samples / train_seconds) << "\n}\n";
    }
    return;
  }

  // ---- working point: a neutral-hadron logit offset chosen on validation events (not the test events) so
  // that the neutral-hadron fake rate does not exceed the baseline's, keeping the highest efficiency
  const pf_baseline baseline;
  std::vector<double> offset(num_classes, 0.0);
  {
    const auto val = det.simulate(opt.seed + 555557, std::max(4, opt.test_events / 2));
    std::vector<matrix<double>> features;
    std::vector<matrix<T>> logits, regs;
    confusion_matrix cb;
    for (const auto& e : val) {
      model.reconstruct(e.features, ws);
      logits.push_back(ws.out[0]);
      regs.push_back(ws.out[1]);
      const candidates b = baseline.reconstruct(e.features);
      for (index_t i = 0; i < e.num_elements(); ++i) cb.add(e.target_class[i], b.cls[i]);
    }
    double best_eff = -1, best_off = 0;
    for (double off = 1.0; off >= -3.0; off -= 0.25) {
      std::vector<double> o(num_classes, 0.0);
      o[neutral_hadron] = off;
      confusion_matrix cm;
      for (std::size_t k = 0; k < val.size(); ++k) {
        const candidates m = mlpf_decode(val[k].features, logits[k], regs[k], true, o);
        for (index_t i = 0; i < val[k].num_elements(); ++i) cm.add(val[k].target_class[i], m.cls[i]);
      }
      const bool ok = cm.fake_rate(neutral_hadron) <= cb.fake_rate(neutral_hadron);
      if (ok && cm.efficiency(neutral_hadron) > best_eff) best_eff = cm.efficiency(neutral_hadron), best_off = off;
    }
    if (best_eff >= 0) offset[neutral_hadron] = best_off;
    std::printf("working point on %zu validation events: neutral-hadron logit offset %+.2f\n", val.size(),
                offset[neutral_hadron]);
  }

  // ---- evaluation on held-out events
  pf_evaluator ev_base, ev_mlpf, ev_truth;
  double t_base = 0, t_mlpf = 0;
  for (const auto& e : test) {
    const candidates truth = truth_candidates(e);
    auto ta = clock_type::now();
    const candidates b = baseline.reconstruct(e.features);
    t_base += seconds_since(ta);
    ta = clock_type::now();
    const candidates m = model.reconstruct(e.features, ws, offset);
    t_mlpf += seconds_since(ta);
    ev_truth.add_event(truth, truth);
    ev_base.add_event(truth, b);
    ev_mlpf.add_event(truth, m);
  }
  const pf_report rb = ev_base.report(), rm = ev_mlpf.report();
  std::printf("\nheld-out events: %d   (reference: per-element targets)\n", opt.test_events);
  std::printf("%-10s | %-27s | %-27s\n", "", "baseline", "MLPF");
  std::printf("%-10s | %8s %8s %9s | %8s %8s %9s\n", "class", "eff", "fake", "pT res", "eff", "fake", "pT res");
  for (index_t c = 1; c < num_classes; ++c)
    std::printf("%-10s | %8.3f %8.3f %9.3f | %8.3f %8.3f %9.3f\n", class_name(c), rb.confusion.efficiency(c),
                rb.confusion.fake_rate(c), rb.pt_response[c].resolution, rm.confusion.efficiency(c),
                rm.confusion.fake_rate(c), rm.pt_response[c].resolution);
  std::printf("%-10s | resp %6.3f res %6.3f      | resp %6.3f res %6.3f\n", "jets", rb.jet_response.median,
              rb.jet_response.resolution, rm.jet_response.median, rm.jet_response.resolution);
  std::printf("%-10s | resp %6.3f res %6.3f      | resp %6.3f res %6.3f\n", "MET", rb.met_response.median,
              rb.met_response.resolution, rm.met_response.median, rm.met_response.resolution);
  std::printf("%-10s | %6.2f ms / event            | %6.2f ms / event\n", "runtime", 1e3 * t_base / test.size(),
              1e3 * t_mlpf / test.size());

#ifdef HEPGNN_HAVE_FASTJET
  {  // the built-in anti-kT against FastJet on the target candidates
    long same = 0, total = 0;
    for (const auto& e : test) {
      const auto p = candidate_momenta(truth_candidates(e));
      const auto a = jets::cluster_antikt(p, 0.4, 5), b = jets::cluster_antikt_fastjet(p, 0.4, 5);
      total += static_cast<long>(b.size());
      for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) same += a[k].constituents == b[k].constituents;
    }
    std::printf("anti-kT cross-check: %ld of %ld FastJet jets (pT > 5 GeV) have identical constituents\n", same, total);
  }
#endif

  // ---- runtime versus event size
  std::vector<double> sizes, ms_base, ms_mlpf;
  for (int soft : opt.quick ? std::vector<int>{100, 400, 1600} : std::vector<int>{100, 400, 1600, 3200, 6400}) {
    toy_pf_config c = det_cfg;
    c.soft_particles = soft;
    const auto evs = toy_pf_detector(c).simulate(opt.seed + 17 + soft, 3);
    double tb = 0, tm = 0, n = 0;
    for (const auto& e : evs) {
      auto ta = clock_type::now();
      (void)baseline.reconstruct(e.features);
      tb += seconds_since(ta);
      ta = clock_type::now();
      (void)model.reconstruct(e.features, ws);
      tm += seconds_since(ta);
      n += e.num_elements();
    }
    sizes.push_back(n / 3);
    ms_base.push_back(1e3 * tb / 3);
    ms_mlpf.push_back(1e3 * tm / 3);
    std::printf("runtime at %6.0f elements: baseline %7.2f ms, MLPF %8.2f ms\n", n / 3, ms_base.back(), ms_mlpf.back());
  }

  // ---- plots
  auto confusion_plot = [](const pf_report& r, const std::string& title) {
    svg_plot::heatmap h;
    h.title = title;
    h.xlabel = "predicted";
    h.ylabel = "target";
    const auto m = r.confusion.normalized();
    for (index_t t = 0; t < num_classes; ++t) {
      h.values.emplace_back(m[t].begin(), m[t].end());
      h.row_labels.push_back(class_name(t));
      h.col_labels.push_back(class_name(t));
    }
    return h;
  };
  const auto hb = confusion_plot(rb, "baseline: confusion (row-normalised)");
  const auto hm = confusion_plot(rm, "MLPF: confusion (row-normalised)");
  svg_plot::save_grid((std::filesystem::path(opt.out) / "confusion.svg").string(), {&hb, &hm}, 2);
  svg_plot::histogram hj;
  hj.title = "jet pT response (anti-kT R=0.4, pT > 20 GeV)";
  hj.xlabel = "reco pT / target pT";
  hj.lo = 0.5;
  hj.hi = 1.5;
  hj.bins = 50;
  hj.add("baseline", rb.jet_ratios);
  hj.add("MLPF", rm.jet_ratios);
  hj.save((std::filesystem::path(opt.out) / "jet_response.svg").string());
  svg_plot::histogram hmet;
  hmet.title = "MET response";
  hmet.xlabel = "reco MET / target MET";
  hmet.lo = 0;
  hmet.hi = 2;
  hmet.bins = 40;
  hmet.add("baseline", rb.met_ratios);
  hmet.add("MLPF", rm.met_ratios);
  hmet.save((std::filesystem::path(opt.out) / "met_response.svg").string());
  svg_plot::line_plot rt("runtime per event", "elements per event", "ms", true, true);
  rt.add("baseline", sizes, ms_base).markers = true;
  rt.add("MLPF", sizes, ms_mlpf).markers = true;
  rt.save((std::filesystem::path(opt.out) / "runtime.svg").string());
  std::printf("plots written to %s/\n", opt.out.c_str());

  // ---- metrics file
  if (!opt.metrics_out.empty()) {
    std::ofstream js(opt.metrics_out);
    auto block = [&](const char* name, const pf_report& r, double ms) {
      js << "  \"" << name << "\": {\n";
      js << "    \"jet_pt_response\": " << num(r.jet_response.median) << ",\n";
      js << "    \"jet_pt_resolution\": " << num(r.jet_response.resolution) << ",\n";
      js << "    \"met_response\": " << num(r.met_response.median) << ",\n";
      js << "    \"met_resolution\": " << num(r.met_response.resolution) << ",\n";
      const char* keys[] = {"none", "chhad", "nhad", "photon", "ele", "mu"};
      for (index_t c = 1; c < num_classes; ++c) {
        js << "    \"" << keys[c] << "_efficiency\": " << num(r.confusion.efficiency(c)) << ",\n";
        js << "    \"" << keys[c] << "_fake_rate\": " << num(r.confusion.fake_rate(c)) << ",\n";
        js << "    \"" << keys[c] << "_pt_resolution\": " << num(r.pt_response[c].resolution) << ",\n";
      }
      js << "    \"ms_per_event\": " << num(ms) << "\n  },\n";
    };
    js << "{\n";
    block("baseline", rb, 1e3 * t_base / std::max<std::size_t>(1, test.size()));
    block("mlpf", rm, 1e3 * t_mlpf / std::max<std::size_t>(1, test.size()));
    js << "  \"train_events\": " << opt.train_events << ",\n  \"test_events\": " << opt.test_events
       << ",\n  \"epochs\": " << opt.epochs << ",\n  \"train_seconds\": " << num(train_seconds)
       << ",\n  \"train_cpu_seconds\": " << num(train_cpu_seconds) << "\n}\n";
    std::printf("metrics written to %s\n", opt.metrics_out.c_str());
  }
}

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  return examples::launch(argc, argv, [&](auto& comm) { run(comm, opt); });
}
