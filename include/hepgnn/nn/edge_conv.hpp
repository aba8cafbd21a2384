#pragma once
/// @file edge_conv.hpp
/// @brief hepgnn::edge_conv: x_i' = AGG_{j -> i} h([x_i, x_j - x_i]) (PyTorch Geometric EdgeConv).

#include <algorithm>
#include <array>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace hepgnn {

namespace detail {

/// True for sequential<T, dense<T, I, O>, Rest...>: the first linear map can be split over nodes.
template <class NN>
struct split_first_dense : std::false_type {
  using tail = std::tuple<>;
};
template <class T, int I, int O, class... Rest>
struct split_first_dense<sequential<T, dense<T, I, O>, Rest...>> : std::true_type {
  using tail = std::tuple<Rest...>;
};

/// Runs layers 1..R of a sequential<T, dense, Rest...> on an edge matrix (the layers after the split dense).
template <class T, class Tail>
struct seq_tail;
template <class T, class... Rest>
struct seq_tail<T, std::tuple<Rest...>> {
  static constexpr std::size_t r = sizeof...(Rest);
  struct cache {
    std::tuple<typename Rest::cache...> layers;
    std::array<matrix<T>, r> out;  ///< output of tail layer k
    matrix<T> grad[2];
  };
  /// Output of the tail (the input itself when there is no tail layer).
  static const matrix<T>& result(const matrix<T>& in, const cache& c) {
    if constexpr (r == 0) return in; else return c.out[r - 1];
  }
  template <bool Train, class Seq>
  static void run(Seq& s, const matrix<T>& in, cache& c) {
    [&]<std::size_t... K>(std::index_sequence<K...>) { (step<Train, K>(s, in, c), ...); }
    (std::make_index_sequence<r>{});
  }
  template <bool Train, std::size_t K, class Seq>
  static void step(Seq& s, const matrix<T>& in, cache& c) {
    const matrix<T>& src = K == 0 ? in : c.out[K == 0 ? 0 : K - 1];
    auto& l = s.template get<K + 1>();
    if constexpr (Train)
      l.forward(src, c.out[K], std::get<K>(c.layers));
    else
      std::as_const(l).infer(src, c.out[K], std::get<K>(c.layers));
  }
  /// Backward through the tail: dout is the gradient of result(); writes the gradient of `in` to din.
  template <class Seq>
  static void back(Seq& s, const matrix<T>& in, const matrix<T>& dout, cache& c, matrix<T>& din) {
    if constexpr (r == 0) {
      din = dout;
    } else {
      back_step<r - 1>(s, in, dout, c, din);
    }
  }
  template <std::size_t K, class Seq>
  static void back_step(Seq& s, const matrix<T>& in, const matrix<T>& dout, cache& c, matrix<T>& din) {
    const matrix<T>& g_out = (K == r - 1) ? dout : c.grad[K % 2];
    matrix<T>& g_in = (K == 0) ? din : c.grad[(K + 1) % 2];
    const matrix<T>& x_k = K == 0 ? in : c.out[K == 0 ? 0 : K - 1];
    s.template get<K + 1>().backward(x_k, c.out[K], g_out, std::get<K>(c.layers), &g_in);
    if constexpr (K > 0) back_step<K - 1>(s, in, dout, c, din);
  }
};

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
  const index_t e0 = g.offsets[n0];
  for (index_t i = n0; i < n1; ++i) {
    T* yi = y.data() + long(i) * f;
    index_t* ai = argmax ? argmax + long(i) * f : nullptr;
    const index_t b = g.offsets[i], en = g.offsets[i + 1];
    if (b == en) {
      std::fill(yi, yi + f, T(0));
      if (ai) std::fill(ai, ai + f, index_t(-1));
      continue;
    }
    row_copy(yi, m.data() + long(b - e0) * f, f);
    if (ai) std::fill(ai, ai + f, b);
    for (index_t e = b + 1; e < en; ++e) {
      const T* me = m.data() + long(e - e0) * f;
      if (a == aggregation::max) {
        if (ai)
          row_max(yi, ai, me, e, f);
        else
          for (long c = 0; c < f; ++c) yi[c] = me[c] > yi[c] ? me[c] : yi[c];
      } else {
        row_add(yi, me, f);
      }
    }
    if (a == aggregation::mean) row_scale(yi, T(1) / T(en - b), f);
  }
}

