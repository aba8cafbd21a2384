#pragma once
/// @file connected_components.hpp
/// @brief Connected components of the edges whose score passes a cut (Exa.TrkX track building), by union-find.

#include <cmath>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/graph.hpp"

namespace hepgnn {

/// @brief Component label of every node and the number of components.
struct components {
  std::vector<index_t> labels;  ///< per node, in [0, count); numbered in order of each component's lowest node
  index_t count = 0;            ///< number of components (isolated nodes count as their own)
};

namespace detail {
inline index_t find_root(std::vector<index_t>& parent, index_t v) {
  while (parent[v] != v) {
    parent[v] = parent[parent[v]];  // path halving
    v = parent[v];
  }
  return v;
}
inline components label_components(std::vector<index_t>& parent) {
  components out;
  const auto n = static_cast<index_t>(parent.size());
  out.labels.assign(parent.size(), -1);
  std::vector<index_t> label_of_root(parent.size(), -1);
  for (index_t v = 0; v < n; ++v) {
    const index_t r = find_root(parent, v);
    if (label_of_root[r] < 0) label_of_root[r] = out.count++;
    out.labels[v] = label_of_root[r];
  }
  return out;
}
inline void unite(std::vector<index_t>& parent, index_t a, index_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a != b) parent[std::max(a, b)] = std::min(a, b);  // lower root wins: labels do not depend on edge order
}
}  // namespace detail

/// @brief Components of g treating every edge as undirected.
inline components connected_components(const graph& g) {
  g.validate();
  std::vector<index_t> parent(static_cast<std::size_t>(g.num_nodes));
  std::iota(parent.begin(), parent.end(), index_t(0));
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (const index_t j : g.incoming(i)) detail::unite(parent, i, j);
  return detail::label_components(parent);
}

/// @brief Components of the edges e of g with scores[e] > cut (edge order as in g.sources), undirected.
/// @throws hepgnn::error when scores has not one entry per edge or holds a NaN.
template <class T>
components connected_components(const graph& g, std::span<const T> scores, T cut) {
  g.validate();
  HEPGNN_CHECK(scores.size() == static_cast<std::size_t>(g.num_edges()), "connected_components: scores must have one ",
               "entry per edge (", g.num_edges(), "), got ", scores.size());
  std::vector<index_t> parent(static_cast<std::size_t>(g.num_nodes));
  std::iota(parent.begin(), parent.end(), index_t(0));
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
      HEPGNN_CHECK(!std::isnan(static_cast<double>(scores[e])), "connected_components: scores[", e, "] is NaN");
      if (scores[e] > cut) detail::unite(parent, i, g.sources[e]);
    }
  return detail::label_components(parent);
}

/// @brief Overload for an Eigen vector (or std::vector) of scores.
template <class T>
components connected_components(const graph& g, const std::vector<T>& scores, T cut) {
  return connected_components(g, std::span<const T>(scores), cut);
}
/// @brief Overload for an Eigen column vector of scores.
template <class T>
components connected_components(const graph& g, const vector<T>& scores, T cut) {
  return connected_components(g, std::span<const T>(scores.data(), static_cast<std::size_t>(scores.size())), cut);
}

}  // namespace hepgnn
