#pragma once
/// @file interaction_network.hpp
/// @brief hepgnn::quant::fixed_interaction_network: bit-accurate fixed-point inference of an interaction-network
/// jet tagger (JEDI-net as hls4ml-style firmware runs it), on raw integers, with a format for every stage.
///
/// Per graph of a batch (a jet; the example passes graph/fully_connected.hpp's graph without self loops, JEDI-net's
/// N (N - 1) ordered pairs; any CSR graph whose edges stay inside their graphs is accepted):
///   m_e   = f_R([x_dst(e), x_src(e)])               edge network on [receiver, sender], once per edge
///   a_i   = SUM_{e: dst(e) = i} m_e                 aggregation (sum_precision `aggregate`), CSR order
///   o_i   = f_O([x_i, a_i])                         node network
///   p_g   = SUM_{i in graph g} o_i                  pooling (sum_precision `pool`), node order
///   y_g   = classifier(p_g)
/// f_R, f_O and the classifier are chains of fixed_stage: [per-column input cast] -> quantized_dense (hls4ml's
/// nnet_dense_latency rule, dense.hpp) -> [relu_raw into relu_result].
///
/// Format rules (each a cast as ap_fixed assigns: Q and O of the destination):
/// - Input columns of a stage: with an input_quantizer, value -> (column's format) -> dense input format (HGQ's
///   per-feature activation quantizer; AP_RND/AP_SAT formats reproduce hgq_activation); without one, value ->
///   dense input format (hls4ml's concatenate/cast into the next layer's input type; no-op when equal). The
///   columns of [x_dst, x_src] and [x_i, a_i] come from their own formats (input, aggregate.result).
/// - Sums (aggregate, pool): acc = 0 in `accum`; acc += (accum_t) term for each term in order, every sum
///   overflow-handled by accum's O; out = (result_t) acc. Mean is not provided (a fixed-point mean needs 1/n).
/// Kernels (integer_kernels.hpp, one thread): dense_accumulate_rows over blocks of about 256 rows (edges of whole
/// destination nodes, nodes, graphs) held feature-major, so the rows are the int64 vector lanes and the short
/// feature loops are outside (int32 lanes, dense_accumulate_rows_trn_wrap32, for AP_TRN/AP_WRAP accumulators whose
/// products fit); the sums with segment_sum_accumulate.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/quant/dense.hpp"

namespace hepgnn::quant {

/// @brief Formats of a fixed-point sum: the accumulator (every addition) and the result it is cast to.
struct sum_precision {
  fixed_spec accum{};
  fixed_spec result{};
};

/// @brief One stage of a fixed-point MLP: optional per-column input formats, a dense layer, an optional ReLU.
struct fixed_stage {
  quantized_dense dense;
  bool relu = true;
  fixed_spec relu_result{};                 ///< format of the ReLU output (when relu)
  std::vector<fixed_spec> input_quantizer;  ///< empty, or one format per input column (see the file comment)

  fixed_spec output() const { return relu ? relu_result : dense.precision().result; }
};

/// @brief The stages and formats of a fixed-point interaction network (file comment).
struct fixed_interaction_parts {
  fixed_spec input{};                    ///< node features x
  std::vector<fixed_stage> edge;         ///< f_R: 2 P inputs [x_dst, x_src]
  sum_precision aggregate{};             ///< sum of f_R's outputs over each node's incoming edges
  std::vector<fixed_stage> node;         ///< f_O: P + (f_R's outputs) inputs [x_i, a_i]
  sum_precision pool{};                  ///< sum of f_O's outputs over each graph's nodes
  std::vector<fixed_stage> classifier;   ///< on the pooled rows
};

class fixed_interaction_network {
 public:
  /// @brief Reusable buffers of forward_raw (no allocation once sizes repeat).
  struct workspace {
    std::vector<std::int32_t> xr, xs, agg, o, pooled, u, v;  // u, v: feature-major blocks
    std::vector<std::int64_t> acc;
    std::vector<index_t> local;
  };

