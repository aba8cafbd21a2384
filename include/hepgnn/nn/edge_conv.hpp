#pragma once
/// @file edge_conv.hpp
/// @brief hepgnn::edge_conv: x_i' = AGG_{j -> i} h([x_i, x_j - x_i]) (PyTorch Geometric EdgeConv).

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/nn/split_edge_network.hpp"
#include "hepgnn/simd/arch.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "hepgnn/simd/packed_product.hpp"

namespace hepgnn {

namespace detail {

/// Fixed node ranges whose edge counts are about `target` (one node at least): the unit of the fused
/// inference loop. Depends only on the graph, so results do not depend on the thread count.
inline void edge_tiles(const graph& g, index_t target, std::vector<index_t>& starts) {
  starts.clear();
  starts.push_back(0);
  index_t first_edge = 0;
  for (index_t i = 0; i < g.num_nodes; ++i) {
    if (g.offsets[i + 1] - first_edge > target && i > starts.back()) {
      starts.push_back(i);
      first_edge = g.offsets[i];
    }
  }
  if (starts.back() != g.num_nodes) starts.push_back(g.num_nodes);
}

/// Reduces the messages m (rows = edges [e0, ...) of nodes [n0, n1)) into rows n0..n1-1 of y; for max, `argmax`
/// (N x F edge ids, may be null) records the winning edges.
template <class T>
void reduce_tile(const graph& g, index_t n0, index_t n1, const matrix<T>& m, aggregation a, matrix<T>& y,
                 index_t* argmax = nullptr) {
  const long f = m.cols();
  const T* m0 = m.data() - long(g.offsets[n0]) * f;  // row e of the tile at m0 + e * f
  for (index_t i = n0; i < n1; ++i)
    simd::reduce_segment(g.offsets[i], g.offsets[i + 1], f, [&](index_t e) { return m0 + long(e) * f; }, a,
                         y.data() + long(i) * f, argmax ? argmax + long(i) * f : nullptr);
}

/// False when m equals `copy` bit for bit (same shape); otherwise copy = m and true.
template <class T>
bool refresh_copy(const matrix<T>& m, matrix<T>& copy) {
  if (copy.rows() == m.rows() && copy.cols() == m.cols() &&
      (m.size() == 0 || std::memcmp(copy.data(), m.data(), sizeof(T) * static_cast<std::size_t>(m.size())) == 0))
    return false;
  copy = m;
  return true;
}

}  // namespace detail

/// @brief EdgeConv (Wang et al., PyTorch Geometric `EdgeConv(nn, aggr)`): x_i' = AGG_{j -> i} h([x_i, x_j - x_i]).
///
/// `NN` is any hepgnn layer mapping 2F -> F' (e.g. `sequential<T, dense, relu, dense, relu>`). When NN is a
/// sequential whose first layer is a dense, that first map is split over nodes,
/// W [x_i, x_j - x_i] + b = (W_a - W_b) x_i + b + W_b x_j, so the edge-level work of the first layer is a
/// gather-add instead of an edge GEMM. Inference runs fused over tiles of about `tile_edges` edges (whole
/// destination nodes; edge messages never leave the cache). When the layers after the split dense are dense and
/// ReLU layers only (the usual edge MLP), inference packs [W^T; b] once per call and runs each tile through a
/// register-tiled kernel with bias and ReLU in registers, a few dozen edge rows at a time (simd::packed_product).
/// Training tiles the same way (layer by layer) when the layers after the split dense are dense/activation layers
/// (backward recomputes each tile); otherwise (e.g. BatchNorm, whose batch statistics need every edge) it keeps
/// whole E x width matrices. Results do not depend on the thread count.
/// Nodes without incoming edges get 0 (PyG). Max routes the gradient to the arg-max edge.
/// Parameters: "nn.<name>" for every parameter of NN (PyG's EdgeConv.nn).
template <class T, class NN>
class edge_conv {
  static_assert(layer<NN>, "hepgnn::edge_conv: NN must satisfy the hepgnn::layer concept");
  static_assert(std::is_same_v<T, typename NN::scalar>, "hepgnn::edge_conv: NN must use the same scalar type");
  static constexpr bool split = detail::split_first_dense<NN>::value;
  /// Split and every later layer row-local: training runs over edge tiles too (recomputing the tile in backward)
  /// instead of materialising E x width matrices.
  static constexpr bool tiled_training = split && detail::all_row_local<typename detail::split_first_dense<NN>::tail>::value;
  /// Split and the later layers are dense/ReLU only: inference uses the fused kernel (simd::packed_product).
  using plan = detail::dense_relu_plan<typename detail::split_first_dense<NN>::tail>;
  static constexpr bool fused = split && plan::valid;
  /// Edge rows per pass of the fused kernel through all layers (their activations stay in L1).
  static constexpr long fused_rows = 48;

