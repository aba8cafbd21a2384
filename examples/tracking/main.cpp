// Exa.TrkX-style tracking: simulate toy events, train the embedding, filter and GNN stages, then evaluate on
// held-out toy events and on the real TrackML sample event (trained on toy events only).
//
//   example_tracking [--quick] [--metrics-out FILE] [--out DIR] [--weights FILE] [--walkthrough | --cc]
//                    [--trackml PREFIX] [--epochs N] [--train-events N] [--gnn-train-events N] [--edge-cut X]
//                    [--filter-cut X] [--pt-min GEV]
//                    [--min-track-hits N] [--min-track-pt GEV] [--helix-xy MM] [--bf16]
//
// Cuts chosen on the validation toy events (never on the test or real events) unless given: filter cut, edge cut,
// the walkthrough's extension cut, the helix-fit limits of the track splitting and merging (--helix-xy MM fixes
// the x-y limit; 0: none) and the minimum hits per track, by track efficiency minus fake rate. Tracks also
// need a fitted pT >= 0.5 GeV (--min-track-pt; the lower end of the test spectrum, fixed). The real event is also
// evaluated without the track selection (>= 3 hits, any pT).
// Training events: the embedding and filter learn on 1000-particle events (--train-events, 32), the GNN on events of
// the test density, 2000 particles (--gnn-train-events, 16): its edges' neighbourhoods are what it classifies, and
// they are denser there (hidden 32 reached 95.0 % on the test events when trained on the sparser events, 95.8-96.3 %
// on these; docs/tracking.md).
// Track building: the walkthrough by default, connected components with --cc. --bf16: the GNN's inference takes
// bf16 products (pipeline_config::gnn_bf16; training stays float), for the cut choice and every evaluation.
// Writes DIR/event_display_xy.svg, DIR/event_display_rz.svg (real event, hits coloured by reconstructed track,
// missed hits of reconstructable particles marked), DIR/loss_curves.svg, DIR/efficiency.svg and
// DIR/tracking.safetensors (all stages' weights; --weights FILE loads them instead of training).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "../common/distributed.hpp"
#include "../common/svg_plot.hpp"
#include "hepgnn/data/toy_tracker.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/metrics/tracking.hpp"
#include "hepgnn/models/tracking.hpp"

using namespace hepgnn;
using T = float;
namespace fs = std::filesystem;

namespace {

struct args {
  bool quick = false, walkthrough = true, bf16 = false;
  std::string metrics_out, out_dir = "tracking_out", weights, trackml_prefix;
  int epochs = -1, train_events = -1, gnn_train_events = -1;
  double edge_cut = -1, filter_cut = -1, pt_min = 0.3;
  int min_track_hits = -1;  // -1: chosen on the validation events (from 3 to 9), 4 while the cuts are chosen
  double min_track_pt = 0.5;
  double helix_xy_mm = -1;  // -1: track merging chosen on the validation events; 0: none
  examples::distributed_options dist;
};

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value after " << s << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--quick") a.quick = true;
    else if (s == "--walkthrough") a.walkthrough = true;
    else if (s == "--cc") a.walkthrough = false;
    else if (s == "--metrics-out") a.metrics_out = value();
    else if (s == "--out") a.out_dir = value();
    else if (s == "--weights") a.weights = value();
    else if (s == "--trackml") a.trackml_prefix = value();
    else if (s == "--epochs") a.epochs = std::atoi(value().c_str());
    else if (s == "--edge-cut") a.edge_cut = std::atof(value().c_str());
    else if (s == "--filter-cut") a.filter_cut = std::atof(value().c_str());
    else if (s == "--train-events") a.train_events = std::atoi(value().c_str());
    else if (s == "--gnn-train-events") a.gnn_train_events = std::atoi(value().c_str());
    else if (s == "--pt-min") a.pt_min = std::atof(value().c_str());
    else if (s == "--min-track-hits") a.min_track_hits = std::atoi(value().c_str());
    else if (s == "--min-track-pt") a.min_track_pt = std::atof(value().c_str());
    else if (s == "--helix-xy") a.helix_xy_mm = std::atof(value().c_str());
    else if (s == "--bf16") a.bf16 = true;
    else if (a.dist.parse(s, value)) continue;
    else {
      std::cerr << "usage: example_tracking [--quick] [--metrics-out FILE] [--out DIR] [--weights FILE] "
                   "[--walkthrough | --cc] [--trackml PREFIX] [--epochs N] [--train-events N] [--gnn-train-events N] [--edge-cut X] "
                   "[--filter-cut X] [--pt-min GEV] [--min-track-hits N] [--min-track-pt GEV] [--helix-xy MM] [--bf16] "
                   "[data-parallel options: examples/common/distributed.hpp]\n";
      std::exit(s == "--help" ? 0 : 2);
    }
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void add(tracking::edge_metrics& a, const tracking::edge_metrics& b) {
  a.truth_edges += b.truth_edges, a.found += b.found, a.candidates += b.candidates, a.same_particle += b.same_particle;
  a.efficiency = a.truth_edges ? double(a.found) / double(a.truth_edges) : 1;
  a.purity = a.candidates ? double(a.same_particle) / double(a.candidates) : 1;
}