  /// @brief Checks the widths and formats of every stage; throws hepgnn::error naming the part.
  explicit fixed_interaction_network(fixed_interaction_parts p) : p_(std::move(p)) {
    const char* who = "fixed_interaction_network";
    check_spec(p_.input, who, "parts.input");
    check_chain(p_.edge, "parts.edge");
    check_chain(p_.node, "parts.node");
    check_chain(p_.classifier, "parts.classifier");
    const int e0 = p_.edge.front().dense.in_features();
    HEPGNN_CHECK(e0 % 2 == 0, who, ": parts.edge[0] must take [x_dst, x_src], an even width 2 P, got ", e0);
    in_ = e0 / 2;
    msg_ = p_.edge.back().dense.out_features();
    HEPGNN_CHECK(p_.node.front().dense.in_features() == in_ + msg_, who, ": parts.node[0] must take [x_i, a_i], P + ",
                 "message width = ", in_, " + ", msg_, " = ", in_ + msg_, " inputs, got ",
                 p_.node.front().dense.in_features());
    HEPGNN_CHECK(p_.classifier.front().dense.in_features() == p_.node.back().dense.out_features(), who,
                 ": parts.classifier[0] must take the node network's ", p_.node.back().dense.out_features(),
                 " outputs, got ", p_.classifier.front().dense.in_features());
    check_sum(p_.aggregate, p_.edge.back().output(), "parts.aggregate");
    check_sum(p_.pool, p_.node.back().output(), "parts.pool");
    ke_ = kernels(p_.edge);
    kn_ = kernels(p_.node);
    kc_ = kernels(p_.classifier);
  }

  const fixed_interaction_parts& parts() const { return p_; }
  /// @brief P, the node feature width.
  int in_features() const { return in_; }
  int out_features() const { return p_.classifier.back().dense.out_features(); }
  /// @brief Format of the outputs (the last classifier stage's).
  fixed_spec output_format() const { return p_.classifier.back().output(); }

