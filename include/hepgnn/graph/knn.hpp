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
/// a cell list (graph/grid.hpp, not O(N^2)); other Euclidean graphs are scanned simd::tile_queries queries at a
/// time by the register-tiled filter of simd::knn_tile (exact distances only for the few candidates it keeps);
/// delta_r graphs scan an SoA copy with the fused SIMD distance + threshold filter of simd::scan_nearest.
/// OpenMP over query nodes (small inputs stay on the calling thread); each node's result depends only on the
/// points, so any thread count (and any SIMD width) gives the same output bit for bit. knn_into() and
/// knn_graph_into() reuse caller-owned storage (knn_workspace) and do not allocate once the sizes repeat.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
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
    to_graph(g);
    return g;
  }
  /// @brief to_graph() into `g`, reusing its storage.
  void to_graph(graph& g) const {
    g.num_nodes = num_nodes();
    offsets_from_degrees(std::span<const index_t>(counts.data(), static_cast<std::size_t>(g.num_nodes)), g.offsets,
                         "knn", "lower k or split the batch");
    g.sources.resize(static_cast<std::size_t>(g.offsets.back()));
    for (index_t i = 0; i < g.num_nodes; ++i) {
      const auto row = of(i);
      std::copy(row.begin(), row.end(), g.sources.begin() + g.offsets[i]);
    }
  }
};

namespace detail {
/// @brief x itself when its rows are contiguous (ld == d), else a contiguous copy of the n rows of d coordinates
/// (stride ld) in `rows`, whose capacity the caller keeps. Throws (naming `who`) for ld < d.
template <class T>
const T* contiguous_rows(const char* who, const T* x, index_t n, int d, std::ptrdiff_t ld, std::vector<T>& rows) {
  HEPGNN_CHECK(ld >= d, who, ": row stride ld must be >= the number of coordinates d = ", d, ", got ", ld);
  if (ld == d || n == 0 || x == nullptr) return x;
  rows.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(d));
  for (index_t i = 0; i < n; ++i)
    std::copy_n(x + static_cast<std::ptrdiff_t>(i) * ld, d, rows.begin() + static_cast<std::ptrdiff_t>(i) * d);
  return rows.data();
}

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
  // A squared distance sums d squared differences of up to twice the largest coordinate: beyond this bound it
  // overflows T to infinity and the neighbours come out wrong (NaN fails the comparison too).
  const T limit = static_cast<T>(std::sqrt(static_cast<double>(std::numeric_limits<T>::max()) / (4.0 * std::max(d, 1))));
  for (std::size_t e = 0; e < total; ++e)
    HEPGNN_CHECK(std::abs(x[e]) <= limit, fn, ": points must be finite, got ", x[e], " at row ", e / d, ", column ",
                 e % d, " (and within +-", limit, ", so that squared distances stay finite)");
}

/// Buffers of the brute-force and cell-list searches (reused across calls).
template <class T>
struct search_buffers {
  std::vector<T> soa;        // SoA of all points: coordinate c of node i at soa[c*n + i]
  std::vector<index_t> gid;  // graph of every node
  std::vector<std::vector<typename simd::candidate_key<T>::type>> candidates;  // per thread: cell_grid::nearest()'s scratch
};

