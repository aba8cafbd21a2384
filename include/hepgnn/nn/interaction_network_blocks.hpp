#pragma once
/// @file interaction_network_blocks.hpp
/// @brief The blocked edge network behind hepgnn::interaction_network: edges in cache-resident blocks of
/// consecutive destination nodes, the blocks in a fixed number of chunks, and the products those blocks and the
/// node rows run (float, or bf16 operands with float sums in inference).
///
/// Edge work runs over blocks of consecutive destination nodes (a few hundred edges each), so an edge update, its
/// aggregation and the output head stay in cache. Weight gradients are summed per fixed chunk of blocks and then
/// in chunk order, and node products over fixed chunks of rows, so results do not depend on the thread count.

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "hepgnn/simd/gemm_bf16.hpp"

namespace hepgnn {

/// @brief Operand precision of interaction_network::infer()'s products: float, or bf16 operands with float sums
/// (simd/gemm_bf16.hpp; float networks only). Sums, aggregation and the residual streams stay float either way.
enum class inference_precision { f32, bf16 };

/// @brief Destination nodes split into blocks of about `block_edges` incoming edges, and the blocks into at most
/// `max_chunks` chunks (fixed by the graph alone, not by the thread count).
struct edge_blocks {
  /// Target number of edges per block (the cache-resident unit of edge work).
  static constexpr index_t block_edges = 256;
  /// Most chunks of blocks whose weight-gradient partial sums are kept apart.
  static constexpr long max_chunks = 64;

  std::vector<index_t> block_node;   ///< first node of each block, then the node count
  std::vector<index_t> chunk_block;  ///< first block of each chunk, then the block count
  index_t max_block_edges = 0;       ///< edges of the largest block (the size of per-thread block scratch)
  const index_t* offsets = nullptr;  ///< CSR offsets of the graph being processed

  /// @brief Partitions g (reusing this object's storage).
  void build(const graph& g) {
    offsets = g.offsets.data();
    block_node.clear();
    block_node.push_back(0);
    max_block_edges = 0;
    index_t start = 0;
    for (index_t i = 0; i < g.num_nodes; ++i) {
      if (g.offsets[i + 1] - g.offsets[start] >= block_edges || i + 1 == g.num_nodes) {
        max_block_edges = std::max(max_block_edges, g.offsets[i + 1] - g.offsets[start]);
        block_node.push_back(i + 1);
        start = i + 1;
      }
    }
    const long nblocks = static_cast<long>(block_node.size()) - 1;
    const long nchunks = std::min(nblocks, max_chunks);
    chunk_block.resize(static_cast<std::size_t>(nchunks) + 1);
    for (long k = 0; k <= nchunks; ++k) chunk_block[k] = static_cast<index_t>(nchunks ? k * nblocks / nchunks : 0);
  }

  long chunks() const { return static_cast<long>(chunk_block.size()) - 1; }

  /// @brief Calls fn(chunk, e0, e1, n0, n1, thread) for every block (edges [e0, e1) entering nodes [n0, n1)),
  /// chunks in parallel, the blocks of a chunk in order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const long nchunks = chunks();
    const index_t* bn = block_node.data();
    const index_t* offs = offsets;
    // small graphs stay on one thread: a parallel region costs more than a few blocks of work
    const bool big = nchunks > 1 && offs[block_node.back()] >= 4096;
    parallel_for<loop_schedule::dynamic_single>(nchunks, big, [&](long k) {
      for (index_t b = chunk_block[k]; b < chunk_block[k + 1]; ++b) {
        const long n0 = bn[b], n1 = bn[b + 1];
        fn(k, long(offs[n0]), long(offs[n1]), n0, n1, thread_index());
      }
    });
  }
};

/// @brief A weight block as the B operand of the blocked products: W^T (K x N), and its bf16 panel in bf16
/// inference.
template <class T>
struct product_weight {
  matrix<T> t;             ///< W^T
  simd::bf16_panel panel;  ///< t in bf16 (bf16 inference of float networks only)

  /// @brief Sets t = w^T; with bf16 (float networks) also packs the panel and returns it, else returns null
  /// (float products).
  template <class W>
  const simd::bf16_panel* set(const W& w, bool bf16 = false) {
    t = w.transpose();
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {
        panel.pack(t.rows(), t.cols(), t.data(), t.cols());
        return &panel;
      }
    }
    return nullptr;
  }
};

/// @brief Weight-gradient partial sums of the blocked products, one per chunk (of edge blocks, or of node rows),
/// added in chunk order: Eigen's multi-threaded GEMM picks its depth blocking by thread count, which would change
/// the rounding.
template <class T>
struct chunk_gradients {
  std::vector<matrix<T>> a, b, ba;  ///< per chunk of edge blocks: rows_a x H, H x H, 1 x rows_a (zeroed by reset)
  std::vector<matrix<T>> n;         ///< per chunk of node rows (add_at_b)

