#pragma once
/// @file graph.hpp
/// @brief hepgnn::graph: directed edges in CSR by destination, so aggregation is a per-row reduction.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Directed graph in compressed sparse rows by destination.
///
/// The incoming edges of node i are e in [offsets[i], offsets[i+1]); edge e goes sources[e] -> i.
/// Edge ids are positions in this order, so per-edge features are rows of an E x F matrix in the same order.
/// Invariants (checked by validate()): offsets has num_nodes + 1 non-decreasing entries from 0 to
/// sources.size(), and every source is in [0, num_nodes).
struct graph {
  index_t num_nodes = 0;
  std::vector<index_t> offsets{0};  ///< size num_nodes + 1
  std::vector<index_t> sources;     ///< size num_edges

  /// @brief Number of edges.
  index_t num_edges() const { return static_cast<index_t>(sources.size()); }
  /// @brief Sources of the edges entering node i.
  std::span<const index_t> incoming(index_t i) const {
    return {sources.data() + offsets[i], static_cast<std::size_t>(offsets[i + 1] - offsets[i])};
  }
  /// @brief In-degree of node i.
  index_t degree(index_t i) const { return offsets[i + 1] - offsets[i]; }

  /// @brief Destination of every edge (expanded from the offsets), in edge order.
  std::vector<index_t> destinations() const {
    std::vector<index_t> dst(sources.size());
    for (index_t i = 0; i < num_nodes; ++i) std::fill(dst.begin() + offsets[i], dst.begin() + offsets[i + 1], i);
    return dst;
  }

  /// @brief Throws hepgnn::error unless the CSR invariants hold. `who` (e.g. "edge_conv") prefixes the messages.
  /// O(N + E) integer compares with a branch-free scan of the sources, so layers can afford it on every call.
  void validate(const char* who = nullptr) const {
    const char* sep = who ? ": " : "";
    if (!who) who = "";
    HEPGNN_CHECK(num_nodes >= 0, who, sep, "graph: num_nodes must be >= 0, got ", num_nodes);
    HEPGNN_CHECK(offsets.size() == static_cast<std::size_t>(num_nodes) + 1, who, sep,
                 "graph: offsets must have num_nodes + 1 = ", num_nodes + 1, " entries, got ", offsets.size());
    HEPGNN_CHECK(offsets.front() == 0, who, sep, "graph: offsets[0] must be 0, got ", offsets.front());
    HEPGNN_CHECK(static_cast<std::size_t>(offsets.back()) == sources.size(), who, sep,
                 "graph: offsets[num_nodes] must equal the edge count ", sources.size(), ", got ", offsets.back());
    for (index_t i = 0; i < num_nodes; ++i)
      HEPGNN_CHECK(offsets[i] <= offsets[i + 1], who, sep, "graph: offsets must be non-decreasing, offsets[", i,
                   "] = ", offsets[i], " > offsets[", i + 1, "] = ", offsets[i + 1]);
    bool in_range = true;
    for (index_t s : sources) in_range &= (s >= 0) & (s < num_nodes);
    if (in_range) return;
    for (std::size_t e = 0; e < sources.size(); ++e)
      HEPGNN_CHECK(sources[e] >= 0 && sources[e] < num_nodes, who, sep, "graph: sources[", e, "] = ", sources[e],
                   " is out of range [0, ", num_nodes, ") (a graph of another batch?)");
  }

  /// @brief Builds a graph from an edge list (src[e] -> dst[e]); edges keep their relative order per destination.
  static graph from_edges(index_t num_nodes, std::span<const index_t> src, std::span<const index_t> dst) {
    HEPGNN_CHECK(num_nodes >= 0, "graph::from_edges: num_nodes must be >= 0, got ", num_nodes);
    HEPGNN_CHECK(src.size() == dst.size(), "graph::from_edges: src and dst must have the same length, got ", src.size(),
                 " and ", dst.size());
    graph g;
    g.num_nodes = num_nodes;
    g.offsets.assign(static_cast<std::size_t>(num_nodes) + 1, 0);
    for (std::size_t e = 0; e < dst.size(); ++e) {
      HEPGNN_CHECK(dst[e] >= 0 && dst[e] < num_nodes, "graph::from_edges: dst[", e, "] = ", dst[e],
                   " is out of range [0, ", num_nodes, ")");
      HEPGNN_CHECK(src[e] >= 0 && src[e] < num_nodes, "graph::from_edges: src[", e, "] = ", src[e],
                   " is out of range [0, ", num_nodes, ")");
      ++g.offsets[dst[e] + 1];
    }
    std::partial_sum(g.offsets.begin(), g.offsets.end(), g.offsets.begin());
    g.sources.resize(src.size());
    std::vector<index_t> next(g.offsets.begin(), g.offsets.end() - 1);
    for (std::size_t e = 0; e < dst.size(); ++e) g.sources[next[dst[e]]++] = src[e];
    return g;
  }

  /// @brief Permutation that takes edge e of the input edge list (as given to from_edges) to its CSR position.
  static std::vector<index_t> csr_position(index_t num_nodes, std::span<const index_t> dst) {
    HEPGNN_CHECK(num_nodes >= 0, "graph::csr_position: num_nodes must be >= 0, got ", num_nodes);
    for (std::size_t e = 0; e < dst.size(); ++e)
      HEPGNN_CHECK(dst[e] >= 0 && dst[e] < num_nodes, "graph::csr_position: dst[", e, "] = ", dst[e],
                   " is not a node index in [0, ", num_nodes, ")");
    std::vector<index_t> count(static_cast<std::size_t>(num_nodes) + 1, 0);
    for (index_t d : dst) ++count[d + 1];
    std::partial_sum(count.begin(), count.end(), count.begin());
    std::vector<index_t> pos(dst.size());
    for (std::size_t e = 0; e < dst.size(); ++e) pos[e] = count[dst[e]]++;
    return pos;
  }
};

/// @brief CSR offsets from in-degrees: offsets[0] = 0, offsets[i + 1] = offsets[i] + degrees[i]. Throws naming `who`
/// (with `advice`) when a degree is negative or the edges pass the 32-bit edge index, before anything is sized by
/// the total. The graph builders (kNN, radius) fill their offsets with it.
inline void offsets_from_degrees(std::span<const index_t> degrees, std::vector<index_t>& offsets, const char* who,
                                 const char* advice) {
  constexpr std::int64_t most = std::numeric_limits<index_t>::max();
  std::int64_t total = 0;
  for (std::size_t i = 0; i < degrees.size(); ++i) {
    HEPGNN_CHECK(degrees[i] >= 0, who, ": node ", i, " has a negative in-degree ", degrees[i]);
    total += degrees[i];
  }
  HEPGNN_CHECK(total <= most, who, ": ", total, " edges exceed the 32-bit edge index of a graph (at most ", most,
               "); ", advice);
  offsets.resize(degrees.size() + 1);
  offsets[0] = 0;
  for (std::size_t i = 0; i < degrees.size(); ++i) offsets[i + 1] = offsets[i] + degrees[i];
}

}  // namespace hepgnn
