#pragma once
/// @file interaction_network.hpp
/// @brief hepgnn::interaction_network: the Exa.TrkX interaction-network edge classifier (node and edge
/// encoders, residual edge/node updates, edge output head), with an explicit backward pass.
///
/// Semantics (edge e goes src(e) -> dst(e); edges are rows in the graph's CSR order, sorted by destination):
///   h   = MLP_x(x)                                  node encoder
///   e   = MLP_ex([x_src, x_dst, attr_e])            edge encoder; attr (E x edge_in, CSR edge order): optional
///                                                   edge input features from the caller (edge_in = 0: none)
///   repeat `iterations` times (weights shared or one set per iteration):
///     e   = e + MLP_e([h_src, h_dst, e])            edge update
///     a_i = AGG_{e: dst(e) = i} e                   sum, mean or max (0 for nodes without edges), or several
///                                                   of them concatenated
///     s_i = SUM_{e: src(e) = i} e                   only with options::source_aggregation
///     h   = h + MLP_n([h, a(, s)])                  node update (not computed in the last iteration: no output
///                                                   reads that h)
///   y   = MLP_o(e)                                  edge logits (E x out), CSR edge order
/// Every MLP is Linear-ReLU-Linear-ReLU except MLP_o (Linear-ReLU-Linear). With hidden 64, 4 shared iterations,
/// sum aggregation and out = 1 this is workload W3 of WORKLOADS.md.
///
/// Speed (DESIGN.md section 5): the first Linear of MLP_e and MLP_ex is split by input block, so the h_src and h_dst
/// (x_src and x_dst) parts are node-level GEMMs gathered per edge and only the e (attr_e) part is an edge-level
/// GEMM. Edge work runs over blocks of consecutive destination nodes (a few hundred edges each), so an edge update,
/// its aggregation and the output head stay in cache; weight gradients are summed per fixed chunk of blocks and then
/// in chunk order, so results do not depend on the thread count.

#include <algorithm>
#include <string>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/simd/arch.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "hepgnn/simd/gemm_bf16.hpp"

namespace hepgnn {

/// @brief Operand precision of interaction_network::infer()'s products: float, or bf16 operands with float sums
/// (simd/gemm_bf16.hpp; float networks only). Sums, aggregation and the residual streams stay float either way.
enum class inference_precision { f32, bf16 };

/// @brief Two Linear layers named "0." and "2." (torch.nn.Sequential(Linear, ReLU, Linear[, ReLU])).
template <class T>
struct two_layer_mlp {
  dense<T> first;   ///< "0."
  dense<T> second;  ///< "2."
  /// @brief Visits "<prefix>0.weight", "<prefix>0.bias", "<prefix>2.weight", "<prefix>2.bias".
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    first.for_each_param(prefix + "0.", f);
    second.for_each_param(prefix + "2.", f);
  }
};

/// @brief Interaction-network edge classifier (see the file comment for the equations).
/// @tparam In     node feature width, or dynamic
/// @tparam Hidden hidden width of nodes, edges and every MLP, or dynamic
/// Parameters: node_encoder.{0,2}, edge_encoder.{0,2}, edge_network.{0,2}, node_network.{0,2}, output.{0,2}
/// (.weight/.bias); without shared weights edge_network.<t>.{0,2} and node_network.<t>.{0,2}. edge_encoder.0.weight
/// is hidden x (2 in + edge_in), columns [x_src, x_dst, attr_e] as in torch.nn.Linear(2 * in + edge_in, hidden).
/// Output: y is E x out (one row per edge, CSR order), not N x out.
template <class T, int In = dynamic, int Hidden = dynamic>
class interaction_network {
 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = dynamic;

  /// @brief Configuration; widths default to the template parameters.
  struct options {
    int in = In;                                              ///< node feature width
    int hidden = Hidden;                                      ///< hidden width
    int iterations = 4;                                       ///< message-passing iterations
    bool shared_weights = true;                               ///< one edge/node network for all iterations
    std::vector<aggregation> aggregations{aggregation::sum};  ///< concatenated in this order
    int out = 1;                                              ///< output head width (1: edge logit)
    int edge_in = 0;  ///< edge input feature width; > 0: forward/infer/backward take edge_attr (E x edge_in)
    /// The node update also sums the edges leaving each node (s_i above), so information flows against the
    /// edges' direction too: on a graph directed outward (tracking), a hit then sees its outer edges, and the
    /// edges that leave one hit compete through it. The node network's input gains `hidden` columns.
    bool source_aggregation = false;
  };

  /// @brief Training cache (also used by infer, which touches only its inference buffers).
  struct cache {
    // graph-derived
    std::vector<index_t> dst, block_node, chunk_block;
    index_t max_block_edges = 0;
    const index_t* off = nullptr;  // offsets of the graph being processed
    source_index by_source;
    // node level, per iteration
    std::vector<matrix<T>> h, zn, un, agg;  // h: iterations + 1
    std::vector<std::vector<index_t>> argmax;
    matrix<T> zx, ps, pd;
    // edge level
    std::vector<matrix<T>> e, z, m;  // e: iterations + 1
    matrix<T> zex, zo;
    std::vector<matrix<T>> wt;  // transposed weights (K x N) of the edge-block products
    std::vector<simd::bf16_panel> wb;  // the same in bf16 (inference with inference_precision::bf16)
    std::vector<std::uint16_t> eb;     // bf16 inference: e rounded to bf16, the edge products' A (no conversions)
    // backward
    matrix<T> de, dpre, dh, du, dzn, ssrc, sdst, dnin;
    std::vector<matrix<T>> part_a, part_b, part_ba, part_n;
    // per-thread scratch
    std::vector<matrix<T>> tz, tg;
    std::vector<std::vector<std::uint16_t>> tzb;  // bf16 inference: the edge MLP's hidden activations
  };

