#pragma once
/// @file knn.hpp
/// @brief Exact k-nearest-neighbour graphs per graph of a batch: regular N x k form and CSR hepgnn::graph.
///
/// Semantics. Neighbours of node i are the k nodes of i's own graph (never another graph of the batch) with the
/// smallest metric distance to i, ranked by (squared distance, index): ties go to the lower index; rows are
/// sorted nearest first. Node i itself is excluded unless knn_options::include_self (GravNet and
/// DynamicEdgeConv count it; it then competes like any point, so a duplicate with a lower index ranks first).
/// A graph with fewer than k other candidates gives every node all of them (fewer than k neighbours);
/// knn_options::strict turns that into a hepgnn::error. Empty graphs and single nodes are valid.
///
/// Algorithm. Graphs of <= knn_options::rank_max_points nodes (jets) rank all candidates of a query at once
/// (simd::select_k_by_rank); Euclidean graphs of >= knn_options::grid_min_points points in 1 to 3 dimensions use
/// a cell list (graph/grid.hpp, not O(N^2)); the rest scan an SoA copy with the fused SIMD distance + threshold
/// filter of simd::scan_nearest. OpenMP over query nodes; each node's result depends only on the points, so any
/// thread count (and any SIMD width) gives the same output bit for bit.

#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/graph/grid.hpp"
#include "hepgnn/graph/metric.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace hepgnn {

/// @brief Options of knn() and knn_graph().
struct knn_options {
  bool include_self = false;     ///< count each node as its own candidate (distance 0)
  bool strict = false;           ///< throw if a graph has fewer than k candidates per node (default: fewer neighbours)
  index_t grid_min_points = 2048;  ///< Euclidean graphs with d <= 3 and at least this many points use a cell list
  index_t rank_max_points = 96;    ///< graphs up to this size select by ranking (simd::select_k_by_rank)
};

/// @brief Regular neighbour form: row i holds the neighbours of node i, nearest first.
template <class T>
struct neighbour_list {
  index_t k = 0;                  ///< row width
  std::vector<index_t> indices;   ///< num_nodes() * k node ids, rows padded with -1
  std::vector<T> distances;       ///< num_nodes() * k squared metric distances, padded with +inf
  std::vector<index_t> counts;    ///< neighbours found per node (<= k)

  /// @brief Number of nodes (rows).
  index_t num_nodes() const { return static_cast<index_t>(counts.size()); }
  /// @brief The neighbours of node i (counts[i] ids, nearest first).
  std::span<const index_t> of(index_t i) const {
    return {indices.data() + static_cast<std::size_t>(i) * k, static_cast<std::size_t>(counts[i])};
  }
  /// @brief CSR graph with edges j -> i for every neighbour j of i: incoming(i) lists i's neighbours nearest first.
  graph to_graph() const {
    graph g;
    g.num_nodes = num_nodes();
    g.offsets.assign(static_cast<std::size_t>(g.num_nodes) + 1, 0);
    for (index_t i = 0; i < g.num_nodes; ++i) g.offsets[i + 1] = g.offsets[i] + counts[i];
    g.sources.resize(static_cast<std::size_t>(g.offsets.back()));
    for (index_t i = 0; i < g.num_nodes; ++i) {
      const auto row = of(i);
      std::copy(row.begin(), row.end(), g.sources.begin() + g.offsets[i]);
    }
    return g;
  }
};

