#pragma once
/// @file orientation.hpp
/// @brief Directs the edges of a graph outward: from the node of smaller distance (to the origin, a vertex, ...)
/// to the larger, without duplicates.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/radix_sort.hpp"
#include "hepgnn/graph/grid.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace hepgnn {

/// @brief The edges of g as directed edges from the node with the smaller distance[] to the larger (ties: the
/// lower index), each pair once, self-loops dropped; sources ascend within each destination. g may list a pair in
/// both directions but not one direction twice (as a radius or kNN graph: distinct sources per node; not checked).
/// distance must be >= 0 (not -0 or NaN: they are ordered by their bit patterns). The output does not depend on
/// the thread count.
/// An entry j of i's list is either an edge j -> i ("own", kept in i's bucket) or i -> j ("pushed" to j's bucket).
/// Buckets take their own entries first and the pushed ones after, in ascending order of the pushing node (chunks
/// of nodes in order), so only the short own part needs a sort before one merge that also drops the edges listed
/// from both ends. Every pass runs over threads: each chunk of nodes counts and places its own entries, so no two
/// threads write one slot.
/// @throws hepgnn::error when distance has not one entry per node.
template <class T>
graph orient_outward(const graph& g, std::span<const T> distance) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "orient_outward: float or double distances");
  const index_t n = g.num_nodes;
  HEPGNN_CHECK(distance.size() == static_cast<std::size_t>(n), "orient_outward: distance must have one entry per ",
               "node of the graph (", n, "), got ", distance.size());
  // one integer per node that orders like (distance, index), so that the direction of an edge is one compare:
  // for float, the packed key of the cell list's candidates (distance bits above the index); else the rank
  std::vector<std::uint64_t> key(static_cast<std::size_t>(n));
  if constexpr (std::is_same_v<T, float>) {
    for (index_t i = 0; i < n; ++i) key[i] = simd::candidate_key<float>::make(distance[i], i);
  } else {
    const std::vector<index_t> order = radix_argsort(distance);
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

}  // namespace hepgnn