/// Stage-by-stage results summed over events.
struct evaluation {
  tracking::edge_metrics graph, filter, gnn;
  tracking::track_metrics tracks;
  std::vector<tracking::particle_info> particles;
  double score = 0, ms = 0, ms_embed = 0, ms_graph = 0, ms_filter = 0, ms_gnn = 0, ms_tracks = 0;
  int events = 0;
  std::vector<index_t> last_labels;
};

evaluation evaluate(const tracking::pipeline<T>& p, const std::vector<trackml::event>& events,
                    tracking::track_builder builder) {
  evaluation r;
  tracking::pipeline<T>::workspace w;
  for (const auto& ev : events) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = p.run(ev, builder, w);
    r.ms += 1000 * seconds_since(t0);
    r.ms_embed += out.ms_embed, r.ms_graph += out.ms_graph, r.ms_filter += out.ms_filter, r.ms_gnn += out.ms_gnn,
        r.ms_tracks += out.ms_tracks;
    const auto truth = tracking::truth_edges(ev);
    add(r.graph, tracking::evaluate_edges<T>(ev, out.candidate_graph, truth));
    add(r.filter, tracking::evaluate_edges<T>(ev, out.filtered_graph, truth));
    add(r.gnn, tracking::evaluate_edges<T>(ev, out.filtered_graph, truth,
                                           std::span<const T>(out.edge_scores.data(), out.edge_scores.size()),
                                           static_cast<T>(p.config().edge_cut)));
    const auto m = tracking::evaluate_tracks(ev, out.labels);
    r.tracks.reconstructable += m.reconstructable, r.tracks.matched += m.matched, r.tracks.tracks += m.tracks;
    r.tracks.fakes += m.fakes, r.tracks.duplicates += m.duplicates;
    r.particles.insert(r.particles.end(), m.particles.begin(), m.particles.end());
    if (ev.has_weights()) r.score += tracking::trackml_score(ev, out.labels);
    r.last_labels = out.labels;
    ++r.events;
  }
  auto& t = r.tracks;
  t.efficiency = t.reconstructable ? double(t.matched) / double(t.reconstructable) : 0;
  t.fake_rate = t.tracks ? double(t.fakes) / double(t.tracks) : 0;
  t.duplicate_rate = t.tracks ? double(t.duplicates) / double(t.tracks) : 0;
  const double n = std::max(1, r.events);
  r.score /= n, r.ms /= n, r.ms_embed /= n, r.ms_graph /= n, r.ms_filter /= n, r.ms_gnn /= n, r.ms_tracks /= n;
  t.particles = r.particles;
  return r;
}