  /// @brief Zeroes a, b and ba of nchunks chunks.
  void reset(long nchunks, long rows_a, long H) {
    a.resize(static_cast<std::size_t>(nchunks));
    b.resize(static_cast<std::size_t>(nchunks));
    ba.resize(static_cast<std::size_t>(nchunks));
    for (long k = 0; k < nchunks; ++k) {
      a[k].setZero(rows_a, H);
      b[k].setZero(H, H);
      ba[k].setZero(1, rows_a);
    }
  }
  /// @brief wgrad += the first rows_a rows of every a; bgrad (unless null) += every ba.
  template <class W>
  void add_a(W&& wgrad, matrix<T>* bgrad, long rows_a) const {
    for (std::size_t k = 0; k < a.size(); ++k) {
      wgrad += a[k].topRows(rows_a);
      if (bgrad) bgrad->row(0) += ba[k].leftCols(rows_a);
    }
  }
  /// @brief wgrad += every b.
  template <class W>
  void add_b(W&& wgrad) const {
    for (std::size_t k = 0; k < b.size(); ++k) wgrad += b[k];
  }
  /// @brief grad += x^T y over the rows of x and y, summed per fixed chunk of rows and then in chunk order.
  template <class W, class X, class Y>
  void add_at_b(W&& grad, const X& x, const Y& y) {
    const long rows = x.rows();
    const long nchunks = std::clamp<long>(rows / 512, 1, edge_blocks::max_chunks);
    n.resize(static_cast<std::size_t>(nchunks));
    // threaded whenever Eigen might thread the product (>= 2^16 multiply-adds): keeps it on one thread per chunk
    parallel_for(nchunks, rows * x.cols() * y.cols() >= parallel_limits::chunked_product_min_work, [&](long k) {
      const long r0 = k * rows / nchunks, r1 = (k + 1) * rows / nchunks;
      n[k].resize(x.cols(), y.cols());
      const auto xb = x.middleRows(r0, r1 - r0);
      const auto yb = y.middleRows(r0, r1 - r0);
      simd::block_mm(xb.cols(), yb.cols(), r1 - r0, xb.data(), 1, xb.outerStride(), yb.data(), yb.outerStride(),
                     n[k].data(), yb.cols(), false, false);
    });
    for (long k = 0; k < nchunks; ++k) grad += n[k];
  }
};

/// @brief The products of the blocked edge network and its node phases, and the sums over edges they need.
template <class T>
struct blocked_products {
  /// Chunks of the node-level products over `rows` nodes (about 256 rows each, fixed by the row count alone).
  static long node_chunks(long rows) { return std::clamp<long>(rows / 256, 1, 256); }
  /// First row of chunk k of n over `rows` rows: a multiple of 120, which every register tile's height divides
  /// (12, 10, 8 or 6 rows), so only the last chunk ends in the slower tiles of a few rows (with chunks of any length
  /// they took a sixth of the node products' time). Each row's sums do not depend on the split.
  static long chunk_start(long k, long n, long rows) {
    constexpr long quantum = 120;
    return k == n ? rows : k * (rows / quantum) / n * quantum;
  }

  /// C (M x N, contiguous rows) = or += A (M x K, contiguous rows) wt [+ bias] [ReLU] [added to C], with bf16
  /// operands when the panel wb (wt in bf16) is given.
  static void mm(long M, long N, long K, const T* A, const matrix<T>& wt, const simd::bf16_panel* wb, T* C, bool acc,
                 bool relu, const T* bias = nullptr, bool residual = false, const simd::bf16_out& out = {}) {
    if constexpr (std::is_same_v<T, float>) {
      if (wb) {
        simd::bf16_mm(M, N, K, A, K, *wb, C, N, acc && !residual, {bias, relu, nullptr, 0, residual}, out);
        return;
      }
    }
    simd::block_mm(M, N, K, A, K, 1, wt.data(), N, C, N, acc, relu, bias, residual);
  }

  /// c = or += a b (b is K x N) [+ bias] [ReLU] [added to c] over fixed row chunks in parallel, each with the
  /// edge-block kernel (no packing and no zero fill; row splits do not change any element's rounding).
  static void node_mm(const matrix<T>& a, const matrix<T>& b, const simd::bf16_panel* wb, matrix<T>& c, bool acc,
                      bool relu, const T* bias = nullptr, bool residual = false) {
    const long rows = a.rows(), K = a.cols(), N = b.cols();
    if (!acc && !residual) c.resize(rows, N);
    const long nchunks = node_chunks(rows);
    parallel_for(nchunks, rows * K * N >= parallel_limits::chunked_product_min_work, [&](long k) {
      const long r0 = chunk_start(k, nchunks, rows), r1 = chunk_start(k + 1, nchunks, rows);
      mm(r1 - r0, N, K, a.data() + r0 * K, b, wb, c.data() + r0 * N, acc, relu, bias, residual);
    });
  }