/// For each node i of a graph that `handled(g)` leaves to it, fills the sink make(i) from a brute-force scan of i's
/// graph or a cell-list search, then calls finish(i, sink). Used by knn and radius.
template <class Metric, int D, class T, class Handled, class MakeSink, class Finish>
void search_all(const T* x, index_t n, int d, const batch& b, bool include_self, index_t grid_min, Handled&& handled,
                search_buffers<T>& buf, MakeSink&& make, Finish&& finish) {
  if (n == 0) return;
  constexpr bool can_grid = Metric::kind == simd::distance_kind::euclidean && (D == dynamic || D <= 3);
  constexpr int GD = (D == dynamic || D > 3) ? 3 : D;
  std::vector<std::unique_ptr<cell_grid<T, GD>>> grids;  // sized only when a graph takes the cell list
  bool any_grid = false, any_scan = false;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    if (handled(g) || b.size(g) == 0) continue;
    if (can_grid && d == GD && b.size(g) >= grid_min) {
      grids.resize(static_cast<std::size_t>(b.num_graphs()));
      grids[g] = std::make_unique<cell_grid<T, GD>>(x, b.begin(g), b.end(g), 3.0);
      any_grid = true;
    } else {
      any_scan = true;
    }
  }
  if (any_scan) {
    buf.soa.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(d));
    simd::transpose_to_soa(x, n, d, buf.soa.data(), n);
    buf.gid.resize(static_cast<std::size_t>(n));
    for (index_t g = 0; g < b.num_graphs(); ++g) std::fill(buf.gid.begin() + b.begin(g), buf.gid.begin() + b.end(g), g);
    const T* xt = buf.soa.data();
    const index_t* gid = buf.gid.data();
    parallel_for_dynamic(n, true, parallel_limits::knn_scan_chunk, [&](long il) {
      const auto i = static_cast<index_t>(il);
      const index_t g = gid[i];
      if ((any_grid && grids[g]) || handled(g)) return;
      auto sink = make(i);
      simd::scan_nearest<Metric::kind, simd::native, D>(x + static_cast<std::ptrdiff_t>(i) * d, d, xt, n, b.begin(g),
                                                        b.end(g), nullptr, include_self ? -1 : i, sink);
      finish(i, sink);
    });
  }
  if (!any_grid) return;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    if (!grids[g]) continue;
    const auto& grid = *grids[g];
    if (buf.candidates.size() < static_cast<std::size_t>(max_threads()))
      buf.candidates.resize(static_cast<std::size_t>(max_threads()));
    struct per_thread {
      T guess = 0;  // k-nearest sinks: the previous query's k-th distance (cell_grid::nearest)
      // this thread's candidate scratch, a local while in use (the vectors' headers in `buf` share a cache line,
      // and writing them from both threads halved the 2-thread speed-up); swapped back to keep its capacity
      std::vector<typename simd::candidate_key<T>::type> cand;
      std::size_t slot = 0;
    };
    parallel_for_with(
        grid.size(), true, parallel_limits::knn_grid_chunk,
        [&](int thread) {
          per_thread t;
          t.slot = static_cast<std::size_t>(thread);
          t.cand.swap(buf.candidates[t.slot]);
          return t;
        },
        [&](long pl, per_thread& t) {
          const index_t i = grid.id_at(static_cast<index_t>(pl));  // sorted order: neighbouring queries share cells
          auto sink = make(i);
          const T* q = x + static_cast<std::ptrdiff_t>(i) * d;
          if constexpr (std::is_same_v<decltype(sink), simd::top_k<T>>)
            grid.nearest(q, include_self ? -1 : i, sink, t.guess, t.cand);
          else
            grid.search(q, include_self ? -1 : i, sink);
          finish(i, sink);
        },
        [&](per_thread& t) { t.cand.swap(buf.candidates[t.slot]); });
  }
}

}  // namespace detail

/// @brief Reusable buffers of knn_into(): with them, repeated calls of the same sizes do not allocate (except
/// on the cell-list path: graphs of >= knn_options::grid_min_points points in <= 3 dimensions).
template <class T>
struct knn_workspace {
  std::vector<T> rows;                      ///< contiguous copy of strided input rows
  detail::search_buffers<T> search;         ///< SoA of all points, graph ids
  std::vector<T> centred, bias;             ///< tiled path: padded per-graph SoA segments (simd::tile_block)
  std::vector<T> centre;                    ///< tiled path: d coordinates per graph
  std::vector<T> max_norm;                  ///< tiled path: largest centred squared norm per graph
  std::vector<std::array<simd::tile_candidates<T>, simd::tile_queries>> candidates;  ///< tiled path, per thread
  std::vector<index_t> segment;             ///< tiled path: first position of each graph's segment, -1 if none
  std::vector<index_t> tile_first;          ///< tiled path: first query of each tile
  std::vector<index_t> tile_graph;          ///< tiled path: graph of each tile
  std::vector<std::vector<T>> scratch;      ///< per thread
  std::vector<unsigned char> path;          ///< search path of each graph
  neighbour_list<T> list;                   ///< result of knn_graph_into()
};

