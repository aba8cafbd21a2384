#pragma once
/// @file lsh.hpp
/// @brief LSH-binned approximate kNN, the MLPF way: random-projection bins, equal chunks, kNN within chunks.
///
/// Binning of one graph (lsh_bins): with a seeded Gaussian matrix R (d x n_bins/2), node i goes to bin
/// argmax over [x_i R, -x_i R] (ties to the lower bin); nodes are stably sorted by bin and the sorted order is
/// cut into consecutive chunks of bin_size nodes (the last one may be smaller). Nearby points tend to share a
/// bin, hence a chunk. lsh_knn() then keeps, for every node, its k nearest among the members of its chunk; with
/// rounds > 1 the candidates of independent binnings are merged, which raises recall. Cost
/// O(N * rounds * bin_size * d) instead of O(N^2 d). Chunks never cross the graphs of a batch.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/knn.hpp"

namespace hepgnn {

/// @brief Options of the LSH builders.
struct lsh_options {
  index_t bin_size = 128;    ///< nodes per chunk (MLPF: bin_size)
  index_t n_bins = 0;        ///< number of hash bins, even; 0 picks 2*ceil(largest graph / bin_size / 2) (>= 2)
  int rounds = 1;            ///< independent binnings merged (more rounds: higher recall, proportional cost)
  std::uint64_t seed = 0;    ///< seed of the projection matrices (round r uses a stream derived from seed and r)
  bool include_self = false; ///< node i may be its own neighbour
  bool center = false;       ///< project x - mean(graph) instead of x (not in MLPF; helps clouds far from the origin)
};

/// @brief One binning of a batch: chunks of the permuted order.
struct lsh_binning {
  std::vector<index_t> permutation;    ///< sorted position -> node id (graph by graph, stable by bin)
  std::vector<index_t> position;       ///< node id -> sorted position (inverse permutation: back to original order)
  std::vector<index_t> bin;            ///< hash bin of every node
  std::vector<index_t> chunk_offsets;  ///< chunk c = positions [chunk_offsets[c], chunk_offsets[c+1]); never spans graphs
  /// @brief Number of chunks.
  index_t num_chunks() const { return static_cast<index_t>(chunk_offsets.size()) - 1; }
};

/// @brief Scratch of lsh_bins_into, reusable across calls (no allocation once the sizes repeat).
template <class T>
struct lsh_workspace {
  std::vector<T> r, offset;
  std::vector<index_t> gid, count;
  std::vector<matrix<T>> y, proj;  ///< per thread
};

namespace detail {

inline index_t lsh_bin_count(const batch& b, const lsh_options& opt) {
  if (opt.n_bins > 0) return opt.n_bins;
  index_t largest = 0;
  for (index_t g = 0; g < b.num_graphs(); ++g) largest = std::max(largest, b.size(g));
  // In 64 bits: 2 * bin_size overflows index_t from bin_size = 2^30.
  const std::int64_t bin = opt.bin_size;
  const auto half = static_cast<index_t>(std::max<std::int64_t>(1, (largest + 2 * bin - 1) / (2 * bin)));
  return 2 * half;
}

template <class T>
void check_lsh(const char* fn, const T* x, index_t n, int d, const batch& b, const lsh_options& opt) {
  HEPGNN_CHECK(opt.bin_size > 0, fn, ": bin_size must be positive, got ", opt.bin_size);
  HEPGNN_CHECK(opt.n_bins == 0 || (opt.n_bins >= 2 && opt.n_bins % 2 == 0), fn,
               ": n_bins must be 0 (automatic) or an even number >= 2, got ", opt.n_bins);
  HEPGNN_CHECK(opt.rounds >= 1, fn, ": rounds must be >= 1, got ", opt.rounds);
  check_points<metric::euclidean, dynamic>(fn, x, n, d, b);
}

template <class T>
void lsh_bins_impl(const T* x, index_t n, int d, const batch& b, const lsh_options& opt, int round, lsh_binning& out,
                   lsh_workspace<T>& ws) {
  const index_t n_bins = lsh_bin_count(b, opt), half = n_bins / 2;
  rng gen(mix64(opt.seed + static_cast<std::uint64_t>(round + 1) * 0x9E3779B97F4A7C15ULL));
  ws.r.resize(static_cast<std::size_t>(d) * half);  // R[c][j], row-major d x half
  for (auto& v : ws.r) v = static_cast<T>(gen.normal());

  out.bin.resize(static_cast<std::size_t>(n));
  // per-graph offset subtracted before projecting (zero unless opt.center)
  ws.offset.assign(static_cast<std::size_t>(b.num_graphs()) * d, T(0));
  if (opt.center)
    for (index_t g = 0; g < b.num_graphs(); ++g) {
      if (b.size(g) == 0) continue;
      for (int c = 0; c < d; ++c) {
        double sum = 0;
        for (index_t i = b.begin(g); i < b.end(g); ++i) sum += x[static_cast<std::ptrdiff_t>(i) * d + c];
        ws.offset[static_cast<std::size_t>(g) * d + c] = static_cast<T>(sum / b.size(g));
      }
    }
  ws.gid.resize(static_cast<std::size_t>(n));
  for (index_t g = 0; g < b.num_graphs(); ++g) std::fill(ws.gid.begin() + b.begin(g), ws.gid.begin() + b.end(g), g);
  const Eigen::Map<const matrix<T>> rm(ws.r.data(), d, half);
  // Projections of 256 rows at a time as one GEMM (an n x n_bins/2 matrix would not fit in cache, or memory), with
  // per-thread buffers that are kept in the workspace.
  constexpr index_t rows = 256;
  const index_t chunks = (n + rows - 1) / rows;
  ws.y.resize(static_cast<std::size_t>(max_threads()));
  ws.proj.resize(ws.y.size());
  parallel_for(chunks, static_cast<long>(n) * half * d >= parallel_limits::lsh_projection_min_work, [&](long ch) {
    matrix<T>& y = ws.y[static_cast<std::size_t>(thread_index())];
    matrix<T>& proj = ws.proj[static_cast<std::size_t>(thread_index())];
    y.resize(rows, d);
    proj.resize(rows, half);
    const index_t a0 = static_cast<index_t>(ch) * rows, m = std::min(rows, n - a0);
    for (index_t i = 0; i < m; ++i)
      for (int c = 0; c < d; ++c)
        y(i, c) = x[static_cast<std::ptrdiff_t>(a0 + i) * d + c] -
                  ws.offset[static_cast<std::size_t>(ws.gid[a0 + i]) * d + c];
    proj.topRows(m).noalias() = y.topRows(m).lazyProduct(rm);
    for (index_t i = 0; i < m; ++i) {
      const auto [arg_best, arg_worst] = simd::argmax_argmin(proj.row(i).data(), half);
      // argmax over [s, -s]: bin j for +s wins over half + j' for -s' unless -worst is strictly larger
      out.bin[a0 + i] = (-proj(i, arg_worst) > proj(i, arg_best)) ? half + arg_worst : arg_best;
    }
  });
  out.permutation.resize(static_cast<std::size_t>(n));
  out.position.resize(static_cast<std::size_t>(n));
  out.chunk_offsets.assign(1, 0);
  ws.count.resize(static_cast<std::size_t>(n_bins) + 1);
  auto& count = ws.count;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    std::fill(count.begin(), count.end(), 0);
    for (index_t i = b.begin(g); i < b.end(g); ++i) ++count[out.bin[i] + 1];
    for (index_t j = 0; j < n_bins; ++j) count[j + 1] += count[j];
    for (index_t i = b.begin(g); i < b.end(g); ++i) {
      const index_t pos = b.begin(g) + count[out.bin[i]]++;
      out.permutation[pos] = i;
      out.position[i] = pos;
    }
    for (std::int64_t c = b.begin(g); c < b.end(g); c += opt.bin_size)
      out.chunk_offsets.push_back(static_cast<index_t>(std::min<std::int64_t>(b.end(g), c + opt.bin_size)));
  }
}

template <class T>
lsh_binning lsh_bins_impl(const T* x, index_t n, int d, const batch& b, const lsh_options& opt, int round) {
  lsh_binning out;
  lsh_workspace<T> ws;
  lsh_bins_impl(x, n, d, b, opt, round, out, ws);
  return out;
}

}  // namespace detail

