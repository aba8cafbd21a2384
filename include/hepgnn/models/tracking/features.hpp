#pragma once
/// @file features.hpp
/// @brief The tracking pipeline's inputs: hit features, edge labels from the truth graph, the geometry of an
/// edge, and the hits' order by distance from the origin (which directs the edges outward).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/radix_sort.hpp"
#include "hepgnn/graph/orientation.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/metrics/tracking.hpp"
#include "hepgnn/simd/segment_geometry.hpp"

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
  static std::uint64_t key(index_t a, index_t b) {
    return (std::uint64_t{static_cast<std::uint32_t>(std::min(a, b))} << 32) | static_cast<std::uint32_t>(std::max(a, b));
  }
  explicit edge_set(const edge_list& l) : keys(l.size()) {
    for (std::size_t e = 0; e < l.size(); ++e) keys[e] = key(l.src[e], l.dst[e]);
    std::sort(keys.begin(), keys.end());
  }
  bool contains(index_t a, index_t b) const { return std::binary_search(keys.begin(), keys.end(), key(a, b)); }
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
  constexpr int W = simd::segment_lanes;
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
    simd::segment_geometry(in, res);
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

/// @brief r^2 + z^2 (m^2) of each hit, from the rows of hit_features(): the distance that orders the hits outward.
/// @throws hepgnn::error naming `who` when features lacks the columns of hit_features().
template <class T>
std::vector<T> hit_distances(const matrix<T>& features, const char* who) {
  HEPGNN_CHECK(features.cols() >= 4, who, ": features must have the columns of hit_features() (r / 1000 first, ",
               "z / 1000 fourth), got ", features.cols());
  std::vector<T> d(static_cast<std::size_t>(features.rows()));
  for (Eigen::Index i = 0; i < features.rows(); ++i)
    d[static_cast<std::size_t>(i)] = features(i, 0) * features(i, 0) + features(i, 3) * features(i, 3);
  return d;
}

/// @brief Hits (rows of hit_features()) in ascending order of r^2 + z^2, ties to the lower index: the order in
/// which the walkthrough starts tracks. By radix_argsort(): std::stable_sort took about 1.5 ms of the
/// walkthrough's 2.7 ms at 30k hits.
template <class T>
std::vector<index_t> order_by_distance(const matrix<T>& features) {
  const std::vector<T> d = hit_distances(features, "tracking::order_by_distance");
  return radix_argsort(std::span<const T>(d));
}

/// @brief The edges of g as hepgnn::orient_outward() directs them by the hits' r^2 + z^2: from the hit nearer the
/// origin (ties: the lower index) to the farther one, each once, sources ascending within each destination.
template <class T>
graph orient_outward(const matrix<T>& features, const graph& g) {
  HEPGNN_CHECK(features.rows() == g.num_nodes, "tracking::orient_outward: features must have one row per node of ",
               "the graph (", g.num_nodes, ") and the columns of hit_features(), got ", features.rows(), " x ",
               features.cols());
  const std::vector<T> d = hit_distances(features, "tracking::orient_outward");
  return hepgnn::orient_outward(g, std::span<const T>(d));
}

}  // namespace hepgnn::tracking