namespace detail {

enum knn_path : unsigned char { path_rank, path_tile, path_other };

/// Below this many coordinate differences a search runs on the calling thread (a parallel region costs more).
inline constexpr long knn_parallel_min_work = parallel_limits::knn_min_work;

/// Sum over the graphs taking `path` of size^2 * d: the work of their scans.
inline long path_work(const batch& b, const std::vector<unsigned char>& paths, unsigned char path, int d) {
  long w = 0;
  for (index_t g = 0; g < b.num_graphs(); ++g)
    if (paths[g] == path) w += static_cast<long>(b.size(g)) * b.size(g) * d;
  return w;
}

/// Small graphs: all distances of a query, then rank selection (no per-candidate insertion).
template <class Metric, int D, class T>
void knn_small_graphs(const T* x, int d, int k, const batch& b, const knn_options& opt, neighbour_list<T>& out,
                      knn_workspace<T>& ws) {
  const index_t n = b.num_nodes();
  // SoA rows padded by one register of zeros, so every query computes whole SIMD blocks (the lanes past a graph's
  // end read the next graph or the padding and are ignored): no scalar tail for jets of 30 points.
  constexpr index_t W = simd::lanes<T, simd::native>();
  const index_t stride = n + W;
  ws.search.soa.resize(static_cast<std::size_t>(stride) * static_cast<std::size_t>(d));
  simd::transpose_to_soa(x, n, d, ws.search.soa.data(), stride);
  for (int c = 0; c < d; ++c)
    std::fill_n(ws.search.soa.data() + static_cast<std::ptrdiff_t>(c) * stride + n, W, T(0));
  const T* xt = ws.search.soa.data();
  const bool parallel = path_work(b, ws.path, path_rank, d) >= knn_parallel_min_work;
  for (auto& s : ws.scratch) s.reserve(static_cast<std::size_t>(opt.rank_max_points + W));
  parallel_for<loop_schedule::dynamic_single>(b.num_graphs(), parallel, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    const index_t m = b.size(g), a = b.begin(g);
    if (ws.path[g] != path_rank || m == 0) return;
    std::vector<T>& dist = ws.scratch[static_cast<std::size_t>(thread_index())];
    const index_t m_blocks = (m + W - 1) / W * W;
    dist.resize(static_cast<std::size_t>(m_blocks));
    for (index_t i = a; i < a + m; ++i) {
      simd::distances_soa<Metric::kind, simd::native, D>(x + static_cast<std::ptrdiff_t>(i) * d, d, xt + a, stride,
                                                         m_blocks, dist.data());
      out.counts[i] = simd::select_k_by_rank(dist.data(), m, a, opt.include_self ? -1 : i - a, k,
                                             out.distances.data() + static_cast<std::size_t>(i) * k,
                                             out.indices.data() + static_cast<std::size_t>(i) * k);
    }
  });
}

/// Prepares the padded, centred SoA segment of graph g for simd::knn_tile; false when its spread is
/// too large for the filter (the graph then takes the plain scan).
template <class T>
bool prepare_tile_segment(const T* x, int d, index_t a, index_t m, index_t pos, index_t stride, T* centre,
                          T& max_norm, knn_workspace<T>& ws) {
  for (int c = 0; c < d; ++c) {
    double sum = 0;
    for (index_t i = a; i < a + m; ++i) sum += x[static_cast<std::ptrdiff_t>(i) * d + c];
    centre[c] = static_cast<T>(sum / m);
  }
  const T big = std::numeric_limits<T>::max() / T(64 * (d + 1));
  const index_t padded = (m + simd::tile_step<T>() - 1) / simd::tile_step<T>() * simd::tile_step<T>();
  max_norm = 0;
  for (index_t p = 0; p < padded; ++p) {
    T norm(0);
    for (int c = 0; c < d; ++c) {
      const std::size_t at = static_cast<std::size_t>(c) * stride + pos + p;
      const T v = p < m ? x[static_cast<std::ptrdiff_t>(a + p) * d + c] : T(0);
      const T cv = p < m ? v - centre[c] : T(0);
      ws.centred[at] = cv;
      norm = std::fma(cv, cv, norm);
    }
    if (p < m && !(norm <= big)) return false;
    max_norm = std::max(max_norm, norm);
    ws.bias[static_cast<std::size_t>(pos + p)] = p < m ? norm : std::numeric_limits<T>::infinity();
  }
  return true;
}