/// @brief The binning of round `round` (chunks, permutation and its inverse); what the MLPF graph layer uses.
/// @throws hepgnn::error for bad options, non-finite points or a batch that does not cover the points.
template <class T>
lsh_binning lsh_bins(const matrix<T>& x, const batch& b, const lsh_options& opt = {}, int round = 0) {
  const auto n = static_cast<index_t>(x.rows());
  const int d = static_cast<int>(x.cols());
  detail::check_lsh("lsh_bins", x.data(), n, d, b, opt);
  return detail::lsh_bins_impl(x.data(), n, d, b, opt, round);
}

/// @brief lsh_bins into a caller-owned binning and workspace: no heap allocation once they have seen the sizes
/// (what layers use on their inference path).
template <class T>
void lsh_bins_into(const matrix<T>& x, const batch& b, const lsh_options& opt, int round, lsh_binning& out,
                   lsh_workspace<T>& ws) {
  const auto n = static_cast<index_t>(x.rows());
  const int d = static_cast<int>(x.cols());
  detail::check_lsh("lsh_bins_into", x.data(), n, d, b, opt);
  detail::lsh_bins_impl(x.data(), n, d, b, opt, round, out, ws);
}

/// @brief Approximate kNN: the k nearest (Euclidean) among the members of each node's chunks, merged over
/// opt.rounds binnings; same output form as knn() (rows nearest first, -1 padded when a chunk is small).
/// Per node: the distances to its chunk (simd::squared_distances_soa), then simd::select_k_by_rank; later rounds
/// merge into the earlier rows without duplicates.
template <class T>
neighbour_list<T> lsh_knn(const matrix<T>& x, int k, const batch& b, const lsh_options& opt = {}) {
  const auto n = static_cast<index_t>(x.rows());
  const int d = static_cast<int>(x.cols());
  HEPGNN_CHECK(k > 0, "lsh_knn: k must be positive, got ", k);
  detail::check_lsh("lsh_knn", x.data(), n, d, b, opt);
  neighbour_list<T> out;
  out.k = k;
  out.indices.assign(static_cast<std::size_t>(n) * k, index_t(-1));
  out.distances.assign(static_cast<std::size_t>(n) * k, std::numeric_limits<T>::infinity());
  out.counts.assign(static_cast<std::size_t>(n), 0);
  for (int round = 0; round < opt.rounds; ++round) {
    const lsh_binning bins = detail::lsh_bins_impl(x.data(), n, d, b, opt, round);
    struct per_thread {  // a thread's scratch, reused across its chunks
      std::vector<T> tile, dist, row_d, merged_d;
      std::vector<index_t> ids, row_i, merged_i;
    };
    parallel_for_with(
        bins.num_chunks(), true, 1,
        [&](int) {
          per_thread t;
          t.row_d.resize(static_cast<std::size_t>(k)), t.merged_d.resize(static_cast<std::size_t>(2 * k));
          t.row_i.resize(static_cast<std::size_t>(k)), t.merged_i.resize(static_cast<std::size_t>(2 * k));
          return t;
        },
        [&](long cl, per_thread& t) {
          auto& [tile, dist, row_d, merged_d, ids, row_i, merged_i] = t;
          const auto c = static_cast<index_t>(cl);
          const index_t a = bins.chunk_offsets[c], e = bins.chunk_offsets[c + 1], m = e - a;
          // members in id order, so the ranking's ties by position are ties by id
          ids.assign(bins.permutation.begin() + a, bins.permutation.begin() + e);
          std::sort(ids.begin(), ids.end());
          tile.resize(static_cast<std::size_t>(m) * d);
          dist.resize(static_cast<std::size_t>(m));
          for (index_t p = 0; p < m; ++p)
            for (int cc = 0; cc < d; ++cc) tile[static_cast<std::size_t>(cc) * m + p] = x(ids[p], cc);
          for (index_t p = 0; p < m; ++p) {
            const index_t i = ids[p];
            T* dst_d = out.distances.data() + static_cast<std::size_t>(i) * k;
            index_t* dst_i = out.indices.data() + static_cast<std::size_t>(i) * k;
            simd::squared_distances_soa(x.row(i).data(), d, tile.data(), m, static_cast<int>(m), dist.data());
            const int got = simd::select_k_by_rank(dist.data(), static_cast<int>(m), 0, opt.include_self ? -1 : p, k,
                                                   row_d.data(), row_i.data());
            for (int r = 0; r < got; ++r) row_i[r] = ids[row_i[r]];
            if (round == 0) {
              std::copy_n(row_d.begin(), got, dst_d);
              std::copy_n(row_i.begin(), got, dst_i);
              out.counts[i] = got;
              continue;
            }
            // merge with the earlier rounds' neighbours (both sorted by (distance, id)); a repeated id has the
            // same distance, so its copies meet in the merge
            int s1 = 0, s2 = 0, cnt = 0;
            const int n1 = out.counts[i];
            while (cnt < k && (s1 < n1 || s2 < got)) {
              const bool first = s2 >= got || (s1 < n1 && (dst_d[s1] < row_d[s2] ||
                                                           (dst_d[s1] == row_d[s2] && dst_i[s1] <= row_i[s2])));
              const T dv = first ? dst_d[s1] : row_d[s2];
              const index_t iv = first ? dst_i[s1++] : row_i[s2++];
              if (cnt > 0 && merged_i[cnt - 1] == iv) continue;
              merged_d[cnt] = dv;
              merged_i[cnt++] = iv;
            }
            std::copy_n(merged_d.begin(), cnt, dst_d);
            std::copy_n(merged_i.begin(), cnt, dst_i);
            out.counts[i] = cnt;
          }
        },
        [](per_thread&) {});
  }
  return out;
}