 public:
  using scalar = T;
  static constexpr int in_width = NN::in_width >= 0 ? NN::in_width / 2 : dynamic;
  static constexpr int out_width = NN::out_width >= 0 ? NN::out_width : dynamic;
  static_assert(NN::in_width < 0 || NN::in_width % 2 == 0, "hepgnn::edge_conv: NN's input width must be 2 x F");

 private:
  using tail = detail::seq_tail<T, typename detail::split_first_dense<NN>::tail>;
  struct empty_cache {};
  using tail_cache = std::conditional_t<split, typename tail::cache, empty_cache>;
  using nn_cache = std::conditional_t<split, empty_cache, typename NN::cache>;

  /// Per-thread buffers of the fused inference loop.
  struct tile_buffers {
    matrix<T> in;  ///< edge inputs of the tile (split: first-layer pre-activations; else [x_i, x_j - x_i])
    tail_cache tc;
    nn_cache nc;
    matrix<T> out;  ///< messages of the tile (generic and fused paths)
    matrix<T> dmsg, din;  ///< tiled training: message and edge-input gradients of the tile
    matrix<T> mid[2];     ///< fused inference: activations of fused_rows edges between layers
  };
  struct empty_packs {};
  /// Fused inference: [W^T; b] of every dense after the split one, columns padded to whole registers.
  using packs = std::conditional_t<fused, std::array<matrix<T>, fused ? plan::denses : 0>, empty_packs>;
  /// Fused inference: weight and bias of every dense (the split one first) as they were when last packed.
  using pack_sources =
      std::conditional_t<fused, std::array<matrix<T>, fused ? 2 * (plan::denses + 1) : 0>, empty_packs>;

 public:
  /// @brief What a training forward records for backward (owned by the caller, reused across calls).
  struct cache {
    matrix<T> ab;  ///< split: [A; B] = [W_a - W_b; W_b], 2H x F
    matrix<T> pq;  ///< split: [x A^T + b, x B^T], N x 2H
    matrix<T> abt;  ///< fused inference: [A^T, B^T; b, 0] packed for simd::packed_product
    matrix<T> fused_pq;  ///< fused inference: pq with each half padded to whole registers (pq stays for backward)
    packs packed;
    pack_sources packed_from;
    long fused_out = 0;  ///< fused inference: message width
    matrix<T> ein;  ///< edge inputs (E x 2F generic, E x H split)
    tail_cache tc;
    nn_cache nc;
    matrix<T> msg;  ///< generic path: messages E x F'
    std::vector<index_t> argmax;
    matrix<T> dmsg, dein, dp, dq, da, db;
    source_index sources;
    std::vector<index_t> tiles;
    std::vector<tile_buffers> threads;
    index_t tile_rows = 0;       ///< rows of every tile (padded)
    std::uint64_t forward_key = 0;    ///< fingerprint of the last training forward's graph and input
    std::uint64_t forward_graph = 0;  ///< ... of its graph alone (an infer on another graph retiles the cache)
    std::vector<NN> chunk_nets;  ///< tiled training: per-chunk gradient accumulators (copies of nn)
  };

  /// @brief Wraps the edge network `nn` (input width 2F) with aggregation `aggr` (PyG default: max).
  explicit edge_conv(NN nn, aggregation aggr = aggregation::max, index_t tile_edges = 256)
      : nn_(std::move(nn)), aggr_(aggr), tile_edges_(tile_edges) {
    HEPGNN_CHECK(tile_edges > 0, "edge_conv: tile_edges must be positive, got ", tile_edges);
    if constexpr (split)
      HEPGNN_CHECK(first().in_features() % 2 == 0, "edge_conv: the first layer of nn must take 2 x F inputs, got ",
                   first().in_features());
  }