/// Layers that act on each row independently in training too (so edge tiles can be trained separately).
template <class L>
struct row_local : std::false_type {};
template <class T, int I, int O>
struct row_local<dense<T, I, O>> : std::true_type {};
template <class T, class P>
struct row_local<activation<T, P>> : std::true_type {};
template <class Tail>
struct all_row_local;
template <class... Ls>
struct all_row_local<std::tuple<Ls...>> : std::bool_constant<(row_local<Ls>::value && ...)> {};

}  // namespace detail

/// @brief EdgeConv (Wang et al., PyTorch Geometric `EdgeConv(nn, aggr)`): x_i' = AGG_{j -> i} h([x_i, x_j - x_i]).
///
/// `NN` is any hepgnn layer mapping 2F -> F' (e.g. `sequential<T, dense, relu, dense, relu>`). When NN is a
/// sequential whose first layer is a dense, that first map is split over nodes,
/// W [x_i, x_j - x_i] + b = (W_a - W_b) x_i + b + W_b x_j, so the edge-level work of the first layer is a
/// gather-add instead of an edge GEMM. Inference runs fused over tiles of about `tile_edges` edges (whole
/// destination nodes; edge messages never leave the cache). Training does the same when the layers after the
/// split dense are dense/activation layers (backward recomputes each tile); otherwise (e.g. BatchNorm, whose
/// batch statistics need every edge) it keeps whole E x width matrices. Results do not depend on the thread count.
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
    matrix<T> out;  ///< messages of the tile (generic path)
    matrix<T> dmsg, din;  ///< tiled training: message and edge-input gradients of the tile
  };

 public:
  /// @brief What a training forward records for backward (owned by the caller, reused across calls).
  struct cache {
    matrix<T> ab;  ///< split: [A; B] = [W_a - W_b; W_b], 2H x F
    matrix<T> pq;  ///< split: [x A^T + b, x B^T], N x 2H
    matrix<T> ein;  ///< edge inputs (E x 2F generic, E x H split)
    tail_cache tc;
    nn_cache nc;
    matrix<T> msg;  ///< generic path: messages E x F'
    std::vector<index_t> argmax;
    matrix<T> dmsg, dein, dp, dq;
    source_index sources;
    std::vector<index_t> tiles;
    std::vector<tile_buffers> threads;
    index_t tile_rows = 0;       ///< rows of every tile (padded)
    index_t forward_edges = -1;  ///< edge count of the last training forward
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
    c.forward_edges = g.num_edges();
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
    const_cast<edge_conv*>(this)->tiled(x, g, y, c, false);
  }

  void backward(const matrix<T>& x, const graph& g, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    check_input(x, g);
    HEPGNN_CHECK(dy.rows() == y.rows() && dy.cols() == y.cols(), "edge_conv::backward: dy must have the shape of y (",
                 y.rows(), " x ", y.cols(), "), got ", dy.rows(), " x ", dy.cols());
    HEPGNN_CHECK(c.forward_edges == g.num_edges() && y.rows() == x.rows(),
                 "edge_conv::backward: the cache holds a forward over ", c.forward_edges, " edges but the graph has ",
                 g.num_edges(), " (call forward with this graph first)");
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
      const matrix<T> da = c.dp.transpose() * x;
      const matrix<T> db = c.dq.transpose() * x;
      d.weight_grad().leftCols(f) += da;
      d.weight_grad().rightCols(f) += db - da;
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
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (long(g.num_edges()) * h >= detail::parallel_min_work)
#endif
    for (long i = 0; i < n; ++i) gather_add_rows(g, pq, static_cast<index_t>(i), 0, ein);
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
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (long(g.num_edges()) * f >= detail::parallel_min_work)
#endif
    for (long i = 0; i < n; ++i) edge_input_rows(x, g, static_cast<index_t>(i), 0, out);
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
  void tiled(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c, bool record) {
    if constexpr (split) node_terms(x, c);
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = omp_get_max_threads();
#endif
    if (c.threads.size() < static_cast<std::size_t>(nthreads)) c.threads.resize(nthreads);
    detail::edge_tiles(g, tile_edges_, c.tiles);
    const index_t ntiles = static_cast<index_t>(c.tiles.size()) - 1;
    // Every tile is padded to the same row count, so the tile buffers keep their size (no allocation per tile).
    index_t rows = 0;
    for (index_t t = 0; t < ntiles; ++t) rows = std::max(rows, g.offsets[c.tiles[t + 1]] - g.offsets[c.tiles[t]]);
    c.tile_rows = rows;
    // Tile 0 first: it fixes the output width (an empty graph runs an empty tile for it).
    run_tile(nn_, x, g, c.tiles[0], c.tiles[ntiles > 0 ? 1 : 0], rows, c, c.threads[0]);
    const long fo = tile_result(c.threads[0]).cols();
    y.resize(x.rows(), fo);
    index_t* arg = nullptr;
    if (record && aggr_ == aggregation::max) {
      c.argmax.resize(static_cast<std::size_t>(x.rows() * fo));
      arg = c.argmax.data();
    }
    if (ntiles == 0) return;
    detail::reduce_tile(g, c.tiles[0], c.tiles[1], tile_result(c.threads[0]), aggr_, y, arg);
    if (ntiles < 2) return;  // one tile (a jet): no OpenMP runtime call at all
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ntiles > 2 && long(g.num_edges()) * fo >= detail::parallel_min_work)
#endif
    for (index_t t = 1; t < ntiles; ++t) {
      int me = 0;
#ifdef _OPENMP
      me = omp_get_thread_num();
#endif
      tile_buffers& b = c.threads[me];
      run_tile(nn_, x, g, c.tiles[t], c.tiles[t + 1], rows, c, b);
      detail::reduce_tile(g, c.tiles[t], c.tiles[t + 1], tile_result(b), aggr_, y, arg);
    }
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
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (nchunks > 1 && long(g.num_edges()) * fo >= detail::parallel_min_work)
#endif
    for (index_t k = 0; k < nchunks; ++k) {
      int me = 0;
#ifdef _OPENMP
      me = omp_get_thread_num();
#endif
      tile_buffers& b = c.threads[me];
      NN& net = c.chunk_nets[k];
      const index_t t0 = static_cast<index_t>(long(ntiles) * k / nchunks);
      const index_t t1 = static_cast<index_t>(long(ntiles) * (k + 1) / nchunks);
      for (index_t t = t0; t < t1; ++t) {
        const index_t n0 = c.tiles[t], n1 = c.tiles[t + 1], e0 = g.offsets[n0], used = g.offsets[n1] - e0;
        run_tile(net, matrix<T>(), g, n0, n1, c.tile_rows, c, b);
        b.dmsg.setZero(c.tile_rows, fo);
        for (index_t i = n0; i < n1; ++i) {
          const index_t eb = g.offsets[i], ee = g.offsets[i + 1];
          const T* dyi = dy.data() + long(i) * fo;
          if (aggr_ == aggregation::max) {
            const index_t* ai = c.argmax.data() + long(i) * fo;
            for (long col = 0; col < fo; ++col)
              if (ai[col] >= 0) b.dmsg(ai[col] - e0, col) = dyi[col];
          } else {
            const T w = aggr_ == aggregation::mean && ee > eb ? T(1) / T(ee - eb) : T(1);
            for (index_t e = eb; e < ee; ++e)
              for (long col = 0; col < fo; ++col) b.dmsg(e - e0, col) = w * dyi[col];
          }
        }
        tail::back(net, b.in, b.dmsg, b.tc, b.din);
        for (index_t i = n0; i < n1; ++i)
          for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) detail::row_add(c.dp.data() + long(i) * h, b.din.data() + long(e - e0) * h, h);
        std::copy(b.din.data(), b.din.data() + long(used) * h, c.dein.data() + long(e0) * h);
      }
    }
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
  void run_tile(NN& net, const matrix<T>& x, const graph& g, index_t n0, index_t n1, index_t rows, const cache& c,
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
  const matrix<T>& tile_result(const tile_buffers& b) const {
    if constexpr (split) return tail::result(b.in, b.tc); else return b.out;
  }

  NN nn_;
  aggregation aggr_;
  index_t tile_edges_;
};

}  // namespace hepgnn
