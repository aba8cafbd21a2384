#pragma once
/// @file interaction_network.hpp
/// @brief hepgnn::interaction_network: the Exa.TrkX interaction-network edge classifier (node and edge
/// encoders, residual edge/node updates, edge output head), with an explicit backward pass
/// (interaction_network_backward.hpp).
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
/// Speed (DESIGN.md section 5): the blocked edge network of interaction_network_blocks.hpp. The first Linear of
/// MLP_e and MLP_ex is split by input block (interaction_products), so the h_src and h_dst (x_src and x_dst) parts
/// are node-level GEMMs gathered per edge and only the e (attr_e) part is an edge-level GEMM; edge work runs over
/// cache-resident blocks of consecutive destination nodes.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/element.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/interaction_network_blocks.hpp"
#include "hepgnn/nn/interaction_network_weights.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "hepgnn/simd/gemm_bf16.hpp"

namespace hepgnn {

/// @brief Interaction-network edge classifier (see the file comment for the equations).
/// @tparam In     node feature width, or dynamic
/// @tparam Hidden hidden width of nodes, edges and every MLP, or dynamic
/// Parameters: node_encoder.{0,2}, edge_encoder.{0,2}, edge_network.{0,2}, node_network.{0,2}, output.{0,2}
/// (.weight/.bias); without shared weights edge_network.<t>.{0,2} and node_network.<t>.{0,2}. edge_encoder.0.weight
/// is hidden x (2 in + edge_in), columns [x_src, x_dst, attr_e] as in torch.nn.Linear(2 * in + edge_in, hidden).
/// Output: y is E x out (one row per edge, CSR order), not N x out.
/// As a chain element (nn/element.hpp) it is an edge_feature_layer with edge rows out: it reads node rows, the
/// current graph and, when the context holds them, its edge_attr; the elements after it get edge rows.
template <class T, int In = dynamic, int Hidden = dynamic>
class interaction_network {
 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = dynamic;
  static constexpr rows_of output_rows = rows_of::edges;  ///< one row per edge of the graph, CSR order

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

  /// @brief Training cache (also used by infer, after which backward needs a new training forward).
  struct cache {
    /// Operand precision of the infer() calls that name none (a chain's calls): the caller's choice per cache.
    inference_precision precision = inference_precision::f32;
    // graph-derived
    std::vector<index_t> dst;  // destination of each edge
    edge_blocks blocks;
    source_index by_source;
    // node level, per iteration
    std::vector<matrix<T>> h, zn, un, agg;  // h: iterations + 1
    std::vector<std::vector<index_t>> argmax;
    matrix<T> zx, ps, pd;
    // edge level
    std::vector<matrix<T>> e, z, m;  // e: iterations + 1
    matrix<T> zex, zo;
    interaction_products<T> w;       // transposed weight blocks of the products (and their bf16 panels)
    std::vector<std::uint16_t> eb;   // bf16 inference: e rounded to bf16, the edge products' A (no conversions)
    // backward
    matrix<T> de, dpre, dh, du, dzn, ssrc, sdst, dnin;
    chunk_gradients<T> parts;
    std::uint64_t forward_key = 0;  // fingerprint of the training forward's x, graph and edge features (0 after infer)
    // per-thread scratch
    std::vector<matrix<T>> tz, tg;
    std::vector<std::vector<std::uint16_t>> tzb;  // bf16 inference: the edge MLP's hidden activations
  };

  /// @brief Builds the layers (PyTorch default initialisation from gen) in the order node encoder, edge
  /// encoder, edge network(s), node network(s), output head.
  interaction_network(rng& gen, const options& o)
      : o_(checked(o)),
        w_(gen, o.in, o.edge_in, o.hidden, o.hidden + aggregated_width(o), o.out, o.iterations, o.shared_weights) {}

  const options& config() const { return o_; }
  /// @brief Node encoder layer i (0: first Linear, 1: second).
  dense<T>& node_encoder(int i) { return layer(w_.node_encoder, i); }
  dense<T>& edge_encoder(int i) { return layer(w_.edge_encoder, i); }
  /// @brief Edge network of iteration t (any t when shared), layer i.
  dense<T>& edge_network(int t, int i) { return layer(w_.edge_network(t), i); }
  dense<T>& node_network(int t, int i) { return layer(w_.node_network(t), i); }
  dense<T>& output(int i) { return layer(w_.output, i); }

