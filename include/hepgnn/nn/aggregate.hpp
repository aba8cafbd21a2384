#pragma once
/// @file aggregate.hpp
/// @brief Per-destination segment reductions over a CSR graph (sum, mean, max with arg-max), their backward
/// passes, and the gather / scatter helpers of message passing.
///
/// Every kernel loops over destination (or source) rows and reduces each row's contiguous edge range in edge
/// order, one output row per iteration: OpenMP splits rows, never a reduction, so results are bit-identical
/// for any thread count and no atomics are needed. Inner loops are over features of contiguous row-major rows
/// (vectorised by the compiler).

#include <algorithm>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/core/aggregation.hpp"
#include "hepgnn/simd/segment_reduce.hpp"

namespace hepgnn {

namespace detail {
/// Rows x features below which a kernel stays on one thread (thread start-up costs more than the work).
inline constexpr long parallel_min_work = 1L << 15;
using simd::row_add;
using simd::row_copy;
using simd::row_max;
using simd::row_scale;
}  // namespace detail

/// @brief Reverse (by source) index of a graph's edges: the outgoing edges of node j are
/// edges[offsets[j] .. offsets[j+1]) in increasing edge id. Lets backward passes scatter to sources
/// deterministically and in parallel, as a gather.
struct source_index {
  std::vector<index_t> offsets;  ///< num_nodes + 1
  std::vector<index_t> edges;    ///< edge ids grouped by source

  /// @brief Builds the index of g (O(N + E)); reuses this object's storage.
  void build(const graph& g) {
    offsets.assign(static_cast<std::size_t>(g.num_nodes) + 1, 0);
    for (index_t s : g.sources) ++offsets[s + 1];
    for (index_t j = 0; j < g.num_nodes; ++j) offsets[j + 1] += offsets[j];
    edges.resize(g.sources.size());
    // Fill with a running cursor per source; edge ids come out increasing because e increases.
    std::vector<index_t>& cursor = scratch_;
    cursor.assign(offsets.begin(), offsets.end() - 1);
    for (index_t e = 0; e < g.num_edges(); ++e) edges[cursor[g.sources[e]]++] = e;
  }