void print_table(const std::string& title, const evaluation& e) {
  std::printf("\n%s (%d event%s)\n", title.c_str(), e.events, e.events == 1 ? "" : "s");
  std::printf("  %-22s %10s %10s %12s %9s\n", "stage", "edge eff", "purity", "edges/event", "ms/event");
  auto row = [&](const char* name, const tracking::edge_metrics& m, double ms) {
    std::printf("  %-22s %9.2f%% %9.2f%% %12.0f %9.1f\n", name, 100 * m.efficiency, 100 * m.purity,
                double(m.candidates) / std::max(1, e.events), ms);
  };
  std::printf("  %-22s %10s %10s %12s %9.1f\n", "embedding", "", "", "", e.ms_embed);
  row("radius graph", e.graph, e.ms_graph);
  row("filter", e.filter, e.ms_filter);
  row("GNN (score > cut)", e.gnn, e.ms_gnn);
  std::printf("  tracks: efficiency (pT > 1 GeV, >= 3 hits) %.2f%% (%zu / %zu), fake rate %.2f%%, duplicate rate "
              "%.2f%% (%zu tracks), TrackML score %.3f, %.1f ms (track building %.1f ms)\n",
              100 * e.tracks.efficiency, e.tracks.matched, e.tracks.reconstructable, 100 * e.tracks.fake_rate,
              100 * e.tracks.duplicate_rate, e.tracks.tracks, e.score, e.ms, e.ms_tracks);
}

/// Sets the cuts that maximise track efficiency minus fake rate over `events`, on grids over the ones that are
/// free: first the filter cut (a GNN pass per value), the edge cut and the walkthrough's extension cut (track
/// building only), then the minimum hits per track (track selection only).
void choose_cuts(tracking::pipeline<T>& p, const std::vector<trackml::event>& events, tracking::track_builder builder,
                 bool free_filter_cut, bool free_edge_cut, bool free_min_hits, bool free_merge) {
  std::vector<double> filter_cuts{p.config().filter_cut}, edge_cuts{p.config().edge_cut};
  if (free_filter_cut) filter_cuts = {0.05, 0.1, 0.2, 0.3, 0.5, 0.7};
  if (free_edge_cut) edge_cuts = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  // the extension cut is chosen with the edge cut; a value >= the edge cut means no extension
  std::vector<double> extend_cuts{p.config().extend_cut};
  if (free_edge_cut && builder == tracking::track_builder::walkthrough) extend_cuts = {1.0, 0.05, 0.02, 0.01, 0.003};
  std::vector<tracking::pipeline_output<T>> outs;  // for the filter cut p has when run_all() last ran
  std::vector<matrix<T>> features;
  for (const auto& ev : events) features.push_back(tracking::hit_features<T>(ev));
  auto run_all = [&] {
    outs.clear();
    for (const auto& ev : events) outs.push_back(p.run(ev));
  };
  // efficiency - fake rate over the events for the current outputs (track merging as p's configuration says)
  auto objective = [&](double ec, double xc, int min_hits) {
    const auto saved = p.config();
    p.config().edge_cut = ec, p.config().extend_cut = xc, p.config().min_track_hits = min_hits;
    std::size_t matched = 0, reconstructable = 0, fakes = 0, tracks = 0;
    for (std::size_t k = 0; k < events.size(); ++k) {
      const auto labels = p.build_tracks(features[k], outs[k].filtered_graph, outs[k].edge_scores, builder);
      const auto m = tracking::evaluate_tracks(events[k], labels);
      matched += m.matched, reconstructable += m.reconstructable, fakes += m.fakes, tracks += m.tracks;
    }
    p.config() = saved;
    return (reconstructable ? double(matched) / double(reconstructable) : 0) -
           (tracks ? double(fakes) / double(tracks) : 0);
  };
  // the cuts are chosen at 4 hits per track when the hits are chosen after them (as in training runs, also when
  // the weights come from a file that carries another value)
  if (free_min_hits) p.config().min_track_hits = 4;
  if (free_merge) p.config().helix_xy_mm = 0;  // the cuts are chosen without merging, then the merging
  double best = -2, best_fc = p.config().filter_cut, best_ec = p.config().edge_cut, best_xc = p.config().extend_cut;
  for (double fc : filter_cuts) {
    p.config().filter_cut = fc;
    run_all();
    for (double ec : edge_cuts)
      for (double xc : extend_cuts) {
        if (xc >= ec && xc != extend_cuts.front()) continue;  // no extension: tried once
        if (const double v = objective(ec, xc, p.config().min_track_hits); v > best)
          best = v, best_fc = fc, best_ec = ec, best_xc = std::min(xc, ec);
      }
  }
  const bool outs_current = p.config().filter_cut == best_fc;  // the last filter cut tried was the best
  p.config().filter_cut = best_fc, p.config().edge_cut = best_ec, p.config().extend_cut = best_xc;
  if ((free_min_hits || free_merge) && !outs_current) run_all();
  if (free_merge) {  // track merging (x-y / z residual limits in mm; none first), then the hits with it
    double best_xy = 0, best_z = p.config().helix_z_mm;
    best = objective(best_ec, best_xc, p.config().min_track_hits);
    for (const auto& [xy, z] : {std::pair{1.0, 10.0}, {2.0, 10.0}, {2.0, 20.0}, {4.0, 20.0}}) {
      p.config().helix_xy_mm = xy, p.config().helix_z_mm = z;
      if (const double v = objective(best_ec, best_xc, p.config().min_track_hits); v > best)
        best = v, best_xy = xy, best_z = z;
    }
    p.config().helix_xy_mm = best_xy, p.config().helix_z_mm = best_z;
  }
  if (free_min_hits) {
    for (int h = 3; h <= 9; ++h)
      if (const double v = objective(best_ec, best_xc, h); v > best) best = v, p.config().min_track_hits = h;
  }
  char extension[32] = "none", merging[64] = "none";
  if (best_xc < best_ec) std::snprintf(extension, sizeof extension, "%.3f", best_xc);
  if (p.config().helix_xy_mm > 0)
    std::snprintf(merging, sizeof merging, "x-y %.1f mm, z %.1f mm", p.config().helix_xy_mm, p.config().helix_z_mm);
  std::printf("cuts chosen on %zu validation event%s: filter cut %.2f, edge cut %.2f, extension cut %s, track "
              "splitting and merging %s, >= %d hits per track (efficiency - fake rate %.3f)\n",
              events.size(), events.size() == 1 ? "" : "s", best_fc, best_ec, extension, merging,
              p.config().min_track_hits, best);
}

