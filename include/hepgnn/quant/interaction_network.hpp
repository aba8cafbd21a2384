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
/// Kernels: dense_accumulate and segment_sum_accumulate (integer_kernels.hpp, output index as the vector lane);
/// one thread.

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
    std::vector<std::int32_t> a, b, xr, xs;
    std::vector<std::int64_t> acc;
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
    const long n = g.num_nodes, ne = g.num_edges(), ng = b.num_graphs(), P = in_;
    // edge network input [x_dst, x_src]: each half cast once per node, then gathered per edge
    const fixed_stage& e0 = p_.edge.front();
    const bool plain = e0.input_quantizer.empty() && p_.input == e0.dense.precision().input;
    const std::int32_t* xr = x;
    const std::int32_t* xs = x;
    if (!plain) {
      w.xr.resize(static_cast<std::size_t>(n * P));
      w.xs.resize(static_cast<std::size_t>(n * P));
      cast_columns(x, n, P, p_.input, e0, 0, w.xr.data(), P);
      cast_columns(x, n, P, p_.input, e0, static_cast<int>(P), w.xs.data(), P);
      xr = w.xr.data();
      xs = w.xs.data();
    }
    w.a.resize(static_cast<std::size_t>(ne * 2 * P));
    for (long i = 0; i < n; ++i)
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
        std::int32_t* row = w.a.data() + static_cast<long>(e) * 2 * P;
        std::copy_n(xr + i * P, P, row);
        std::copy_n(xs + static_cast<long>(g.sources[e]) * P, P, row + P);
      }
    run_chain(p_.edge, ne, w);  // messages in w.a, format edge.back().output()

    // aggregation: w.b = [N, msg] sums; then the node input [x_i, a_i] in w.a
    sum_rows(w.a.data(), msg_, g.offsets.data(), n, p_.edge.back().output(), p_.aggregate, w);
    const fixed_stage& n0 = p_.node.front();
    const long nin = P + msg_;
    w.a.resize(static_cast<std::size_t>(n * nin));
    cast_columns(x, n, P, p_.input, n0, 0, w.a.data(), nin);
    cast_columns(w.b.data(), n, msg_, p_.aggregate.result, n0, static_cast<int>(P), w.a.data() + P, nin);
    run_chain(p_.node, n, w);

    // pooling, classifier
    const fixed_stage& c0 = p_.classifier.front();
    sum_rows(w.a.data(), p_.node.back().dense.out_features(), b.node_offsets.data(), ng, p_.node.back().output(),
             p_.pool, w);
    const int pw = p_.node.back().dense.out_features();
    w.a.resize(static_cast<std::size_t>(ng * pw));
    cast_columns(w.b.data(), ng, pw, p_.pool.result, c0, 0, w.a.data(), pw);
    run_chain(p_.classifier, ng, w);
    std::copy_n(w.a.data(), ng * out_features(), y);
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

  /// Columns [col0, col0 + cols) of stage s's input, from src [rows, cols] raw in `from`, into dst (row stride
  /// dst_stride), in s's input format by the column rule of the file comment.
  static void cast_columns(const std::int32_t* src, long rows, long cols, const fixed_spec& from, const fixed_stage& s,
                           int col0, std::int32_t* dst, long dst_stride) {
    const fixed_spec& in = s.dense.precision().input;
    for (long c = 0; c < cols; ++c) {
      const bool q = !s.input_quantizer.empty();
      const fixed_spec& mid = q ? s.input_quantizer[static_cast<std::size_t>(col0 + c)] : in;
      if (!q && from == in) {
        for (long r = 0; r < rows; ++r) dst[r * dst_stride + c] = src[r * cols + c];
        continue;
      }
      for (long r = 0; r < rows; ++r) {
        std::int64_t v = quantize_raw(src[r * cols + c], from.frac(), mid);
        if (q) v = quantize_raw(v, mid.frac(), in);
        dst[r * dst_stride + c] = static_cast<std::int32_t>(v);
      }
    }
  }

  /// Runs a chain on w.a ([rows, chain[0] inputs], already in chain[0]'s input format); leaves the output in w.a.
  /// The first stage's input casts are the caller's (they depend on where the columns come from).
  static void run_chain(const std::vector<fixed_stage>& chain, long rows, workspace& w) {
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const fixed_stage& s = chain[k];
      if (k > 0) {  // the previous output into this stage's input format
        const fixed_stage& prev = chain[k - 1];
        const fixed_spec from = prev.output();
        if (!s.input_quantizer.empty() || !(from == s.dense.precision().input)) {
          w.b.resize(w.a.size());
          cast_columns(w.a.data(), rows, s.dense.in_features(), from, s, 0, w.b.data(), s.dense.in_features());
          w.a.swap(w.b);
        }
      }
      const long out = s.dense.out_features();
      w.b.resize(static_cast<std::size_t>(rows * out));
      w.acc.resize(static_cast<std::size_t>(rows * out));
      s.dense.forward_raw(w.a.data(), static_cast<int>(rows), w.b.data(), w.acc.data());
      if (s.relu) relu_raw(w.b.data(), rows * out, s.dense.precision().result, s.relu_result, w.b.data());
      w.a.swap(w.b);
    }
  }

  /// w.b [segments, cols] = the fixed-point sums (precision p) of the row segments of m (format `term`).
  static void sum_rows(const std::int32_t* m, long cols, const index_t* offsets, long segments, const fixed_spec& term,
                       const sum_precision& p, workspace& w) {
    const std::size_t n = static_cast<std::size_t>(segments * cols);
    w.acc.resize(n);
    w.b.resize(n);
    const lane_range r(p.accum);
    with_modes(p.accum.q, p.accum.o, [&]<quant_mode Q, overflow_mode O>() {
      segment_sum_accumulate<Q, O>(m, static_cast<int>(cols), offsets, segments, term.frac() - p.accum.frac(), r,
                                   w.acc.data());
    });
    if (p.result == p.accum) {
      for (std::size_t e = 0; e < n; ++e) w.b[e] = static_cast<std::int32_t>(w.acc[e]);
    } else {
      for (std::size_t e = 0; e < n; ++e) w.b[e] = static_cast<std::int32_t>(quantize_raw(w.acc[e], p.accum.frac(), p.result));
    }
  }

  fixed_interaction_parts p_;
  int in_ = 0, msg_ = 0;
};

}  // namespace hepgnn::quant