 private:
  std::vector<index_t> scratch_;
};

namespace detail {

/// y[i] = AGG over the edges e entering i of the row row(e) (f values); argmax (max only) receives edge ids, -1
/// for nodes without edges. The one reduction behind segment_reduce (rows of a message matrix) and gather_reduce
/// (rows of source nodes).
template <class T, class Row>
void reduce_edges(const graph& g, long f, Row row, aggregation a, matrix<T>& y, std::vector<index_t>* argmax) {
  const long n = g.num_nodes;
  y.resize(n, f);
  if (a == aggregation::max && argmax) argmax->resize(static_cast<std::size_t>(n * f));
  const index_t* off = g.offsets.data();
  T* yp = y.data();
  index_t* ap = (a == aggregation::max && argmax) ? argmax->data() : nullptr;
  parallel_for(n, n * f >= parallel_min_work, [&](long i) {
    simd::reduce_segment(off[i], off[i + 1], f, row, a, yp + i * f, ap ? ap + i * f : nullptr);
  });
}

}  // namespace detail

/// @brief y[i] = AGG_{e in in(i)} m[e] for the E x F edge messages m (rows in g's CSR edge order).
/// Nodes without incoming edges get 0 (PyG). For max, `argmax` (if given) receives N x F edge ids
/// (-1 for nodes without edges), what segment_reduce_backward needs.
template <class T>
void segment_reduce(const graph& g, const matrix<T>& m, aggregation a, matrix<T>& y,
                    std::vector<index_t>* argmax = nullptr) {
  HEPGNN_CHECK(m.rows() == g.num_edges(), "segment_reduce: messages m must have one row per edge (", g.num_edges(),
               "), got ", m.rows(), " x ", m.cols());
  HEPGNN_CHECK(g.offsets.size() == static_cast<std::size_t>(g.num_nodes) + 1,
               "segment_reduce: graph offsets must have num_nodes + 1 entries");
  const long f = m.cols();
  const T* mp = m.data();
  detail::reduce_edges(g, f, [&](index_t e) { return mp + long(e) * f; }, a, y, argmax);
}

/// @brief Vector-Jacobian product of segment_reduce: writes dm (E x F) from dy (N x F).
/// sum: dm[e] = dy[dst(e)]; mean: dy[dst(e)] / deg; max: dy routed to the arg-max edge only (others 0).
template <class T>
void segment_reduce_backward(const graph& g, aggregation a, const matrix<T>& dy, const std::vector<index_t>* argmax,
                             matrix<T>& dm) {
  HEPGNN_CHECK(dy.rows() == g.num_nodes, "segment_reduce_backward: dy must have one row per node (", g.num_nodes,
               "), got ", dy.rows(), " x ", dy.cols());
  const long n = g.num_nodes, f = dy.cols();
  if (a == aggregation::max)
    HEPGNN_CHECK(argmax && argmax->size() == static_cast<std::size_t>(n * f),
                 "segment_reduce_backward: max needs the N x F arg-max of the forward pass (", n * f, " entries), got ",
                 argmax ? argmax->size() : 0);
  dm.resize(g.num_edges(), f);
  const index_t* off = g.offsets.data();
  const T* dyp = dy.data();
  T* dmp = dm.data();
  const index_t* arg = a == aggregation::max ? argmax->data() : nullptr;
  parallel_for(n, n * f >= detail::parallel_min_work, [&](long i) {
    simd::reduce_segment_backward<simd::gradient_mode::assign>(off[i], off[i + 1], f, a, dyp + i * f,
                                                               arg ? arg + i * f : nullptr,
                                                               [&](index_t e) { return dmp + long(e) * f; });
  });
}

/// @brief y[i] = AGG_{j -> i} x[j]: a segment reduction of source node features without materialising the
/// E x F message matrix. argmax (max only) receives edge ids as in segment_reduce.
template <class T>
void gather_reduce(const graph& g, const matrix<T>& x, aggregation a, matrix<T>& y,
                   std::vector<index_t>* argmax = nullptr) {
  HEPGNN_CHECK(x.rows() == g.num_nodes, "gather_reduce: x must have one row per node (", g.num_nodes, "), got ",
               x.rows(), " x ", x.cols());
  const long f = x.cols();
  const index_t* src = g.sources.data();
  const T* xp = x.data();
  detail::reduce_edges(g, f, [&](index_t e) { return xp + long(src[e]) * f; }, a, y, argmax);
}

/// @brief out[e] = x[sources[e]] (E x F): the source feature of every edge.
template <class T>
void gather_sources(const graph& g, const matrix<T>& x, matrix<T>& out) {
  HEPGNN_CHECK(x.rows() == g.num_nodes, "gather_sources: x must have one row per node (", g.num_nodes, "), got ",
               x.rows(), " x ", x.cols());
  const long ne = g.num_edges(), f = x.cols();
  out.resize(ne, f);
  const index_t* src = g.sources.data();
  parallel_for(ne, ne * f >= detail::parallel_min_work,
               [&](long e) { detail::row_copy(out.data() + e * f, x.data() + long(src[e]) * f, f); });
}

/// @brief out[e] = x[dst(e)] (E x F): the destination feature of every edge.
template <class T>
void gather_destinations(const graph& g, const matrix<T>& x, matrix<T>& out) {
  HEPGNN_CHECK(x.rows() == g.num_nodes, "gather_destinations: x must have one row per node (", g.num_nodes,
               "), got ", x.rows(), " x ", x.cols());
  const long n = g.num_nodes, f = x.cols();
  out.resize(g.num_edges(), f);
  const index_t* off = g.offsets.data();
  parallel_for(n, n * f >= detail::parallel_min_work, [&](long i) {
    for (index_t e = off[i]; e < off[i + 1]; ++e) detail::row_copy(out.data() + long(e) * f, x.data() + i * f, f);
  });
}

/// @brief dx[i] += sum_{e in in(i)} dm[e]: adjoint of gather_destinations (a sum segment reduction, added).
template <class T>
void scatter_destinations_add(const graph& g, const matrix<T>& dm, matrix<T>& dx) {
  HEPGNN_CHECK(dm.rows() == g.num_edges() && dx.rows() == g.num_nodes && dx.cols() == dm.cols(),
               "scatter_destinations_add: expected dm ", g.num_edges(), " x F and dx ", g.num_nodes,
               " x F, got dm ", dm.rows(), " x ", dm.cols(), " and dx ", dx.rows(), " x ", dx.cols());
  const long n = g.num_nodes, f = dm.cols();
  const index_t* off = g.offsets.data();
  parallel_for(n, n * f >= detail::parallel_min_work, [&](long i) {
    for (index_t e = off[i]; e < off[i + 1]; ++e) detail::row_add(dx.data() + i * f, dm.data() + long(e) * f, f);
  });
}

/// @brief dx[j] += sum_{e: sources[e] = j} dm[e]: adjoint of gather_sources, deterministic via the source index
/// (build it once per graph with source_index::build).
template <class T>
void scatter_sources_add(const graph& g, const source_index& s, const matrix<T>& dm, matrix<T>& dx) {
  HEPGNN_CHECK(dm.rows() == g.num_edges() && dx.rows() == g.num_nodes && dx.cols() == dm.cols(),
               "scatter_sources_add: expected dm ", g.num_edges(), " x F and dx ", g.num_nodes, " x F, got dm ",
               dm.rows(), " x ", dm.cols(), " and dx ", dx.rows(), " x ", dx.cols());
  HEPGNN_CHECK(s.offsets.size() == static_cast<std::size_t>(g.num_nodes) + 1 && s.edges.size() == g.sources.size(),
               "scatter_sources_add: the source index was built for another graph (", s.offsets.size() - 1,
               " nodes, ", s.edges.size(), " edges; this graph has ", g.num_nodes, " and ", g.num_edges(), ")");
  const long n = g.num_nodes, f = dm.cols();
  const index_t* off = s.offsets.data();
  const index_t* ed = s.edges.data();
  parallel_for(n, n * f >= detail::parallel_min_work, [&](long j) {
    for (index_t k = off[j]; k < off[j + 1]; ++k) detail::row_add(dx.data() + j * f, dm.data() + long(ed[k]) * f, f);
  });
}

}  // namespace hepgnn