  /// @brief Builds the layers (PyTorch default initialisation from gen) in the order node encoder, edge
  /// encoder, edge network(s), node network(s), output head.
  interaction_network(rng& gen, const options& o)
      : o_(checked(o)),
        node_enc_(make(gen, o.in, o.hidden, o.hidden)),
        edge_enc_(make(gen, 2 * o.in + o.edge_in, o.hidden, o.hidden)),
        edge_net_(make_sets(gen, o, 3 * o.hidden)),
        node_net_(make_sets(gen, o, o.hidden + aggregated_width(o))),
        out_(make(gen, o.hidden, o.hidden, o.out)) {}

  const options& config() const { return o_; }
  /// @brief Node encoder layer i (0: first Linear, 1: second).
  dense<T>& node_encoder(int i) { return i == 0 ? node_enc_.first : node_enc_.second; }
  dense<T>& edge_encoder(int i) { return i == 0 ? edge_enc_.first : edge_enc_.second; }
  /// @brief Edge network of iteration t (any t when shared), layer i.
  dense<T>& edge_network(int t, int i) { auto& m = edge_net_[set_of(t)]; return i == 0 ? m.first : m.second; }
  dense<T>& node_network(int t, int i) { auto& m = node_net_[set_of(t)]; return i == 0 ? m.first : m.second; }
  dense<T>& output(int i) { return i == 0 ? out_.first : out_.second; }