/// Euclidean graphs scanned brute force: register-tiled filter over query tiles (simd::knn_tile).
template <int D, class T>
void knn_tiled(const T* x, int d, int k, const batch& b, bool include_self, neighbour_list<T>& out,
               knn_workspace<T>& ws) {
  constexpr int Q = simd::tile_queries, step = simd::tile_step<T>();
  index_t total = 0;
  ws.segment.assign(static_cast<std::size_t>(b.num_graphs()), -1);
  for (index_t g = 0; g < b.num_graphs(); ++g)
    if (ws.path[g] == path_tile) {
      ws.segment[g] = total;
      total += (b.size(g) + step - 1) / step * step;
    }
  const std::size_t cells = static_cast<std::size_t>(total) * static_cast<std::size_t>(d);
  ws.centred.resize(cells);
  ws.bias.resize(static_cast<std::size_t>(total));
  ws.centre.resize(static_cast<std::size_t>(b.num_graphs()) * d);
  ws.max_norm.resize(static_cast<std::size_t>(b.num_graphs()));
  ws.tile_first.clear();
  ws.tile_graph.clear();
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    if (ws.path[g] != path_tile) continue;
    if (!prepare_tile_segment(x, d, b.begin(g), b.size(g), ws.segment[g], total,
                              ws.centre.data() + static_cast<std::size_t>(g) * d, ws.max_norm[g], ws)) {
      ws.path[g] = path_other;
      continue;
    }
    for (index_t q = b.begin(g); q < b.end(g); q += Q) {
      ws.tile_first.push_back(q);
      ws.tile_graph.push_back(g);
    }
  }
  const auto tiles = static_cast<index_t>(ws.tile_first.size());
  const bool parallel = path_work(b, ws.path, path_tile, d) >= knn_parallel_min_work;
  for (auto& per_thread : ws.candidates)  // sized here, so no thread allocates inside the loop once warm
    for (auto& c : per_thread) {
      c.value.reserve(simd::tile_capacity<T>(k));
      c.where.reserve(simd::tile_capacity<T>(k));
    }
  for (auto& s : ws.scratch) s.reserve(static_cast<std::size_t>(Q) * d);
  parallel_for<loop_schedule::dynamic_single>(tiles, parallel, [&](long tl) {
    const auto t = static_cast<index_t>(tl);
    const int me = thread_index();
    std::vector<T>& qf = ws.scratch[static_cast<std::size_t>(me)];
    qf.resize(static_cast<std::size_t>(Q) * d);
    const index_t g = ws.tile_graph[t], q0 = ws.tile_first[t];
    const int nq = static_cast<int>(std::min<index_t>(Q, b.end(g) - q0));
    simd::tile_block<T> blk;
    blk.centred = ws.centred.data() + ws.segment[g];
    blk.bias = ws.bias.data() + ws.segment[g];
    blk.centre = ws.centre.data() + static_cast<std::size_t>(g) * d;
    blk.stride = total;
    blk.size = b.size(g);
    blk.padded = (blk.size + step - 1) / step * step;
    blk.first = b.begin(g);
    blk.margin = simd::tile_margin<T>(d);
    blk.max_norm = ws.max_norm[g];
    index_t qids[Q], count[Q];
    for (int u = 0; u < Q; ++u) qids[u] = q0 + (u < nq ? u : 0);
    const std::size_t row = static_cast<std::size_t>(q0) * k;
    simd::knn_tile<simd::native, D>(x, d, qids, nq, !include_self, blk, k, qf.data(),
                                    ws.candidates[static_cast<std::size_t>(me)].data(), out.distances.data() + row,
                                    out.indices.data() + row, count);
    for (int u = 0; u < nq; ++u) out.counts[q0 + u] = count[u];
  });
}

template <class Metric, int D, class T>
void knn_impl(const T* x, index_t n, int d, int k, const batch& b, const knn_options& opt, neighbour_list<T>& out,
              knn_workspace<T>& ws) {
  out.k = k;
  out.indices.assign(static_cast<std::size_t>(n) * k, index_t(-1));
  out.distances.assign(static_cast<std::size_t>(n) * k, std::numeric_limits<T>::infinity());
  out.counts.assign(static_cast<std::size_t>(n), 0);
  const int threads = max_threads();
  if (ws.scratch.size() < static_cast<std::size_t>(threads)) ws.scratch.resize(static_cast<std::size_t>(threads));
  if (ws.candidates.size() < static_cast<std::size_t>(threads)) ws.candidates.resize(static_cast<std::size_t>(threads));
  constexpr bool euclid = Metric::kind == simd::distance_kind::euclidean;
  ws.path.assign(static_cast<std::size_t>(b.num_graphs()), path_other);
  bool any_rank = false, any_tile = false, any_other = false;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    const index_t m = b.size(g);
    if (m == 0) continue;
    if (m <= opt.rank_max_points)
      ws.path[g] = path_rank, any_rank = true;
    else if (euclid && !(d <= 3 && m >= opt.grid_min_points))
      ws.path[g] = path_tile, any_tile = true;
    else
      any_other = true;
  }
  if (any_rank) knn_small_graphs<Metric, D>(x, d, k, b, opt, out, ws);
  if constexpr (euclid)
    if (any_tile) knn_tiled<D>(x, d, k, b, opt.include_self, out, ws);
  for (index_t g = 0; g < b.num_graphs() && !any_other; ++g) any_other = ws.path[g] == path_other && b.size(g) > 0;
  if (!any_other) return;
  search_all<Metric, D>(
      x, n, d, b, opt.include_self, opt.grid_min_points, [&](index_t g) { return ws.path[g] != path_other; },
      ws.search,
      [&](index_t i) {
        return simd::top_k<T>(out.distances.data() + static_cast<std::size_t>(i) * k,
                              out.indices.data() + static_cast<std::size_t>(i) * k, k);
      },
      [&](index_t i, const simd::top_k<T>& top) { out.counts[i] = top.size(); });
}

}  // namespace detail


