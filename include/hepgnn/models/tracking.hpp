#pragma once
/// @file tracking.hpp
/// @brief An Exa.TrkX-style tracking pipeline, each stage usable alone:
///  1. embedding: an MLP maps hit features (r, cos phi, sin phi, z, eta, phi) into a space where hits of one
///     particle are close; trained with a hinge loss on pairs (truth-graph neighbours pulled within the margin,
///     random and hard negatives pushed beyond it);
///  2. graph: radius graph in the embedding (radius, max neighbours), kept as directed edges from the hit nearer
///     the origin to the farther one;
///  3. filter (optional): an MLP on both hits' features and the edge geometry drops most fake edges cheaply;
///  4. GNN: an interaction network with the hit features as node inputs and the edge geometry as edge inputs
///     classifies the remaining edges (weighted BCE or focal loss); its logit is added to the filter logit of the
///     edge, so it learns a correction to the filter's decision from each edge's neighbourhood;
///  5. track building: connected components over edges above a score cut, or a walkthrough that follows the
///     best-scored edge outward from each track start (over an edge above a lower extension cut where none passes
///     the cut); then a track selection (hits, pT of a fitted circle).
/// All stages' weights go to one safetensors file, with the configuration in its metadata.

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numbers>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/LU>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/radius.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/metrics/tracking.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace hepgnn::tracking {

/// @brief Number of hit features made by hit_features().
inline constexpr int num_hit_features = 6;

/// @brief Hit features, one row per hit: r / 1000, cos phi, sin phi, z / 1000 (mm), eta / 3 of the hit position
/// (eta = asinh(z / r)) and phi / pi. cos/sin cover the phi seam, phi / pi makes phi differences linear; eta
/// makes straight lines from the origin easy to follow.
/// @throws hepgnn::error when a hit position is not finite.
template <class T>
matrix<T> hit_features(const trackml::event& ev) {
  const std::size_t n = ev.num_hits();
  HEPGNN_CHECK(ev.x.size() == n && ev.y.size() == n && ev.z.size() == n, "tracking::hit_features: the event's x, y, z ",
               "columns must have one entry per hit (", n, "), got ", ev.x.size(), ", ", ev.y.size(), ", ", ev.z.size());
  matrix<T> f(static_cast<Eigen::Index>(n), num_hit_features);
  for (std::size_t i = 0; i < n; ++i)  // checked first: the rows below are filled over threads
    HEPGNN_CHECK(std::isfinite(ev.x[i]) && std::isfinite(ev.y[i]) && std::isfinite(ev.z[i]),
                 "tracking::hit_features: hit ", i, " (hit_id ", ev.hit_id[i], ") has a non-finite position (", ev.x[i],
                 ", ", ev.y[i], ", ", ev.z[i], ")");
  parallel_for(static_cast<long>(n), n >= 4096, [&](long li) {
    const auto i = static_cast<std::size_t>(li);
    const double r = std::hypot(ev.x[i], ev.y[i]);
    const auto row = static_cast<Eigen::Index>(i);
    f(row, 0) = static_cast<T>(r / 1000);
    f(row, 1) = static_cast<T>(r > 0 ? ev.x[i] / r : 1.0);
    f(row, 2) = static_cast<T>(r > 0 ? ev.y[i] / r : 0.0);
    f(row, 3) = static_cast<T>(ev.z[i] / 1000);
    f(row, 4) = static_cast<T>(std::asinh(ev.z[i] / std::max(r, 1e-3)) / 3);
    f(row, 5) = static_cast<T>(std::atan2(ev.y[i], ev.x[i]) / std::numbers::pi);
  });
  return f;
}

namespace detail {
/// Undirected edge set (sorted keys) for label lookups.
struct edge_set {
  std::vector<std::uint64_t> keys;
  explicit edge_set(const edge_list& l) : keys(l.size()) {
    for (std::size_t e = 0; e < l.size(); ++e) keys[e] = undirected_key(l.src[e], l.dst[e]);
    std::sort(keys.begin(), keys.end());
  }
  bool contains(index_t a, index_t b) const { return std::binary_search(keys.begin(), keys.end(), undirected_key(a, b)); }
};
}  // namespace detail

/// @brief Edge labels, E x 1 in CSR order: 1 when the edge joins two consecutive hits of one particle (an edge of
/// `truth`, either direction), else 0. Edges that skip a hit of their particle are negatives: the walkthrough
/// follows the best-scored edge, and a skip edge would split the particle into two tracks of half its hits each.
template <class T>
matrix<T> edge_truth(const trackml::event& ev, const graph& g, const edge_list& truth) {
  HEPGNN_CHECK(static_cast<std::size_t>(g.num_nodes) == ev.num_hits(), "tracking::edge_truth: the graph has ",
               g.num_nodes, " nodes, the event ", ev.num_hits(), " hits");
  const auto n = static_cast<index_t>(ev.num_hits());
  for (std::size_t e = 0; e < truth.size(); ++e)
    HEPGNN_CHECK(truth.src[e] >= 0 && truth.src[e] < n && truth.dst[e] >= 0 && truth.dst[e] < n,
                 "tracking::edge_truth: truth edge ", e, " (", truth.src[e], ", ", truth.dst[e], ") is out of range for ",
                 n, " hits");
  const detail::edge_set keys(truth);
  matrix<T> y(g.num_edges(), 1);
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) y(e, 0) = T(keys.contains(g.sources[e], i) ? 1 : 0);
  return y;
}

/// @brief edge_truth() against the event's truth graph (truth_edges()).
template <class T>
matrix<T> edge_truth(const trackml::event& ev, const graph& g) {
  HEPGNN_CHECK(ev.has_truth(), "tracking::edge_truth: the event has no truth");
  return edge_truth<T>(ev, g, truth_edges(ev));
}

/// @brief Configuration of all stages (saved in the weight file's metadata).
struct pipeline_config {
  int embedding_dim = 3;          ///< width of the learned space (<= 3 lets the radius graph use a cell list)
  int embedding_hidden = 64;      ///< hidden width of the embedding MLP
  int embedding_layers = 3;       ///< linear layers of the embedding MLP
  double margin = 0.3;            ///< hinge margin, and the radius of the graph in the embedding
  int max_neighbors = 24;         ///< radius graph cap per hit (the trained space holds ~1000 hits within the
                                  ///< margin of each, so the cap decides; 20 / 24 / 32 keep 92.6 / 94.1 / 95.6 %
                                  ///< of the toy truth edges, docs/tracking.md)
  bool use_filter = true;         ///< run the filter MLP
  int filter_hidden = 32;         ///< hidden width of the filter MLP (two hidden layers)
  double filter_cut = 0.3;        ///< edges with filter score below this are dropped
  int gnn_hidden = 32;            ///< interaction network hidden width (48 and 64 measured in docs/tracking.md)
  int gnn_iterations = 8;         ///< message-passing iterations (residual)
  bool gnn_shared_weights = true; ///< one edge and node network for all iterations (false: one per iteration)
  bool gnn_bf16 = false;          ///< GNN inference with bf16 operands (float sums; float pipelines only)
  bool gnn_source_aggregation = true;  ///< GNN node update also sums each hit's outward edges (see
                                       ///< interaction_network::options::source_aggregation); files without
                                       ///< the key load as false (trained before it existed)
  double edge_cut = 0.3;          ///< track building keeps edges with GNN score above this
  double extend_cut = 0.01;       ///< walkthrough: a track with no edge above edge_cut onward follows its best edge
                                  ///< above this instead of ending (>= edge_cut: tracks end there)
  double helix_xy_mm = 0;         ///< split_and_merge_tracks(): largest RMS x-y residual (mm) of a helix (0: off)
  double helix_z_mm = 20;         ///< split_and_merge_tracks(): largest RMS z residual (mm) of a helix
  int min_track_hits = 3;         ///< tracks with fewer hits are dropped
  double min_track_pt = 0;        ///< tracks whose fitted pT (GeV) is below this are dropped (0: keep all)
  double b_field = 2;             ///< solenoid field (T) for the pT of a track's fitted circle
  std::uint64_t seed = 1;         ///< weight initialisation

