#pragma once
/// @file edge_selection.hpp
/// @brief The subgraph of the edges whose score passes a cut, CSR order kept.

#include <cmath>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"

namespace hepgnn {

/// @brief Keeps the edges e of g with scores[e] >= cut (scores in CSR order; the kept edges keep it); `kept`, when
/// given, receives the index in g of each kept edge. The output does not depend on the thread count.
/// @throws hepgnn::error when scores has not one entry per edge.
template <class T>
graph select_edges(const graph& g, std::span<const T> scores, T cut, std::vector<index_t>* kept = nullptr) {
  g.validate("select_edges");
  HEPGNN_CHECK(scores.size() == static_cast<std::size_t>(g.num_edges()), "select_edges: scores must have one entry ",
               "per edge (", g.num_edges(), "), got ", scores.size());
  for (std::size_t e = 0; e < scores.size(); ++e)  // a NaN score is neither above nor below a cut
    HEPGNN_CHECK(!std::isnan(static_cast<double>(scores[e])), "select_edges: scores[", e, "] is NaN");
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

/// @brief Overload for an Eigen column vector of scores.
template <class T>
graph select_edges(const graph& g, const vector<T>& scores, T cut, std::vector<index_t>* kept = nullptr) {
  return select_edges(g, std::span<const T>(scores.data(), static_cast<std::size_t>(scores.size())), cut, kept);
}

}  // namespace hepgnn