namespace detail {

/// Common argument checks of the point-cloud builders; returns nothing, throws hepgnn::error naming `fn`.
template <class Metric, int D, class T>
void check_points(const char* fn, const T* x, index_t n, int d, const batch& b) {
  HEPGNN_CHECK(n >= 0, fn, ": number of points must be >= 0, got ", n);
  HEPGNN_CHECK(d >= 1, fn, ": points must have at least one coordinate column, got ", d);
  HEPGNN_CHECK(width_accepts(D, d), fn, ": points have ", d, " columns but the compile-time dimension D is ", D);
  HEPGNN_CHECK(width_accepts(Metric::dims, d), fn, ": metric ", Metric::name, " needs ", Metric::dims,
               " coordinate columns (eta, phi), points have ", d);
  HEPGNN_CHECK(n == 0 || x != nullptr, fn, ": points pointer is null for ", n, " points");
  HEPGNN_CHECK(!b.node_offsets.empty() && b.node_offsets.front() == 0, fn,
               ": batch node_offsets must start with 0, got ", b.node_offsets.empty() ? std::string("nothing") : std::to_string(b.node_offsets.front()));
  for (std::size_t g = 0; g + 1 < b.node_offsets.size(); ++g)
    HEPGNN_CHECK(b.node_offsets[g] <= b.node_offsets[g + 1], fn, ": batch node_offsets must be non-decreasing, node_offsets[",
                 g, "] = ", b.node_offsets[g], " > node_offsets[", g + 1, "] = ", b.node_offsets[g + 1]);
  HEPGNN_CHECK(b.node_offsets.back() == n, fn, ": batch node_offsets cover ", b.node_offsets.back(),
               " nodes but the points matrix has ", n, " rows");
  const std::size_t total = static_cast<std::size_t>(n) * static_cast<std::size_t>(d);
  for (std::size_t e = 0; e < total; ++e)
    HEPGNN_CHECK(std::isfinite(static_cast<double>(x[e])), fn, ": points must be finite, got ", x[e], " at row ",
                 e / d, ", column ", e % d);
}

/// SoA copy of all points (coordinate c of node i at out[c*n + i]).
template <class T>
std::vector<T> to_soa(const T* x, index_t n, int d) {
  std::vector<T> xt(static_cast<std::size_t>(n) * static_cast<std::size_t>(d));
  simd::transpose_to_soa(x, n, d, xt.data(), n);
  return xt;
}

/// For each node i, fills the sink make(i) from a brute-force scan of i's graph or a cell-list search, then calls
/// finish(i, sink). Used by knn and radius.
/// Graphs of at most `done_up_to` nodes are skipped (the caller handled them).
template <class Metric, int D, class T, class MakeSink, class Finish>
void search_all(const T* x, index_t n, int d, const batch& b, bool include_self, index_t grid_min, index_t done_up_to,
                MakeSink&& make, Finish&& finish) {
  if (n == 0) return;
  const std::vector<T> xt = to_soa(x, n, d);
  const std::vector<index_t> gid = b.graph_of_nodes();
  constexpr bool can_grid = Metric::kind == simd::distance_kind::euclidean && (D == dynamic || D <= 3);
  constexpr int GD = (D == dynamic || D > 3) ? 3 : D;
  std::vector<std::unique_ptr<cell_grid<T, GD>>> grids(static_cast<std::size_t>(b.num_graphs()));
  bool any_grid = false;
  if constexpr (can_grid) {
    if (d == GD)
      for (index_t g = 0; g < b.num_graphs(); ++g)
        if (b.size(g) >= grid_min && b.size(g) > done_up_to && b.size(g) > 0) {
          grids[g] = std::make_unique<cell_grid<T, GD>>(x, b.begin(g), b.end(g), 3.0);
          any_grid = true;
        }
  }
  // Brute force for nodes of graphs without a grid.
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 64)
#endif
  for (index_t i = 0; i < n; ++i) {
    const index_t g = gid[i];
    if (grids[g] || b.size(g) <= done_up_to) continue;
    auto sink = make(i);
    simd::scan_nearest<Metric::kind, simd::native, D>(x + static_cast<std::ptrdiff_t>(i) * d, d, xt.data(), n,
                                                      b.begin(g), b.end(g), nullptr, include_self ? -1 : i, sink);
    finish(i, sink);
  }
  if (!any_grid) return;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    if (!grids[g]) continue;
    const auto& grid = *grids[g];
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 256)
#endif
    for (index_t p = 0; p < grid.size(); ++p) {
      const index_t i = grid.id_at(p);  // sorted order: neighbouring queries share cells in cache
      auto sink = make(i);
      grid.search(x + static_cast<std::ptrdiff_t>(i) * d, include_self ? -1 : i, sink);
      finish(i, sink);
    }
  }
}

/// Small graphs: all distances of a query, then rank selection (no per-candidate insertion).
template <class Metric, int D, class T>
void knn_small_graphs(const T* x, int d, int k, const batch& b, const knn_options& opt, neighbour_list<T>& out) {
  const std::vector<T> xt = to_soa(x, b.num_nodes(), d);
  const index_t n = b.num_nodes();
#ifdef _OPENMP
#pragma omp parallel
#endif
  {
    std::vector<T> dist(static_cast<std::size_t>(opt.rank_max_points));
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
    for (index_t g = 0; g < b.num_graphs(); ++g) {
      const index_t m = b.size(g), a = b.begin(g);
      if (m == 0 || m > opt.rank_max_points) continue;
      for (index_t i = a; i < a + m; ++i) {
        simd::distances_soa<Metric::kind, simd::native, D>(x + static_cast<std::ptrdiff_t>(i) * d, d, xt.data() + a, n,
                                                           m, dist.data());
        out.counts[i] = simd::select_k_by_rank(dist.data(), m, a, opt.include_self ? -1 : i - a, k,
                                               out.distances.data() + static_cast<std::size_t>(i) * k,
                                               out.indices.data() + static_cast<std::size_t>(i) * k);
      }
    }
  }
}