  /// @brief As string metadata.
  std::map<std::string, std::string> to_metadata() const {
    return {{"tracking.embedding_dim", std::to_string(embedding_dim)},
            {"tracking.embedding_hidden", std::to_string(embedding_hidden)},
            {"tracking.embedding_layers", std::to_string(embedding_layers)},
            {"tracking.margin", fmt(margin)},
            {"tracking.max_neighbors", std::to_string(max_neighbors)},
            {"tracking.use_filter", use_filter ? "1" : "0"},
            {"tracking.filter_hidden", std::to_string(filter_hidden)},
            {"tracking.filter_cut", fmt(filter_cut)},
            {"tracking.gnn_hidden", std::to_string(gnn_hidden)},
            {"tracking.gnn_iterations", std::to_string(gnn_iterations)},
            {"tracking.gnn_shared_weights", gnn_shared_weights ? "1" : "0"},
            {"tracking.gnn_bf16", gnn_bf16 ? "1" : "0"},
            {"tracking.gnn_source_aggregation", gnn_source_aggregation ? "1" : "0"},
            {"tracking.edge_cut", fmt(edge_cut)},
            {"tracking.extend_cut", fmt(extend_cut)},
            {"tracking.helix_xy_mm", fmt(helix_xy_mm)},
            {"tracking.helix_z_mm", fmt(helix_z_mm)},
            {"tracking.min_track_hits", std::to_string(min_track_hits)},
            {"tracking.min_track_pt", fmt(min_track_pt)},
            {"tracking.b_field", fmt(b_field)}};
  }
  /// @brief From string metadata; throws naming a missing or unparsable key.
  static pipeline_config from_metadata(const std::map<std::string, std::string>& m) {
    auto get = [&](const char* k) -> const std::string& {
      const auto it = m.find(k);
      HEPGNN_CHECK(it != m.end(), "tracking::pipeline_config: the weight file's metadata lacks '", k,
                   "' (not a tracking pipeline file?)");
      return it->second;
    };
    auto num = [&](const char* k) {
      const std::string& s = get(k);
      double v = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      HEPGNN_CHECK(ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v),
                   "tracking::pipeline_config: metadata '", k, "' = '", s, "' is not a number");
      return v;
    };
    pipeline_config c;
    c.embedding_dim = static_cast<int>(num("tracking.embedding_dim"));
    c.embedding_hidden = static_cast<int>(num("tracking.embedding_hidden"));
    c.embedding_layers = static_cast<int>(num("tracking.embedding_layers"));
    c.margin = num("tracking.margin");
    c.max_neighbors = static_cast<int>(num("tracking.max_neighbors"));
    c.use_filter = num("tracking.use_filter") != 0;
    c.filter_hidden = static_cast<int>(num("tracking.filter_hidden"));
    c.filter_cut = num("tracking.filter_cut");
    c.gnn_hidden = static_cast<int>(num("tracking.gnn_hidden"));
    c.gnn_iterations = static_cast<int>(num("tracking.gnn_iterations"));
    c.edge_cut = num("tracking.edge_cut");
    // keys added later are optional (files from before they existed get the defaults)
    if (m.count("tracking.gnn_shared_weights")) c.gnn_shared_weights = num("tracking.gnn_shared_weights") != 0;
    if (m.count("tracking.extend_cut")) c.extend_cut = num("tracking.extend_cut");
    if (m.count("tracking.gnn_bf16")) c.gnn_bf16 = num("tracking.gnn_bf16") != 0;
    c.gnn_source_aggregation = m.count("tracking.gnn_source_aggregation") && num("tracking.gnn_source_aggregation") != 0;
    if (m.count("tracking.helix_xy_mm")) c.helix_xy_mm = num("tracking.helix_xy_mm");
    if (m.count("tracking.helix_z_mm")) c.helix_z_mm = num("tracking.helix_z_mm");
    if (m.count("tracking.min_track_hits")) c.min_track_hits = static_cast<int>(num("tracking.min_track_hits"));
    if (m.count("tracking.min_track_pt")) c.min_track_pt = num("tracking.min_track_pt");
    if (m.count("tracking.b_field")) c.b_field = num("tracking.b_field");
    return c;
  }
  /// @brief Throws unless every setting is in range.
  void validate() const {
    HEPGNN_CHECK(embedding_dim > 0 && embedding_hidden > 0 && embedding_layers >= 1, "tracking::pipeline_config: ",
                 "embedding_dim, embedding_hidden must be > 0 and embedding_layers >= 1, got ", embedding_dim, ", ",
                 embedding_hidden, ", ", embedding_layers);
    HEPGNN_CHECK(margin > 0 && std::isfinite(margin), "tracking::pipeline_config: margin must be > 0, got ", margin);
    HEPGNN_CHECK(max_neighbors >= 0, "tracking::pipeline_config: max_neighbors must be >= 0, got ", max_neighbors);
    HEPGNN_CHECK(filter_hidden > 0 && gnn_hidden > 0 && gnn_iterations >= 1, "tracking::pipeline_config: filter_hidden",
                 " and gnn_hidden must be > 0 and gnn_iterations >= 1, got ", filter_hidden, ", ", gnn_hidden, ", ",
                 gnn_iterations);
    HEPGNN_CHECK(filter_cut >= 0 && filter_cut < 1 && edge_cut >= 0 && edge_cut < 1 && extend_cut >= 0 &&
                     extend_cut < 1,
                 "tracking::pipeline_config: filter_cut, edge_cut and extend_cut must be in [0, 1), got ", filter_cut,
                 ", ", edge_cut, ", ", extend_cut);
    HEPGNN_CHECK(helix_xy_mm >= 0 && std::isfinite(helix_xy_mm) && helix_z_mm >= 0 && std::isfinite(helix_z_mm),
                 "tracking::pipeline_config: helix_xy_mm and helix_z_mm must be finite and >= 0, got ", helix_xy_mm,
                 ", ", helix_z_mm);
    HEPGNN_CHECK(min_track_hits >= 1 && min_track_pt >= 0 && std::isfinite(min_track_pt) && b_field > 0 &&
                     std::isfinite(b_field),
                 "tracking::pipeline_config: need min_track_hits >= 1, min_track_pt >= 0 and b_field > 0, got ",
                 min_track_hits, ", ", min_track_pt, ", ", b_field);
  }

 private:
  static std::string fmt(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
  }
};

/// @brief Number of geometric edge features (edge_geometry()): what separates the segment of one track from
/// a random pair of nearby hits.
inline constexpr int num_edge_geometry = 7;

/// @brief Number of filter edge features: both hits' features, then the edge geometry.
inline constexpr int num_edge_features = 2 * num_hit_features + num_edge_geometry;

