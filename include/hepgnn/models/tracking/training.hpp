#pragma once
/// @file training.hpp
/// @brief Training of the tracking pipeline's three networks, one stage after the other.

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
}  // namespace detail

/// @brief Trains the embedding stage with minibatches of pairs: per event and epoch, hard negatives are the fake
/// edges of the current radius graph; each step takes `batch_pairs` truth-graph pairs with their random and
/// hard negatives, embeds only the hits involved and takes one Adam step. Returns the mean loss per epoch.
template <class T>
std::vector<double> train_embedding(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                                    const progress_callback& progress = {}) {
  auto data = detail::prepare<T>(events, "tracking::train_embedding");
  auto& net = p.embedding_net();
  adam<T> opt({.lr = o.lr});
  rng gen(o.seed);
  typename mlp<T>::cache cache;
  matrix<T> emb, sub, sub_emb, grad;
  std::vector<double> history;
  std::vector<index_t> local;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    opt.set_lr(o.lr_at(epoch));
    double total = 0;
    long steps = 0;
    for (std::size_t k = 0; k < data.size(); ++k) {
      const auto& d = data[(k + static_cast<std::size_t>(epoch) * 7) % data.size()];
      const auto& ev = *d.ev;
      const auto n = static_cast<index_t>(d.features.rows());
      if (n < 2 || d.truth.size() == 0) continue;
      edge_list hard;
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
      std::vector<std::size_t> order(d.truth.size());
      std::iota(order.begin(), order.end(), std::size_t{0});
      gen.shuffle(order);
      local.assign(static_cast<std::size_t>(n), -1);
      for (std::size_t b0 = 0; b0 < order.size(); b0 += static_cast<std::size_t>(o.batch_pairs)) {
        const std::size_t b1 = std::min(order.size(), b0 + static_cast<std::size_t>(o.batch_pairs));
        edge_list pos, neg;
        for (std::size_t k2 = b0; k2 < b1; ++k2) pos.src.push_back(d.truth.src[order[k2]]), pos.dst.push_back(d.truth.dst[order[k2]]);
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
        net.forward(sub, sub_emb, cache);
        const T loss = hinge_embedding_loss(sub_emb, pos, neg,
                                            {.margin = static_cast<T>(p.config().margin),
                                             .negative_weight = static_cast<T>(o.negative_weight)}, &grad);
        zero_grad(net);
        net.backward(sub, sub_emb, grad, cache, nullptr);
        opt.step(net);
        total += static_cast<double>(loss);
        ++steps;
      }
    }
    history.push_back(total / static_cast<double>(std::max<long>(1, steps)));
    if (progress) progress("embedding", epoch, history.back());
  }
  return history;
}

/// @brief Trains the filter stage on the radius graphs of the (trained) embedding, minibatches of `batch_edges`
/// edges; returns the mean loss per epoch.
template <class T>
std::vector<double> train_filter(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                                 const progress_callback& progress = {}) {
  auto data = detail::prepare<T>(events, "tracking::train_filter");
  std::vector<matrix<T>> feats, labels;
  for (const auto& d : data) {
    matrix<T> emb;
    p.embed(d.features, emb);
    const graph g = p.build_graph(d.features, emb);
    feats.push_back(p.edge_features(d.features, emb, g));
    labels.push_back(edge_truth<T>(*d.ev, g, d.truth));
  }
  auto& net = p.filter_net();
  adam<T> opt({.lr = o.lr});
  rng gen(o.seed + 1);
  typename mlp<T>::cache cache;
  matrix<T> logits, grad, xb, yb;
  std::vector<double> history;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    opt.set_lr(o.lr_at(epoch));
    double total = 0;
    long steps = 0;
    for (std::size_t k = 0; k < feats.size(); ++k) {
      const auto ne = feats[k].rows();
      if (ne == 0) continue;
      const T pw = detail::auto_pos_weight(labels[k], o.pos_weight);
      std::vector<Eigen::Index> order(static_cast<std::size_t>(ne));
      std::iota(order.begin(), order.end(), Eigen::Index{0});
      gen.shuffle(order);
      for (Eigen::Index b0 = 0; b0 < ne; b0 += o.batch_edges) {
        const Eigen::Index nb = std::min<Eigen::Index>(o.batch_edges, ne - b0);
        xb.resize(nb, feats[k].cols());
        yb.resize(nb, 1);
        for (Eigen::Index r = 0; r < nb; ++r) xb.row(r) = feats[k].row(order[b0 + r]), yb(r, 0) = labels[k](order[b0 + r], 0);
        net.forward(xb, logits, cache);
        const T loss = bce_with_logits(logits, yb, {.pos_weight = pw}, &grad);
        zero_grad(net);
        net.backward(xb, logits, grad, cache, nullptr);
        opt.step(net);
        total += static_cast<double>(loss);
        ++steps;
      }
    }
    history.push_back(total / static_cast<double>(std::max<long>(1, steps)));
    if (progress) progress("filter", epoch, history.back());
  }
  return history;
}

/// @brief Trains the GNN stage on the (filtered) graphs of the trained earlier stages; returns the mean loss per
/// epoch.
template <class T>
std::vector<double> train_gnn(pipeline<T>& p, const std::vector<trackml::event>& events, const train_options& o,
                              const progress_callback& progress = {}) {
  auto data = detail::prepare<T>(events, "tracking::train_gnn");
  // Each event's filtered graph is cut into `gnn_sectors` overlapping phi sectors: more, cheaper steps.
  std::vector<graph> graphs;
  std::vector<matrix<T>> labels, feats, attrs, priors;
  const int sectors = std::max(1, o.gnn_sectors);
  for (const auto& d : data) {
    matrix<T> emb;
    p.embed(d.features, emb);
    graph g = p.build_graph(d.features, emb);
    vector<T> prior, scores;
    if (p.config().use_filter) g = p.filter_graph(d.features, emb, g, scores, prior);
    const auto dst = g.destinations();
    const detail::edge_set truth(d.truth);
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
  auto& net = p.gnn();
  adam<T> opt({.lr = o.lr});
  typename pipeline<T>::gnn_type::cache cache;
  matrix<T> logits, total_logits, grad;
  std::vector<double> history;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    opt.set_lr(o.lr_at(epoch));
    double total = 0;
    for (std::size_t k = 0; k < graphs.size(); ++k) {
      if (graphs[k].num_edges() == 0) continue;
      net.forward(feats[k], graphs[k], attrs[k], logits, cache);
      total_logits = logits + priors[k];  // the loss sees the score of edge_scores(); d/dlogits is the same
      T loss;
      if (o.focal) {
        const double pos = static_cast<double>(labels[k].sum()) / static_cast<double>(labels[k].size());
        loss = binary_focal_loss(total_logits, labels[k], {.gamma = T(2), .alpha = static_cast<T>(1 - pos)}, &grad);
      } else {
        loss = bce_with_logits(total_logits, labels[k],
                               {.pos_weight = detail::auto_pos_weight(labels[k], o.pos_weight)}, &grad);
      }
      zero_grad(net);
      net.backward(feats[k], graphs[k], attrs[k], logits, grad, cache, nullptr);
      opt.step(net);
      total += static_cast<double>(loss);
    }
    history.push_back(total / static_cast<double>(std::max<std::size_t>(1, graphs.size())));
    if (progress) progress("gnn", epoch, history.back());
  }
  return history;
}

}  // namespace hepgnn::tracking