  /// @brief The edge network h.
  NN& nn() { return nn_; }
  const NN& nn() const { return nn_; }
  aggregation aggr() const { return aggr_; }

  void forward(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) {
    check_input(x, g);
    c.forward_graph = fingerprint(g);
    c.forward_key = fingerprint(x) ^ mix64(c.forward_graph);
    if constexpr (tiled_training) {
      tiled(x, g, y, c, true);
      return;
    }
    const matrix<T>* msg;
    if constexpr (split) {
      node_terms(x, c);
      gather_add_all(g, c.pq, c.ein);
      tail::template run<true>(nn_, c.ein, c.tc);
      msg = &tail::result(c.ein, c.tc);
    } else {
      edge_inputs(x, g, c.ein);
      nn_.forward(c.ein, c.msg, c.nc);
      msg = &c.msg;
    }
    segment_reduce(g, *msg, aggr_, y, &c.argmax);
  }

  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) const {
    check_input(x, g);
    // infer keeps what a training forward left for backward, except the tiling, which follows the graph
    if (c.forward_key != 0 && fingerprint(g) != c.forward_graph) c.forward_key = 0;
    tiled(x, g, y, c, false);
  }

  void backward(const matrix<T>& x, const graph& g, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    check_input(x, g);
    HEPGNN_CHECK(dy.rows() == y.rows() && dy.cols() == y.cols(), "edge_conv::backward: dy must have the shape of y (",
                 y.rows(), " x ", y.cols(), "), got ", dy.rows(), " x ", dy.cols());
    check_same_forward(c.forward_key, forward_key(x, g), "edge_conv::backward", "graph or input x");
    const long f = x.cols();
    c.sources.build(g);
    if constexpr (split) {
      const long h = first().out_features();
      c.dp.setZero(x.rows(), h);
      c.dq.setZero(x.rows(), h);
      if constexpr (tiled_training) {
        tiled_backward(g, dy, c);  // fills dein (E x H) and dp
      } else {
        segment_reduce_backward(g, aggr_, dy, &c.argmax, c.dmsg);
        tail::back(nn_, c.ein, c.dmsg, c.tc, c.dein);  // dein: gradient of the first-layer pre-activations, E x H
        scatter_destinations_add(g, c.dein, c.dp);
      }
      scatter_sources_add(g, c.sources, c.dein, c.dq);
      auto& d = first();
      // dA = dP^T x, dB = dQ^T x; W = [W_a, W_b] with A = W_a - W_b, B = W_b.
      c.da.setZero(h, f);
      c.db.setZero(h, f);
      simd::add_weight_gradient(x, c.dp, c.da);
      simd::add_weight_gradient(x, c.dq, c.db);
      d.weight_grad().leftCols(f) += c.da;
      d.weight_grad().rightCols(f) += c.db - c.da;
      if (d.has_bias()) add_column_sums(c.dp, d.bias_grad().row(0));
      if (dx) {
        dx->resize(x.rows(), f);
        dx->noalias() = c.dp * c.ab.topRows(h);
        dx->noalias() += c.dq * c.ab.bottomRows(h);
      }
    } else {
      segment_reduce_backward(g, aggr_, dy, &c.argmax, c.dmsg);
      nn_.backward(c.ein, c.msg, c.dmsg, c.nc, &c.dein);
      HEPGNN_CHECK(c.dein.cols() == 2 * f, "edge_conv::backward: nn's input gradient has ", c.dein.cols(),
                   " columns, expected 2 x ", f);
      if (dx) {
        // d/dx_i of [x_i, x_j - x_i] is (left - right) at the destination; d/dx_j is right at the source.
        c.dp = c.dein.leftCols(f) - c.dein.rightCols(f);
        c.dq = c.dein.rightCols(f);
        dx->setZero(x.rows(), f);
        scatter_destinations_add(g, c.dp, *dx);
        scatter_sources_add(g, c.sources, c.dq, *dx);
      }
    }
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    nn_.for_each_param(prefix + "nn.", f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) requires has_buffers<NN> {
    nn_.for_each_buffer(prefix + "nn.", f);
  }

 private:
  auto& first() { return nn_.template get<0>(); }
  const auto& first() const { return nn_.template get<0>(); }

  void check_input(const matrix<T>& x, const graph& g) const {
    check_graph_input(x, g, "edge_conv");
    if constexpr (split)
      HEPGNN_CHECK(2 * x.cols() == first().in_features(), "edge_conv: x must have ", first().in_features() / 2,
                   " features (nn takes 2 x F = ", first().in_features(), "), got ", x.rows(), " x ", x.cols());
    else if constexpr (NN::in_width >= 0)
      HEPGNN_CHECK(2 * x.cols() == NN::in_width, "edge_conv: x must have ", NN::in_width / 2, " features, got ",
                   x.rows(), " x ", x.cols());
    else if constexpr (requires { nn_.in_features(); })
      HEPGNN_CHECK(2 * x.cols() == nn_.in_features(), "edge_conv: x must have ", nn_.in_features() / 2,
                   " features (nn takes 2 x F = ", nn_.in_features(), "), got ", x.rows(), " x ", x.cols());
  }

  /// [A; B] and the node terms [x A^T + b, x B^T] (one N x 2H GEMM).
  void node_terms(const matrix<T>& x, cache& c) const {
    const auto& d = first();
    const long h = d.out_features(), f = x.cols();
    c.ab.resize(2 * h, f);
    c.ab.topRows(h) = d.weight().leftCols(f) - d.weight().rightCols(f);
    c.ab.bottomRows(h) = d.weight().rightCols(f);
    c.pq.resize(x.rows(), 2 * h);
    c.pq.noalias() = x * c.ab.transpose();
    if (d.has_bias()) c.pq.leftCols(h).rowwise() += d.bias().row(0);
  }

  /// ein[e] = P[dst(e)] + Q[src(e)] for all edges.
  static void gather_add_all(const graph& g, const matrix<T>& pq, matrix<T>& ein) {
    const long h = pq.cols() / 2, n = g.num_nodes;
    ein.resize(g.num_edges(), h);
    parallel_for(n, long(g.num_edges()) * h >= detail::parallel_min_work,
                 [&](long i) { gather_add_rows(g, pq, static_cast<index_t>(i), 0, ein); });
  }
  /// Rows for the edges of node i, written at row (e - e0) of out.
  static void gather_add_rows(const graph& g, const matrix<T>& pq, index_t i, index_t e0, matrix<T>& out) {
    const long h = pq.cols() / 2, w = pq.cols();
    const T* p = pq.data() + long(i) * w;
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
      const T* q = pq.data() + long(g.sources[e]) * w + h;
      T* o = out.data() + long(e - e0) * h;
      for (long k = 0; k < h; ++k) o[k] = p[k] + q[k];
    }
  }