/// @brief Geometric features of the edge src -> dst (hit_features() rows s and d, embedding rows es and ed) into
/// out[0..7): 10 dr (m), 10 dz (m), 10 dphi (wrapped into [-pi, pi)), 10 deta, the curvature proxy dphi / dr (per m,
/// clipped to +-5), the z of the line through both hits at r = 0 (m, clipped to +-3), and the embedding distance /
/// margin. dphi / dr and z0 are what a track from the beam line keeps small; dr and dz tell consecutive layers
/// from skipped ones and module overlaps (dr ~ 0) from both.
template <class T, class Row, class EmbRow>
void edge_geometry(const Row& s, const Row& d, const EmbRow& es, const EmbRow& ed, T inv_margin, T* out) {
  double dphi = std::numbers::pi * static_cast<double>(d(5) - s(5));
  if (dphi >= std::numbers::pi) dphi -= 2 * std::numbers::pi;
  if (dphi < -std::numbers::pi) dphi += 2 * std::numbers::pi;
  const double dr = static_cast<double>(d(0) - s(0)), dz = static_cast<double>(d(3) - s(3));
  const double deta = 3 * static_cast<double>(d(4) - s(4));
  const double curv = std::abs(dr) > 1e-4 ? std::clamp(dphi / dr, -5.0, 5.0) : 0.0;
  const double zs = static_cast<double>(s(3)), rs = static_cast<double>(s(0));
  const double z0 = std::abs(dr) > 1e-4 ? std::clamp(zs - rs * dz / dr, -3.0, 3.0) : 0.0;
  out[0] = static_cast<T>(10 * dr);
  out[1] = static_cast<T>(10 * dz);
  out[2] = static_cast<T>(10 * dphi);
  out[3] = static_cast<T>(10 * deta);
  out[4] = static_cast<T>(curv);
  out[5] = static_cast<T>(z0);
  out[6] = (es - ed).norm() * inv_margin;
}

/// @brief edge_geometry() of the edges src[e] -> dst[e], e in [e0, e1), into out + (e - e0) * ld: the same double
/// arithmetic, bit for bit, over SIMD lanes of edges. One edge at a time, its two divisions and the branches of its
/// clamps and wraps cost about 35 cycles, more than the filter's first layer takes per edge. Indices are not
/// checked: they must be rows of features and embedding (the stage functions check the graph against them).
template <class T>
void edge_geometry_rows(const matrix<T>& features, const matrix<T>& embedding, const index_t* src, const index_t* dst,
                        index_t e0, index_t e1, T inv_margin, T* out, long ld) {
  using B = xsimd::batch<double, simd::native>;
  constexpr int W = static_cast<int>(B::size);
  constexpr double pi = std::numbers::pi;
  const auto clamp = [](const B& v, double lo, double hi) { return xsimd::min(xsimd::max(v, B(lo)), B(hi)); };
  index_t e = e0;
  for (; e + W <= e1; e += W) {
    // per lane: d(5) - s(5), d(0) - s(0), d(3) - s(3), d(4) - s(4) (in T, as edge_geometry), s(3), s(0)
    alignas(64) double in[6][W], res[6][W];
    for (int l = 0; l < W; ++l) {
      const T* a = &features(src[e + l], 0);
      const T* b = &features(dst[e + l], 0);
      in[0][l] = static_cast<double>(b[5] - a[5]), in[1][l] = static_cast<double>(b[0] - a[0]);
      in[2][l] = static_cast<double>(b[3] - a[3]), in[3][l] = static_cast<double>(b[4] - a[4]);
      in[4][l] = static_cast<double>(a[3]), in[5][l] = static_cast<double>(a[0]);
    }
    B dphi = B(pi) * B::load_aligned(in[0]);
    dphi = xsimd::select(dphi >= B(pi), dphi - B(2 * pi), dphi);
    dphi = xsimd::select(dphi < B(-pi), dphi + B(2 * pi), dphi);
    const B dr = B::load_aligned(in[1]), dz = B::load_aligned(in[2]), deta = B(3.0) * B::load_aligned(in[3]);
    const auto curved = xsimd::abs(dr) > B(1e-4);  // other lanes divide by ~0 and are replaced by 0
    const B zs = B::load_aligned(in[4]), rs = B::load_aligned(in[5]);
    (B(10.0) * dr).store_aligned(res[0]);
    (B(10.0) * dz).store_aligned(res[1]);
    (B(10.0) * dphi).store_aligned(res[2]);
    (B(10.0) * deta).store_aligned(res[3]);
    xsimd::select(curved, clamp(dphi / dr, -5.0, 5.0), B(0.0)).store_aligned(res[4]);
    xsimd::select(curved, clamp(zs - rs * dz / dr, -3.0, 3.0), B(0.0)).store_aligned(res[5]);
    for (int l = 0; l < W; ++l) {
      T* o = out + static_cast<long>(e + l - e0) * ld;
      for (int c = 0; c < 6; ++c) o[c] = static_cast<T>(res[c][l]);
      o[6] = (embedding.row(src[e + l]) - embedding.row(dst[e + l])).norm() * inv_margin;
    }
  }
  for (; e < e1; ++e)
    edge_geometry(features.row(src[e]), features.row(dst[e]), embedding.row(src[e]), embedding.row(dst[e]), inv_margin,
                  out + static_cast<long>(e - e0) * ld);
}

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

/// @brief Track building method.
enum class track_builder { connected_components, walkthrough };

/// @brief The three trainable stages and the glue between them.
template <class T = float>
class pipeline {
 public:
  using scalar = T;
  using gnn_type = interaction_network<T>;

  explicit pipeline(const pipeline_config& c = {}) : cfg_(checked(c)), gen_(c.seed) {
    std::vector<int> widths{num_hit_features};
    for (int l = 0; l + 1 < c.embedding_layers; ++l) widths.push_back(c.embedding_hidden);
    widths.push_back(c.embedding_dim);
    embedding_ = std::make_unique<mlp<T>>(gen_, widths, mlp_options{activation_kind::tanh, false});
    filter_ = std::make_unique<mlp<T>>(gen_, std::vector<int>{num_edge_features, c.filter_hidden, c.filter_hidden, 1},
                                       mlp_options{activation_kind::relu, false});
    typename gnn_type::options o;
    o.in = num_hit_features;
    o.edge_in = num_edge_geometry;
    o.hidden = c.gnn_hidden;
    o.iterations = c.gnn_iterations;
    o.shared_weights = c.gnn_shared_weights;
    o.source_aggregation = c.gnn_source_aggregation;
    gnn_ = std::make_unique<gnn_type>(gen_, o);
  }

  const pipeline_config& config() const { return cfg_; }
  pipeline_config& config() { return cfg_; }
  mlp<T>& embedding_net() { return *embedding_; }
  mlp<T>& filter_net() { return *filter_; }
  gnn_type& gnn() { return *gnn_; }

  /// @brief All trainable tensors: "embedding.*", "filter.*", "gnn.*".
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    embedding_->for_each_param(prefix + "embedding.", f);
    filter_->for_each_param(prefix + "filter.", f);
    gnn_->for_each_param(prefix + "gnn.", f);
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