/// Event display of one event: hits coloured by track, noise/unassigned grey, missed hits of reconstructable
/// particles (pT > 1 GeV, >= 3 hits, not matched) marked in black.
void event_display(const trackml::event& ev, const std::vector<index_t>& labels,
                   const tracking::track_metrics& m, const std::string& dir) {
  std::unordered_map<std::int64_t, bool> missed;
  for (const auto& p : m.particles) missed[p.particle_id] = !p.matched && p.pt > 1 && p.nhits >= 3;
  for (int view = 0; view < 2; ++view) {
    svg_plot::scatter s;
    s.title = view == 0 ? "real TrackML event: x-y, hits coloured by reconstructed track"
                        : "real TrackML event: r-z, hits coloured by reconstructed track";
    s.xlabel = view == 0 ? "x [mm]" : "z [mm]";
    s.ylabel = view == 0 ? "y [mm]" : "r [mm]";
    std::vector<std::vector<double>> xs(11), ys(11);  // 10 palette colours + unassigned
    std::vector<double> mx, my;
    for (std::size_t i = 0; i < ev.num_hits(); ++i) {
      const double a = view == 0 ? ev.x[i] : ev.z[i], b = view == 0 ? ev.y[i] : ev.r(i);
      const int k = labels[i] >= 0 ? labels[i] % 10 : 10;
      xs[k].push_back(a), ys[k].push_back(b);
      if (ev.particle_id[i] != 0 && missed[ev.particle_id[i]]) mx.push_back(a), my.push_back(b);
    }
    auto& u = s.add("no track", xs[10], ys[10]);
    u.color = "#bbbbbb", u.marker_radius = 1.2;
    for (int k = 0; k < 10; ++k) {
      auto& t = s.add(k == 0 ? "tracks" : "", xs[k], ys[k]);
      t.color = svg_plot::palette(static_cast<std::size_t>(k)), t.marker_radius = 1.5, t.opacity = 0.9;
    }
    auto& ms = s.add("missed (pT > 1 GeV)", mx, my);
    ms.color = "#000000", ms.marker_radius = 3, ms.opacity = 0.8;
    s.save(dir + (view == 0 ? "/event_display_xy.svg" : "/event_display_rz.svg"), 900, 800);
  }
}

}  // namespace

