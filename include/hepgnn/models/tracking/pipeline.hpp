#pragma once
/// @file pipeline.hpp
/// @brief The tracking pipeline: its three networks (embedding, filter, GNN), the stages that run them, and the
/// weight file holding all three with the configuration (io/model_file.hpp's model shape, family "tracking").

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/edge_selection.hpp"
#include "hepgnn/graph/radius.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/models/tracking/config.hpp"
#include "hepgnn/models/tracking/features.hpp"
#include "hepgnn/models/tracking/helix.hpp"
#include "hepgnn/models/tracking/mending.hpp"
#include "hepgnn/models/tracking/track_building.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/mlp.hpp"

namespace hepgnn::tracking {

/// @brief What one inference pass produced, stage by stage.
template <class T>
struct pipeline_output {
  matrix<T> embedding;          ///< N x embedding_dim
  graph candidate_graph;        ///< after the radius graph (directed outward)
  graph filtered_graph;         ///< after the filter (same as candidate_graph without it)
  vector<T> filter_scores;      ///< per candidate edge (empty without filter)
  vector<T> edge_scores;        ///< GNN score per filtered edge, in filtered_graph's CSR order
  std::vector<index_t> labels;  ///< track label per hit (-1: no track)
  double ms_embed = 0, ms_graph = 0, ms_filter = 0, ms_gnn = 0, ms_tracks = 0;  ///< stage timings
};

/// @brief The three trainable stages and the glue between them: a flat struct of the embedding and filter MLPs
/// and the GNN chain.
template <class T = float>
class pipeline {
 public:
  using scalar = T;
  using config_type = pipeline_config;
  static constexpr std::string_view family = "tracking";
  /// 1: files of save() before io/model_file.hpp ("tracking.*" keys only, read by load()); 2: save_model's.
  static constexpr int format_version = 2;
  using gnn_layer = interaction_network<T>;
  /// The GNN: hit features (node rows), the filtered graph and its edge geometry (edge_attributes(), the edge
  /// features) -> one logit per edge. The interaction network is the chain's one element: its blocked edge
  /// network keeps each block's edge update, aggregation and output head in cache.
  using gnn_type = graph_sequential<T, num_hit_features, gnn_layer>;

  explicit pipeline(const pipeline_config& c = {}) : cfg_(checked(c)), gen_(c.seed) {
    std::vector<int> widths{num_hit_features};
    for (int l = 0; l + 1 < c.embedding_layers; ++l) widths.push_back(c.embedding_hidden);
    widths.push_back(c.embedding_dim);
    embedding_ = std::make_unique<mlp<T>>(gen_, widths, mlp_options{activation_kind::tanh, false});
    filter_ = std::make_unique<mlp<T>>(gen_, std::vector<int>{num_edge_features, c.filter_hidden, c.filter_hidden, 1},
                                       mlp_options{activation_kind::relu, false});
    typename gnn_layer::options o;
    o.in = num_hit_features;
    o.edge_in = num_edge_geometry;
    o.hidden = c.gnn_hidden;
    o.iterations = c.gnn_iterations;
    o.shared_weights = c.gnn_shared_weights;
    o.source_aggregation = c.gnn_source_aggregation;
    gnn_ = std::make_unique<gnn_type>(gnn_layer(gen_, o));
  }

  const pipeline_config& config() const { return cfg_; }
  pipeline_config& config() { return cfg_; }
  mlp<T>& embedding_net() { return *embedding_; }
  mlp<T>& filter_net() { return *filter_; }
  gnn_type& gnn() { return *gnn_; }

  /// @brief All trainable tensors: "embedding.*", "filter.*", "gnn.*" (the interaction network's names, without
  /// the chain's element index).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    embedding_->for_each_param(prefix + "embedding.", f);
    filter_->for_each_param(prefix + "filter.", f);
    gnn_->template get<0>().for_each_param(prefix + "gnn.", f);
  }

  /// @brief Reusable buffers of the stages' networks: run() and the stage functions given one reuse them from
  /// event to event. The GNN's edge activations are tens of MB at 2000 particles, and fresh pages on every call
  /// cost about as much as the GNN itself with glibc's allocator. One workspace per thread.
  struct workspace {
    /// One thread's share of the filter: its current block of edges' features, the network's activations.
    struct filter_block {
      matrix<T> edge_features, logits;
      typename mlp<T>::cache net;
    };
    typename mlp<T>::cache embedding;
    std::vector<filter_block> filter;  ///< per thread
    typename gnn_type::cache gnn;
    matrix<T> logits, edge_attributes;
    radius_workspace<T> radius;
    graph radius_graph;  ///< before orientation
  };