  /// @brief Hits (rows of hit_features()) in ascending order of r^2 + z^2, ties to the lower index: the order in
  /// which the walkthrough starts tracks and orient_outward() directs edges. A stable LSD radix sort of the bit
  /// patterns, which order like the values for non-negative floats (std::stable_sort took about 1.5 ms of the
  /// walkthrough's 2.7 ms at 30k hits).
  static std::vector<index_t> order_by_distance(const matrix<T>& features) {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    static_assert(sizeof(U) == sizeof(T), "tracking::pipeline: the radix sort needs float or double hit features");
    HEPGNN_CHECK(features.cols() >= 4, "tracking::pipeline::order_by_distance: features must have the columns of ",
                 "hit_features() (r / 1000 first, z / 1000 fourth), got ", features.cols());
    constexpr int digit = 11;
    constexpr U mask = (U(1) << digit) - 1;
    const auto n = static_cast<std::size_t>(features.rows());
    std::vector<U> key(n), key_next(n);
    std::vector<index_t> order(n), order_next(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      key[i] = std::bit_cast<U>(features(r, 0) * features(r, 0) + features(r, 3) * features(r, 3));
      order[i] = static_cast<index_t>(i);
    }
    std::vector<std::size_t> start(std::size_t(1) << digit);
    for (int shift = 0; shift < static_cast<int>(8 * sizeof(U)); shift += digit) {
      std::fill(start.begin(), start.end(), 0);
      for (const U k : key) ++start[(k >> shift) & mask];
      if (n > 0 && start[(key[0] >> shift) & mask] == n) continue;  // one digit value: this pass moves nothing
      std::size_t at = 0;
      for (auto& c : start) at += std::exchange(c, at);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t to = start[(key[i] >> shift) & mask]++;
        key_next[to] = key[i];
        order_next[to] = order[i];
      }
      key.swap(key_next);
      order.swap(order_next);
    }
    return order;
  }
  /// @brief Orients and deduplicates the edges of g: src = the hit with the smaller r^2 + z^2 (ties: lower index).
  /// Sources ascend within each destination. An entry j of i's list is either an edge j -> i ("own", kept in i's
  /// bucket) or i -> j ("pushed" to j's bucket). Buckets take their own entries first and the pushed ones after,
  /// in ascending order of the pushing node (chunks of nodes in order), so only the short own part needs a sort
  /// before one merge that also drops the edges listed from both ends. Every pass runs over threads (each chunk
  /// of nodes counts and places its own entries, so no two threads write one slot), and the output does not
  /// depend on the thread count.
  static graph orient_outward(const matrix<T>& features, const graph& g) {
    const index_t n = g.num_nodes;
    HEPGNN_CHECK(features.rows() == n && features.cols() >= 4, "tracking::pipeline::orient_outward: features must ",
                 "have one row per node of the graph (", n, ") and the columns of hit_features(), got ",
                 features.rows(), " x ", features.cols());
    // one integer per hit that orders like (r^2 + z^2, index), so that the direction of an edge is one compare:
    // for float, the packed key of the cell list's candidates (distance bits above the index); else the rank
    std::vector<std::uint64_t> key(static_cast<std::size_t>(n));
    const auto rho = [&](index_t i) { return features(i, 0) * features(i, 0) + features(i, 3) * features(i, 3); };
    if constexpr (std::is_same_v<T, float>) {
      for (index_t i = 0; i < n; ++i) key[i] = hepgnn::detail::candidate_packing<float>::make(rho(i), i);
    } else {
      const std::vector<index_t> order = order_by_distance(features);
      for (index_t r = 0; r < n; ++r) key[order[r]] = static_cast<std::uint64_t>(r);
    }
    const auto nearer = [&](index_t a, index_t b) { return key[a] < key[b]; };
    // chunk k of the nodes counts its pushed entries per destination in its own row of `slot`, which then holds
    // where its entries of that destination go
    const long chunks = std::clamp<long>(g.num_edges() / 8192, 1, max_threads());
    const auto chunk_begin = [&](long k) { return static_cast<index_t>(k * n / chunks); };
    std::vector<index_t> slot(static_cast<std::size_t>(chunks) * n, 0), own(static_cast<std::size_t>(n), 0);
    parallel_for(chunks, chunks > 1, [&](long k) {
      index_t* c = slot.data() + k * n;
      for (index_t i = chunk_begin(k); i < chunk_begin(k + 1); ++i)
        for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
          if (const index_t s = g.sources[e]; s != i) {  // branch-free: the direction is a coin flip
            const bool mine = nearer(s, i);
            own[i] += mine;
            c[s] += !mine;
          }
    });
    std::vector<index_t> offsets(static_cast<std::size_t>(n) + 1, 0);
    for (index_t j = 0; j < n; ++j) {
      index_t at = offsets[j] + own[j];
      for (long k = 0; k < chunks; ++k) std::swap(at, slot[k * n + j]), at += slot[k * n + j];
      offsets[j + 1] = at;
    }
    std::vector<index_t> entries(static_cast<std::size_t>(offsets.back()));
    parallel_for(chunks, chunks > 1, [&](long k) {
      index_t* next = slot.data() + k * n;
      for (index_t i = chunk_begin(k); i < chunk_begin(k + 1); ++i) {
        index_t mine = offsets[i];
        for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
          if (const index_t s = g.sources[e]; s != i) {
            const bool in = nearer(s, i);
            index_t& pushed = next[s];
            entries[in ? mine : pushed] = in ? s : i;
            mine += in;
            pushed += !in;
          }
      }
    });
    // per bucket: sort the own part, merge it with the (ascending) pushed part dropping duplicates, in place
    // through a small buffer; then copy the unique heads into place
    graph out;
    out.num_nodes = n;
    out.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
    parallel_for(n, n >= 4096, [&](long i) {
      index_t* b = entries.data() + offsets[i];
      index_t *own_end = b + own[i], *end = entries.data() + offsets[i + 1];
      index_t merged[128], sorted[129];
      if (end - b > 128) {  // more entries than a capped radius graph gives: sort and deduplicate in place
        std::sort(b, end);
        out.offsets[i + 1] = static_cast<index_t>(std::unique(b, end) - b);
        return;
      }
      // the own part holds distinct sources: ranked by SIMD compares (its sort's branches are coin flips)
      const auto n_own = static_cast<int>(own_end - b);
      simd::smallest_distinct(b, n_own, n_own, sorted);
      index_t m = 0, *p = sorted, *q = own_end;
      while (p < sorted + n_own || q < end) {
        const index_t v = q == end || (p < sorted + n_own && *p < *q) ? *p++ : *q++;
        if (m == 0 || merged[m - 1] != v) merged[m++] = v;
      }
      std::copy_n(merged, m, b);
      out.offsets[i + 1] = m;
    });
    std::partial_sum(out.offsets.begin(), out.offsets.end(), out.offsets.begin());
    out.sources.resize(static_cast<std::size_t>(out.offsets.back()));
    parallel_for(n, n >= 4096, [&](long i) {
      std::copy_n(entries.begin() + offsets[i], out.offsets[i + 1] - out.offsets[i], out.sources.begin() + out.offsets[i]);
    });
    return out;
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

  /// @brief Keeps the edges of g with score >= cut (CSR order preserved); `kept`, when given, receives the index
  /// in g of each kept edge.
  static graph select_edges(const graph& g, const vector<T>& scores, T cut, std::vector<index_t>* kept = nullptr) {
    HEPGNN_CHECK(scores.size() == g.num_edges(), "tracking::pipeline::select_edges: scores must have one entry per edge (",
                 g.num_edges(), "), got ", scores.size());
    const index_t n = g.num_nodes;
    graph out;
    out.num_nodes = n;
    out.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
    // count per node, then place: each node writes only its own slots, so threads never share one
    const bool par = g.num_edges() >= 16384;
    parallel_for(n, par, [&](long i) {
      index_t k = 0;
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) k += scores[e] >= cut;
      out.offsets[i + 1] = k;
    });
    std::partial_sum(out.offsets.begin(), out.offsets.end(), out.offsets.begin());
    out.sources.resize(static_cast<std::size_t>(out.offsets.back()));
    if (kept) kept->resize(out.sources.size());
    parallel_for(n, par, [&](long i) {
      index_t k = out.offsets[i];
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
        if (scores[e] >= cut) {
          if (kept) (*kept)[k] = e;
          out.sources[k++] = g.sources[e];
        }
    });
    return out;
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
    gnn_->infer(features, g, w.edge_attributes, w.logits, w.gnn,
                cfg_.gnn_bf16 ? inference_precision::bf16 : inference_precision::f32);
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

  /// @brief Stage 5a: connected components over the edges with score > cut; components of fewer than
  /// `min_hits` hits are labelled -1.
  static std::vector<index_t> build_tracks_cc(const graph& g, const vector<T>& scores, T cut, int min_hits = 3) {
    const auto comp = connected_components(g, scores, cut);
    return relabel(comp.labels, comp.count, min_hits);
  }

  /// @brief Stage 5b: walkthrough. Hits without an incoming edge above the cut start tracks (nearest the origin
  /// first); each track follows the best-scored outgoing edge above the cut to an unused hit, layer by layer
  /// outward. Where none is above the cut, the track follows its best edge above `extend_cut` (when lower than
  /// the cut) instead of ending: a particle whose next edge scored just below the cut would otherwise become two
  /// tracks of half its hits each, both fakes under 50 % matching. Hits left over start tracks of their own.
  /// Tracks of fewer than `min_hits` hits are labelled -1.
  static std::vector<index_t> build_tracks_walkthrough(const matrix<T>& features, const graph& g,
                                                       const vector<T>& scores, T cut, int min_hits = 3,
                                                       T extend_cut = std::numeric_limits<T>::infinity()) {
    HEPGNN_CHECK(scores.size() == g.num_edges(), "tracking::pipeline::build_tracks_walkthrough: scores must have one ",
                 "entry per edge (", g.num_edges(), "), got ", scores.size());
    const index_t n = g.num_nodes;
    HEPGNN_CHECK(features.rows() == n, "tracking::pipeline::build_tracks_walkthrough: features must have one row per ",
                 "node of the graph (", n, "), got ", features.rows());
    const T low = std::min(cut, extend_cut);
    // outgoing adjacency (CSR by source) of the edges above the lower of the two cuts: those edges in CSR order
    // (each hit's row counted, then written, over threads), then grouped by source with a stable counting sort,
    // so each hit's outgoing edges keep ascending destinations (the walk takes the first of equal scores)
    const bool par = g.num_edges() >= 16384;
    std::vector<index_t> row_start(static_cast<std::size_t>(n) + 1, 0);
    std::vector<char> has_in(static_cast<std::size_t>(n));
    parallel_for(n, par, [&](long i) {
      index_t k = 0;
      bool in = false;
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) k += scores[e] > low, in |= scores[e] > cut;
      row_start[i + 1] = k;
      has_in[i] = in;
    });
    std::partial_sum(row_start.begin(), row_start.end(), row_start.begin());
    const auto kept = static_cast<std::size_t>(row_start.back());
    std::vector<index_t> kept_src(kept), kept_dst(kept);
    std::vector<T> kept_score(kept);
    parallel_for(n, par, [&](long i) {
      index_t k = row_start[i];
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
        if (scores[e] > low) kept_src[k] = g.sources[e], kept_dst[k] = static_cast<index_t>(i), kept_score[k++] = scores[e];
    });
    std::vector<index_t> out_off(static_cast<std::size_t>(n) + 1, 0);
    for (const index_t src : kept_src) ++out_off[src + 1];
    std::partial_sum(out_off.begin(), out_off.end(), out_off.begin());
    std::vector<index_t> out_dst(kept), next(out_off.begin(), out_off.end() - 1);
    std::vector<T> out_score(kept);
    for (std::size_t k = 0; k < kept; ++k) {
      const index_t at = next[kept_src[k]]++;
      out_dst[at] = kept_dst[k], out_score[at] = kept_score[k];
    }
    const std::vector<index_t> order = order_by_distance(features);
    std::vector<index_t> track(n, -1);
    index_t count = 0;
    for (int pass = 0; pass < 2; ++pass)
      for (index_t s : order) {
        if (track[s] >= 0 || (pass == 0 && has_in[s])) continue;
        index_t cur = s;
        track[cur] = count;
        for (;;) {
          // the best edge above `low`: above the cut whenever any edge to an unused hit is
          index_t best = -1;
          T best_score = low;
          for (index_t k = out_off[cur]; k < out_off[cur + 1]; ++k)
            if (track[out_dst[k]] < 0 && out_score[k] > best_score) best_score = out_score[k], best = out_dst[k];
          if (best < 0) break;
          track[best] = count;
          cur = best;
        }
        ++count;
      }
    return relabel(track, count, min_hits);
  }

  /// @brief A helix from the beam line fitted to hits (rows of hit_features()), in metres: in x-y the least-squares
  /// circle through the origin (a line through it when the hits show no curvature), in z the least-squares line
  /// z = z0 + t s along the arc length s; xy and z are the root-mean-square residuals.
  struct helix_fit {
    double xy = 0, z = 0;                   ///< RMS residuals
    double cx = 0, cy = 0, radius = HUGE_VAL;  ///< circle centre and radius
    bool line = true;                       ///< no curvature: the line through the origin along (ux, uy)
    double ux = 1, uy = 0, z0 = 0, t = 0;
    double arc(double rho) const { return line ? rho : 2 * radius * std::asin(std::min(1.0, rho / (2 * radius))); }
    /// Signed distance of the point (x, y) from the circle (or line).
    double xy_residual(double x, double y) const {
      return line ? x * uy - y * ux : std::sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - radius;
    }
    /// Residuals of the point (x, y, z) at transverse radius rho: distance from the circle (or line), z offset.
    std::pair<double, double> residual(double x, double y, double z, double rho) const {
      return {xy_residual(x, y), z - z0 - t * arc(rho)};
    }
  };
  static helix_fit fit_helix(const matrix<T>& features, std::span<const index_t> hits) {
    return fit_helix_within(features, hits, HUGE_VAL);
  }
  /// @brief fit_helix(), stopped after the x-y residuals when xy * 1000 / xy_limit_mm > 1 (their RMS above the
  /// limit in mm): then xy is final and z is not computed (0). The mending tests thousands of candidate pairs of
  /// which most fail in x-y; this is the same test without the arc lengths (an asin per hit) of the z fit.
  static helix_fit fit_helix_within(const matrix<T>& features, std::span<const index_t> hits, double xy_limit_mm) {
    helix_fit out;
    const std::size_t n = hits.size();
    if (n == 0) return out;
    for (index_t h : hits)
      HEPGNN_CHECK(h >= 0 && h < features.rows(), "tracking::pipeline::fit_helix: hit ", h, " is out of range for ",
                   features.rows(), " feature rows");
    const auto xyz = [&](index_t h, double& x, double& y, double& z, double& r) {
      r = static_cast<double>(features(h, 0));
      x = r * static_cast<double>(features(h, 1)), y = r * static_cast<double>(features(h, 2));
      z = static_cast<double>(features(h, 3));
    };
    double x, y, z, r, sxx = 0, sxy = 0, syy = 0, sx3 = 0, sy3 = 0;
    for (index_t h : hits) {
      xyz(h, x, y, z, r);
      sxx += x * x, sxy += x * y, syy += y * y, sx3 += r * r * x, sy3 += r * r * y;
    }
    // circle x^2 + y^2 + a x + b y = 0 (through the origin): centre (-a/2, -b/2), radius sqrt(a^2 + b^2) / 2
    const double det = sxx * syy - sxy * sxy;
    if (det > 1e-12 * (sxx + syy) * (sxx + syy)) {
      const double a = -(sx3 * syy - sy3 * sxy) / det, b = -(sy3 * sxx - sx3 * sxy) / det;
      out.cx = -a / 2, out.cy = -b / 2, out.radius = std::hypot(out.cx, out.cy);
    }
    out.line = !(out.radius < 1e3);  // a kilometre: no measurable curvature over the detector
    if (out.line) {                  // the line's direction: principal axis of the hits
      const double angle = 0.5 * std::atan2(2 * sxy, sxx - syy);
      out.ux = std::cos(angle), out.uy = std::sin(angle);
    }
    const double dn = static_cast<double>(n);
    double e2 = 0;
    for (index_t h : hits) {
      xyz(h, x, y, z, r);
      const double d = out.xy_residual(x, y);
      e2 += d * d;
    }
    out.xy = std::sqrt(e2 / dn);
    if (out.xy * 1e3 / xy_limit_mm > 1) return out;
    // the line in (arc length, z); each hit's arc length computed once
    thread_local std::vector<double> arcs;
    arcs.resize(n);
    double ss = 0, s1 = 0, sz = 0, ssz = 0;
    for (std::size_t k = 0; k < n; ++k) {
      xyz(hits[k], x, y, z, r);
      const double sa = arcs[k] = out.arc(r);
      ss += sa * sa, s1 += sa, sz += z, ssz += sa * z;
    }
    const double den = dn * ss - s1 * s1;
    out.t = std::abs(den) > 1e-15 ? (dn * ssz - s1 * sz) / den : 0, out.z0 = (sz - out.t * s1) / dn;
    double f2 = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const double dz = static_cast<double>(features(hits[k], 3)) - out.z0 - out.t * arcs[k];
      f2 += dz * dz;
    }
    out.z = std::sqrt(f2 / dn);
    return out;
  }

  /// @brief Transverse momentum (GeV) of the circle through the beam line (x = y = 0) and a track's hits (rows
  /// of hit_features()), in a field of b_field tesla: algebraic least squares of x^2 + y^2 + a x + b y + c = 0,
  /// so R^2 = (a^2 + b^2) / 4 - c. +inf for hits on a straight line through the origin. Not fit_helix()'s circle,
  /// which passes through the origin exactly: the selection kept fewer fake tracks with this one (toy test events:
  /// fake rate 4.0 % against 4.2 %, real event 1.6 % against 3.2 %, same efficiency).
  static double fitted_pt(const matrix<T>& features, std::span<const index_t> hits, double b_field) {
    // points in metres, the origin included: it constrains the curvature of short tracks
    Eigen::Matrix3d m = Eigen::Matrix3d::Zero();
    Eigen::Vector3d v = Eigen::Vector3d::Zero();
    auto add = [&](double x, double y) {
      const Eigen::Vector3d u(x, y, 1);
      m += u * u.transpose();
      v -= (x * x + y * y) * u;
    };
    add(0, 0);
    for (index_t h : hits) {
      HEPGNN_CHECK(h >= 0 && h < features.rows(), "tracking::pipeline::fitted_pt: hit ", h, " is out of range for ",
                   features.rows(), " feature rows");
      const double r = static_cast<double>(features(h, 0));
      add(r * static_cast<double>(features(h, 1)), r * static_cast<double>(features(h, 2)));
    }
    const Eigen::FullPivLU<Eigen::Matrix3d> lu(m);
    if (lu.rank() < 3) return HUGE_VAL;
    const Eigen::Vector3d abc = lu.solve(v);
    const double r2 = 0.25 * (abc[0] * abc[0] + abc[1] * abc[1]) - abc[2];
    return r2 > 0 ? 0.299792458 * b_field * std::sqrt(r2) : HUGE_VAL;
  }

  /// @brief Track splitting and merging by helix fits (fit_helix: RMS residuals of at most max_xy_mm in x-y and
  /// max_z_mm in z make a helix). A particle whose walkthrough broke (an edge scored below the cut, a neighbour's
  /// hit taken first, or a turn onto a neighbour's hits) leaves pieces with less than half its hits each: none
  /// matches it and all count as fakes.
  /// 1. Outliers and splits: a track of >= 6 hits that no helix fits loses one hit (label -1) when the others then
  ///    fit one, the hit whose removal leaves the best fit (a neighbour's hit taken in passing: its wrong
  ///    curvature would also fail the track's pT selection). Otherwise it is cut in two (hits ordered by distance
  ///    from the origin) at the point where both parts, of >= 3 hits each, fit one; where none does, it stays whole.
  /// 2. Merge: a track is joined to one that continues it outward when one helix fits both. Candidates: the outer
  ///    piece starts beyond the inner one's end (in distance from the origin, 1 cm of slack for overlapping
  ///    modules), within 0.2 rad in phi and 0.5 in eta of it and at most 1 m further out. Best fits first; each
  ///    track continues at most one and is continued by at most one, so chains of pieces join.
  /// Tracks are renumbered 0, 1, ... in order of first hit; -1 stays -1.
  static std::vector<index_t> split_and_merge_tracks(const matrix<T>& features, const std::vector<index_t>& labels,
                                                     double max_xy_mm, double max_z_mm) {
    HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == features.rows(), "tracking::pipeline::split_and_merge_",
                 "tracks: labels must have one entry per hit (", features.rows(), "), got ", labels.size());
    HEPGNN_CHECK(max_xy_mm >= 0 && max_z_mm >= 0 && std::isfinite(max_xy_mm) && std::isfinite(max_z_mm),
                 "tracking::pipeline::split_and_merge_tracks: max_xy_mm and max_z_mm must be finite and >= 0, got ",
                 max_xy_mm, ", ", max_z_mm);
    track_members members(labels, "split_and_merge_tracks");
    index_t count = members.count();
    // fit cost: the larger residual as a fraction of its limit (<= 1: a helix)
    // (above 1 in x-y alone, the z fit is skipped: the cost is then a lower bound, which decides the same)
    const double lim_xy = std::max(max_xy_mm, 1e-12), lim_z = std::max(max_z_mm, 1e-12);
    const auto cost = [&](std::span<const index_t> hits) {
      const auto r = fit_helix_within(features, hits, lim_xy);
      return std::max(r.xy * 1e3 / lim_xy, r.z * 1e3 / lim_z);
    };
    const auto dist2 = [&](index_t h) {
      const double r = features(h, 0), z = features(h, 3);
      return r * r + z * z;
    };
    // split: each track's best cut in parallel (-1: none), then the outer parts become tracks of their own
    constexpr int min_part = 3;
    std::vector<int> cut_at(static_cast<std::size_t>(count), -1);
    parallel_for<loop_schedule::dynamic_single>(count, count >= 256, [&](long t) {
      const std::span<index_t> hits = members[static_cast<index_t>(t)];
      const int n = static_cast<int>(hits.size());
      if (n < 2 * min_part || cost(hits) <= 1) return;
      std::sort(hits.begin(), hits.end(),
                [&](index_t a, index_t b) { return dist2(a) < dist2(b) || (dist2(a) == dist2(b) && a < b); });
      // an outlier first: the hit whose removal leaves the best fit leaves the track when the rest then fits
      // one (a neighbour's hit taken in passing; removing up to two or three hits did no better)
      std::vector<index_t> rest;
      double least = HUGE_VAL;
      int worst = 0;
      for (int k = 0; k < n; ++k) {
        rest.assign(hits.begin(), hits.end());
        rest.erase(rest.begin() + k);
        if (const double c = cost(rest); c < least) least = c, worst = k;
      }
      if (least <= 1) {  // the outlier leaves the track: to the end of its span, which drops it
        std::rotate(hits.begin() + worst, hits.begin() + worst + 1, hits.end());
        members.shrink(static_cast<index_t>(t), 1);
        return;
      }
      double best = HUGE_VAL;
      const std::span<const index_t> all(hits);
      for (int m = min_part; m + min_part <= n; ++m) {
        const auto split = static_cast<std::size_t>(m);
        const double c = std::max(cost(all.first(split)), cost(all.subspan(split)));
        if (c < best) best = c, cut_at[t] = m;
      }
      if (best > 1) cut_at[t] = -1;
    });
    for (index_t t = 0, n_before = count; t < n_before; ++t)
      if (cut_at[t] >= 0) members.split(t, cut_at[t]);
    count = members.count();
    // each track's ends: nearest and farthest hit from the origin
    struct ends {
      double d_in = 0, d_out = 0, phi_in = 0, phi_out = 0, eta_in = 0, eta_out = 0;
      index_t first = -1;  // the inner hit
    };
    std::vector<ends> e(static_cast<std::size_t>(count));
    const double pi = std::numbers::pi;
    parallel_for(count, count >= 256, [&](long t) {
      if (members[static_cast<index_t>(t)].size() < 2) return;
      double lo = HUGE_VAL, hi = -1;
      for (index_t h : members[static_cast<index_t>(t)]) {
        const double r = features(h, 0), zz = features(h, 3), d = std::sqrt(r * r + zz * zz);
        const double phi = pi * static_cast<double>(features(h, 5)), eta = 3 * static_cast<double>(features(h, 4));
        if (d < lo) lo = d, e[t].d_in = d, e[t].phi_in = phi, e[t].eta_in = eta, e[t].first = h;
        if (d > hi) hi = d, e[t].d_out = d, e[t].phi_out = phi, e[t].eta_out = eta;
      }
    });
    // candidate pairs (inner a, outer b): the inner ends binned in (phi, eta) by the window's size, so a track
    // looks at the 3 x 3 bins around its outer end (the work per track grows with the density of tracks in the
    // window, not with the event); tracks in parallel
    // eta is of hit positions seen from the origin: with the vertex off the origin in z it drifts along a track,
    // most at small radii (0.2-0.4 between a particle's pieces), so its window is wide and the helix decides
    constexpr double dphi_max = 0.2, deta_max = 0.5, slack = 0.01, gap_max = 1.0, eta_lim = 5;
    const int nphi = static_cast<int>(2 * pi / dphi_max), neta = static_cast<int>(2 * eta_lim / deta_max);
    const auto phi_bin = [&](double phi) { return std::clamp(static_cast<int>((phi + pi) / (2 * pi) * nphi), 0, nphi - 1); };
    const auto eta_bin = [&](double eta) {
      return std::clamp(static_cast<int>((eta + eta_lim) / (2 * eta_lim) * neta), 0, neta - 1);
    };
    // each bin's tracks sorted by the distance of their inner end, so a track looks only at those that start
    // within [d_out - slack, d_out + gap_max] (a binary search): in dense events most tracks of the window start
    // inside the outer end of the track looking (10000 particles: 57k tracks, the scan took 125 of 150 ms)
    const auto bin_of = [&](index_t t) { return static_cast<std::size_t>(eta_bin(e[t].eta_in)) * nphi + phi_bin(e[t].phi_in); };
    std::vector<index_t> bin_start(static_cast<std::size_t>(nphi) * neta + 1, 0), binned;
    for (index_t t = 0; t < count; ++t)
      if (members[t].size() >= 2) ++bin_start[bin_of(t) + 1];
    std::partial_sum(bin_start.begin(), bin_start.end(), bin_start.begin());
    binned.resize(static_cast<std::size_t>(bin_start.back()));
    {
      std::vector<index_t> next(bin_start.begin(), bin_start.end() - 1);
      for (index_t t = 0; t < count; ++t)
        if (members[t].size() >= 2) binned[next[bin_of(t)]++] = t;
    }
    parallel_for(nphi * neta, count >= 256, [&](long k) {
      std::sort(binned.begin() + bin_start[k], binned.begin() + bin_start[k + 1],
                [&](index_t u, index_t v) { return e[u].d_in < e[v].d_in || (e[u].d_in == e[v].d_in && u < v); });
    });
    struct candidate {
      double cost;
      index_t a, b;
    };
    // each track's own helix: a candidate's inner hit more than 10 limits off it is not fitted with it (dense
    // events offer many candidates in the window; most fail this one-hit test, which costs far less than a fit)
    std::vector<helix_fit> own(static_cast<std::size_t>(count));
    parallel_for(count, count >= 256, [&](long t) {
      if (members[t].size() >= 2) own[t] = fit_helix(features, members[t]);
    });
    std::vector<std::vector<candidate>> found(static_cast<std::size_t>(count));
    parallel_for<loop_schedule::dynamic_single>(count, count >= 256, [&](long a) {
      if (members[a].size() < 2) return;
      std::vector<index_t> both;
      const int pb = phi_bin(e[a].phi_out), eb = eta_bin(e[a].eta_out);
      for (int de = -1; de <= 1; ++de)
        for (int dp = -1; dp <= 1; ++dp) {
          const int ee = eb + de;
          if (ee < 0 || ee >= neta) continue;
          const std::size_t bin = static_cast<std::size_t>(ee) * nphi + (pb + dp + nphi) % nphi;
          const auto last = binned.begin() + bin_start[bin + 1];
          for (auto it = std::partition_point(binned.begin() + bin_start[bin], last,
                                              [&](index_t b) { return e[b].d_in + slack < e[a].d_out; });
               it != last && !(e[*it].d_in - e[a].d_out > gap_max); ++it) {
            const index_t b = *it;
            double dphi = std::abs(e[b].phi_in - e[a].phi_out);
            dphi = std::min(dphi, 2 * pi - dphi);
            if (b == a || dphi > dphi_max || std::abs(e[b].eta_in - e[a].eta_out) > deta_max) continue;
            const index_t h = e[b].first;
            const double rho = features(h, 0);
            if (std::abs(own[a].xy_residual(rho * static_cast<double>(features(h, 1)),
                                            rho * static_cast<double>(features(h, 2)))) * 1e3 > 10 * max_xy_mm ||
                std::abs(own[a].residual(0, 0, features(h, 3), rho).second) * 1e3 > 10 * max_z_mm)
              continue;
            both.assign(members[a].begin(), members[a].end());
            both.insert(both.end(), members[b].begin(), members[b].end());
            if (const double c = cost(both); c <= 1) found[a].push_back({c, static_cast<index_t>(a), b});
          }
        }
    });
    std::vector<candidate> cands;
    for (const auto& f : found) cands.insert(cands.end(), f.begin(), f.end());
    // sorted in parts over threads, then merged (a total order: (a, b) pairs are unique); 150k candidates at
    // 10000 particles
    const auto before = [](const candidate& u, const candidate& v) {
      return u.cost < v.cost || (u.cost == v.cost && (u.a < v.a || (u.a == v.a && u.b < v.b)));
    };
    const long parts = cands.size() >= 8192 ? max_threads() : 1;
    const auto part = [&](long k) { return cands.begin() + static_cast<std::ptrdiff_t>(k * cands.size() / parts); };
    parallel_for(parts, parts > 1, [&](long k) { std::sort(part(k), part(k + 1), before); });
    for (long width = 1; width < parts; width *= 2)
      for (long k = 0; k + width < parts; k += 2 * width)
        std::inplace_merge(part(k), part(k + width), part(std::min(parts, k + 2 * width)), before);
    std::vector<index_t> root(static_cast<std::size_t>(count));
    std::iota(root.begin(), root.end(), index_t(0));
    const auto find = [&](index_t t) {
      while (root[t] != t) t = root[t] = root[root[t]];
      return t;
    };
    std::vector<char> has_next(static_cast<std::size_t>(count), 0), has_prev(static_cast<std::size_t>(count), 0);
    for (const auto& c : cands) {
      if (has_next[c.a] || has_prev[c.b] || find(c.a) == find(c.b)) continue;
      has_next[c.a] = has_prev[c.b] = 1;
      root[find(c.b)] = find(c.a);
    }
    std::vector<index_t> merged(labels.size(), -1);
    for (index_t t = 0; t < count; ++t)
      for (index_t h : members[t]) merged[h] = find(t);
    return relabel(merged, count, 1);
  }

  /// @brief Track selection: labels -1 for the hits of tracks with fewer than min_hits hits or a fitted_pt()
  /// below min_pt (0: no pT cut); the kept tracks are renumbered 0, 1, ... in order of first hit.
  static std::vector<index_t> select_tracks(const matrix<T>& features, const std::vector<index_t>& labels,
                                            int min_hits, double min_pt, double b_field) {
    HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == features.rows(), "tracking::pipeline::select_tracks: ",
                 "labels must have one entry per hit (", features.rows(), "), got ", labels.size());
    const track_members members(labels, "select_tracks");
    const index_t count = members.count();
    std::vector<char> keep(static_cast<std::size_t>(count));
    parallel_for(count, count >= 256 && min_pt > 0, [&](long t) {  // a helix fit per track
      const auto hits = members[static_cast<index_t>(t)];
      keep[t] = static_cast<int>(hits.size()) >= min_hits && (min_pt <= 0 || fitted_pt(features, hits, b_field) >= min_pt);
    });
    std::vector<index_t> kept = labels;
    for (auto& l : kept)
      if (l >= 0 && !keep[l]) l = -1;
    return relabel(kept, count, 1);
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

  /// @brief Saves every stage's weights, with the configuration as metadata, to one safetensors file.
  void save(const std::filesystem::path& path) { save_weights(*this, path, cfg_.to_metadata()); }

  /// @brief Builds a pipeline from a file written by save(): configuration from the metadata, weights strict.
  static pipeline load(const std::filesystem::path& path) {
    const auto file = safetensors_file::load(path);
    pipeline p(pipeline_config::from_metadata(file.metadata));
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
  /// The hits of each track (label) as a span of one array, ascending within the track: a counting sort of the
  /// labels (a vector per track cost an allocation each, 5.7k tracks at 2000 particles). split() makes the tail
  /// of a span a track of its own and shrink() drops a span's last hits, so the mending needs no copies.
  class track_members {
   public:
    track_members(const std::vector<index_t>& labels, const char* who) {
      index_t count = 0;
      for (const index_t l : labels) {
        HEPGNN_CHECK(l >= -1, "tracking::pipeline::", who, ": labels must be track numbers >= 0 or -1 (no track), got ",
                     l);
        count = std::max(count, l + 1);
      }
      begin_.assign(static_cast<std::size_t>(count) + 1, 0);
      for (const index_t l : labels)
        if (l >= 0) ++begin_[l + 1];
      std::partial_sum(begin_.begin(), begin_.end(), begin_.begin());
      size_.resize(static_cast<std::size_t>(count));
      for (index_t t = 0; t < count; ++t) size_[t] = begin_[t + 1] - begin_[t];
      begin_.pop_back();
      hits_.resize(static_cast<std::size_t>(labels.size()));
      std::vector<index_t> next(begin_);
      for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] >= 0) hits_[next[labels[i]]++] = static_cast<index_t>(i);
    }
    index_t count() const { return static_cast<index_t>(size_.size()); }
    std::span<index_t> operator[](index_t t) { return {hits_.data() + begin_[t], static_cast<std::size_t>(size_[t])}; }
    std::span<const index_t> operator[](index_t t) const {
      return {hits_.data() + begin_[t], static_cast<std::size_t>(size_[t])};
    }
    /// Hits [at, size) of track t become a new track (numbered count() before the call).
    void split(index_t t, index_t at) {
      begin_.push_back(begin_[t] + at);
      size_.push_back(size_[t] - at);
      size_[t] = at;
    }
    /// Track t loses its last k hits (they belong to no track).
    void shrink(index_t t, index_t k) { size_[t] -= k; }

   private:
    std::vector<index_t> hits_, begin_, size_;
  };

  static std::vector<index_t> relabel(const std::vector<index_t>& labels, index_t count, int min_hits) {
    std::vector<index_t> size(static_cast<std::size_t>(count), 0), id(static_cast<std::size_t>(count), -1);
    for (auto l : labels)
      if (l >= 0) ++size[l];
    index_t next = 0;
    std::vector<index_t> out(labels.size(), -1);
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const index_t l = labels[i];
      if (l < 0 || size[l] < min_hits) continue;
      if (id[l] < 0) id[l] = next++;
      out[i] = id[l];
    }
    return out;
  }

  pipeline_config cfg_;
  rng gen_;
  std::unique_ptr<mlp<T>> embedding_, filter_;
  std::unique_ptr<gnn_type> gnn_;
};