  /// @brief Training forward: y = edge logits (E x out) in CSR edge order. Only for edge_in == 0.
  void forward(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) { run<true>(x, g, nullptr, y, c); }
  /// @brief Training forward with edge input features edge_attr (E x edge_in, CSR edge order).
  void forward(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, matrix<T>& y, cache& c) {
    run<true>(x, g, &edge_attr, y, c);
  }
  /// @brief Inference; no heap allocation once `c` and `y` have been used with the same graph sizes. Only for
  /// edge_in == 0.
  /// With inference_precision::bf16 (float networks) the products of hidden width take bf16 operands: about 1.7x
  /// their float rate on CPUs with AVX-512 BF16, logits within ~1e-2 of float's (tests/test_interaction_network).
  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c,
             inference_precision p = inference_precision::f32) const {
    const_cast<interaction_network*>(this)->template run<false>(x, g, nullptr, y, c, p);
  }
  /// @brief Inference with edge input features edge_attr (E x edge_in, CSR edge order).
  void infer(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, matrix<T>& y, cache& c,
             inference_precision p = inference_precision::f32) const {
    const_cast<interaction_network*>(this)->template run<false>(x, g, &edge_attr, y, c, p);
  }

  /// @brief Adds dL/dparameters for dy = dL/dy (E x out); writes dL/dx (N x in) when dx is not null. Only for
  /// edge_in == 0.
  void backward(const matrix<T>& x, const graph& g, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    backward_impl(x, g, nullptr, dy, c, dx, nullptr);
    (void)y;
  }
  /// @brief Backward of forward(x, g, edge_attr, y, c): also writes dL/dedge_attr (E x edge_in) when d_edge_attr
  /// is not null.
  void backward(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, const matrix<T>& y,
                const matrix<T>& dy, cache& c, matrix<T>* dx, matrix<T>* d_edge_attr = nullptr) {
    backward_impl(x, g, &edge_attr, dy, c, dx, d_edge_attr);
    (void)y;
  }

  /// @brief Visits every parameter by its PyTorch name (see the class comment).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    node_enc_.for_each_param(prefix + "node_encoder.", f);
    edge_enc_.for_each_param(prefix + "edge_encoder.", f);
    if (o_.shared_weights) {
      edge_net_[0].for_each_param(prefix + "edge_network.", f);
      node_net_[0].for_each_param(prefix + "node_network.", f);
    } else {
      for (std::size_t t = 0; t < edge_net_.size(); ++t)
        edge_net_[t].for_each_param(prefix + "edge_network." + std::to_string(t) + ".", f);
      for (std::size_t t = 0; t < node_net_.size(); ++t)
        node_net_[t].for_each_param(prefix + "node_network." + std::to_string(t) + ".", f);
    }
    out_.for_each_param(prefix + "output.", f);
  }

  /// @brief Target number of edges per block of destination nodes (the cache-resident unit of edge work).
  static constexpr index_t block_edges = 256;
  /// @brief Most chunks of blocks whose weight-gradient partial sums are kept apart (fixed, thread-independent).
  static constexpr long max_chunks = 64;

 private:
  static two_layer_mlp<T> make(rng& gen, int in, int hidden, int out) {
    dense<T> a(gen, in, hidden);
    dense<T> b(gen, hidden, out);
    return {std::move(a), std::move(b)};
  }
  static std::vector<two_layer_mlp<T>> make_sets(rng& gen, const options& o, int in) {
    std::vector<two_layer_mlp<T>> v;
    const int sets = o.shared_weights ? 1 : std::max(1, o.iterations);
    for (int t = 0; t < sets; ++t) v.push_back(make(gen, in, o.hidden, o.hidden));
    return v;
  }
  static const options& checked(const options& o) {
    HEPGNN_CHECK(o.in > 0 && o.hidden > 0 && o.out > 0 && o.iterations >= 0 && o.edge_in >= 0,
                 "interaction_network: in, hidden and out must be positive and iterations, edge_in >= 0, got in = ",
                 o.in, ", hidden = ", o.hidden, ", out = ", o.out, ", iterations = ", o.iterations,
                 ", edge_in = ", o.edge_in);
    HEPGNN_CHECK(width_accepts(In, o.in) && width_accepts(Hidden, o.hidden), "interaction_network: runtime widths in = ",
                 o.in, ", hidden = ", o.hidden, " contradict the compile-time widths ", In, ", ", Hidden);
    HEPGNN_CHECK(!o.aggregations.empty(), "interaction_network: aggregations must not be empty");
    return o;
  }
  std::size_t set_of(int t) const { return o_.shared_weights ? 0 : static_cast<std::size_t>(t); }
  /// Columns of a (per aggregation kind) and s (with source aggregation): the node network's input after h.
  static int aggregated_width(const options& o) {
    return (static_cast<int>(o.aggregations.size()) + (o.source_aggregation ? 1 : 0)) * o.hidden;
  }
  static int thread_id() { return thread_index(); }
  static int max_threads() { return hepgnn::max_threads(); }

  /// Splits destination nodes into blocks of about block_edges edges and blocks into at most max_chunks chunks.
  static void partition(const graph& g, cache& c) {
    c.block_node.clear();
    c.block_node.push_back(0);
    c.max_block_edges = 0;
    index_t start = 0;
    for (index_t i = 0; i < g.num_nodes; ++i) {
      if (g.offsets[i + 1] - g.offsets[start] >= block_edges || i + 1 == g.num_nodes) {
        c.max_block_edges = std::max(c.max_block_edges, g.offsets[i + 1] - g.offsets[start]);
        c.block_node.push_back(i + 1);
        start = i + 1;
      }
    }
    const long nblocks = static_cast<long>(c.block_node.size()) - 1;
    const long nchunks = std::min(nblocks, max_chunks);
    c.chunk_block.resize(static_cast<std::size_t>(nchunks) + 1);
    for (long k = 0; k <= nchunks; ++k) c.chunk_block[k] = static_cast<index_t>(nchunks ? k * nblocks / nchunks : 0);
  }

  /// Calls fn(chunk, e0, e1, n0, n1, thread) for every block, chunks in parallel, blocks of a chunk in order.
  template <class Fn>
  static void for_chunks(cache& c, Fn&& fn, bool parallel) {
    const long nchunks = static_cast<long>(c.chunk_block.size()) - 1;
    const index_t* bn = c.block_node.data();
    const index_t* offs = c.off;
    // small graphs stay on one thread: a parallel region costs more than a few blocks of work
    const bool big = nchunks > 1 && offs[c.block_node.back()] >= 4096;
    parallel_for<loop_schedule::dynamic_single>(nchunks, parallel && big, [&](long k) {
      for (index_t b = c.chunk_block[k]; b < c.chunk_block[k + 1]; ++b) {
        const long n0 = bn[b], n1 = bn[b + 1];
        fn(k, long(offs[n0]), long(offs[n1]), n0, n1, thread_id());
      }
    });
  }

  void resize_parts(cache& c, long rows_a) {
    const long H = o_.hidden, nchunks = static_cast<long>(c.chunk_block.size()) - 1;
    c.part_a.resize(static_cast<std::size_t>(nchunks));
    c.part_b.resize(static_cast<std::size_t>(nchunks));
    c.part_ba.resize(static_cast<std::size_t>(nchunks));
    for (long k = 0; k < nchunks; ++k) {
      c.part_a[k].setZero(rows_a, H);
      c.part_b[k].setZero(H, H);
      c.part_ba[k].setZero(1, rows_a);
    }
    c.tg.resize(static_cast<std::size_t>(max_threads()));
    for (auto& m : c.tg) m.resize(std::max<index_t>(c.max_block_edges, 1), std::max<long>(H, o_.out));
    c.dpre.resize(c.e.empty() ? 0 : c.e[0].rows(), H);
  }
  template <class W>
  static void reduce_parts(cache& c, W&& wgrad, matrix<T>* bgrad, long rows_a) {
    for (std::size_t k = 0; k < c.part_a.size(); ++k) {
      wgrad += c.part_a[k].topRows(rows_a);
      if (bgrad) bgrad->row(0) += c.part_ba[k].leftCols(rows_a);
    }
  }
  template <class W>
  static void reduce_b(cache& c, W&& wgrad) {
    for (std::size_t k = 0; k < c.part_b.size(); ++k) wgrad += c.part_b[k];
  }
  /// grad += a^T b over the rows of a and b, summed per fixed chunk of rows and then in chunk order: Eigen's
  /// multi-threaded GEMM picks its depth blocking by thread count, which would change the rounding.
  template <class W, class A, class B>
  static void add_at_b(cache& c, W&& grad, const A& a, const B& b) {
    const long rows = a.rows();
    const long nchunks = std::clamp<long>(rows / 512, 1, max_chunks);
    c.part_n.resize(static_cast<std::size_t>(nchunks));
    // threaded whenever Eigen might thread the product (>= 2^16 multiply-adds): keeps it on one thread per chunk
    parallel_for(nchunks, rows * a.cols() * b.cols() >= parallel_limits::chunked_product_min_work, [&](long k) {
      const long r0 = k * rows / nchunks, r1 = (k + 1) * rows / nchunks;
      c.part_n[k].resize(a.cols(), b.cols());
      const auto ab = a.middleRows(r0, r1 - r0);
      const auto bb = b.middleRows(r0, r1 - r0);
      simd::block_mm(ab.cols(), bb.cols(), r1 - r0, ab.data(), 1, ab.outerStride(), bb.data(), bb.outerStride(),
                       c.part_n[k].data(), bb.cols(), false, false);
    });
    for (long k = 0; k < nchunks; ++k) grad += c.part_n[k];
  }
  /// s[j] = sum of d rows over edges leaving j (deterministic gather through the source index).
  static void source_sum(const graph& g, cache& c, const matrix<T>& d, matrix<T>& s, long H) {
    s.resize(g.num_nodes, H);
    source_sum(g, c, d, s.data(), H, H);
  }
  /// The same into H columns of rows of stride lds.
  static void source_sum(const graph& g, cache& c, const matrix<T>& d, T* s, long lds, long H) {
    const long n = g.num_nodes;
    parallel_for(n, n * H >= detail::parallel_min_work,
                 [&](long j) { source_sum_rows(c, d, s, lds, H, j, j + 1, n); });
  }
  /// source_sum() of the nodes [j0, j1) of a graph of n nodes (c.by_source built).
  static void source_sum_rows(const cache& c, const matrix<T>& d, T* s, long lds, long H, long j0, long j1, long n) {
    const index_t* so = c.by_source.offsets.data();
    const index_t* se = c.by_source.edges.data();
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

  /// Throws unless attr is E x edge_in, or null for a layer without edge features.
  void check_edge_attr(const matrix<T>* attr, long ne, const char* who) const {
    if (!attr) {
      HEPGNN_CHECK(o_.edge_in == 0, who, ": this layer was built with edge_in = ", o_.edge_in,
                   "; use the overload that takes edge_attr (", ne, " x ", o_.edge_in, ", one row per edge)");
      return;
    }
    HEPGNN_CHECK(attr->rows() == ne && attr->cols() == o_.edge_in, who, ": edge_attr must be E x edge_in = ", ne,
                 " x ", o_.edge_in, " (one row per edge, CSR order), got ", attr->rows(), " x ", attr->cols());
  }

  /// Forward (Train) or inference; attr (E x edge_in) is null for the overloads without edge features.
  template <bool Train>
  void run(const matrix<T>& x, const graph& g, const matrix<T>* attr, matrix<T>& y, cache& c,
           inference_precision precision = inference_precision::f32) {
    const char* who = Train ? "interaction_network::forward" : "interaction_network::infer";
    const bool bf16 = precision == inference_precision::bf16;
    HEPGNN_CHECK(!bf16 || (std::is_same_v<T, float>), who, ": bf16 precision needs a float network");
    check_graph_input(x, g, who);
    check_cols(x, o_.in, who);
    const long n = g.num_nodes, ne = g.num_edges(), H = o_.hidden, F = o_.in, A = o_.edge_in;
    check_edge_attr(attr, ne, who);
    const int T_ = o_.iterations, na = static_cast<int>(o_.aggregations.size());
    const index_t* off = g.offsets.data();
    const index_t* src = g.sources.data();
    c.off = g.offsets.data();
    partition(g, c);
    c.dst.resize(static_cast<std::size_t>(ne));
    for (long i = 0; i < n; ++i) std::fill(c.dst.begin() + off[i], c.dst.begin() + off[i + 1], index_t(i));
    if (Train || o_.source_aggregation) c.by_source.build(g);
    const int nthreads = max_threads();
    c.tz.resize(static_cast<std::size_t>(nthreads));
    for (int t = 0; t < nthreads; ++t) c.tz[t].resize(std::max<index_t>(c.max_block_edges, 1), H);
    // bf16 inference keeps e and the edge MLP's hidden layer in bf16 as well (rows of Hp entries), written by the
    // products that make them: the next product reads them without a conversion pass
    const long Hp = (H + 1) / 2 * 2;
    if (bf16) {
      c.eb.resize(static_cast<std::size_t>(ne * Hp));
      c.tzb.resize(static_cast<std::size_t>(nthreads));
      for (auto& b : c.tzb) b.resize(static_cast<std::size_t>(std::max<index_t>(c.max_block_edges, 1) * Hp));
    }
    std::uint16_t* const eb16 = bf16 ? c.eb.data() : nullptr;
    const std::size_t nh = Train ? T_ + 1 : 1, ni = Train ? std::max(T_, 0) : 1;
    c.h.resize(nh);
    c.e.resize(nh);
    c.zn.resize(ni);
    c.un.resize(ni);
    c.agg.resize(ni);
    if (Train) {
      c.z.resize(ni);
      c.m.resize(ni);
      c.argmax.resize(ni);
    }

    c.wt.resize(14);
    // node encoder
    c.wt[10] = node_enc_.first.weight().transpose();
    c.wt[11] = node_enc_.second.weight().transpose();
    node_linear(x, c.wt[10], node_enc_.first.bias().data(), true, c.zx);
    node_linear(c.zx, c.wt[11], node_enc_.second.bias().data(), true, c.h[0]);

    // edge encoder: first Linear split into x_src and x_dst parts (node level) and the edge_attr part (edge level)
    c.wt[12] = edge_enc_.first.weight().leftCols(F).transpose();
    c.wt[13] = edge_enc_.first.weight().middleCols(F, F).transpose();
    node_linear(x, c.wt[12], nullptr, false, c.ps);
    node_linear(x, c.wt[13], edge_enc_.first.bias().data(), false, c.pd);
    c.e[0].resize(ne, H);
    if (Train) c.zex.resize(ne, H);
    c.wt[0] = edge_enc_.second.weight().transpose();
    c.wt[3] = out_.first.weight().transpose();
    c.wt[9] = edge_enc_.first.weight().rightCols(A).transpose();
    c.wb.resize(bf16 ? 10 : 0);
    // the bf16 panel of c.wt[i] when running in bf16, else null (float products)
    const auto panel = [&](int i) -> const simd::bf16_panel* {
      if constexpr (std::is_same_v<T, float>) {
        if (bf16) {
          c.wb[i].pack(c.wt[i].rows(), c.wt[i].cols(), c.wt[i].data(), c.wt[i].cols());
          return &c.wb[i];
        }
      }
      return nullptr;
    };
    const simd::bf16_panel* wb0 = panel(0);
    const simd::bf16_panel* wb3 = panel(3);
    for_chunks(c, [&](long, long e0, long e1, long, long, int tid) {
      const long nb = e1 - e0;
      if (nb == 0) return;
      T* zp = Train ? c.zex.data() + e0 * H : c.tz[tid].data();
      Eigen::Map<matrix<T>> z(zp, nb, H);
      gather_pre(z, c, src, e0, nb, H, false, A == 0);
      if (A > 0)
        simd::block_mm(nb, H, A, attr->data() + e0 * A, A, 1, c.wt[9].data(), H, z.data(), H, true, true);
      edge_mm(nb, H, {z.data()}, c.wt[0], wb0, c.e[0].data() + e0 * H, false, true, edge_enc_.second.bias().data(),
              false, {bf16_rows(eb16, e0, Hp), Hp});
    }, true);

    // the node parts of the edge network's first layer for iteration t (src and dst thirds of its weight),
    // transposed; iteration 0's from the encoded nodes, later ones by the node phase of the iteration before
    const auto node_part_weights = [&](int t) {
      auto& en = edge_net_[set_of(t)];
      c.wt[4] = en.first.weight().leftCols(H).transpose();
      c.wt[5] = en.first.weight().middleCols(H, H).transpose();
    };
    node_part_weights(0);
    node_mm(c.h[0], c.wt[4], panel(4), c.ps, false, false);
    node_mm(c.h[0], c.wt[5], panel(5), c.pd, false, false, edge_net_[set_of(0)].first.bias().data());
    const long AW = aggregated_width(o_);
    for (int t = 0; t < T_; ++t) {
      auto& en = edge_net_[set_of(t)];
      auto& nn = node_net_[set_of(t)];
      const matrix<T>& h = Train ? c.h[t] : c.h[0];
      const matrix<T>& ein = Train ? c.e[t] : c.e[0];
      matrix<T>& eout = Train ? c.e[t + 1] : c.e[0];
      matrix<T>& agg = Train ? c.agg[t] : c.agg[0];
      c.wt[1] = en.first.weight().rightCols(H).transpose();
      c.wt[2] = en.second.weight().transpose();
      const simd::bf16_panel *wb1 = panel(1), *wb2 = panel(2);
      if (Train) {
        eout.resize(ne, H);
        c.z[t].resize(ne, H);
        c.m[t].resize(ne, H);
        c.argmax[t].resize(static_cast<std::size_t>(n * na * H));
      }
      agg.resize(n, AW);
      index_t* am = Train ? c.argmax[t].data() : nullptr;
      // the last iteration's node update would change only h, which no output reads: skipped, with its aggregation
      const bool node_update = t + 1 < T_;
      for_chunks(c, [&](long, long e0, long e1, long n0, long n1, int tid) {
        const long nb = e1 - e0;
        if (nb > 0) {
          Eigen::Map<matrix<T>> z(Train ? c.z[t].data() + e0 * H : c.tz[tid].data(), nb, H);
          // products are accumulated onto their initial terms (gathered node parts, biases): no zero-fill pass
          gather_pre(z, c, src, e0, nb, H, false, false);
          // bf16: relu(z) goes only to the next product, in bf16
          std::uint16_t* zb = bf16 ? c.tzb[tid].data() : nullptr;
          edge_mm(nb, H, {ein.data() + e0 * H, bf16_rows(eb16, e0, Hp)}, c.wt[1], wb1, z.data(), true, true, nullptr,
                  false, {zb, Hp, !bf16});
          if (Train) {  // keeps relu(m) for the backward
            Eigen::Map<matrix<T>> m(c.m[t].data() + e0 * H, nb, H);
            simd::block_mm(nb, H, H, z.data(), H, 1, c.wt[2].data(), H, m.data(), H, false, true,
                             en.second.bias().data());
            eout.middleRows(e0, nb) = ein.middleRows(e0, nb) + m;
          } else {  // e (in place) += relu(b2 + z W2^T) in the product's epilogue
            edge_mm(nb, H, {z.data(), zb}, c.wt[2], wb2, eout.data() + e0 * H, false, true, en.second.bias().data(),
                    true, {bf16_rows(eb16, e0, Hp), Hp});
          }
        }
        if (node_update) aggregate_nodes(eout, off, n0, n1, agg, am, H);
      }, true);
      if (!node_update) continue;  // c.h[T_] stays unset: the backward reads h only up to c.h[T_ - 1]

      // node phase, one parallel region over chunks of nodes (each chunk's rows stay in cache): the sums over each
      // node's leaving edges (after every edge block: they lie in other blocks), the node update, then the next
      // iteration's node parts of the edge network from the new h
      matrix<T>& zn = Train ? c.zn[t] : c.zn[0];
      matrix<T>& un = Train ? c.un[t] : c.un[0];
      matrix<T>& h_next = Train ? c.h[t + 1] : c.h[0];
      zn.resize(n, H);
      if (Train) un.resize(n, H), h_next.resize(n, H);
      c.wt[6] = nn.first.weight().leftCols(H).transpose();
      c.wt[7] = nn.first.weight().rightCols(AW).transpose();
      c.wt[8] = nn.second.weight().transpose();
      const simd::bf16_panel *wb6 = panel(6), *wb7 = panel(7), *wb8 = panel(8);
      node_part_weights(t + 1);
      const simd::bf16_panel *wb4 = panel(4), *wb5 = panel(5);
      const T* pd_bias = edge_net_[set_of(t + 1)].first.bias().data();
      const long nchunks = node_chunks(n);
      parallel_for(nchunks, n * H * AW >= parallel_limits::chunked_product_min_work, [&](long k) {
        const long r0 = chunk_start(k, nchunks, n), r1 = chunk_start(k + 1, nchunks, n), rows = r1 - r0;
        if (rows == 0) return;
        if (o_.source_aggregation) source_sum_rows(c, eout, agg.data() + na * H, AW, H, r0, r1, n);
        T* znr = zn.data() + r0 * H;
        mm(rows, H, H, h.data() + r0 * H, c.wt[6], wb6, znr, false, false, nn.first.bias().data());
        mm(rows, H, AW, agg.data() + r0 * AW, c.wt[7], wb7, znr, true, true);
        if (Train) {  // keeps relu(u) for the backward
          mm(rows, H, H, znr, c.wt[8], wb8, un.data() + r0 * H, false, true, nn.second.bias().data());
          h_next.middleRows(r0, rows) = h.middleRows(r0, rows) + un.middleRows(r0, rows);
        } else {  // h += relu(b + zn W^T) in the product's epilogue
          mm(rows, H, H, znr, c.wt[8], wb8, h_next.data() + r0 * H, false, true, nn.second.bias().data(), true);
        }
        mm(rows, H, H, h_next.data() + r0 * H, c.wt[4], wb4, c.ps.data() + r0 * H, false, false);
        mm(rows, H, H, h_next.data() + r0 * H, c.wt[5], wb5, c.pd.data() + r0 * H, false, false, pd_bias);
      });
    }

    // output head
    const matrix<T>& ef = Train ? c.e[T_] : c.e[0];
    y.resize(ne, o_.out);
    if (Train) c.zo.resize(ne, H);
    for_chunks(c, [&](long, long e0, long e1, long, long, int tid) {
      const long nb = e1 - e0;
      if (nb == 0) return;
      Eigen::Map<matrix<T>> z(Train ? c.zo.data() + e0 * H : c.tz[tid].data(), nb, H);
      edge_mm(nb, H, {ef.data() + e0 * H, bf16_rows(eb16, e0, Hp)}, c.wt[3], wb3, z.data(), false, true,
              out_.first.bias().data());
      auto yb = y.middleRows(e0, nb);
      yb.rowwise() = out_.second.bias().row(0);
      yb.noalias() += z * out_.second.weight().transpose();
    }, true);
  }

  /// Backward of run(); attr is null for the overloads without edge features.
  void backward_impl(const matrix<T>& x, const graph& g, const matrix<T>* attr, const matrix<T>& dy, cache& c,
                     matrix<T>* dx, matrix<T>* dattr) {
    const long n = g.num_nodes, ne = g.num_edges(), H = o_.hidden;
    const int T_ = o_.iterations;
    HEPGNN_CHECK(static_cast<long>(c.e.size()) == T_ + 1 && c.e[0].rows() == ne && c.h[0].rows() == n &&
                     x.rows() == n,
                 "interaction_network::backward: call forward with this graph (", n, " nodes, ", ne,
                 " edges) first");
    check_shape(dy, ne, o_.out, "interaction_network::backward: output gradient dy");
    check_edge_attr(attr, ne, "interaction_network::backward");
    const index_t* off = g.offsets.data();
    HEPGNN_CHECK(c.block_node.size() >= 1 && c.block_node.back() == n && c.dst.size() == static_cast<std::size_t>(ne),
                 "interaction_network::backward: the cache was filled for another graph");
    c.off = off;
    resize_parts(c, std::max<long>(o_.out, H));

    // ---- output head: y = relu(e W1^T + b1) W2^T + b2
    c.de.resize(ne, H);
    for_chunks(c, [&](long k, long e0, long e1, long, long, int) {
      const long nb = e1 - e0;
      if (nb == 0) return;
      auto dyb = dy.middleRows(e0, nb);
      auto zo = c.zo.middleRows(e0, nb);
      const long O = o_.out;
      simd::block_mm(O, H, nb, dyb.data(), 1, O, zo.data(), H, c.part_a[k].data(), H, true, false);
      add_column_sums(dyb, c.part_ba[k].leftCols(O));
      auto dz = c.dpre.middleRows(e0, nb);
      simd::block_mm(nb, H, O, dyb.data(), O, 1, out_.second.weight().data(), H, dz.data(), H, false, false);
      dz = (zo.array() > T(0)).select(dz, T(0));
      simd::block_mm(H, H, nb, dz.data(), 1, H, c.e[T_].data() + e0 * H, H, c.part_b[k].data(), H, true, false);
      simd::block_mm(nb, H, H, dz.data(), H, 1, out_.first.weight().data(), H, c.de.data() + e0 * H, H, false,
                       false);
    }, true);
    reduce_parts(c, out_.second.weight_grad(), &out_.second.bias_grad(), o_.out);
    reduce_b(c, out_.first.weight_grad());
    add_column_sums(c.dpre, out_.first.bias_grad().row(0));

    c.dh.setZero(n, H);
    const int na = static_cast<int>(o_.aggregations.size());
    const long AW = aggregated_width(o_);
    const index_t* src = g.sources.data();
    for (int t = T_ - 1; t >= 0; --t) {
      auto& nn = node_net_[set_of(t)];
      auto& en = edge_net_[set_of(t)];
      // ---- node update: h' = h + relu(relu([h, a] Wn1^T + b) Wn2^T + b); none in the last iteration (see run)
      const bool node_update = t + 1 < T_;
      if (node_update) {
        c.du = (c.un[t].array() > T(0)).select(c.dh, T(0));
        add_at_b(c, nn.second.weight_grad(), c.du, c.zn[t]);
        add_column_sums(c.du, nn.second.bias_grad().row(0));
        c.dzn.noalias() = c.du * nn.second.weight();
        c.dzn = (c.zn[t].array() > T(0)).select(c.dzn, T(0));
        add_at_b(c, nn.first.weight_grad().leftCols(H), c.dzn, c.h[t]);
        add_at_b(c, nn.first.weight_grad().rightCols(AW), c.dzn, c.agg[t]);
        add_column_sums(c.dzn, nn.first.bias_grad().row(0));
        c.dh.noalias() += c.dzn * nn.first.weight().leftCols(H);
        c.dnin.noalias() = c.dzn * nn.first.weight().rightCols(AW);  // dL/d[a, s] (N x AW)
      }

      // ---- edge update, per block: g = dL/de' (incl. aggregation), e' = e + relu(relu(pre) W2^T + b2)
      resize_parts(c, H);
      c.sdst.resize(n, H);
      for_chunks(c, [&](long k, long e0, long e1, long n0, long n1, int) {
        const long nb = e1 - e0;
        // aggregation backward into de rows
        for (long i = n0; node_update && i < n1; ++i) {
          const index_t b = off[i], en_ = off[i + 1];
          if (b == en_) continue;
          for (int a = 0; a < na; ++a) {
            const T* da = c.dnin.data() + i * AW + a * H;
            const auto kind = o_.aggregations[a];
            const index_t* am = kind == aggregation::max ? c.argmax[t].data() + (i * na + a) * H : nullptr;
            simd::reduce_segment_backward<simd::gradient_mode::add>(b, en_, H, kind, da, am,
                                                                    [&](index_t e) { return c.de.data() + long(e) * H; });
          }
        }
        // s = sum of leaving edges: each edge gets dL/ds of its source
        for (long e = e0; node_update && o_.source_aggregation && e < e1; ++e)
          detail::row_add(c.de.data() + e * H, c.dnin.data() + long(src[e]) * AW + na * H, H);
        if (nb > 0) {
          auto gb = c.de.middleRows(e0, nb);
          auto mb = c.m[t].middleRows(e0, nb);
          auto zb = c.z[t].middleRows(e0, nb);
          auto dp = c.dpre.middleRows(e0, nb);
          // dM into dp temporarily, then dZ
          auto& tg = c.tg[thread_id()];
          auto dm = tg.topRows(nb);
          dm = (mb.array() > T(0)).select(gb, T(0));
          const long ldm = tg.cols();
          simd::block_mm(H, H, nb, dm.data(), 1, ldm, zb.data(), H, c.part_a[k].data(), H, true, false);
          add_column_sums(dm, c.part_ba[k]);
          simd::block_mm(nb, H, H, dm.data(), ldm, 1, en.second.weight().data(), H, dp.data(), H, false, false);
          dp = (zb.array() > T(0)).select(dp, T(0));
          simd::block_mm(H, H, nb, dp.data(), 1, H, c.e[t].data() + e0 * H, H, c.part_b[k].data(), H, true, false);
          simd::block_mm(nb, H, H, dp.data(), H, 1, en.first.weight().data() + 2 * H, 3 * H, gb.data(), H, true,
                           false);
        }
        for (long i = n0; i < n1; ++i) {
          T* s = c.sdst.data() + i * H;
          std::fill(s, s + H, T(0));
          for (index_t e = off[i]; e < off[i + 1]; ++e) detail::row_add(s, c.dpre.data() + long(e) * H, H);
        }
      }, true);
      reduce_parts(c, en.second.weight_grad(), &en.second.bias_grad(), H);
      reduce_b(c, en.first.weight_grad().rightCols(H));
      source_sum(g, c, c.dpre, c.ssrc, H);
      add_at_b(c, en.first.weight_grad().leftCols(H), c.ssrc, c.h[t]);
      add_at_b(c, en.first.weight_grad().middleCols(H, H), c.sdst, c.h[t]);
      add_column_sums(c.sdst, en.first.bias_grad().row(0));
      c.dh.noalias() += c.ssrc * en.first.weight().leftCols(H);
      c.dh.noalias() += c.sdst * en.first.weight().middleCols(H, H);
    }

    // ---- edge encoder: e0 = relu(relu(Pa[src] + Pb[dst]) W2^T + b2)
    const long F = o_.in;
    resize_parts(c, H);
    c.sdst.resize(n, H);
    for_chunks(c, [&](long k, long e0, long e1, long n0, long n1, int) {
      const long nb = e1 - e0;
      if (nb > 0) {
        auto gb = c.de.middleRows(e0, nb);
        auto dp = c.dpre.middleRows(e0, nb);
        auto zb = c.zex.middleRows(e0, nb);
        auto& tg = c.tg[thread_id()];
        auto dm = tg.topRows(nb);
        dm = (c.e[0].middleRows(e0, nb).array() > T(0)).select(gb, T(0));
        const long ldm = tg.cols();
        simd::block_mm(H, H, nb, dm.data(), 1, ldm, zb.data(), H, c.part_a[k].data(), H, true, false);
        add_column_sums(dm, c.part_ba[k]);
        simd::block_mm(nb, H, H, dm.data(), ldm, 1, edge_enc_.second.weight().data(), H, dp.data(), H, false, false);
        dp = (zb.array() > T(0)).select(dp, T(0));
      }
      for (long i = n0; i < n1; ++i) {
        T* s = c.sdst.data() + i * H;
        std::fill(s, s + H, T(0));
        for (index_t e = off[i]; e < off[i + 1]; ++e) detail::row_add(s, c.dpre.data() + long(e) * H, H);
      }
    }, true);
    reduce_parts(c, edge_enc_.second.weight_grad(), &edge_enc_.second.bias_grad(), H);
    source_sum(g, c, c.dpre, c.ssrc, H);
    add_at_b(c, edge_enc_.first.weight_grad().leftCols(F), c.ssrc, x);
    add_at_b(c, edge_enc_.first.weight_grad().middleCols(F, F), c.sdst, x);
    add_column_sums(c.sdst, edge_enc_.first.bias_grad().row(0));
    const long A = o_.edge_in;
    if (A > 0) add_at_b(c, edge_enc_.first.weight_grad().rightCols(A), c.dpre, *attr);
    if (dattr) {
      dattr->resize(ne, A);
      dattr->noalias() = c.dpre * edge_enc_.first.weight().rightCols(A);
    }

    // ---- node encoder: h0 = relu(relu(x W1^T + b1) W2^T + b2)
    c.du = (c.h[0].array() > T(0)).select(c.dh, T(0));
    add_at_b(c, node_enc_.second.weight_grad(), c.du, c.zx);
    add_column_sums(c.du, node_enc_.second.bias_grad().row(0));
    c.dzn.noalias() = c.du * node_enc_.second.weight();
    c.dzn = (c.zx.array() > T(0)).select(c.dzn, T(0));
    add_at_b(c, node_enc_.first.weight_grad(), c.dzn, x);
    add_column_sums(c.dzn, node_enc_.first.bias_grad().row(0));
    if (dx) {
      dx->resize(n, F);
      dx->noalias() = c.dzn * node_enc_.first.weight();
      dx->noalias() += c.ssrc * edge_enc_.first.weight().leftCols(F);
      dx->noalias() += c.sdst * edge_enc_.first.weight().middleCols(F, F);
    }
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

  /// Chunks of the node-level products over `rows` nodes (about 256 rows each, fixed by the row count alone).
  static long node_chunks(long rows) { return std::clamp<long>(rows / 256, 1, 256); }
  /// First row of chunk k of n over `rows` rows: a multiple of 120, which every register tile's height divides
  /// (12, 10, 8 or 6 rows), so only the last chunk ends in the slower tiles of a few rows (with chunks of any length
  /// they took a sixth of the node products' time). Each row's sums do not depend on the split.
  static long chunk_start(long k, long n, long rows) {
    constexpr long quantum = 120;
    return k == n ? rows : k * (rows / quantum) / n * quantum;
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

  /// z[r] = ps[src] + pd[dst] (pd holds the bias), optionally followed by ReLU.
  template <class Z>
  static void gather_pre(Z& z, const cache& c, const index_t* src, long e0, long nb, long H, bool, bool relu) {
    for (long r = 0; r < nb; ++r) {
      T* __restrict zr = z.data() + r * H;
      const T* __restrict a = c.ps.data() + long(src[e0 + r]) * H;
      const T* __restrict b = c.pd.data() + long(c.dst[e0 + r]) * H;
      if (relu)
        for (long f = 0; f < H; ++f) zr[f] = std::max(a[f] + b[f], T(0));
      else
        for (long f = 0; f < H; ++f) zr[f] = a[f] + b[f];
    }
  }

  /// agg rows [n0, n1) from the edge rows of those nodes, one H-wide block per aggregation.
  void aggregate_nodes(const matrix<T>& e, const index_t* off, long n0, long n1, matrix<T>& agg, index_t* am,
                       long H) const {
    const int na = static_cast<int>(o_.aggregations.size());
    for (long i = n0; i < n1; ++i) {
      const index_t b = off[i], en = off[i + 1];
      for (int a = 0; a < na; ++a) {
        T* y = agg.data() + i * agg.cols() + a * H;
        const auto kind = o_.aggregations[a];
        index_t* arg = am ? am + (i * na + a) * H : nullptr;
        simd::reduce_segment(b, en, H, [&](index_t q) { return e.data() + long(q) * H; }, kind, y, arg);
      }
    }
  }

  options o_;
  two_layer_mlp<T> node_enc_, edge_enc_;
  std::vector<two_layer_mlp<T>> edge_net_, node_net_;
  two_layer_mlp<T> out_;
};

}  // namespace hepgnn