template <class Comm>
void run(Comm& comm, const args& a) {
  const bool root = comm.rank() == 0;
  // data-parallel: the GNN stage over micro-shards of its training events (the embedding and filter stages, a
  // few percent of the training time, train on every rank alike: deterministic, so their weights agree)
  const bool distributed = comm.size() > 1 || a.dist.requested;
  const int micro_shards = a.dist.micro_shards > 0 ? a.dist.micro_shards : comm.size();
  if (root) fs::create_directories(a.out_dir);
  const bool quick = a.quick;
  const int n_train = a.train_events > 0 ? a.train_events : quick ? 4 : 32;
  const int n_train_gnn = a.gnn_train_events > 0 ? a.gnn_train_events : quick ? 2 : 16;
  const int n_test = quick ? 1 : 3, n_val = quick ? 1 : 2;
  // epochs per stage: the filter and GNN steps are cheap, the embedding's are not
  const int epochs_embed = a.epochs > 0 ? a.epochs : quick ? 3 : 6;
  const int epochs_filter = a.epochs > 0 ? a.epochs : quick ? 3 : 20;
  const int epochs_gnn = a.epochs > 0 ? a.epochs : quick ? 3 : 120;

  // --- simulation: training events with pile-up-like vertex spread, held-out 2000-particle test events
  toy::tracker_config train_cfg;
  train_cfg.num_particles = 1000;
  train_cfg.num_vertices = 20;
  train_cfg.noise_fraction = 0.15;
  toy::tracker_config test_cfg = train_cfg;
  test_cfg.num_particles = 2000;
  // training spectrum reaches below the test spectrum's 0.5 GeV: real events have many soft particles
  train_cfg.pt_min = a.pt_min;
  auto t_sim = std::chrono::steady_clock::now();
  std::vector<trackml::event> train, train_gnn, val, test;
  for (int i = 0; i < n_train; ++i) train.push_back(toy::simulate_event(train_cfg, 1000 + i));
  toy::tracker_config train_gnn_cfg = train_cfg;
  train_gnn_cfg.num_particles = test_cfg.num_particles;
  // data-parallel: event i is in micro-shard i % M, and a rank simulates only the events of its micro-shards
  std::vector<std::vector<trackml::event>> shard_gnn_events(static_cast<std::size_t>(distributed ? micro_shards : 0));
  if (!distributed) {
    for (int i = 0; i < n_train_gnn; ++i) train_gnn.push_back(toy::simulate_event(train_gnn_cfg, 5000 + i));
  } else {
    const auto members = split_round_robin(static_cast<std::size_t>(n_train_gnn), micro_shards);
    for (int sh : owned_shards(micro_shards, comm.rank(), comm.size()))
      for (std::size_t i : members[static_cast<std::size_t>(sh)])
        shard_gnn_events[static_cast<std::size_t>(sh)].push_back(toy::simulate_event(train_gnn_cfg, 5000 + static_cast<int>(i)));
  }
  for (int i = 0; i < n_val; ++i) val.push_back(toy::simulate_event(test_cfg, 800000 + i));
  for (int i = 0; i < n_test; ++i) test.push_back(toy::simulate_event(test_cfg, 900000 + i));
  std::size_t train_hits = 0;
  for (const auto& ev : train) train_hits += ev.num_hits();
  if (root)
    std::printf("simulated %d training events (%d particles, pT > %.2f GeV, %zu hits in all), %d GNN training events "
              "(%d particles), %d validation and %d test events (2000 particles) in %.2f s\n", n_train,
              train_cfg.num_particles, train_cfg.pt_min, train_hits, n_train_gnn, train_gnn_cfg.num_particles, n_val,
              n_test, seconds_since(t_sim));

  // --- real event
  std::string prefix = a.trackml_prefix;
  if (prefix.empty()) prefix = std::string(HEPGNN_SOURCE_DIR) + "/tests/data/trackml/event000000001";
  trackml::event real;
  bool have_real = false;
  try {
    real = trackml::read_event(prefix);
    have_real = true;
    if (root) std::printf("real event %s: %zu hits, %zu particles\n", prefix.c_str(), real.num_hits(), real.particles.size());
  } catch (const hepgnn::error& e) {
    if (root) std::printf("real event not available: %s\n", e.what());
  }

  // --- pipeline and training
  tracking::pipeline_config cfg;
  cfg.min_track_hits = a.min_track_hits > 0 ? a.min_track_hits : 4;
  cfg.min_track_pt = a.min_track_pt;
  tracking::pipeline<T> p(cfg);
  std::vector<double> loss_embed, loss_filter, loss_gnn;
  double train_seconds = 0;
  if (!a.weights.empty()) {
    p = tracking::pipeline<T>::load(a.weights);
    if (a.min_track_hits > 0) p.config().min_track_hits = a.min_track_hits;
    p.config().min_track_pt = a.min_track_pt;
    std::printf("loaded weights from %s\n", a.weights.c_str());
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    auto progress = [&](const std::string& stage, int epoch, double loss) {
      if (root) std::fprintf(stderr, "  %-9s epoch %3d  loss %.5f  (%.0f s)\n", stage.c_str(), epoch + 1, loss, seconds_since(t0));
    };
    tracking::train_options o;
    o.epochs = epochs_embed;
    o.lr = 1e-2;
    o.hard_negatives = 2;
    loss_embed = tracking::train_embedding(p, train, o, progress);
    o.epochs = epochs_filter;
    o.lr = 3e-3;
    o.batch_edges = 2048;
    loss_filter = tracking::train_filter(p, train, o, progress);
    o.epochs = epochs_gnn;
    if (!distributed) {
      loss_gnn = tracking::train_gnn(p, train_gnn, o, progress);
    } else {
      std::vector<tracking::gnn_sector_data<T>> sectors(static_cast<std::size_t>(micro_shards));
      std::vector<std::size_t> sizes(static_cast<std::size_t>(micro_shards));
      for (int sh : owned_shards(micro_shards, comm.rank(), comm.size()))
        sectors[static_cast<std::size_t>(sh)] = tracking::gnn_training_graphs(p, shard_gnn_events[static_cast<std::size_t>(sh)], o);
      // every rank needs every micro-shard's size (the steps per epoch): a sum where only the owner is non-zero
      std::vector<std::int64_t> counts(static_cast<std::size_t>(micro_shards), 0);
      for (int sh : owned_shards(micro_shards, comm.rank(), comm.size()))
        counts[static_cast<std::size_t>(sh)] = static_cast<std::int64_t>(sectors[static_cast<std::size_t>(sh)].graphs.size());
      comm.allreduce_sum(counts.data(), counts.size());
      for (std::size_t sh = 0; sh < sizes.size(); ++sh) sizes[sh] = static_cast<std::size_t>(counts[sh]);
      adam<T> opt({.lr = o.lr});
      tracking::step_workspace<T, typename tracking::pipeline<T>::gnn_type> w;
      const micro_shard_sampler sampler(sizes, 1, 4242);
      fit_options fo{.epochs = o.epochs, .label = "GNN x" + std::to_string(comm.size())};
      fo.progress = false;
      fo.on_epoch_end = [&](const epoch_record& r) { progress("gnn", r.epoch - 1, r.train_loss); };
      const fit_history h = examples::fit_data_parallel<T>(
          comm, p.gnn(), opt, a.dist, sampler, fo,
          [&](int sh, const std::vector<std::size_t>& items) {
            auto& d = sectors[static_cast<std::size_t>(sh)];
            shard_loss sl;
            for (std::size_t k : items) {
              sl.loss_sum += tracking::gnn_gradient(p, d.feats[k], d.graphs[k], d.attrs[k], d.priors[k], d.labels[k],
                                                    o.focal, o.pos_weight, w);
              sl.items += 1;
            }
            return sl;
          },
          {});
      for (const auto& r : h.epochs) loss_gnn.push_back(r.train_loss);
    }
    train_seconds = seconds_since(t0);
    if (root) std::printf("trained all stages in %.1f s%s\n", train_seconds,
                          distributed ? (" (GNN data-parallel over " + std::to_string(comm.size()) + " rank(s))").c_str() : "");
    if (root && !a.dist.weights_out.empty()) save_weights(p.gnn(), a.dist.weights_out);
  }
  if (!root || a.dist.train_only) return;

  // --- cuts: given on the command line, or chosen on the validation events (never on the test events)
  const auto builder = a.walkthrough ? tracking::track_builder::walkthrough : tracking::track_builder::connected_components;
  p.config().gnn_bf16 = a.bf16;
  if (a.bf16) std::printf("GNN inference with bf16 products (%s)\n", simd::has_bf16_dot ? "AVX-512 BF16" : "emulated in float");
  if (a.edge_cut >= 0) p.config().edge_cut = a.edge_cut;
  if (a.filter_cut >= 0) p.config().filter_cut = a.filter_cut;
  if (a.helix_xy_mm >= 0) p.config().helix_xy_mm = a.helix_xy_mm;
  if (a.edge_cut < 0 || a.filter_cut < 0 || a.min_track_hits < 0 || a.helix_xy_mm < 0)
    choose_cuts(p, val, builder, a.filter_cut < 0, a.edge_cut < 0, a.min_track_hits < 0, a.helix_xy_mm < 0);
  if (a.weights.empty()) p.save(a.out_dir + "/tracking.safetensors");  // with the chosen cuts in its metadata
  const auto toy_eval = evaluate(p, test, builder);
  print_table(std::string("toy test events, 2000 particles, ") + (a.walkthrough ? "walkthrough" : "connected components"),
              toy_eval);
  evaluation real_eval, real_all;
  if (have_real) {
    real_eval = evaluate(p, {real}, builder);
    print_table("real TrackML sample event (trained on toy events only)", real_eval);
    event_display(real, real_eval.last_labels, real_eval.tracks, a.out_dir);
    const auto selected = p.config();  // the same event without the track selection
    p.config().min_track_hits = 3, p.config().min_track_pt = 0;
    real_all = evaluate(p, {real}, builder);
    p.config() = selected;
    std::printf("  without the track selection (>= 3 hits, any pT): efficiency %.2f%% (%zu / %zu), fake rate %.2f%%, "
                "duplicate rate %.2f%% (%zu tracks), TrackML score %.3f\n",
                100 * real_all.tracks.efficiency, real_all.tracks.matched, real_all.tracks.reconstructable,
                100 * real_all.tracks.fake_rate, 100 * real_all.tracks.duplicate_rate, real_all.tracks.tracks,
                real_all.score);
  }

  // --- pictures: loss curves and efficiency versus pT / eta
  {
    svg_plot::line_plot l;
    l.title = "training loss per epoch";
    l.xlabel = "epoch";
    l.ylabel = "loss";
    l.log_y = true;
    auto series = [&](const char* name, const std::vector<double>& v) {
      std::vector<double> x(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) x[i] = double(i + 1);
      if (!v.empty()) l.add(name, x, v).markers = true;
    };
    series("embedding (hinge)", loss_embed);
    series("filter (BCE)", loss_filter);
    series("GNN (BCE)", loss_gnn);
    l.save(a.out_dir + "/loss_curves.svg");
    svg_plot::line_plot ept, eeta;
    ept.title = "track efficiency vs pT";
    ept.xlabel = "pT [GeV]";
    ept.ylabel = "efficiency";
    ept.log_x = true;
    eeta.title = "track efficiency vs eta (pT > 1 GeV)";
    eeta.xlabel = "eta";
    eeta.ylabel = "efficiency";
    const std::vector<double> pt_edges{0.1, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20};
    std::vector<double> eta_edges;
    for (double e = -4; e <= 4.001; e += 0.5) eta_edges.push_back(e);
    tracking::track_selection all;
    all.pt_min = 0;
    for (int which = 0; which < 2; ++which) {
      const evaluation& e = which == 0 ? toy_eval : real_eval;
      if (e.events == 0) continue;
      const char* name = which == 0 ? "toy" : "real TrackML";
      std::vector<double> x, y;
      for (const auto& b : tracking::efficiency_binned(e.tracks, pt_edges, false, all))
        if (b.reconstructable) x.push_back(std::sqrt(b.lo * b.hi)), y.push_back(b.efficiency());
      ept.add(name, x, y).markers = true;
      x.clear(), y.clear();
      for (const auto& b : tracking::efficiency_binned(e.tracks, eta_edges, true))
        if (b.reconstructable) x.push_back(0.5 * (b.lo + b.hi)), y.push_back(b.efficiency());
      eeta.add(name, x, y).markers = true;
    }
    svg_plot::save_grid(a.out_dir + "/efficiency.svg", {&ept, &eeta}, 2);
  }

  if (!a.metrics_out.empty()) {
    std::ofstream j(a.metrics_out);
    j << "{\n";
    j << "  \"real.track_efficiency_pt1\": " << real_eval.tracks.efficiency << ",\n";
    j << "  \"real.fake_rate\": " << real_eval.tracks.fake_rate << ",\n";
    j << "  \"real.duplicate_rate\": " << real_eval.tracks.duplicate_rate << ",\n";
    j << "  \"real.trackml_score\": " << real_eval.score << ",\n";
    j << "  \"real.available\": " << (have_real ? "true" : "false") << ",\n";
    j << "  \"real.no_selection.track_efficiency_pt1\": " << real_all.tracks.efficiency << ",\n";
    j << "  \"real.no_selection.fake_rate\": " << real_all.tracks.fake_rate << ",\n";
    j << "  \"real.no_selection.trackml_score\": " << real_all.score << ",\n";
    j << "  \"min_track_hits\": " << p.config().min_track_hits << ",\n";
    j << "  \"helix_xy_mm\": " << p.config().helix_xy_mm << ",\n";
    j << "  \"helix_z_mm\": " << p.config().helix_z_mm << ",\n";
    j << "  \"min_track_pt\": " << p.config().min_track_pt << ",\n";
    j << "  \"toy.track_efficiency_pt1\": " << toy_eval.tracks.efficiency << ",\n";
    j << "  \"toy.fake_rate\": " << toy_eval.tracks.fake_rate << ",\n";
    j << "  \"toy.duplicate_rate\": " << toy_eval.tracks.duplicate_rate << ",\n";
    j << "  \"toy.trackml_score\": " << toy_eval.score << ",\n";
    j << "  \"toy.graph_edge_efficiency\": " << toy_eval.graph.efficiency << ",\n";
    j << "  \"toy.gnn_edge_efficiency\": " << toy_eval.gnn.efficiency << ",\n";
    j << "  \"toy.gnn_edge_purity\": " << toy_eval.gnn.purity << ",\n";
    j << "  \"filter_cut\": " << p.config().filter_cut << ",\n";
    j << "  \"edge_cut\": " << p.config().edge_cut << ",\n";
    j << "  \"extend_cut\": " << p.config().extend_cut << ",\n";
    j << "  \"train_seconds\": " << train_seconds << ",\n";
    j << "  \"infer_ms_per_event\": " << toy_eval.ms << ",\n";
    j << "  \"quick\": " << (quick ? "true" : "false") << "\n";
    j << "}\n";
    std::printf("metrics written to %s\n", a.metrics_out.c_str());
  }
}

int main(int argc, char** argv) {
  try {
    const args a = parse(argc, argv);
    return examples::launch(argc, argv, [&](auto& comm) { run(comm, a); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example_tracking: %s\n", e.what());
    return 1;
  }
}