// ---------------------------------------------------------------------------------------------------------
// Training

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

/// @brief Hinge embedding loss of one event and its gradient (dL/dembedding): positives (pairs i, j of the
/// truth graph) contribute |e_i - e_j|^2, negatives `negative_weight` * max(0, margin^2 - |e_i - e_j|^2); each
/// term is a mean over its pairs.
template <class T>
T hinge_embedding_loss(const matrix<T>& emb, const edge_list& pos, const edge_list& neg, T margin, T negative_weight,
                       matrix<T>* grad) {
  HEPGNN_CHECK(margin > 0, "tracking::hinge_embedding_loss: margin must be > 0, got ", margin);
  const index_t n = static_cast<index_t>(emb.rows());
  for (const edge_list* l : {&pos, &neg})
    for (std::size_t e = 0; e < l->size(); ++e)
      HEPGNN_CHECK(l->src[e] >= 0 && l->src[e] < n && l->dst[e] >= 0 && l->dst[e] < n,
                   "tracking::hinge_embedding_loss: pair ", e, " (", l->src[e], ", ", l->dst[e],
                   ") is out of range for ", n, " embedded hits");
  if (grad) grad->setZero(emb.rows(), emb.cols());
  double loss = 0;
  const T m2 = margin * margin;
  if (pos.size()) {
    const T w = T(1) / static_cast<T>(pos.size());
    for (std::size_t e = 0; e < pos.size(); ++e) {
      const auto d = (emb.row(pos.src[e]) - emb.row(pos.dst[e])).eval();
      loss += static_cast<double>(w * d.squaredNorm());
      if (grad) grad->row(pos.src[e]) += T(2) * w * d, grad->row(pos.dst[e]) -= T(2) * w * d;
    }
  }
  if (neg.size()) {
    const T w = negative_weight / static_cast<T>(neg.size());
    for (std::size_t e = 0; e < neg.size(); ++e) {
      const auto d = (emb.row(neg.src[e]) - emb.row(neg.dst[e])).eval();
      const T d2 = d.squaredNorm();
      if (d2 >= m2) continue;
      loss += static_cast<double>(w * (m2 - d2));
      if (grad) grad->row(neg.src[e]) -= T(2) * w * d, grad->row(neg.dst[e]) += T(2) * w * d;
    }
  }
  return static_cast<T>(loss);
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
        const T loss = hinge_embedding_loss(sub_emb, pos, neg, static_cast<T>(p.config().margin),
                                            static_cast<T>(o.negative_weight), &grad);
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
        const T loss = bce_with_logits(logits, yb, &grad, pw);
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
        loss = binary_focal_loss(total_logits, labels[k], T(2), static_cast<T>(1 - pos), &grad);
      } else {
        loss = bce_with_logits(total_logits, labels[k], &grad, detail::auto_pos_weight(labels[k], o.pos_weight));
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
