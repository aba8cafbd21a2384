#pragma once
/// @file training.hpp
/// @brief Training of the tracking pipeline's three networks, one stage after the other: each stage provides its
/// minibatch step (loss and gradients, then an Adam step) and train/trainer.hpp's fit() runs the epochs.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <numeric>
#include <string>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/radius.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/embedding.hpp"
#include "hepgnn/metrics/tracking.hpp"
#include "hepgnn/models/tracking/features.hpp"
#include "hepgnn/models/tracking/pipeline.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/train/trainer.hpp"

namespace hepgnn::tracking {

/// @brief Training settings shared by the stages.
struct train_options {
  int epochs = 10;
  double lr = 1e-3;
  int random_negatives = 8;   ///< embedding: random pairs per positive pair
  int hard_negatives = 0;     ///< embedding: hard negatives (fakes of the current radius graph) per positive pair
  double negative_weight = 1; ///< embedding: weight of the negative hinge term
  double pos_weight = 0;      ///< filter / GNN BCE positive weight; 0: n_neg / n_pos of each event, capped at 10
  bool focal = false;         ///< GNN: binary focal loss (gamma 2, alpha from pos fraction) instead of weighted BCE
  int batch_pairs = 512;      ///< embedding: positive pairs per step
  int batch_edges = 8192;     ///< filter: edges per step
  int gnn_sectors = 8;        ///< GNN: overlapping phi sectors per event, one step each
  double final_lr_fraction = 0.05;  ///< lr follows a cosine over the epochs, from lr down to lr * this
  std::uint64_t seed = 7;