  /// @brief y [graphs, out] (output_format()) from x [nodes, P] raw in parts().input, on graph g (CSR by
  /// destination) whose nodes are grouped into graphs by b; an edge must join two nodes of the same graph.
  void forward_raw(const std::int32_t* x, const graph& g, const batch& b, std::int32_t* y, workspace& w) const {
    check_graph(g, b);
    const long n = g.num_nodes, ng = b.num_graphs(), P = in_, pw = p_.node.back().dense.out_features();
    // the halves of [x_dst, x_src] in the edge network's input format, once per node
    const fixed_stage& e0 = p_.edge.front();
    const std::int32_t* xr = x;
    const std::int32_t* xs = x;
    if (!e0.input_quantizer.empty() || !(p_.input == e0.dense.precision().input)) {
      w.xr.resize(static_cast<std::size_t>(n * P));
      w.xs.resize(static_cast<std::size_t>(n * P));
      for (long i = 0; i < n; ++i)
        for (long c = 0; c < P; ++c) {
          w.xr[i * P + c] = cast_in(x[i * P + c], p_.input, e0, static_cast<int>(c));
          w.xs[i * P + c] = cast_in(x[i * P + c], p_.input, e0, static_cast<int>(P + c));
        }
      xr = w.xr.data();
      xs = w.xs.data();
    }
    // edges, in blocks of whole destination nodes (about block_rows edges): f_R, then each node's sum
    w.agg.resize(static_cast<std::size_t>(n * msg_));
    const fixed_spec msg_format = p_.edge.back().output();
    for (long i0 = 0; i0 < n;) {
      const index_t first = g.offsets[i0];
      long i1 = i0 + 1;
      while (i1 < n && g.offsets[i1 + 1] - first <= block_rows) ++i1;
      const long rows = g.offsets[i1] - first;
      w.u.resize(static_cast<std::size_t>(2 * P * rows));
      w.local.resize(static_cast<std::size_t>(i1 - i0 + 1));
      for (long i = i0; i < i1; ++i) {
        w.local[i - i0] = g.offsets[i] - first;
        for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
          const long r = e - first, s = g.sources[e];
          for (long c = 0; c < P; ++c) {
            w.u[c * rows + r] = xr[i * P + c];
            w.u[(P + c) * rows + r] = xs[s * P + c];
          }
        }
      }
      w.local[i1 - i0] = static_cast<index_t>(rows);
      run_block(p_.edge, ke_, rows, w);
      // the messages back to rows: the sums run with the message features as lanes
      w.v.resize(static_cast<std::size_t>(rows * msg_));
      for (long c = 0; c < msg_; ++c)
        for (long r = 0; r < rows; ++r) w.v[r * msg_ + c] = w.u[c * rows + r];
      const lane_range range(p_.aggregate.accum);
      w.acc.resize(static_cast<std::size_t>((i1 - i0) * msg_));
      with_modes(p_.aggregate.accum.q, p_.aggregate.accum.o, [&]<quant_mode Q, overflow_mode O>() {
        segment_sum_accumulate<Q, O>(w.v.data(), msg_, w.local.data(), i1 - i0,
                                     msg_format.frac() - p_.aggregate.accum.frac(), range, w.acc.data());
      });
      for (long e = 0; e < (i1 - i0) * msg_; ++e) w.agg[i0 * msg_ + e] = cast_sum(w.acc[e], p_.aggregate);
      i0 = i1;
    }
    // nodes, in blocks: f_O on [x_i, a_i] (each part cast from its own format), outputs back to rows
    const fixed_stage& n0 = p_.node.front();
    const long nin = P + msg_;
    w.o.resize(static_cast<std::size_t>(n * pw));
    for (long i0 = 0; i0 < n; i0 += block_rows) {
      const long rows = std::min<long>(block_rows, n - i0);
      w.u.resize(static_cast<std::size_t>(nin * rows));
      for (long c = 0; c < nin; ++c)
        for (long r = 0; r < rows; ++r)
          w.u[c * rows + r] = c < P ? cast_in(x[(i0 + r) * P + c], p_.input, n0, static_cast<int>(c))
                                    : cast_in(w.agg[(i0 + r) * msg_ + c - P], p_.aggregate.result, n0, static_cast<int>(c));
      run_block(p_.node, kn_, rows, w);
      for (long c = 0; c < pw; ++c)
        for (long r = 0; r < rows; ++r) w.o[(i0 + r) * pw + c] = w.u[c * rows + r];
    }
    // pooling (rows of each graph), classifier in blocks of graphs
    sum_rows(w.o.data(), pw, b.node_offsets.data(), ng, p_.node.back().output(), p_.pool, w, w.pooled);
    const fixed_stage& c0 = p_.classifier.front();
    const long out = out_features();
    for (long g0 = 0; g0 < ng; g0 += block_rows) {
      const long rows = std::min<long>(block_rows, ng - g0);
      w.u.resize(static_cast<std::size_t>(pw * rows));
      for (long c = 0; c < pw; ++c)
        for (long r = 0; r < rows; ++r) w.u[c * rows + r] = cast_in(w.pooled[(g0 + r) * pw + c], p_.pool.result, c0, static_cast<int>(c));
      run_block(p_.classifier, kc_, rows, w);
      for (long c = 0; c < out; ++c)
        for (long r = 0; r < rows; ++r) y[(g0 + r) * out + c] = w.u[c * rows + r];
    }
  }

  /// @brief Values in, values out: x (nodes x P) converted to parts().input as ap_fixed converts doubles; y
  /// (graphs x out) holds the exact values of output_format(). Allocates.
  template <class T>
  void forward(const matrix<T>& x, const graph& g, const batch& b, matrix<T>& y) const {
    check_shape(x, g.num_nodes, in_, "fixed_interaction_network: input x (one row per graph node)");
    std::vector<std::int32_t> xr(static_cast<std::size_t>(x.size()));
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      for (Eigen::Index c = 0; c < x.cols(); ++c)
        xr[static_cast<std::size_t>(r * x.cols() + c)] =
            static_cast<std::int32_t>(quantize_double(static_cast<double>(x(r, c)), p_.input));
    std::vector<std::int32_t> yr(static_cast<std::size_t>(b.num_graphs()) * out_features());
    workspace w;
    forward_raw(xr.data(), g, b, yr.data(), w);
    y.resize(b.num_graphs(), out_features());
    for (Eigen::Index r = 0; r < y.rows(); ++r)
      for (Eigen::Index c = 0; c < y.cols(); ++c)
        y(r, c) = static_cast<T>(raw_to_double(yr[static_cast<std::size_t>(r * y.cols() + c)], output_format()));
  }