  /// @brief Stage 1: embedding of hit features (N x num_hit_features) into N x embedding_dim.
  void embed(const matrix<T>& features, matrix<T>& out) const {
    workspace w;
    embed(features, out, w);
  }
  void embed(const matrix<T>& features, matrix<T>& out, workspace& w) const {
    check_cols(features, num_hit_features, "tracking::pipeline::embed: features");
    embedding_->infer(features, out, w.embedding);
  }

  /// @brief Stage 2: radius graph in the embedding, as directed edges from the hit nearer the origin (by the
  /// distance in (r, z) of the features) to the farther one, without duplicates.
  graph build_graph(const matrix<T>& features, const matrix<T>& embedding) const {
    workspace w;
    return build_graph(features, embedding, w);
  }
  graph build_graph(const matrix<T>& features, const matrix<T>& embedding, workspace& w) const {
    check_rows(embedding, features.rows(), "tracking::pipeline::build_graph: embedding");
    const auto n = static_cast<index_t>(features.rows());
    if (n == 0) return graph::from_edges(0, {}, {});
    radius_options ro;
    ro.max_neighbors = cfg_.max_neighbors;
    const auto d = static_cast<int>(embedding.cols());
    radius_graph_into(embedding.data(), n, d, d, static_cast<T>(cfg_.margin), batch::single(n), ro, w.radius_graph,
                      w.radius);
    return orient_outward(features, w.radius_graph);
  }

  /// @brief The free functions of the stages without networks, as members for existing callers.
  static std::vector<index_t> order_by_distance(const matrix<T>& features) {
    return tracking::order_by_distance(features);
  }
  static graph orient_outward(const matrix<T>& features, const graph& g) {
    return tracking::orient_outward(features, g);
  }
  static graph select_edges(const graph& g, const vector<T>& scores, T cut, std::vector<index_t>* kept = nullptr) {
    return hepgnn::select_edges(g, scores, cut, kept);
  }
  static std::vector<index_t> build_tracks_cc(const graph& g, const vector<T>& scores, T cut, int min_hits = 3) {
    return tracking::build_tracks_cc(g, scores, cut, min_hits);
  }
  static std::vector<index_t> build_tracks_walkthrough(const matrix<T>& features, const graph& g,
                                                       const vector<T>& scores, T cut, int min_hits = 3,
                                                       T extend_cut = std::numeric_limits<T>::infinity()) {
    return tracking::build_tracks_walkthrough(features, g, scores, cut, min_hits, extend_cut);
  }
  using helix_fit = tracking::helix_fit;
  static helix_fit fit_helix(const matrix<T>& features, std::span<const index_t> hits) {
    return tracking::fit_helix(features, hits);
  }
  static helix_fit fit_helix_within(const matrix<T>& features, std::span<const index_t> hits, double xy_limit_mm) {
    return tracking::fit_helix_within(features, hits, xy_limit_mm);
  }
  static double fitted_pt(const matrix<T>& features, std::span<const index_t> hits, double b_field) {
    return tracking::fitted_pt(features, hits, b_field);
  }
  static std::vector<index_t> split_and_merge_tracks(const matrix<T>& features, const std::vector<index_t>& labels,
                                                     double max_xy_mm, double max_z_mm) {
    return tracking::split_and_merge_tracks(features, labels, max_xy_mm, max_z_mm);
  }
  static std::vector<index_t> select_tracks(const matrix<T>& features, const std::vector<index_t>& labels,
                                            int min_hits, double min_pt, double b_field) {
    return tracking::select_tracks(features, labels, min_hits, min_pt, b_field);
  }

  /// @brief Filter edge features (E x num_edge_features): source and destination hit features, then
  /// edge_geometry().
  matrix<T> edge_features(const matrix<T>& features, const matrix<T>& embedding, const graph& g) const {
    matrix<T> f;
    const auto dst = g.destinations();
    fill_edge_features(features, embedding, g.sources.data(), dst.data(), 0, g.num_edges(), f);
    return f;
  }

  /// @brief Stage 3: filter logits of the edges of g. Runs over blocks of edges so that the features and hidden
  /// activations stay in cache (the candidate graph has ~20 edges per hit), the blocks spread over threads: one
  /// block's products are too small to split, and splitting them cost more than it saved (2 threads were slower
  /// than 1).
  vector<T> filter_logits(const matrix<T>& features, const matrix<T>& embedding, const graph& g) const {
    workspace w;
    return filter_logits(features, embedding, g, w);
  }
  vector<T> filter_logits(const matrix<T>& features, const matrix<T>& embedding, const graph& g, workspace& w) const {
    check_rows(embedding, features.rows(), "tracking::pipeline::filter_logits: embedding");
    vector<T> s(g.num_edges());
    const auto dst = g.destinations();
    constexpr index_t block = 2048;
    const long nblocks = (static_cast<long>(g.num_edges()) + block - 1) / block;
    if (w.filter.size() < static_cast<std::size_t>(max_threads())) w.filter.resize(static_cast<std::size_t>(max_threads()));
    parallel_for<loop_schedule::dynamic_single>(nblocks, nblocks > 1, [&](long b) {
      auto& t = w.filter[static_cast<std::size_t>(thread_index())];
      const index_t e0 = static_cast<index_t>(b * block), e1 = std::min(g.num_edges(), e0 + block);
      fill_edge_features(features, embedding, g.sources.data(), dst.data(), e0, e1, t.edge_features);
      filter_->infer(t.edge_features, t.logits, t.net);
      s.segment(e0, e1 - e0) = t.logits.col(0);
    });
    return s;
  }