  /// @brief Learning rate of epoch `epoch` (of `epochs`): cosine annealing to lr * final_lr_fraction.
  double lr_at(int epoch) const {
    HEPGNN_CHECK(lr >= 0 && final_lr_fraction >= 0, "tracking::train_options: lr and final_lr_fraction must be >= 0, ",
                 "got ", lr, ", ", final_lr_fraction);
    if (epochs <= 1) return lr;
    return cosine_schedule{lr, epochs - 1, lr * final_lr_fraction}.lr_at(epoch);
  }
};

/// @brief Progress report of one epoch: stage name, epoch, mean loss.
using progress_callback = std::function<void(const std::string& stage, int epoch, double loss)>;

/// @brief hepgnn::hinge_embedding_loss() of the pairs of two edge lists (positives: pairs of the truth graph).
template <class T>
T hinge_embedding_loss(const matrix<T>& emb, const edge_list& pos, const edge_list& neg,
                       const hinge_embedding_loss_options<T>& options = {}, loss_output<matrix<T>> grad = nullptr) {
  const auto n = static_cast<index_t>(emb.rows());  // checked here too: the message names hits
  for (const edge_list* l : {&pos, &neg})
    for (std::size_t e = 0; e < l->size(); ++e)
      HEPGNN_CHECK(l->src[e] >= 0 && l->src[e] < n && l->dst[e] >= 0 && l->dst[e] < n,
                   "tracking::hinge_embedding_loss: pair ", e, " (", l->src[e], ", ", l->dst[e],
                   ") is out of range for ", n, " embedded hits");
  return hepgnn::hinge_embedding_loss(emb, row_pairs{pos.src, pos.dst}, row_pairs{neg.src, neg.dst}, options, grad);
}

/// @brief The GNN's training graphs: each event's (filtered) graph cut into overlapping phi sectors, with the hit
/// features, edge geometry, labels and prior (filter logit) of each edge.
template <class T>
struct gnn_sector_data {
  std::vector<graph> graphs;
  std::vector<matrix<T>> labels, feats, attrs, priors;
};

namespace detail {
/// @brief Event features and truth graph, prepared once for training.
template <class T>
struct prepared_event {
  const trackml::event* ev;
  matrix<T> features;
  edge_list truth;
};
template <class T>
std::vector<prepared_event<T>> prepare(const std::vector<trackml::event>& events, const char* who) {
  std::vector<prepared_event<T>> out;
  for (const auto& ev : events) {
    HEPGNN_CHECK(ev.has_truth(), who, ": every training event needs truth");
    out.push_back({&ev, hit_features<T>(ev), truth_edges(ev)});
  }
  return out;
}
template <class T>
T auto_pos_weight(const matrix<T>& y, double requested) {
  if (requested > 0) return static_cast<T>(requested);
  const double pos = static_cast<double>(y.sum()), neg = static_cast<double>(y.size()) - pos;
  return static_cast<T>(pos > 0 ? std::clamp(neg / pos, 1.0, 10.0) : 1.0);
}

/// Runs a stage through fit(): `steps` minibatches per epoch, step(k) for k = 0, 1, ... in order (each stage draws
/// its minibatches from its own generator, the sequence the stage has always used); before an epoch's first step
/// its learning rate is set and `begin(epoch)` called (epochs from 0); the mean loss is reported through
/// `progress`. Returns the mean loss per epoch.
template <class T, class Step>
std::vector<double> fit_stage(const char* stage, std::size_t steps, const train_options& o, adam<T>& opt,
                              const progress_callback& progress, Step&& step,
                              const std::function<void(int)>& begin = {}) {
  fit_options f;
  f.epochs = o.epochs;
  f.batch_size = 1;
  f.shuffle = false;
  f.label = stage;
  f.progress = false;  // reported through `progress`
  int current = 0;
  f.before_step = [&](int epoch, long) {
    if (epoch == current) return;
    current = epoch;
    opt.set_lr(o.lr_at(epoch - 1));
    if (begin) begin(epoch - 1);
  };
  f.on_epoch_end = [&](const epoch_record& r) {
    if (progress) progress(stage, r.epoch - 1, r.train_loss);
  };
  const fit_history h = fit(steps, f, [&](std::span<const std::size_t> items) {
    return static_cast<double>(step(items[0]));
  });
  std::vector<double> losses;
  for (const auto& r : h.epochs) losses.push_back(r.train_loss);
  return losses;
}

/// Each event's filtered graph cut into `gnn_sectors` overlapping phi sectors: more, cheaper steps.
template <class T>
gnn_sector_data<T> gnn_sectors(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o) {
  auto data = prepare<T>(events, "tracking::train_gnn");
  gnn_sector_data<T> out;
  auto& [graphs, labels, feats, attrs, priors] = out;
  const int sectors = std::max(1, o.gnn_sectors);
  for (const auto& d : data) {
    matrix<T> emb;
    p.embed(d.features, emb);
    graph g = p.build_graph(d.features, emb);
    vector<T> prior, scores;
    if (p.config().use_filter) g = p.filter_graph(d.features, emb, g, scores, prior);
    const auto dst = g.destinations();
    const edge_set truth(d.truth);
    const auto n = static_cast<std::size_t>(g.num_nodes);
    for (int sct = 0; sct < sectors; ++sct) {
      std::vector<index_t> local(n, -1), rows;
      const double width = 2 * std::numbers::pi / sectors, centre = -std::numbers::pi + (sct + 0.5) * width;
      for (std::size_t i = 0; i < n; ++i) {
        double dphi = std::numbers::pi * static_cast<double>(d.features(static_cast<Eigen::Index>(i), 5)) - centre;
        dphi = std::remainder(dphi, 2 * std::numbers::pi);
        if (sectors == 1 || std::abs(dphi) <= 0.5 * width + 0.15)
          local[i] = static_cast<index_t>(rows.size()), rows.push_back(static_cast<index_t>(i));
      }
      // edges stay in CSR order (destinations ascend), so the prior of edge k is sp[k]
      std::vector<index_t> src, dd;
      std::vector<T> sp;
      for (std::size_t e = 0; e < g.sources.size(); ++e)
        if (local[g.sources[e]] >= 0 && local[dst[e]] >= 0) {
          src.push_back(local[g.sources[e]]), dd.push_back(local[dst[e]]);
          sp.push_back(prior.size() ? prior[static_cast<index_t>(e)] : T(0));
        }
      if (src.empty()) continue;
      graph sg = graph::from_edges(static_cast<index_t>(rows.size()), src, dd);
      matrix<T> f(static_cast<Eigen::Index>(rows.size()), num_hit_features), se(f.rows(), emb.cols());
      for (std::size_t r = 0; r < rows.size(); ++r)
        f.row(static_cast<Eigen::Index>(r)) = d.features.row(rows[r]), se.row(static_cast<Eigen::Index>(r)) = emb.row(rows[r]);
      attrs.push_back(p.edge_attributes(f, se, sg));
      matrix<T> y(sg.num_edges(), 1);
      for (index_t i = 0; i < sg.num_nodes; ++i)
        for (index_t e = sg.offsets[i]; e < sg.offsets[i + 1]; ++e)
          y(e, 0) = T(truth.contains(rows[sg.sources[e]], rows[i]) ? 1 : 0);
      graphs.push_back(std::move(sg)), labels.push_back(std::move(y)), feats.push_back(std::move(f));
      priors.push_back(Eigen::Map<const matrix<T>>(sp.data(), static_cast<Eigen::Index>(sp.size()), 1));
    }
  }
  return out;
}
}  // namespace detail

/// @brief What a stage's minibatch steps reuse from one step to the next.
template <class T, class Net>
struct step_workspace {
  typename Net::cache cache;
  matrix<T> out, grad, logits;
};

/// @brief The embedding stage's step on one minibatch: the hinge loss of the pairs pos / neg (rows of `hits`, the
/// features of the hits involved), its gradients in the embedding network (zeroed first), then an Adam step.
/// Returns the loss.
template <class T>
T embedding_step(pipeline<T>& p, const matrix<T>& hits, const edge_list& pos, const edge_list& neg,
                 T negative_weight, adam<T>& opt, step_workspace<T, mlp<T>>& w) {
  auto& net = p.embedding_net();
  net.forward(hits, w.out, w.cache);
  const T loss = hinge_embedding_loss(
      w.out, pos, neg, {.margin = static_cast<T>(p.config().margin), .negative_weight = negative_weight}, &w.grad);
  zero_grad(net);
  net.backward(hits, w.out, w.grad, w.cache, nullptr);
  opt.step(net);
  return loss;
}

/// @brief The filter stage's step on one minibatch of edges: weighted BCE of the filter logits of the edge
/// features (rows) against the labels, its gradients (zeroed first), then an Adam step. Returns the loss.
template <class T>
T filter_step(pipeline<T>& p, const matrix<T>& edge_features, const matrix<T>& labels, T pos_weight, adam<T>& opt,
              step_workspace<T, mlp<T>>& w) {
  auto& net = p.filter_net();
  net.forward(edge_features, w.out, w.cache);
  const T loss = bce_with_logits(w.out, labels, {.pos_weight = pos_weight}, &w.grad);
  zero_grad(net);
  net.backward(edge_features, w.out, w.grad, w.cache, nullptr);
  opt.step(net);
  return loss;
}

/// @brief The GNN stage's loss on one graph, the loss of the edge scores sigmoid(prior + GNN logit) (as
/// edge_scores() gives them; binary focal loss with `focal`, else BCE weighted by pos_weight), with its gradients
/// added to the GNN's (not zeroed: data-parallel training sums several graphs). Returns the loss.
template <class T>
T gnn_gradient(pipeline<T>& p, const matrix<T>& hits, const graph& g, const matrix<T>& edge_geometry,
               const matrix<T>& prior, const matrix<T>& labels, bool focal, double pos_weight,
               step_workspace<T, typename pipeline<T>::gnn_type>& w) {
  auto& net = p.gnn();
  net.forward(hits, g, edge_geometry, w.out, w.cache);
  w.logits = w.out + prior;  // d/dlogits is the same
  T loss;
  if (focal) {
    const double pos = static_cast<double>(labels.sum()) / static_cast<double>(labels.size());
    loss = binary_focal_loss(w.logits, labels, {.gamma = T(2), .alpha = static_cast<T>(1 - pos)}, &w.grad);
  } else {
    loss = bce_with_logits(w.logits, labels, {.pos_weight = detail::auto_pos_weight(labels, pos_weight)}, &w.grad);
  }
  net.backward(hits, g, edge_geometry, w.out, w.grad, w.cache, nullptr);
  return loss;
}

/// @brief The GNN stage's step on one graph: gnn_gradient with the gradients zeroed first, then an Adam step.
/// Returns the loss.
template <class T>
T gnn_step(pipeline<T>& p, const matrix<T>& hits, const graph& g, const matrix<T>& edge_geometry,
           const matrix<T>& prior, const matrix<T>& labels, bool focal, double pos_weight, adam<T>& opt,
           step_workspace<T, typename pipeline<T>::gnn_type>& w) {
  zero_grad(p.gnn());
  const T loss = gnn_gradient(p, hits, g, edge_geometry, prior, labels, focal, pos_weight, w);
  opt.step(p.gnn());
  return loss;
}

/// @brief The GNN's training graphs of `events` after the trained embedding and filter: each event's filtered
/// graph cut into train_options::gnn_sectors overlapping phi sectors, with hit features, edge geometry, labels and
/// priors (what train_gnn steps over; data-parallel training splits them into micro-shards).
template <class T>
gnn_sector_data<T> gnn_training_graphs(pipeline<T>& p, const std::vector<trackml::event>& events,
                                       const train_options& o) {
  return detail::gnn_sectors(p, events, o);
}

/// @brief Trains the embedding stage with minibatches of pairs: per event and epoch, hard negatives are the fake
/// edges of the current radius graph; each step takes `batch_pairs` truth-graph pairs with their random and
/// hard negatives, embeds only the hits involved and takes one Adam step. Returns the mean loss per epoch.
template <class T>
std::vector<double> train_embedding(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                                    const progress_callback& progress = {}) {
  HEPGNN_CHECK(o.batch_pairs > 0, "tracking::train_embedding: batch_pairs must be > 0, got ", o.batch_pairs);
  auto data = detail::prepare<T>(events, "tracking::train_embedding");
  const auto batch_pairs = static_cast<std::size_t>(o.batch_pairs);
  auto trainable = [&](const detail::prepared_event<T>& d) { return d.features.rows() >= 2 && d.truth.size() > 0; };
  // an epoch's minibatches: the events from one rotated by 7 per epoch, each event's pairs in batches
  struct minibatch {
    std::size_t event, first;
  };
  std::vector<minibatch> plan;
  std::size_t steps = 0;
  for (const auto& d : data)
    if (trainable(d)) steps += (d.truth.size() + batch_pairs - 1) / batch_pairs;
  auto plan_epoch = [&](int epoch) {
    plan.clear();
    for (std::size_t k = 0; k < data.size(); ++k) {
      const std::size_t e = (k + static_cast<std::size_t>(epoch) * 7) % data.size();
      if (!trainable(data[e])) continue;
      for (std::size_t b0 = 0; b0 < data[e].truth.size(); b0 += batch_pairs) plan.push_back({e, b0});
    }
  };
  adam<T> opt({.lr = o.lr});
  rng gen(o.seed);
  step_workspace<T, mlp<T>> w;
  matrix<T> emb, sub;
  std::vector<index_t> local;
  std::vector<std::size_t> order;
  edge_list hard;
  auto step = [&](std::size_t item) {
    const auto [event, b0] = plan[item];
    const auto& d = data[event];
    const auto& ev = *d.ev;
    const auto n = static_cast<index_t>(d.features.rows());
    if (b0 == 0) {  // the event's first minibatch: its hard negatives from the current embedding, its pairs shuffled
      hard = {};
      if (o.hard_negatives > 0) {  // fakes of the current radius graph
        p.embed(d.features, emb);
        radius_options ro;
        ro.max_neighbors = p.config().max_neighbors;
        const graph g = radius_graph(emb, static_cast<T>(p.config().margin), ro);
        for (index_t i = 0; i < g.num_nodes; ++i)
          for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
            const index_t s = g.sources[e];
            if (s < i && (ev.particle_id[s] == 0 || ev.particle_id[s] != ev.particle_id[i]))
              hard.src.push_back(s), hard.dst.push_back(i);
          }
      }
      order.resize(d.truth.size());
      std::iota(order.begin(), order.end(), std::size_t{0});
      gen.shuffle(order);
      local.assign(static_cast<std::size_t>(n), -1);
    }
    const std::size_t b1 = std::min(order.size(), b0 + batch_pairs);
    edge_list pos, neg;
    for (std::size_t k = b0; k < b1; ++k) pos.src.push_back(d.truth.src[order[k]]), pos.dst.push_back(d.truth.dst[order[k]]);
    const std::size_t nb = b1 - b0;
    for (std::size_t e = 0; e < nb * static_cast<std::size_t>(o.random_negatives); ++e) {
      const auto a = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(n)));
      const auto b = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(n)));
      if (a == b || (ev.particle_id[a] != 0 && ev.particle_id[a] == ev.particle_id[b])) continue;
      neg.src.push_back(a), neg.dst.push_back(b);
    }
    if (!hard.src.empty())
      for (std::size_t e = 0; e < nb * static_cast<std::size_t>(o.hard_negatives); ++e) {
        const auto h = gen.below(hard.size());
        neg.src.push_back(hard.src[h]), neg.dst.push_back(hard.dst[h]);
      }
    // gather the hits involved
    std::vector<index_t> rows;
    for (edge_list* l : {&pos, &neg})
      for (std::size_t e = 0; e < l->size(); ++e)
        for (index_t* v : {&l->src[e], &l->dst[e]}) {
          if (local[*v] < 0) local[*v] = static_cast<index_t>(rows.size()), rows.push_back(*v);
          *v = local[*v];
        }
    sub.resize(static_cast<Eigen::Index>(rows.size()), num_hit_features);
    for (std::size_t r = 0; r < rows.size(); ++r) sub.row(static_cast<Eigen::Index>(r)) = d.features.row(rows[r]);
    for (index_t r : rows) local[r] = -1;
    return embedding_step(p, sub, pos, neg, static_cast<T>(o.negative_weight), opt, w);
  };
  return detail::fit_stage("embedding", steps, o, opt, progress, step, plan_epoch);
}