/// @brief Fraction of the exact neighbours that `approx` found (summed over nodes: |approx ∩ exact| / |exact|).
/// @throws hepgnn::error when the two lists have different node counts.
template <class T>
double knn_recall(const neighbour_list<T>& approx, const neighbour_list<T>& exact) {
  HEPGNN_CHECK(approx.num_nodes() == exact.num_nodes(), "knn_recall: approx has ", approx.num_nodes(),
               " nodes but exact has ", exact.num_nodes());
  long long hit = 0, total = 0;
  for (index_t i = 0; i < exact.num_nodes(); ++i) {
    const auto a = approx.of(i);
    for (const index_t j : exact.of(i)) {
      ++total;
      hit += std::find(a.begin(), a.end(), j) != a.end();
    }
  }
  return total ? static_cast<double>(hit) / static_cast<double>(total) : 1.0;
}

/// @brief Edges j -> i between all members of each chunk (MLPF's dense attention within a bin), merged over
/// opt.rounds binnings without duplicates; sources ascending per destination.
template <class T>
graph lsh_chunk_graph(const matrix<T>& x, const batch& b, const lsh_options& opt = {}) {
  const auto n = static_cast<index_t>(x.rows());
  const int d = static_cast<int>(x.cols());
  detail::check_lsh("lsh_chunk_graph", x.data(), n, d, b, opt);
  std::vector<std::vector<index_t>> in(static_cast<std::size_t>(n));
  for (int round = 0; round < opt.rounds; ++round) {
    const lsh_binning bins = detail::lsh_bins_impl(x.data(), n, d, b, opt, round);
    for (index_t c = 0; c < bins.num_chunks(); ++c)
      for (index_t p = bins.chunk_offsets[c]; p < bins.chunk_offsets[c + 1]; ++p)
        for (index_t q = bins.chunk_offsets[c]; q < bins.chunk_offsets[c + 1]; ++q)
          if (opt.include_self || p != q) in[bins.permutation[p]].push_back(bins.permutation[q]);
  }
  graph g;
  g.num_nodes = n;
  g.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  for (index_t i = 0; i < n; ++i) {
    auto& l = in[i];
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
    g.offsets[i + 1] = g.offsets[i] + static_cast<index_t>(l.size());
    g.sources.insert(g.sources.end(), l.begin(), l.end());
  }
  return g;
}

}  // namespace hepgnn