  /// @brief Stage 3: filter scores (sigmoid of filter_logits()) of the edges of g.
  vector<T> filter_scores(const matrix<T>& features, const matrix<T>& embedding, const graph& g) const {
    vector<T> s = filter_logits(features, embedding, g);
    for (index_t e = 0; e < s.size(); ++e) s[e] = sigmoid(s[e]);
    return s;
  }

  /// @brief Edge input features of the GNN (E x num_edge_geometry, CSR order of g): edge_geometry() per edge.
  matrix<T> edge_attributes(const matrix<T>& features, const matrix<T>& embedding, const graph& g) const {
    matrix<T> a;
    edge_attributes(features, embedding, g, a);
    return a;
  }
  void edge_attributes(const matrix<T>& features, const matrix<T>& embedding, const graph& g, matrix<T>& a) const {
    check_rows(embedding, features.rows(), "tracking::pipeline::edge_attributes: embedding");
    HEPGNN_CHECK(g.num_nodes == features.rows(), "tracking::pipeline::edge_attributes: the graph has ", g.num_nodes,
                 " nodes, features has ", features.rows(), " rows");
    a.resize(g.num_edges(), num_edge_geometry);
    const T inv_margin = T(1) / static_cast<T>(cfg_.margin);
    const auto dst = g.destinations();
    constexpr index_t block = 2048;
    const long nblocks = (static_cast<long>(g.num_edges()) + block - 1) / block;
    parallel_for(nblocks, g.num_edges() >= 4096, [&](long b) {
      const index_t e0 = static_cast<index_t>(b * block), e1 = std::min(g.num_edges(), e0 + block);
      edge_geometry_rows(features, embedding, g.sources.data(), dst.data(), e0, e1, inv_margin,
                         a.data() + static_cast<long>(e0) * num_edge_geometry, num_edge_geometry);
    });
  }

  /// @brief Stage 4: GNN edge scores, CSR order of g: sigmoid(prior + interaction network logit). The network
  /// sees the hit features and the edge geometry (edge_attributes()); the prior is the filter logit of each edge
  /// (empty: 0), so the GNN learns a correction to the filter's decision from the context of each edge.
  vector<T> edge_scores(const matrix<T>& features, const matrix<T>& embedding, const graph& g,
                        const vector<T>& prior = {}) const {
    workspace w;
    return edge_scores(features, embedding, g, prior, w);
  }
  vector<T> edge_scores(const matrix<T>& features, const matrix<T>& embedding, const graph& g, const vector<T>& prior,
                        workspace& w) const {
    HEPGNN_CHECK(prior.size() == 0 || prior.size() == g.num_edges(), "tracking::pipeline::edge_scores: prior must be ",
                 "empty or have one entry per edge (", g.num_edges(), "), got ", prior.size());
    vector<T> s(g.num_edges());
    if (g.num_edges() == 0) return s;
    edge_attributes(features, embedding, g, w.edge_attributes);
    std::get<0>(w.gnn.elements).precision = cfg_.gnn_bf16 ? inference_precision::bf16 : inference_precision::f32;
    gnn_->infer(features, g, w.edge_attributes, w.logits, w.gnn);
    parallel_for(g.num_edges(), g.num_edges() >= 16384,
                 [&](long e) { s[e] = sigmoid(w.logits(e, 0) + (prior.size() ? prior[e] : T(0))); });
    return s;
  }

  /// @brief The filter stage of run(): keeps the edges of g with filter score >= filter_cut; returns the kept
  /// graph, writes every edge's score to `scores` and the kept edges' logits (the GNN prior) to `prior`.
  graph filter_graph(const matrix<T>& features, const matrix<T>& embedding, const graph& g, vector<T>& scores,
                     vector<T>& prior) const {
    workspace w;
    return filter_graph(features, embedding, g, scores, prior, w);
  }
  graph filter_graph(const matrix<T>& features, const matrix<T>& embedding, const graph& g, vector<T>& scores,
                     vector<T>& prior, workspace& w) const {
    const vector<T> logits = filter_logits(features, embedding, g, w);
    scores.resize(logits.size());
    parallel_for(logits.size(), logits.size() >= 16384, [&](long e) { scores[e] = sigmoid(logits[e]); });
    std::vector<index_t> kept;
    graph out = select_edges(g, scores, static_cast<T>(cfg_.filter_cut), &kept);
    prior.resize(static_cast<index_t>(kept.size()));
    for (std::size_t k = 0; k < kept.size(); ++k) prior[static_cast<index_t>(k)] = logits[kept[k]];
    return out;
  }