/// @brief Trains the filter stage on the radius graphs of the (trained) embedding, minibatches of `batch_edges`
/// edges; returns the mean loss per epoch.
template <class T>
std::vector<double> train_filter(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                                 const progress_callback& progress = {}) {
  HEPGNN_CHECK(o.batch_edges > 0, "tracking::train_filter: batch_edges must be > 0, got ", o.batch_edges);
  auto data = detail::prepare<T>(events, "tracking::train_filter");
  std::vector<matrix<T>> feats, labels;
  for (const auto& d : data) {
    matrix<T> emb;
    p.embed(d.features, emb);
    const graph g = p.build_graph(d.features, emb);
    feats.push_back(p.edge_features(d.features, emb, g));
    labels.push_back(edge_truth<T>(*d.ev, g, d.truth));
  }
  // an epoch's minibatches: the events in order, each event's edges (shuffled per epoch) in batches
  struct minibatch {
    std::size_t event;
    Eigen::Index first;
  };
  std::vector<minibatch> plan;
  for (std::size_t k = 0; k < feats.size(); ++k)
    for (Eigen::Index b0 = 0; b0 < feats[k].rows(); b0 += o.batch_edges) plan.push_back({k, b0});
  adam<T> opt({.lr = o.lr});
  rng gen(o.seed + 1);
  step_workspace<T, mlp<T>> w;
  matrix<T> xb, yb;
  std::vector<Eigen::Index> order;
  T pw = 1;
  auto step = [&](std::size_t item) {
    const auto [k, b0] = plan[item];
    const auto ne = feats[k].rows();
    if (b0 == 0) {  // the event's first minibatch: its positive weight, its edges shuffled
      pw = detail::auto_pos_weight(labels[k], o.pos_weight);
      order.resize(static_cast<std::size_t>(ne));
      std::iota(order.begin(), order.end(), Eigen::Index{0});
      gen.shuffle(order);
    }
    const Eigen::Index nb = std::min<Eigen::Index>(o.batch_edges, ne - b0);
    xb.resize(nb, feats[k].cols());
    yb.resize(nb, 1);
    for (Eigen::Index r = 0; r < nb; ++r) xb.row(r) = feats[k].row(order[b0 + r]), yb(r, 0) = labels[k](order[b0 + r], 0);
    return filter_step(p, xb, yb, pw, opt, w);
  };
  return detail::fit_stage("filter", plan.size(), o, opt, progress, step);
}

/// @brief Trains the GNN stage on the (filtered) graphs of the trained earlier stages, one step per phi sector of
/// each event; returns the mean loss per epoch.
template <class T>
std::vector<double> train_gnn(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                              const progress_callback& progress = {}) {
  const auto s = detail::gnn_sectors(p, events, o);
  adam<T> opt({.lr = o.lr});
  step_workspace<T, typename pipeline<T>::gnn_type> w;
  auto step = [&](std::size_t k) {
    return gnn_step(p, s.feats[k], s.graphs[k], s.attrs[k], s.priors[k], s.labels[k], o.focal, o.pos_weight, opt, w);
  };
  return detail::fit_stage("gnn", s.graphs.size(), o, opt, progress, step);
}

}  // namespace hepgnn::tracking