template <class Metric, int D, class T>
neighbour_list<T> knn_impl(const T* x, index_t n, int d, int k, const batch& b, const knn_options& opt) {
  neighbour_list<T> out;
  out.k = k;
  out.indices.assign(static_cast<std::size_t>(n) * k, index_t(-1));
  out.distances.assign(static_cast<std::size_t>(n) * k, std::numeric_limits<T>::infinity());
  out.counts.assign(static_cast<std::size_t>(n), 0);
  bool any_small = false, all_small = true;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    const bool small = b.size(g) <= opt.rank_max_points;
    any_small |= small && b.size(g) > 0;
    all_small &= small;
  }
  if (any_small) knn_small_graphs<Metric, D>(x, d, k, b, opt, out);
  if (all_small) return out;
  search_all<Metric, D>(
      x, n, d, b, opt.include_self, opt.grid_min_points, any_small ? opt.rank_max_points : 0,
      [&](index_t i) {
        return simd::top_k<T>(out.distances.data() + static_cast<std::size_t>(i) * k,
                              out.indices.data() + static_cast<std::size_t>(i) * k, k);
      },
      [&](index_t i, const simd::top_k<T>& top) { out.counts[i] = top.size(); });
  return out;
}

}  // namespace detail

/// @brief Exact kNN of the n points x (row-major n x d) within each graph of `b` (see the file comment).
/// @tparam Metric metric::euclidean (default) or metric::delta_r (d = 2: eta, phi)
/// @tparam D      compile-time number of coordinates, or dynamic
/// @throws hepgnn::error for k <= 0, non-finite points, a batch not covering the n points, a metric/D mismatch,
/// or (strict) a graph with fewer than k candidates.
template <class Metric = metric::euclidean, int D = dynamic, class T>
neighbour_list<T> knn(const T* x, index_t n, int d, int k, const batch& b, const knn_options& opt = {}) {
  static_assert(std::is_floating_point_v<T>, "hepgnn::knn: points must be float or double");
  static_assert(metric::metric_policy<Metric>, "hepgnn::knn: Metric must be a metric policy (metric::euclidean, ...)");
  HEPGNN_CHECK(k > 0, "knn: k must be positive, got ", k);
  detail::check_points<Metric, D>("knn", x, n, d, b);
  if (opt.strict)
    for (index_t g = 0; g < b.num_graphs(); ++g) {
      const index_t candidates = b.size(g) - (opt.include_self ? 0 : 1);
      HEPGNN_CHECK(b.size(g) == 0 || candidates >= k, "knn (strict): graph ", g, " has ", b.size(g),
                   " nodes, too few for k = ", k, (opt.include_self ? " (self included)" : " (self excluded)"));
    }
  if constexpr (D == dynamic) {
    // Fixed-width kernels for the common low dimensions (unrolled coordinate loop).
    if (Metric::kind == simd::distance_kind::euclidean) {
      if (d == 1) return detail::knn_impl<Metric, 1>(x, n, d, k, b, opt);
      if (d == 2) return detail::knn_impl<Metric, 2>(x, n, d, k, b, opt);
      if (d == 3) return detail::knn_impl<Metric, 3>(x, n, d, k, b, opt);
    }
  }
  return detail::knn_impl<Metric, D>(x, n, d, k, b, opt);
}

/// @brief knn() on a feature matrix (rows = nodes, columns = coordinates).
template <class Metric = metric::euclidean, int D = dynamic, class T>
neighbour_list<T> knn(const matrix<T>& x, int k, const batch& b, const knn_options& opt = {}) {
  return knn<Metric, D>(x.data(), static_cast<index_t>(x.rows()), static_cast<int>(x.cols()), k, b, opt);
}

/// @brief knn() with all rows forming one graph.
template <class Metric = metric::euclidean, int D = dynamic, class T>
neighbour_list<T> knn(const matrix<T>& x, int k, const knn_options& opt = {}) {
  return knn<Metric, D>(x, k, batch::single(static_cast<index_t>(x.rows())), opt);
}

/// @brief The kNN graph as CSR: edges j -> i for the neighbours j of i, nearest first per destination.
template <class Metric = metric::euclidean, int D = dynamic, class T>
graph knn_graph(const matrix<T>& x, int k, const batch& b, const knn_options& opt = {}) {
  return knn<Metric, D>(x, k, b, opt).to_graph();
}

/// @brief Dynamic kNN in a learned feature space (DynamicEdgeConv, GravNet): Euclidean kNN on the feature rows.
template <class T>
neighbour_list<T> dynamic_knn(const matrix<T>& features, int k, const batch& b, bool include_self = false) {
  knn_options opt;
  opt.include_self = include_self;
  return knn<metric::euclidean>(features, k, b, opt);
}

}  // namespace hepgnn