/// @brief Exact kNN (see the file comment) into caller-owned storage: `out` and `ws` keep their capacity, so
/// repeated calls with the same sizes do not allocate (the cell-list path excepted, see knn_workspace).
/// @param x   point i's coordinates are x[i*ld + c], c in [0, d)
/// @param ld  row stride of x, >= d (a column block of a wider feature matrix)
/// @tparam Metric metric::euclidean (default) or metric::delta_r (d = 2: eta, phi)
/// @tparam D      compile-time number of coordinates, or dynamic
/// The row width (out.k) is k, or the most candidates any graph offers when that is fewer.
/// @throws hepgnn::error for k <= 0, ld < d, non-finite points, a batch not covering the n points, a metric/D
/// mismatch, or (strict) a graph with fewer than k candidates.
template <class Metric = metric::euclidean, int D = dynamic, class T>
void knn_into(const T* x, index_t n, int d, std::ptrdiff_t ld, int k, const batch& b, const knn_options& opt,
              neighbour_list<T>& out, knn_workspace<T>& ws) {
  static_assert(std::is_floating_point_v<T>, "hepgnn::knn: points must be float or double");
  static_assert(metric::metric_policy<Metric>, "hepgnn::knn: Metric must be a metric policy (metric::euclidean, ...)");
  HEPGNN_CHECK(k > 0, "knn: k must be positive, got ", k);
  x = detail::contiguous_rows("knn", x, n, d, ld, ws.rows);
  detail::check_points<Metric, D>("knn", x, n, d, b);
  index_t most_candidates = 1;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    const index_t candidates = b.size(g) - (opt.include_self ? 0 : 1);
    HEPGNN_CHECK(!opt.strict || b.size(g) == 0 || candidates >= k, "knn (strict): graph ", g, " has ", b.size(g),
                 " nodes, too few for k = ", k, (opt.include_self ? " (self included)" : " (self excluded)"));
    most_candidates = std::max(most_candidates, candidates);
  }
  // No node can have more neighbours than its graph has candidates: the rows are that wide at most, so a huge k
  // costs nothing (it used to size n x k buffers).
  k = static_cast<int>(std::min<index_t>(k, most_candidates));
  if constexpr (D == dynamic) {
    // Fixed-width kernels for the common low dimensions (unrolled coordinate loop).
    if (Metric::kind == simd::distance_kind::euclidean) {
      if (d == 1) return detail::knn_impl<Metric, 1>(x, n, d, k, b, opt, out, ws);
      if (d == 2) return detail::knn_impl<Metric, 2>(x, n, d, k, b, opt, out, ws);
      if (d == 3) return detail::knn_impl<Metric, 3>(x, n, d, k, b, opt, out, ws);
    }
  }
  detail::knn_impl<Metric, D>(x, n, d, k, b, opt, out, ws);
}

/// @brief knn_into() as a CSR graph written into `out` (edges j -> i, nearest first per destination); the storage
/// of `out` and `ws` is reused (the neighbour list lives in ws.list). DynamicEdgeConv and GravNet build with this.
template <class Metric = metric::euclidean, int D = dynamic, class T>
void knn_graph_into(const T* x, index_t n, int d, std::ptrdiff_t ld, int k, const batch& b, const knn_options& opt,
                    graph& out, knn_workspace<T>& ws) {
  knn_into<Metric, D>(x, n, d, ld, k, b, opt, ws.list, ws);
  ws.list.to_graph(out);
}

/// @brief Exact kNN of the n points x (row-major n x d) within each graph of `b` (see the file comment).
/// @tparam Metric metric::euclidean (default) or metric::delta_r (d = 2: eta, phi)
/// @tparam D      compile-time number of coordinates, or dynamic
/// @throws hepgnn::error for k <= 0, non-finite points, a batch not covering the n points, a metric/D mismatch,
/// or (strict) a graph with fewer than k candidates.
template <class Metric = metric::euclidean, int D = dynamic, class T>
neighbour_list<T> knn(const T* x, index_t n, int d, int k, const batch& b, const knn_options& opt = {}) {
  neighbour_list<T> out;
  knn_workspace<T> ws;
  knn_into<Metric, D>(x, n, d, d, k, b, opt, out, ws);
  return out;
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
