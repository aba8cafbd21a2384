#pragma once
/// @file fully_connected.hpp
/// @brief Fully connected graph within each graph of a batch (MPGAN jets: every particle sees every other).

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"

namespace hepgnn {

/// @brief Writes into `out` the edges j -> i for every pair of nodes i, j of the same graph of `b` (j ascending per
/// destination), plus i -> i when `self_loops`. A graph of n nodes gives n (n - 1) edges (n^2 with self loops).
/// Reuses the storage of `out`: no allocation once sizes repeat.
/// @throws hepgnn::error for malformed batch offsets or more than 2^31 - 1 edges.
inline void fully_connected_into(const batch& b, bool self_loops, graph& out) {
  HEPGNN_CHECK(!b.node_offsets.empty() && b.node_offsets.front() == 0,
               "fully_connected: batch node_offsets must start with 0");
  long long edges = 0;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    HEPGNN_CHECK(b.size(g) >= 0, "fully_connected: batch node_offsets must be non-decreasing, graph ", g, " has size ",
                 b.size(g));
    const long long n = b.size(g);
    edges += n * (self_loops ? n : n - (n > 0));
  }
  HEPGNN_CHECK(edges <= 0x7fffffffLL, "fully_connected: the batch would have ", edges,
               " edges, more than index_t can count (2^31 - 1)");
  out.num_nodes = b.num_nodes();
  out.offsets.resize(static_cast<std::size_t>(out.num_nodes) + 1);
  out.offsets[0] = 0;
  out.sources.resize(static_cast<std::size_t>(edges));
  index_t e = 0;
  for (index_t g = 0; g < b.num_graphs(); ++g)
    for (index_t i = b.begin(g); i < b.end(g); ++i) {
      for (index_t j = b.begin(g); j < b.end(g); ++j)
        if (self_loops || j != i) out.sources[e++] = j;
      out.offsets[i + 1] = e;
    }
}

/// @brief fully_connected_into() into a new graph.
inline graph fully_connected(const batch& b, bool self_loops = false) {
  graph out;
  fully_connected_into(b, self_loops, out);
  return out;
}

/// @brief fully_connected() over one graph of n nodes.
inline graph fully_connected(index_t n, bool self_loops = false) { return fully_connected(batch::single(n), self_loops); }

}  // namespace hepgnn
