#pragma once
/// @file radius.hpp
/// @brief Radius graph per graph of a batch, optionally capped at the *closest* max_neighbors per node.
///
/// Node j is a neighbour of i when both are in the same graph and distance(i, j) <= r (squared distances are
/// compared, inclusive). With a cap, the max_neighbors nearest qualify (ties to the lower index), not an
/// arbitrary subset. Incoming edges of i are listed nearest first. Same kernels, cell list and threading
/// guarantees as knn.hpp.

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

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

namespace detail {
template <class Metric, int D, class T>
graph radius_impl(const T* x, index_t n, int d, T r, const batch& b, const radius_options& opt);
}  // namespace detail

/// @brief Radius graph of the n points x (row-major n x d) within each graph of `b`; edges j -> i.
/// @throws hepgnn::error for r negative or not finite, max_neighbors < 0, non-finite points, a batch that does
/// not cover the points, or a metric/D mismatch.
template <class Metric = metric::euclidean, int D = dynamic, class T>
graph radius_graph(const T* x, index_t n, int d, T r, const batch& b, const radius_options& opt = {}) {
  static_assert(std::is_floating_point_v<T>, "hepgnn::radius_graph: points must be float or double");
  HEPGNN_CHECK(std::isfinite(static_cast<double>(r)) && r >= 0, "radius_graph: r must be finite and >= 0, got ", r);
  HEPGNN_CHECK(opt.max_neighbors >= 0, "radius_graph: max_neighbors must be >= 0 (0 = no cap), got ",
               opt.max_neighbors);
  detail::check_points<Metric, D>("radius_graph", x, n, d, b);
  if constexpr (D == dynamic) {
    if (Metric::kind == simd::distance_kind::euclidean) {
      if (d == 1) return detail::radius_impl<Metric, 1>(x, n, d, r, b, opt);
      if (d == 2) return detail::radius_impl<Metric, 2>(x, n, d, r, b, opt);
      if (d == 3) return detail::radius_impl<Metric, 3>(x, n, d, r, b, opt);
    }
  }
  return detail::radius_impl<Metric, D>(x, n, d, r, b, opt);
}

namespace detail {
template <class Metric, int D, class T>
graph radius_impl(const T* x, index_t n, int d, T r, const batch& b, const radius_options& opt) {
  const T r2 = r * r;
  search_buffers<T> buf;
  const auto none = [](index_t) { return false; };
  graph out;
  out.num_nodes = n;
  out.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  if (opt.max_neighbors > 0) {
    const index_t cap = opt.max_neighbors;
    std::vector<index_t> ids(static_cast<std::size_t>(n) * cap, -1);
    std::vector<T> dist(static_cast<std::size_t>(n) * cap);
    std::vector<index_t> count(static_cast<std::size_t>(n), 0);
    detail::search_all<Metric, D>(
        x, n, d, b, opt.include_self, opt.grid_min_points, none, buf,
        [&](index_t i) {
          return simd::top_k<T>(dist.data() + static_cast<std::size_t>(i) * cap,
                                ids.data() + static_cast<std::size_t>(i) * cap, cap, r2);
        },
        [&](index_t i, const simd::top_k<T>& top) { count[i] = top.size(); });
    for (index_t i = 0; i < n; ++i) out.offsets[i + 1] = out.offsets[i] + count[i];
    out.sources.resize(static_cast<std::size_t>(out.offsets.back()));
    for (index_t i = 0; i < n; ++i)
      std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(i) * cap, count[i], out.sources.begin() + out.offsets[i]);
  } else {
    std::vector<std::vector<index_t>> lists(static_cast<std::size_t>(n));
    std::vector<std::vector<std::pair<T, index_t>>> scratch(1);
#ifdef _OPENMP
    scratch.resize(static_cast<std::size_t>(omp_get_max_threads()));
#endif
    detail::search_all<Metric, D>(
        x, n, d, b, opt.include_self, opt.grid_min_points, none, buf,
        [&](index_t) {
#ifdef _OPENMP
          auto& found = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#else
          auto& found = scratch[0];
#endif
          found.clear();
          return detail::within_radius<T>{r2, &found};
        },
        [&](index_t i, const detail::within_radius<T>& sink) {
          std::sort(sink.found->begin(), sink.found->end());
          auto& l = lists[i];
          l.reserve(sink.found->size());
          for (const auto& p : *sink.found) l.push_back(p.second);
        });
    for (index_t i = 0; i < n; ++i) {
      HEPGNN_CHECK(static_cast<long long>(out.offsets[i]) + static_cast<long long>(lists[i].size()) <= 0x7fffffffLL,
                   "radius_graph: more than 2^31 - 1 edges; lower r or set max_neighbors");
      out.offsets[i + 1] = out.offsets[i] + static_cast<index_t>(lists[i].size());
    }
    out.sources.reserve(static_cast<std::size_t>(out.offsets.back()));
    for (const auto& l : lists) out.sources.insert(out.sources.end(), l.begin(), l.end());
  }
  return out;
}
}  // namespace detail

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