  /// Generic path: [x_i, x_j - x_i] for all edges.
  static void edge_inputs(const matrix<T>& x, const graph& g, matrix<T>& out) {
    const long f = x.cols(), n = g.num_nodes;
    out.resize(g.num_edges(), 2 * f);
    parallel_for(n, long(g.num_edges()) * f >= detail::parallel_min_work,
                 [&](long i) { edge_input_rows(x, g, static_cast<index_t>(i), 0, out); });
  }
  static void edge_input_rows(const matrix<T>& x, const graph& g, index_t i, index_t e0, matrix<T>& out) {
    const long f = x.cols();
    const T* xi = x.data() + long(i) * f;
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
      const T* xj = x.data() + long(g.sources[e]) * f;
      T* o = out.data() + long(e - e0) * 2 * f;
      for (long k = 0; k < f; ++k) {
        o[k] = xi[k];
        o[f + k] = xj[k] - xi[k];
      }
    }
  }

  /// The fused loop over edge tiles: inference, and the training forward of tiled_training (records arg-max).
  void tiled(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c, bool record) const {
    // Training keeps the layer-by-layer tile (its backward recomputes tiles the same way).
    const bool fast = fused && !record;
    if constexpr (fused) {
      if (fast) fused_node_terms(x, c); else node_terms(x, c);
    } else if constexpr (split) {
      node_terms(x, c);
    }
    const int nthreads = max_threads();
    if (c.threads.size() < static_cast<std::size_t>(nthreads)) c.threads.resize(nthreads);
    detail::edge_tiles(g, tile_edges_, c.tiles);
    const index_t ntiles = static_cast<index_t>(c.tiles.size()) - 1;
    // Every tile is padded to the same row count, so the tile buffers keep their size (no allocation per tile).
    index_t rows = 0;
    for (index_t t = 0; t < ntiles; ++t) rows = std::max(rows, g.offsets[c.tiles[t + 1]] - g.offsets[c.tiles[t]]);
    c.tile_rows = rows;
    auto tile = [&](index_t n0, index_t n1, tile_buffers& b) -> const matrix<T>& {
      if constexpr (fused)
        if (fast) {
          fused_tile(g, n0, n1, rows, c, b);
          return b.out;
        }
      run_tile(nn_, x, g, n0, n1, rows, c, b);
      return tile_result(b);
    };
    // Tile 0 first: it fixes the output width (an empty graph runs an empty tile for it).
    const matrix<T>& first_msg = tile(c.tiles[0], c.tiles[ntiles > 0 ? 1 : 0], c.threads[0]);
    const long fo = first_msg.cols();
    y.resize(x.rows(), fo);
    index_t* arg = nullptr;
    if (record && aggr_ == aggregation::max) {
      c.argmax.resize(static_cast<std::size_t>(x.rows() * fo));
      arg = c.argmax.data();
    }
    if (ntiles == 0) return;
    detail::reduce_tile(g, c.tiles[0], c.tiles[1], first_msg, aggr_, y, arg);
    auto rest = [&](index_t t, int me) {
      const matrix<T>& msg = tile(c.tiles[t], c.tiles[t + 1], c.threads[me]);
      detail::reduce_tile(g, c.tiles[t], c.tiles[t + 1], msg, aggr_, y, arg);
    };
    // Small graphs (a few jets) stay out of the OpenMP runtime: even a region whose `if` is false allocates.
    if (ntiles <= 2 || long(g.num_edges()) * fo < detail::parallel_min_work) {
      for (index_t t = 1; t < ntiles; ++t) rest(t, 0);
      return;
    }
    parallel_for(ntiles - 1, true, [&](long t) { rest(static_cast<index_t>(t + 1), thread_index()); });
  }

  /// Backward of the tiled training forward: recomputes each tile's messages, back-propagates them through the
  /// tail with per-chunk copies of nn (fixed chunks of tiles, summed in chunk order: thread-count independent),
  /// writes the first-layer pre-activation gradients to c.dein (E x H) and their per-destination sums to c.dp.
  void tiled_backward(const graph& g, const matrix<T>& dy, cache& c) requires tiled_training {
    const index_t ntiles = static_cast<index_t>(c.tiles.size()) - 1;
    const long h = first().out_features(), fo = dy.cols();
    if (aggr_ == aggregation::max)
      HEPGNN_CHECK(c.argmax.size() == static_cast<std::size_t>(dy.rows() * fo),
                   "edge_conv::backward: dy has ", fo, " columns but the forward produced a different width");
    c.dein.resize(g.num_edges(), h);
    const index_t nchunks = std::min<index_t>(ntiles, 8);
    while (c.chunk_nets.size() < static_cast<std::size_t>(nchunks)) c.chunk_nets.push_back(nn_);
    for (index_t k = 0; k < nchunks; ++k) {
      c.chunk_nets[k] = nn_;  // same shapes: copies values without allocating
      zero_grad(c.chunk_nets[k]);
    }
    const bool parallel = nchunks > 1 && long(g.num_edges()) * fo >= detail::parallel_min_work;
    parallel_for<loop_schedule::dynamic_single>(nchunks, parallel, [&](long k) {
      tile_buffers& b = c.threads[thread_index()];
      NN& net = c.chunk_nets[k];
      const index_t t0 = static_cast<index_t>(long(ntiles) * k / nchunks);
      const index_t t1 = static_cast<index_t>(long(ntiles) * (k + 1) / nchunks);
      for (index_t t = t0; t < t1; ++t) {
        const index_t n0 = c.tiles[t], n1 = c.tiles[t + 1], e0 = g.offsets[n0], used = g.offsets[n1] - e0;
        run_tile(net, matrix<T>(), g, n0, n1, c.tile_rows, c, b);
        b.dmsg.setZero(c.tile_rows, fo);
        T* dm0 = b.dmsg.data() - long(e0) * fo;  // row e of the tile at dm0 + e * fo
        for (index_t i = n0; i < n1; ++i)
          simd::reduce_segment_backward<simd::gradient_mode::assign>(
              g.offsets[i], g.offsets[i + 1], fo, aggr_, dy.data() + long(i) * fo,
              aggr_ == aggregation::max ? c.argmax.data() + long(i) * fo : nullptr,
              [&](index_t e) { return dm0 + long(e) * fo; });
        tail::back(net, b.in, b.dmsg, b.tc, b.din);
        for (index_t i = n0; i < n1; ++i)
          for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) detail::row_add(c.dp.data() + long(i) * h, b.din.data() + long(e - e0) * h, h);
        std::copy(b.din.data(), b.din.data() + long(used) * h, c.dein.data() + long(e0) * h);
      }
    });
    // Chunk gradients into nn's, in chunk order.
    std::vector<T*> grads;
    std::vector<std::int64_t> sizes;
    nn_.for_each_param("", [&](const std::string&, parameter<T> p) {
      grads.push_back(p.grad);
      sizes.push_back(p.size());
    });
    for (index_t k = 0; k < nchunks; ++k) {
      std::size_t idx = 0;
      c.chunk_nets[k].for_each_param("", [&](const std::string&, parameter<T> p) {
        for (std::int64_t j = 0; j < sizes[idx]; ++j) grads[idx][j] += p.grad[j];
        ++idx;
      });
    }
  }

  /// Edge inputs of the edges of nodes [n0, n1) into the first rows of a `rows`-row tile (rest zero), then nn.
  void run_tile(const NN& net, const matrix<T>& x, const graph& g, index_t n0, index_t n1, index_t rows, const cache& c,
                tile_buffers& b) const {
    const index_t e0 = g.offsets[n0], used = g.offsets[n1] - e0;
    if constexpr (split) {
      const long h = c.pq.cols() / 2;
      b.in.resize(rows, h);
      for (index_t i = n0; i < n1; ++i) gather_add_rows(g, c.pq, i, e0, b.in);
      b.in.bottomRows(rows - used).setZero();
      tail::template run<false>(net, b.in, b.tc);
    } else {
      const long f = x.cols();
      b.in.resize(rows, 2 * f);
      for (index_t i = n0; i < n1; ++i) edge_input_rows(x, g, i, e0, b.in);
      b.in.bottomRows(rows - used).setZero();
      std::as_const(net).infer(b.in, b.out, b.nc);
    }
  }
  /// Fused inference: packs [A^T, B^T; b, 0] and every later dense's [W^T; b] (only when a weight changed since
  /// the last call with this cache: repeated inference skips the transpositions), then fused_pq = [x A^T + b, x B^T]
  /// with each half padded to whole registers (padding columns are 0).
  void fused_node_terms(const matrix<T>& x, cache& c) const requires fused {
    const auto& d = first();
    const long h = d.out_features(), f = x.cols(), hp = simd::padded_width<T>(h);
    bool stale = false;
    std::size_t s = 0;
    auto seen = [&](const auto& l) {
      stale |= detail::refresh_copy(l.weight(), c.packed_from[s++]);
      stale |= detail::refresh_copy(l.bias(), c.packed_from[s++]);
    };
    seen(d);
    for_each_tail_dense([&](const auto& l) { seen(l); });
    if (stale) {
      c.abt.resize(f + 1, 2 * hp);
      c.abt.setZero();
      c.abt.topLeftCorner(f, h) = (d.weight().leftCols(f) - d.weight().rightCols(f)).transpose();
      c.abt.block(0, hp, f, h) = d.weight().rightCols(f).transpose();
      if (d.has_bias()) c.abt.row(f).head(h) = d.bias().row(0);
      std::size_t j = 0;
      for_each_tail_dense([&](const auto& l) {
        detail::pack_dense(l, c.packed[j++]);
        c.fused_out = l.out_features();
      });
    }
    const long n = x.rows();
    c.fused_pq.resize(n, 2 * hp);
    constexpr long block = 96;  // rows per task: a multiple of every register-tile height
    const long blocks = (n + block - 1) / block;
    auto rows = [&](long k) {
      const long r0 = k * block;
      T* out = c.fused_pq.data() + r0 * 2 * hp;
      simd::packed_product(std::min(block, n - r0), x.data() + r0 * f, f, c.abt, out, 2 * hp, false);
    };
    if (blocks < 2 || n * f * hp < detail::parallel_min_work * 16) {  // a jet: no OpenMP runtime call (it allocates)
      for (long k = 0; k < blocks; ++k) rows(k);
      return;
    }
    parallel_for(blocks, true, rows);
  }

  /// Calls f(layer) for every dense layer after the split one, in order.
  template <class F>
  void for_each_tail_dense(F&& f) const {
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
          [&] {
            const auto& l = nn_.template get<K + 1>();
            if constexpr (detail::is_dense_layer<std::remove_cvref_t<decltype(l)>>::value) f(l);
          }(),
          ...);
    }(std::make_index_sequence<tail::r>{});
  }

  /// Fused inference of the edges of nodes [n0, n1): b.in = act(P[dst] + Q[src]) (padded width), then every
  /// dense (+ ReLU) on fused_rows edges at a time; messages into the first rows of b.out (rows x F').
  void fused_tile(const graph& g, index_t n0, index_t n1, index_t rows, const cache& c, tile_buffers& b) const
      requires fused {
    const index_t e0 = g.offsets[n0], used = g.offsets[n1] - e0;
    const long hp = c.fused_pq.cols() / 2, w = c.fused_pq.cols();
    b.in.resize(rows, hp);
    for (index_t i = n0; i < n1; ++i) {
      const T* p = c.fused_pq.data() + long(i) * w;
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
        simd::add_padded_rows(p, c.fused_pq.data() + long(g.sources[e]) * w + hp, b.in.data() + long(e - e0) * hp, hp,
                              plan::lead_relu);
    }
    const long fo = plan::denses > 0 ? c.fused_out : first().out_features();
    b.out.resize(rows, fo);
    if constexpr (plan::denses == 0) {
      for (long r = 0; r < used; ++r) detail::row_copy(b.out.data() + r * fo, b.in.data() + r * hp, fo);
    } else {
      long widest = 0;
      for (const matrix<T>& wt : c.packed) widest = std::max<long>(widest, wt.cols());
      for (int k = 0; k < 2; ++k) b.mid[k].resize(fused_rows, widest);
      const std::size_t last = plan::denses - 1;
      const bool direct = c.packed[last].cols() == fo;  // the last product can write the messages in place
      for (long r0 = 0; r0 < used; r0 += fused_rows) {
        const long m = std::min<long>(fused_rows, used - r0);
        const T* a = b.in.data() + r0 * hp;
        long lda = hp;
        for (std::size_t j = 0; j < plan::denses; ++j) {
          const bool to_out = j == last && direct;
          T* dst = to_out ? b.out.data() + r0 * fo : b.mid[j % 2].data();
          const long ldc = to_out ? fo : widest;
          simd::packed_product(m, a, lda, c.packed[j], dst, ldc, plan::relu_after[j]);
          a = dst;
          lda = ldc;
        }
        if (!direct)
          for (long r = 0; r < m; ++r) detail::row_copy(b.out.data() + (r0 + r) * fo, a + r * lda, fo);
      }
    }
  }

  const matrix<T>& tile_result(const tile_buffers& b) const {
    if constexpr (split) return tail::result(b.in, b.tc); else return b.out;
  }

  NN nn_;
  aggregation aggr_;
  index_t tile_edges_;
};

}  // namespace hepgnn
