#pragma once
/// @file radius.hpp
/// @brief Radius graph per graph of a batch, optionally capped at the *closest* max_neighbors per node.
///
/// Node j is a neighbour of i when both are in the same graph and distance(i, j) <= r (squared distances are
/// compared, inclusive). With a cap, the max_neighbors nearest qualify (ties to the lower index), not an
/// arbitrary subset. Incoming edges of i are listed nearest first. Same kernels, cell list and threading
/// guarantees as knn.hpp; radius_graph_into() reuses caller-owned storage (radius_workspace).

#include <cstdint>
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/graph/knn.hpp"

namespace hepgnn {

/// @brief Options of radius_graph().
struct radius_options {
  index_t max_neighbors = 0;       ///< keep at most this many (the closest) per node; 0 keeps all
  bool include_self = false;       ///< add i -> i (distance 0 is always within r)
  index_t grid_min_points = 2048;  ///< Euclidean graphs with d <= 3 and at least this many points use a cell list
};

namespace detail {
template <class T>
struct within_radius {  // collects every candidate within r^2
  T r2;
  std::vector<std::pair<T, index_t>>* found;
  T threshold() const { return r2; }
  void offer(T d, index_t i) {
    if (d <= r2) found->emplace_back(d, i);
  }
};
}  // namespace detail

/// @brief Reusable buffers of radius_graph_into(): with them, repeated calls of the same sizes do not allocate
/// (except on the cell-list path, as for knn_workspace).
template <class T>
struct radius_workspace {
  std::vector<T> rows;               ///< contiguous copy of strided input rows
  detail::search_buffers<T> search;  ///< SoA of all points, graph ids
  std::vector<index_t> ids;          ///< with a cap: max_neighbors slots per node, nearest first
  std::vector<T> distances;          ///< with a cap: their squared distances
  std::vector<index_t> counts;       ///< neighbours found per node
  std::vector<std::vector<std::pair<T, index_t>>> found;  ///< without a cap, per thread: the current query's hits
  std::vector<std::vector<index_t>> lists;  ///< without a cap, per thread: its nodes' sorted lists, one after another
  std::vector<int> list_thread;             ///< without a cap: which thread's `lists` holds node i's list
  std::vector<std::size_t> list_start;      ///< without a cap: where in it node i's list starts
};

namespace detail {
template <class Metric, int D, class T>
void radius_impl(const T* x, index_t n, int d, T r, const batch& b, const radius_options& opt, graph& out,
                 radius_workspace<T>& ws) {
  const T r2 = r * r;
  const auto none = [](index_t) { return false; };
  ws.counts.assign(static_cast<std::size_t>(n), 0);
  out.num_nodes = n;
  if (opt.max_neighbors > 0) {
    // A node cannot have more neighbours than its graph has nodes: a huge cap must not size n x cap buffers.
    index_t largest = 1;
    for (index_t g = 0; g < b.num_graphs(); ++g) largest = std::max(largest, b.size(g));
    const index_t cap = std::min(opt.max_neighbors, largest);
    ws.ids.resize(static_cast<std::size_t>(n) * cap);
    ws.distances.resize(static_cast<std::size_t>(n) * cap);
    search_all<Metric, D>(
        x, n, d, b, opt.include_self, opt.grid_min_points, none, ws.search,
        [&](index_t i) {
          return simd::top_k<T>(ws.distances.data() + static_cast<std::size_t>(i) * cap,
                                ws.ids.data() + static_cast<std::size_t>(i) * cap, cap, r2);
        },
        [&](index_t i, const simd::top_k<T>& top) { ws.counts[i] = top.size(); });
    offsets_from_degrees(std::span<const index_t>(ws.counts.data(), static_cast<std::size_t>(n)), out.offsets,
                         "radius_graph", "lower r or max_neighbors");
    out.sources.resize(static_cast<std::size_t>(out.offsets.back()));
    for (index_t i = 0; i < n; ++i)
      std::copy_n(ws.ids.begin() + static_cast<std::ptrdiff_t>(i) * cap, ws.counts[i],
                  out.sources.begin() + out.offsets[i]);
    return;
  }
  const auto threads = static_cast<std::size_t>(max_threads());
  if (ws.found.size() < threads) ws.found.resize(threads);
  if (ws.lists.size() < threads) ws.lists.resize(threads);
  for (auto& l : ws.lists) l.clear();
  ws.list_thread.resize(static_cast<std::size_t>(n));
  ws.list_start.resize(static_cast<std::size_t>(n));
  search_all<Metric, D>(
      x, n, d, b, opt.include_self, opt.grid_min_points, none, ws.search,
      [&](index_t) {
        auto& found = ws.found[static_cast<std::size_t>(thread_index())];
        found.clear();
        return within_radius<T>{r2, &found};
      },
      [&](index_t i, const within_radius<T>& sink) {
        std::sort(sink.found->begin(), sink.found->end());
        const int me = thread_index();
        auto& l = ws.lists[static_cast<std::size_t>(me)];
        ws.list_thread[i] = me;
        ws.list_start[i] = l.size();
        ws.counts[i] = static_cast<index_t>(sink.found->size());
        for (const auto& p : *sink.found) l.push_back(p.second);
      });
  offsets_from_degrees(std::span<const index_t>(ws.counts.data(), static_cast<std::size_t>(n)), out.offsets,
                       "radius_graph", "lower r or set max_neighbors");
  out.sources.resize(static_cast<std::size_t>(out.offsets.back()));
  for (index_t i = 0; i < n; ++i)
    std::copy_n(ws.lists[static_cast<std::size_t>(ws.list_thread[i])].begin() +
                    static_cast<std::ptrdiff_t>(ws.list_start[i]),
                ws.counts[i], out.sources.begin() + out.offsets[i]);
  // Which thread searches which node varies from call to call: let every thread's buffers take all of this call.
  const index_t most = n > 0 ? *std::max_element(ws.counts.begin(), ws.counts.end()) : 0;
  for (auto& f : ws.found) f.reserve(static_cast<std::size_t>(most));
  for (auto& l : ws.lists) l.reserve(out.sources.size());
}
}  // namespace detail

/// @brief radius_graph() (see the file comment) into caller-owned storage: `out` and `ws` keep their capacity,
/// so repeated calls with the same sizes do not allocate (the cell-list path excepted, see radius_workspace).
/// @param x   point i's coordinates are x[i*ld + c], c in [0, d)
/// @param ld  row stride of x, >= d (a column block of a wider feature matrix)
/// @throws hepgnn::error for r negative or not finite, max_neighbors < 0, ld < d, non-finite points, a batch that
/// does not cover the points, or a metric/D mismatch.
template <class Metric = metric::euclidean, int D = dynamic, class T>
void radius_graph_into(const T* x, index_t n, int d, std::ptrdiff_t ld, T r, const batch& b,
                       const radius_options& opt, graph& out, radius_workspace<T>& ws) {
  static_assert(std::is_floating_point_v<T>, "hepgnn::radius_graph: points must be float or double");
  static_assert(metric::metric_policy<Metric>,
                "hepgnn::radius_graph: Metric must be a metric policy (metric::euclidean, ...)");
  HEPGNN_CHECK(std::isfinite(static_cast<double>(r)) && r >= 0, "radius_graph: r must be finite and >= 0, got ", r);
  HEPGNN_CHECK(opt.max_neighbors >= 0, "radius_graph: max_neighbors must be >= 0 (0 = no cap), got ",
               opt.max_neighbors);
  x = detail::contiguous_rows("radius_graph", x, n, d, ld, ws.rows);
  detail::check_points<Metric, D>("radius_graph", x, n, d, b);
  if constexpr (D == dynamic) {
    if (Metric::kind == simd::distance_kind::euclidean) {
      if (d == 1) return detail::radius_impl<Metric, 1>(x, n, d, r, b, opt, out, ws);
      if (d == 2) return detail::radius_impl<Metric, 2>(x, n, d, r, b, opt, out, ws);
      if (d == 3) return detail::radius_impl<Metric, 3>(x, n, d, r, b, opt, out, ws);
    }
  }
  detail::radius_impl<Metric, D>(x, n, d, r, b, opt, out, ws);
}

/// @brief Radius graph of the n points x (row-major n x d) within each graph of `b`; edges j -> i.
/// @throws hepgnn::error for r negative or not finite, max_neighbors < 0, non-finite points, a batch that does
/// not cover the points, or a metric/D mismatch.
template <class Metric = metric::euclidean, int D = dynamic, class T>
graph radius_graph(const T* x, index_t n, int d, T r, const batch& b, const radius_options& opt = {}) {
  graph out;
  radius_workspace<T> ws;
  radius_graph_into<Metric, D>(x, n, d, d, r, b, opt, out, ws);
  return out;
}

/// @brief radius_graph() on a feature matrix (rows = nodes, columns = coordinates).
template <class Metric = metric::euclidean, int D = dynamic, class T>
graph radius_graph(const matrix<T>& x, T r, const batch& b, const radius_options& opt = {}) {
  return radius_graph<Metric, D>(x.data(), static_cast<index_t>(x.rows()), static_cast<int>(x.cols()), r, b, opt);
}

/// @brief radius_graph() with all rows forming one graph.
template <class Metric = metric::euclidean, int D = dynamic, class T>
graph radius_graph(const matrix<T>& x, T r, const radius_options& opt = {}) {
  return radius_graph<Metric, D>(x, r, batch::single(static_cast<index_t>(x.rows())), opt);
}

}  // namespace hepgnn
