#pragma once
/// @file connected_components.hpp
/// @brief Connected components of the edges whose score passes a cut (Exa.TrkX track building), by union-find.

#include <algorithm>
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

/// @brief Union-find over the nodes 0 .. n-1: find() with path halving, and unite() makes the lower root the
/// root of both, so the roots (and components()' labels) do not depend on the order of the unions.
class disjoint_sets {
 public:
  explicit disjoint_sets(index_t n) : parent_(static_cast<std::size_t>(n)) {
    std::iota(parent_.begin(), parent_.end(), index_t(0));
  }
  /// @brief The root of v's set.
  index_t find(index_t v) {
    while (parent_[v] != v) {
      parent_[v] = parent_[parent_[v]];  // path halving
      v = parent_[v];
    }
    return v;
  }
  /// @brief Joins the sets of a and b.
  void unite(index_t a, index_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }
  /// @brief Label of every node, numbered in order of each set's lowest node, and the number of sets.
  components labels() {
    components out;
    const auto n = static_cast<index_t>(parent_.size());
    out.labels.assign(parent_.size(), -1);
    std::vector<index_t> label_of_root(parent_.size(), -1);
    for (index_t v = 0; v < n; ++v) {
      const index_t r = find(v);
      if (label_of_root[r] < 0) label_of_root[r] = out.count++;
      out.labels[v] = label_of_root[r];
    }
    return out;
  }

 private:
  std::vector<index_t> parent_;
};

/// @brief Components of g treating every edge as undirected.
inline components connected_components(const graph& g) {
  g.validate();
  disjoint_sets sets(g.num_nodes);
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (const index_t j : g.incoming(i)) sets.unite(i, j);
  return sets.labels();
}

/// @brief Components of the edges e of g with scores[e] > cut (edge order as in g.sources), undirected.
/// @throws hepgnn::error when scores has not one entry per edge or holds a NaN.
template <class T>
components connected_components(const graph& g, std::span<const T> scores, T cut) {
  g.validate();
  HEPGNN_CHECK(scores.size() == static_cast<std::size_t>(g.num_edges()), "connected_components: scores must have one ",
               "entry per edge (", g.num_edges(), "), got ", scores.size());
  disjoint_sets sets(g.num_nodes);
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
      HEPGNN_CHECK(!std::isnan(static_cast<double>(scores[e])), "connected_components: scores[", e, "] is NaN");
      if (scores[e] > cut) sets.unite(i, g.sources[e]);
    }
  return sets.labels();
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