 private:
  static void check_chain(const std::vector<fixed_stage>& chain, const char* name) {
    const char* who = "fixed_interaction_network";
    HEPGNN_CHECK(!chain.empty(), who, ": ", name, " must hold at least one stage");
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const fixed_stage& s = chain[k];
      const std::string at = std::string(name) + "[" + std::to_string(k) + "]";
      if (s.relu) check_spec(s.relu_result, who, (at + ".relu_result").c_str());
      HEPGNN_CHECK(s.input_quantizer.empty() || s.input_quantizer.size() == static_cast<std::size_t>(s.dense.in_features()),
                   who, ": ", at, ".input_quantizer must be empty or hold one format per input (",
                   s.dense.in_features(), "), got ", s.input_quantizer.size());
      for (std::size_t c = 0; c < s.input_quantizer.size(); ++c)
        check_spec(s.input_quantizer[c], who, (at + ".input_quantizer[" + std::to_string(c) + "]").c_str());
      if (k > 0)
        HEPGNN_CHECK(s.dense.in_features() == chain[k - 1].dense.out_features(), who, ": ", at, " takes ",
                     s.dense.in_features(), " inputs but ", name, "[", k - 1, "] gives ", chain[k - 1].dense.out_features());
    }
  }
  static void check_sum(const sum_precision& s, const fixed_spec& term, const char* name) {
    const char* who = "fixed_interaction_network";
    check_spec(s.accum, who, (std::string(name) + ".accum").c_str());
    check_spec(s.result, who, (std::string(name) + ".result").c_str());
    const int shift = term.frac() - s.accum.frac();
    HEPGNN_CHECK(shift < 63 && term.width - std::min(shift, 0) <= 62, who, ": ", name, ".accum has ", s.accum.frac(),
                 " fractional bits, its terms ", term.frac(), ": the shift between them must keep terms within 62 bits");
  }
  void check_graph(const graph& g, const batch& b) const {
    const char* who = "fixed_interaction_network";
    g.validate(who);
    b.validate_offsets(who);
    HEPGNN_CHECK(b.num_nodes() == g.num_nodes, who, ": the batch covers ", b.num_nodes(), " nodes, the graph has ",
                 g.num_nodes);
    for (index_t k = 0; k < b.num_graphs(); ++k)
      for (index_t i = b.begin(k); i < b.end(k); ++i)
        for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
          HEPGNN_CHECK(g.sources[e] >= b.begin(k) && g.sources[e] < b.end(k), who, ": edge ", e, " (", g.sources[e],
                       " -> ", i, ") joins graph ", k, " (nodes ", b.begin(k), "..", b.end(k) - 1,
                       ") to another graph's node");
  }

  /// Raw kernel operands of one stage: weights [out, in], bias in the accumulator, the product shift.
  struct stage_kernel {
    std::vector<std::int32_t> w;
    std::vector<std::int64_t> bias;
    int shift;
    bool narrow;  ///< AP_TRN/AP_WRAP accumulator, products within int32: dense_accumulate_rows_trn_wrap32
  };
  static std::vector<stage_kernel> kernels(const std::vector<fixed_stage>& chain) {
    std::vector<stage_kernel> k;
    for (const fixed_stage& s : chain) {
      const dense_precision& p = s.dense.precision();
      const int shift = p.input.frac() + p.weight.frac() - p.accum.frac();
      // |x| <= 2^(W - signed) and the same for w: products within int32 when those exponents add up to <= 30
      const bool narrow = p.accum.q == quant_mode::trn && p.accum.o == overflow_mode::wrap && shift > 0 &&
                          (p.input.width - p.input.is_signed) + (p.weight.width - p.weight.is_signed) <= 30;
      stage_kernel sk{{}, {}, shift, narrow};
      for (int o = 0; o < s.dense.out_features(); ++o) {
        sk.bias.push_back(s.dense.bias_accum_raw(o));
        for (int i = 0; i < s.dense.in_features(); ++i) sk.w.push_back(s.dense.weight_raw(o, i));
      }
      k.push_back(std::move(sk));
    }
    return k;
  }

  /// Input column `col` of stage s from a raw value v of format `from` (the column rule of the file comment).
  static std::int32_t cast_in(std::int32_t v, const fixed_spec& from, const fixed_stage& s, int col) {
    const fixed_spec& in = s.dense.precision().input;
    if (s.input_quantizer.empty())
      return from == in ? v : static_cast<std::int32_t>(quantize_raw(v, from.frac(), in));
    const fixed_spec& q = s.input_quantizer[static_cast<std::size_t>(col)];
    return static_cast<std::int32_t>(quantize_raw(quantize_raw(v, from.frac(), q), q.frac(), in));
  }
  static std::int32_t cast_sum(std::int64_t acc, const sum_precision& p) {
    return static_cast<std::int32_t>(p.result == p.accum ? acc : quantize_raw(acc, p.accum.frac(), p.result));
  }

  /// Runs a chain on w.u (feature-major [chain[0] inputs, rows], in chain[0]'s input format: the caller casts the
  /// first stage's columns, which come from several formats); leaves the output in w.u, feature-major.
  static void run_block(const std::vector<fixed_stage>& chain, const std::vector<stage_kernel>& kern, long rows,
                        workspace& w) {
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const fixed_stage& s = chain[k];
      const dense_precision& p = s.dense.precision();
      const int in = s.dense.in_features(), out = s.dense.out_features();
      if (k > 0) {
        const fixed_spec from = chain[k - 1].output();
        if (!s.input_quantizer.empty() || !(from == p.input))
          for (long c = 0; c < in; ++c)
            for (long r = 0; r < rows; ++r) w.u[c * rows + r] = cast_in(w.u[c * rows + r], from, s, static_cast<int>(c));
      }
      const lane_range range(p.accum);
      const long n = out * rows;
      w.v.resize(static_cast<std::size_t>(n));
      if (kern[k].narrow) {  // int32 lanes, the accumulators written in place of the result
        dense_accumulate_rows_trn_wrap32(w.u.data(), rows, rows, kern[k].w.data(), kern[k].bias.data(), in, out,
                                         kern[k].shift, range, w.v.data());
        if (!(p.result == p.accum))
          for (long e = 0; e < n; ++e) w.v[e] = static_cast<std::int32_t>(quantize_raw(w.v[e], p.accum.frac(), p.result));
      } else {
        w.acc.resize(static_cast<std::size_t>(n));
        with_modes(p.accum.q, p.accum.o, [&]<quant_mode Q, overflow_mode O>() {
          dense_accumulate_rows<Q, O>(w.u.data(), rows, rows, kern[k].w.data(), kern[k].bias.data(), in, out,
                                      kern[k].shift, range, w.acc.data());
        });
        cast_result(w, p, n);
      }
      if (s.relu) relu_raw(w.v.data(), n, p.result, s.relu_result, w.v.data());
      w.u.swap(w.v);
    }
  }
  static void cast_result(workspace& w, const dense_precision& p, long n) {
      if (p.result == p.accum) {
        for (long e = 0; e < n; ++e) w.v[e] = static_cast<std::int32_t>(w.acc[e]);
      } else {
        for (long e = 0; e < n; ++e) w.v[e] = static_cast<std::int32_t>(quantize_raw(w.acc[e], p.accum.frac(), p.result));
      }
  }

  /// out [segments, cols] = the fixed-point sums (precision p) of the row segments of m (format `term`).
  static void sum_rows(const std::int32_t* m, long cols, const index_t* offsets, long segments, const fixed_spec& term,
                       const sum_precision& p, workspace& w, std::vector<std::int32_t>& out) {
    const std::size_t n = static_cast<std::size_t>(segments * cols);
    w.acc.resize(n);
    out.resize(n);
    const lane_range r(p.accum);
    with_modes(p.accum.q, p.accum.o, [&]<quant_mode Q, overflow_mode O>() {
      segment_sum_accumulate<Q, O>(m, static_cast<int>(cols), offsets, segments, term.frac() - p.accum.frac(), r,
                                   w.acc.data());
    });
    for (std::size_t e = 0; e < n; ++e) out[e] = cast_sum(w.acc[e], p);
  }

  static constexpr long block_rows = 256;  ///< rows (edges, nodes, graphs) per block: the lanes of the kernels

  fixed_interaction_parts p_;
  int in_ = 0, msg_ = 0;
  std::vector<stage_kernel> ke_, kn_, kc_;
};

}  // namespace hepgnn::quant