  /// @brief Stage 5 as run() does it, with the configuration's cuts: track building over the GNN scores of g,
  /// the helix-fit splitting and merging (when helix_xy_mm > 0), then the track selection.
  std::vector<index_t> build_tracks(const matrix<T>& features, const graph& g, const vector<T>& scores,
                                    track_builder builder) const {
    const T cut = static_cast<T>(cfg_.edge_cut);
    std::vector<index_t> tracks =
        builder == track_builder::connected_components
            ? build_tracks_cc(g, scores, cut, 1)
            : build_tracks_walkthrough(features, g, scores, cut, 1, static_cast<T>(cfg_.extend_cut));
    if (cfg_.helix_xy_mm > 0) tracks = split_and_merge_tracks(features, tracks, cfg_.helix_xy_mm, cfg_.helix_z_mm);
    return select_tracks(features, tracks, cfg_.min_track_hits, cfg_.min_track_pt, cfg_.b_field);
  }

  /// @brief The whole pipeline on one event.
  pipeline_output<T> run(const trackml::event& ev, track_builder builder = track_builder::connected_components) const {
    workspace w;
    return run(ev, builder, w);
  }
  /// @brief run() reusing the networks' buffers of `w` (use one workspace per thread).
  pipeline_output<T> run(const trackml::event& ev, track_builder builder, workspace& w) const {
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    pipeline_output<T> out;
    const matrix<T> features = hit_features<T>(ev);
    auto t0 = clock::now();
    embed(features, out.embedding, w);
    auto t1 = clock::now();
    out.candidate_graph = build_graph(features, out.embedding, w);
    auto t2 = clock::now();
    vector<T> prior;
    if (cfg_.use_filter)
      out.filtered_graph = filter_graph(features, out.embedding, out.candidate_graph, out.filter_scores, prior, w);
    else
      out.filtered_graph = out.candidate_graph;
    auto t3 = clock::now();
    out.edge_scores = edge_scores(features, out.embedding, out.filtered_graph, prior, w);
    auto t4 = clock::now();
    out.labels = build_tracks(features, out.filtered_graph, out.edge_scores, builder);
    auto t5 = clock::now();
    out.ms_embed = ms(t0, t1), out.ms_graph = ms(t1, t2), out.ms_filter = ms(t2, t3), out.ms_gnn = ms(t3, t4),
    out.ms_tracks = ms(t4, t5);
    return out;
  }

  /// @brief Saves every stage's weights to one safetensors file, with the family, format version and
  /// configuration as metadata (save_model).
  void save(const std::filesystem::path& path) { save_model(*this, path); }

  /// @brief Builds a pipeline from a file written by save(): the configuration from the metadata (every size
  /// checked against its bounds before anything is built), then the weights (strict). Also reads files of format
  /// version 1 (save() before the common model file: "tracking.*" keys without a family).
  static pipeline load(const std::filesystem::path& path) {
    const auto file = safetensors_file::load(path);
    if (file.metadata.count("hepgnn.family")) return load_model<pipeline>(file, path.string());
    pipeline p(config_from_version1(file.metadata));
    load_weights(p, file, true);
    return p;
  }

 private:
  static pipeline_config checked(const pipeline_config& c) {
    c.validate();
    return c;
  }
  static T sigmoid(T z) { return T(1) / (T(1) + std::exp(-z)); }
  /// Filter features of the edges e0 .. e1 (src[e] -> dst[e]) into the rows of f: both hits' features, then
  /// edge_geometry().
  void fill_edge_features(const matrix<T>& features, const matrix<T>& embedding, const index_t* src,
                          const index_t* dst, index_t e0, index_t e1, matrix<T>& f) const {
    constexpr int H = num_hit_features;
    f.resize(e1 - e0, num_edge_features);
    const T inv_margin = T(1) / static_cast<T>(cfg_.margin);
    for (index_t e = e0; e < e1; ++e) {
      const index_t r = e - e0;
      f.row(r).template head<H>() = features.row(src[e]);
      f.row(r).template segment<H>(H) = features.row(dst[e]);
    }
    edge_geometry_rows(features, embedding, src, dst, e0, e1, inv_margin, f.data() + 2 * H, num_edge_features);
  }

  pipeline_config cfg_;
  rng gen_;
  std::unique_ptr<mlp<T>> embedding_, filter_;
  std::unique_ptr<gnn_type> gnn_;
};

}  // namespace hepgnn::tracking