  /// c = a wt, then + bias (1 x N, or null), then ReLU: over fixed row chunks in parallel, each chunk's rows
  /// finished while in cache. The bias is added after the product, not as the tile's initial value, so the sums
  /// round as those of the node and edge encoders always have (trained weights give the same bits).
  static void node_linear(const matrix<T>& a, const matrix<T>& wt, const T* bias, bool relu, matrix<T>& c) {
    const long rows = a.rows(), K = a.cols(), N = wt.cols();
    c.resize(rows, N);
    const long nchunks = node_chunks(rows);
    parallel_for(nchunks, rows * K * N >= parallel_limits::chunked_product_min_work, [&](long k) {
      const long r0 = chunk_start(k, nchunks, rows), r1 = chunk_start(k + 1, nchunks, rows);
      simd::block_mm(r1 - r0, N, K, a.data() + r0 * K, K, 1, wt.data(), N, c.data() + r0 * N, N, false, false);
      auto part = c.middleRows(r0, r1 - r0);
      if (bias) part.rowwise() += Eigen::Map<const row_vector<T>>(bias, N);
      if (relu) part = part.cwiseMax(T(0));
    });
  }

  /// An edge block's A operand: float rows, and in bf16 inference the same rows in bf16 where a product wrote them.
  struct edge_operand {
    const T* f = nullptr;
    const std::uint16_t* b = nullptr;
  };
  /// Row e0 of bf16 rows of Hp entries (null stays null).
  static std::uint16_t* bf16_rows(std::uint16_t* base, long e0, long Hp) { return base ? base + e0 * Hp : nullptr; }

  /// An edge block's product of hidden width (H x H weights). With wb (bf16 inference): A from its bf16 rows when
  /// given (else converted), and the result also written to `out` in bf16 when out.data is set.
  static void edge_mm(long M, long H, edge_operand A, const matrix<T>& wt, const simd::bf16_panel* wb, T* C, bool acc,
                      bool relu, const T* bias = nullptr, bool residual = false, const simd::bf16_out& out = {}) {
    if constexpr (std::is_same_v<T, float>) {
      if (wb && A.b) {
        simd::bf16_mm(M, H, H, A.b, (H + 1) / 2 * 2, *wb, C, H, acc && !residual, {bias, relu, nullptr, 0, residual},
                      out);
        return;
      }
    }
    mm(M, H, H, A.f, wt, wb, C, acc, relu, bias, residual, wb ? out : simd::bf16_out{});
  }

  /// z[r] = ps[src[e0 + r]] + pd[dst[e0 + r]] (H columns each; pd holds the bias), optionally followed by ReLU.
  template <class Z>
  static void gather_pre(Z& z, const matrix<T>& ps, const matrix<T>& pd, const index_t* src, const index_t* dst,
                         long e0, long nb, long H, bool relu) {
    for (long r = 0; r < nb; ++r) {
      T* __restrict zr = z.data() + r * H;
      const T* __restrict a = ps.data() + long(src[e0 + r]) * H;
      const T* __restrict b = pd.data() + long(dst[e0 + r]) * H;
      if (relu)
        for (long f = 0; f < H; ++f) zr[f] = std::max(a[f] + b[f], T(0));
      else
        for (long f = 0; f < H; ++f) zr[f] = a[f] + b[f];
    }
  }

  /// s[i] = sum of the rows of d (H columns) of the edges entering i, for the nodes [n0, n1) (CSR offsets off).
  static void destination_sums(const index_t* off, long n0, long n1, const matrix<T>& d, matrix<T>& s, long H) {
    for (long i = n0; i < n1; ++i) {
      T* si = s.data() + i * H;
      std::fill(si, si + H, T(0));
      for (index_t e = off[i]; e < off[i + 1]; ++e) detail::row_add(si, d.data() + long(e) * H, H);
    }
  }

  /// s[j] = sum of the rows of d of the edges leaving j (a deterministic gather through the source index).
  static void source_sums(const graph& g, const source_index& by_source, const matrix<T>& d, matrix<T>& s, long H) {
    s.resize(g.num_nodes, H);
    const long n = g.num_nodes;
    parallel_for(n, n * H >= detail::parallel_min_work,
                 [&](long j) { source_sum_rows(by_source, d, s.data(), H, H, j, j + 1, n); });
  }
  /// The same for the nodes [j0, j1) of a graph of n nodes, into H columns of rows of stride lds.
  static void source_sum_rows(const source_index& by_source, const matrix<T>& d, T* s, long lds, long H, long j0,
                              long j1, long n) {
    const index_t* so = by_source.offsets.data();
    const index_t* se = by_source.edges.data();
    const index_t last = so[n];
    for (long j = j0; j < j1; ++j) {
      T* sj = s + j * lds;
      std::fill(sj, sj + H, T(0));
      for (index_t q = so[j]; q < so[j + 1]; ++q) {
        // the rows come in no useful order (edges are stored by destination): fetch a few edges ahead
        if (q + 8 < last)
          for (long f = 0; f < H; f += 64 / static_cast<long>(sizeof(T)))
            __builtin_prefetch(d.data() + long(se[q + 8]) * H + f);
        detail::row_add(sj, d.data() + long(se[q]) * H, H);
      }
    }
  }
};

}  // namespace hepgnn