  /// @brief Training forward: y = edge logits (E x out) in CSR edge order. Only for edge_in == 0.
  void forward(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) { run<true>(x, g, nullptr, y, c); }
  /// @brief Training forward with edge input features edge_attr (E x edge_in, CSR edge order).
  void forward(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, matrix<T>& y, cache& c) {
    run<true>(x, g, &edge_attr, y, c);
  }
  /// @brief Inference in the cache's precision (c.precision); no heap allocation once `c` and `y` have been used
  /// with the same graph sizes. Only for edge_in == 0.
  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) const { infer(x, g, y, c, c.precision); }
  /// @brief Inference with operand precision p. With inference_precision::bf16 (float networks) the products of
  /// hidden width take bf16 operands: about 1.7x their float rate on CPUs with AVX-512 BF16, logits within ~1e-2
  /// of float's (tests/nn/test_interaction_network).
  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c, inference_precision p) const {
    run<false>(x, g, nullptr, y, c, p);
  }
  /// @brief Inference with edge input features edge_attr (E x edge_in, CSR edge order), in the cache's precision.
  void infer(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, matrix<T>& y, cache& c) const {
    infer(x, g, edge_attr, y, c, c.precision);
  }
  void infer(const matrix<T>& x, const graph& g, const matrix<T>& edge_attr, matrix<T>& y, cache& c,
             inference_precision p) const {
    run<false>(x, g, &edge_attr, y, c, p);
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
    w_.for_each_param(prefix, f);
  }

  /// @brief Target number of edges per block of destination nodes (the cache-resident unit of edge work).
  static constexpr index_t block_edges = edge_blocks::block_edges;
  /// @brief Most chunks of blocks whose weight-gradient partial sums are kept apart (fixed, thread-independent).
  static constexpr long max_chunks = edge_blocks::max_chunks;

 private:
  using products = blocked_products<T>;

  static dense<T>& layer(two_layer_mlp<T>& m, int i) { return i == 0 ? m.first : m.second; }
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
  /// Columns of a (per aggregation kind) and s (with source aggregation): the node network's input after h.
  static int aggregated_width(const options& o) {
    return (static_cast<int>(o.aggregations.size()) + (o.source_aggregation ? 1 : 0)) * o.hidden;
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

  /// Forward (Train) or inference; attr (E x edge_in) is null for the overloads without edge features. Writes
  /// only the cache and y.
  template <bool Train>
  void run(const matrix<T>& x, const graph& g, const matrix<T>* attr, matrix<T>& y, cache& c,
           inference_precision precision = inference_precision::f32) const {
    const char* who = Train ? "interaction_network::forward" : "interaction_network::infer";
    const bool bf16 = precision == inference_precision::bf16;
    HEPGNN_CHECK(!bf16 || (std::is_same_v<T, float>), who, ": bf16 precision needs a float network");
    check_graph_input(x, g, who);
    check_cols(x, o_.in, who);
    const long n = g.num_nodes, ne = g.num_edges(), H = o_.hidden, F = o_.in, A = o_.edge_in;
    check_edge_attr(attr, ne, who);
    // infer reuses the training buffers: a backward after it needs a new training forward
    c.forward_key = Train ? training_key(x, fingerprint(g), attr) : 0;
    const int T_ = o_.iterations, na = static_cast<int>(o_.aggregations.size());
    const index_t* off = g.offsets.data();
    const index_t* src = g.sources.data();
    c.blocks.build(g);
    c.dst.resize(static_cast<std::size_t>(ne));
    for (long i = 0; i < n; ++i) std::fill(c.dst.begin() + off[i], c.dst.begin() + off[i + 1], index_t(i));
    if (Train || o_.source_aggregation) c.by_source.build(g);
    const int nthreads = max_threads();
    const index_t block_rows = std::max<index_t>(c.blocks.max_block_edges, 1);
    c.tz.resize(static_cast<std::size_t>(nthreads));
    for (int t = 0; t < nthreads; ++t) c.tz[t].resize(block_rows, H);
    // bf16 inference keeps e and the edge MLP's hidden layer in bf16 as well (rows of Hp entries), written by the
    // products that make them: the next product reads them without a conversion pass
    const long Hp = (H + 1) / 2 * 2;
    if (bf16) {
      c.eb.resize(static_cast<std::size_t>(ne * Hp));
      c.tzb.resize(static_cast<std::size_t>(nthreads));
      for (auto& b : c.tzb) b.resize(static_cast<std::size_t>(block_rows * Hp));
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
    auto& w = c.w;

    // node encoder
    const auto& node_enc = w_.node_encoder;
    w.node_enc_first.set(node_enc.first.weight());
    w.node_enc_second.set(node_enc.second.weight());
    products::node_linear(x, w.node_enc_first.t, node_enc.first.bias().data(), true, c.zx);
    products::node_linear(c.zx, w.node_enc_second.t, node_enc.second.bias().data(), true, c.h[0]);

    // edge encoder: first Linear split into x_src and x_dst parts (node level) and the edge_attr part (edge level)
    const auto& edge_enc = w_.edge_encoder;
    w.edge_enc_src.set(edge_enc.first.weight().leftCols(F));
    w.edge_enc_dst.set(edge_enc.first.weight().middleCols(F, F));
    products::node_linear(x, w.edge_enc_src.t, nullptr, false, c.ps);
    products::node_linear(x, w.edge_enc_dst.t, edge_enc.first.bias().data(), false, c.pd);
    c.e[0].resize(ne, H);
    if (Train) c.zex.resize(ne, H);
    w.edge_enc_attr.set(edge_enc.first.weight().rightCols(A));
    const simd::bf16_panel* wb_enc = w.edge_enc_second.set(edge_enc.second.weight(), bf16);
    const simd::bf16_panel* wb_head = w.head_first.set(w_.output.first.weight(), bf16);
    c.blocks.for_each([&](long, long e0, long e1, long, long, int tid) {
      const long nb = e1 - e0;
      if (nb == 0) return;
      T* zp = Train ? c.zex.data() + e0 * H : c.tz[tid].data();
      Eigen::Map<matrix<T>> z(zp, nb, H);
      products::gather_pre(z, c.ps, c.pd, src, c.dst.data(), e0, nb, H, A == 0);
      if (A > 0)
        simd::block_mm(nb, H, A, attr->data() + e0 * A, A, 1, w.edge_enc_attr.t.data(), H, z.data(), H, true, true);
      products::edge_mm(nb, H, {z.data()}, w.edge_enc_second.t, wb_enc, c.e[0].data() + e0 * H, false, true,
                        edge_enc.second.bias().data(), false, {products::bf16_rows(eb16, e0, Hp), Hp});
    });

    // the node parts of the edge network's first layer for iteration t (src and dst thirds of its weight),
    // transposed; iteration 0's from the encoded nodes, later ones by the node phase of the iteration before
    const auto node_part_weights = [&](int t) {
      const auto& first = w_.edge_network(t).first.weight();
      return std::pair{w.edge_src.set(first.leftCols(H), bf16), w.edge_dst.set(first.middleCols(H, H), bf16)};
    };
    {
      const auto wb = node_part_weights(0);
      products::node_mm(c.h[0], w.edge_src.t, wb.first, c.ps, false, false);
      products::node_mm(c.h[0], w.edge_dst.t, wb.second, c.pd, false, false, w_.edge_network(0).first.bias().data());
    }
    const long AW = aggregated_width(o_);
    for (int t = 0; t < T_; ++t) {
      const auto& en = w_.edge_network(t);
      const auto& nn = w_.node_network(t);
      const matrix<T>& h = Train ? c.h[t] : c.h[0];
      const matrix<T>& ein = Train ? c.e[t] : c.e[0];
      matrix<T>& eout = Train ? c.e[t + 1] : c.e[0];
      matrix<T>& agg = Train ? c.agg[t] : c.agg[0];
      const simd::bf16_panel* wb_e = w.edge_e.set(en.first.weight().rightCols(H), bf16);
      const simd::bf16_panel* wb_second = w.edge_second.set(en.second.weight(), bf16);
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
      c.blocks.for_each([&](long, long e0, long e1, long n0, long n1, int tid) {
        const long nb = e1 - e0;
        if (nb > 0) {
          Eigen::Map<matrix<T>> z(Train ? c.z[t].data() + e0 * H : c.tz[tid].data(), nb, H);
          // products are accumulated onto their initial terms (gathered node parts, biases): no zero-fill pass
          products::gather_pre(z, c.ps, c.pd, src, c.dst.data(), e0, nb, H, false);
          // bf16: relu(z) goes only to the next product, in bf16
          std::uint16_t* zb = bf16 ? c.tzb[tid].data() : nullptr;
          products::edge_mm(nb, H, {ein.data() + e0 * H, products::bf16_rows(eb16, e0, Hp)}, w.edge_e.t, wb_e,
                            z.data(), true, true, nullptr, false, {zb, Hp, !bf16});
          if (Train) {  // keeps relu(m) for the backward
            Eigen::Map<matrix<T>> m(c.m[t].data() + e0 * H, nb, H);
            simd::block_mm(nb, H, H, z.data(), H, 1, w.edge_second.t.data(), H, m.data(), H, false, true,
                           en.second.bias().data());
            eout.middleRows(e0, nb) = ein.middleRows(e0, nb) + m;
          } else {  // e (in place) += relu(b2 + z W2^T) in the product's epilogue
            products::edge_mm(nb, H, {z.data(), zb}, w.edge_second.t, wb_second, eout.data() + e0 * H, false, true,
                              en.second.bias().data(), true, {products::bf16_rows(eb16, e0, Hp), Hp});
          }
        }
        if (node_update) aggregate_nodes(eout, off, n0, n1, agg, am, H);
      });
      if (!node_update) continue;  // c.h[T_] stays unset: the backward reads h only up to c.h[T_ - 1]

      // node phase, one parallel region over chunks of nodes (each chunk's rows stay in cache): the sums over each
      // node's leaving edges (after every edge block: they lie in other blocks), the node update, then the next
      // iteration's node parts of the edge network from the new h
      matrix<T>& zn = Train ? c.zn[t] : c.zn[0];
      matrix<T>& un = Train ? c.un[t] : c.un[0];
      matrix<T>& h_next = Train ? c.h[t + 1] : c.h[0];
      zn.resize(n, H);
      if (Train) un.resize(n, H), h_next.resize(n, H);
      const simd::bf16_panel* wb_h = w.node_h.set(nn.first.weight().leftCols(H), bf16);
      const simd::bf16_panel* wb_agg = w.node_agg.set(nn.first.weight().rightCols(AW), bf16);
      const simd::bf16_panel* wb_node = w.node_second.set(nn.second.weight(), bf16);
      const auto wb_next = node_part_weights(t + 1);
      const simd::bf16_panel *wb_src = wb_next.first, *wb_dst = wb_next.second;
      const T* pd_bias = w_.edge_network(t + 1).first.bias().data();
      const long nchunks = products::node_chunks(n);
      parallel_for(nchunks, n * H * AW >= parallel_limits::chunked_product_min_work, [&](long k) {
        const long r0 = products::chunk_start(k, nchunks, n), r1 = products::chunk_start(k + 1, nchunks, n);
        const long rows = r1 - r0;
        if (rows == 0) return;
        if (o_.source_aggregation) products::source_sum_rows(c.by_source, eout, agg.data() + na * H, AW, H, r0, r1, n);
        T* znr = zn.data() + r0 * H;
        products::mm(rows, H, H, h.data() + r0 * H, w.node_h.t, wb_h, znr, false, false, nn.first.bias().data());
        products::mm(rows, H, AW, agg.data() + r0 * AW, w.node_agg.t, wb_agg, znr, true, true);
        if (Train) {  // keeps relu(u) for the backward
          products::mm(rows, H, H, znr, w.node_second.t, wb_node, un.data() + r0 * H, false, true,
                       nn.second.bias().data());
          h_next.middleRows(r0, rows) = h.middleRows(r0, rows) + un.middleRows(r0, rows);
        } else {  // h += relu(b + zn W^T) in the product's epilogue
          products::mm(rows, H, H, znr, w.node_second.t, wb_node, h_next.data() + r0 * H, false, true,
                       nn.second.bias().data(), true);
        }
        products::mm(rows, H, H, h_next.data() + r0 * H, w.edge_src.t, wb_src, c.ps.data() + r0 * H, false, false);
        products::mm(rows, H, H, h_next.data() + r0 * H, w.edge_dst.t, wb_dst, c.pd.data() + r0 * H, false, false,
                     pd_bias);
      });
    }

    // output head
    const auto& head = w_.output;
    const matrix<T>& ef = Train ? c.e[T_] : c.e[0];
    y.resize(ne, o_.out);
    if (Train) c.zo.resize(ne, H);
    c.blocks.for_each([&](long, long e0, long e1, long, long, int tid) {
      const long nb = e1 - e0;
      if (nb == 0) return;
      Eigen::Map<matrix<T>> z(Train ? c.zo.data() + e0 * H : c.tz[tid].data(), nb, H);
      products::edge_mm(nb, H, {ef.data() + e0 * H, products::bf16_rows(eb16, e0, Hp)}, w.head_first.t, wb_head,
                        z.data(), false, true, head.first.bias().data());
      auto yb = y.middleRows(e0, nb);
      yb.rowwise() = head.second.bias().row(0);
      yb.noalias() += z * head.second.weight().transpose();
    });
  }

  static std::uint64_t training_key(const matrix<T>& x, std::uint64_t graph_key, const matrix<T>* attr) {
    return fingerprint(x) ^ mix64(graph_key) ^ (attr ? mix64(fingerprint(*attr) + 1) : 0);
  }

  /// Backward of run() (interaction_network_backward.hpp); attr is null for the overloads without edge features.
  void backward_impl(const matrix<T>& x, const graph& g, const matrix<T>* attr, const matrix<T>& dy, cache& c,
                     matrix<T>* dx, matrix<T>* dattr);

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
  interaction_weights<T> w_;
};

}  // namespace hepgnn

#include "hepgnn/nn/interaction_network_backward.hpp"
