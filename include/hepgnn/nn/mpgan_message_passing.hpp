#pragma once
/// @file mpgan_message_passing.hpp
/// @brief hepgnn::mpgan_message_passing: the message-passing block of MPGAN (Kansal et al., NeurIPS 2021).
///
/// Every graph of the batch (a jet) is fully connected, self loops included. One iteration t:
///   m_ij = f_e([h_i, h_j, d_ij])      edge MLP; d_ij = |p_i - p_j| (Euclidean) over the first `pos_dims`
///                                      columns of h (omitted when pos_dims = 0)
///   m_i  = sum_j w_j m_ij              (or the mean over the jet, `sum = false`); w_j: optional source mask
///   h_i' = f_n([h_i, m_i])             node MLP (or f_n([m_i, h_i]), `message_first`, as MPGAN's MPLayer)
/// Several iterations with their own weights are applied in turn. MLP layers are Linear + LeakyReLU(slope); the
/// edge MLP is activated after its last layer, the node MLP not after its last layer of the last iteration
/// (options). MPGAN concatenates [m_i, h_i] in the node MLP input; this block uses [h_i, m_i] by default (the same
/// model up to a permutation of the first weight's columns) and MPGAN's order with `message_first`, so MPGAN's
/// weights load unchanged. The source mask w (one weight >= 0 per node, MPGAN's generator mask_c: 1 real, 0
/// padded) zeroes the messages a padded particle sends; padded particles still receive messages. The distance of a self loop is 0 and passes no gradient
/// (MPGAN adds 1e-12 inside the norm for the same effect).
///
/// Dropout (MPGAN's discriminator, LinearNet's dropout_p): with `dropout` p > 0 and a generator given to forward,
/// every layer of both MLPs (the last ones included) is followed by inverted dropout, after its activation and before
/// the source mask, as in LinearNet. Each entry's keep/drop draw is a counter-based hash of one seed drawn per
/// forward, so backward recomputes the masks instead of storing them and results do not depend on the thread count.
///
/// The messages are passed on graph/fully_connected.hpp's graph of the batch (self loops included) with
/// nn/aggregate.hpp's reduction and scatters, so results do not depend on the thread count.
///
/// Speed: the first edge Linear is split into node-level products (W_a h_i + W_b h_j + w_d d_ij + b), so only the
/// later edge layers are edge-level GEMMs. Jets of different sizes are handled without padding.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/nn/graph_layer.hpp"

namespace hepgnn {

/// @brief MPGAN message passing over fully connected jets (see the file comment).
/// Parameters: "<t>.fe.<l>.weight/bias" and "<t>.fn.<l>.weight/bias" for iteration t and layer l
/// (torch.nn.ModuleList numbering, as in MPGAN's MPLayer).
template <class T, int In = dynamic, int Out = dynamic>
class mpgan_message_passing {
 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = Out;

  /// @brief Configuration. Iteration t maps `hidden` to `hidden` features (the first reads `in`, the last writes `out`).
  struct options {
    int in = In;                    ///< input node features
    int hidden = dynamic;           ///< node features between iterations (default: in)
    int out = Out;                  ///< output node features (default: hidden)
    int iterations = 1;             ///< message-passing iterations, each with its own weights
    std::vector<int> fe_widths{32};  ///< edge MLP output widths, last = message width
    std::vector<int> fn_widths{32};  ///< node MLP hidden widths (its last layer writes the node width)
    int pos_dims = 0;               ///< distance feature over the first pos_dims columns of h (0: none)
    bool sum = true;                ///< sum (true) or mean of the messages
    double negative_slope = 0.2;    ///< LeakyReLU slope (MPGAN: 0.2)
    bool final_activation = false;  ///< activation after the last node layer of the last iteration
    bool message_first = false;     ///< node MLP input [m_i, h_i] (MPGAN's MPLayer) instead of [h_i, m_i]
    double dropout = 0;             ///< dropout after every MLP layer in a training forward given a generator
  };

  /// @brief What forward keeps for backward.
  struct cache {
    std::vector<index_t> jets;                                ///< the batch's node offsets (backward checks them)
    graph pairs;                                              ///< fully connected jets, self loops included
    source_index by_source;                                   ///< pairs grouped by source (backward)
    std::vector<matrix<T>> h;                                 ///< iteration inputs (and the output copy)
    std::vector<std::vector<matrix<T>>> fe_act, fn_act;       ///< layer outputs per iteration
    std::vector<matrix<T>> dist, nin, pa, pb;                 ///< per iteration: distances (E x 1), [h, m]
    matrix<T> agg, dagg;                                      ///< aggregated messages and their gradient
    matrix<T> g, g2, dnin, dh, sdst, ssrc, da, db;
    std::vector<T> source_mask;                               ///< w_j of the last forward (empty: none)
    bool dropped = false;                                     ///< the last forward applied dropout
    std::uint64_t dropout_seed = 0;                           ///< its seed (backward recomputes the masks)
  };

  mpgan_message_passing(rng& gen, options o) : o_(complete(o)) {
    for (int t = 0; t < o_.iterations; ++t) {
      const int fin = t == 0 ? o_.in : o_.hidden, fout = t + 1 == o_.iterations ? o_.out : o_.hidden;
      HEPGNN_CHECK(o_.pos_dims <= fin, "mpgan_message_passing: pos_dims = ", o_.pos_dims,
                   " exceeds the node width ", fin, " of iteration ", t);
      std::vector<dense<T>> fe, fn;
      int w = 2 * fin + (o_.pos_dims > 0 ? 1 : 0);
      for (int width : o_.fe_widths) {
        fe.emplace_back(gen, w, width);
        w = width;
      }
      w = fin + o_.fe_widths.back();
      for (int width : o_.fn_widths) {
        fn.emplace_back(gen, w, width);
        w = width;
      }
      fn.emplace_back(gen, w, fout);
      fe_.push_back(std::move(fe));
      fn_.push_back(std::move(fn));
    }
  }

  const options& config() const { return o_; }
  /// @brief Layer l of the edge MLP of iteration t.
  dense<T>& fe(int t, int l) { return fe_[t][l]; }
  /// @brief Layer l of the node MLP of iteration t.
  dense<T>& fn(int t, int l) { return fn_[t][l]; }

  /// @brief Training forward: y (N x out); b gives the jets (rows of x).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    c.dropped = false;
    run(x, b, y, c, nullptr, "mpgan_message_passing::forward", false);
  }
  /// @brief Inference (same computation; buffers reused across calls of the same sizes).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    c.dropped = false;
    run(x, b, y, c, nullptr, "mpgan_message_passing::infer", false);
  }
  /// @brief Training forward with a source mask: `source_mask` holds one weight >= 0 per node (row of x) that
  /// multiplies every message the node sends (null: all 1).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, const std::vector<T>* source_mask) const {
    c.dropped = false;
    run(x, b, y, c, source_mask, "mpgan_message_passing::forward", false);
  }
  /// @brief Training forward with a source mask and dropout (options::dropout): one seed is drawn from
  /// `dropout_gen` per call (null: no dropout).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, const std::vector<T>* source_mask,
               rng* dropout_gen) const {
    c.dropped = dropout_gen != nullptr && o_.dropout > 0;
    if (c.dropped) c.dropout_seed = (*dropout_gen)();
    run(x, b, y, c, source_mask, "mpgan_message_passing::forward", c.dropped);
  }
  /// @brief Inference with a source mask (see forward).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, const std::vector<T>* source_mask) const {
    c.dropped = false;
    run(x, b, y, c, source_mask, "mpgan_message_passing::infer", false);
  }

  /// @brief Adds parameter gradients for dy (N x out); writes dL/dx when dx is not null.
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    const long n = x.rows();
    HEPGNN_CHECK(static_cast<int>(c.h.size()) == o_.iterations + 1 && c.h[0].rows() == n && c.jets == b.node_offsets,
                 "mpgan_message_passing::backward: call forward with this batch (", n, " nodes) first");
    check_shape(dy, n, o_.out, "mpgan_message_passing::backward: output gradient dy");
    const T slope = static_cast<T>(o_.negative_slope);
    const aggregation reduce = o_.sum ? aggregation::sum : aggregation::mean;
    typename dense<T>::cache none;
    c.by_source.build(c.pairs);
    c.dh = dy;
    for (int t = o_.iterations - 1; t >= 0; --t) {
      const matrix<T>& h = c.h[t];
      const long F = h.cols(), Wm = o_.fe_widths.back();
      // node MLP backward, input [h, m]
      auto& fn = fn_[t];
      const std::size_t L = fn.size();
      c.g = c.dh;
      for (std::size_t l = L; l-- > 0;) {
        const matrix<T>& out = c.fn_act[t][l];
        const bool act = l + 1 < L || (t + 1 == o_.iterations && o_.final_activation);
        dropout_activation_backward(out, c.g, act, slope, dropout_mask(c.dropped, c.dropout_seed, layer_tag(t, 1, l)));
        const matrix<T>& in = l == 0 ? c.nin[t] : c.fn_act[t][l - 1];
        fn[l].backward(in, out, c.g, none, nullptr);
        c.g2.noalias() = c.g * fn[l].weight();
        c.g.swap(c.g2);
      }
      c.dnin = c.g;  // N x (F + Wm)
      c.dh = o_.message_first ? c.dnin.rightCols(F) : c.dnin.leftCols(F);
      // messages
      auto& fe = fe_[t];
      const std::size_t Le = fe.size();
      c.dagg = o_.message_first ? c.dnin.leftCols(Wm) : c.dnin.rightCols(Wm);
      segment_reduce_backward(c.pairs, reduce, c.dagg, nullptr, c.g);
      // Masked messages: d/dm_ij of w_j m_ij. The stored activations are the masked ones; their sign still
      // selects the LeakyReLU branch where w_j > 0, and where w_j = 0 the gradient is 0 on either branch.
      if (!c.source_mask.empty()) apply_source_mask(b, c.pairs, c.source_mask, c.g);
      for (std::size_t l = Le; l-- > 0;) {
        dropout_activation_backward(c.fe_act[t][l], c.g, true, slope,
                                    dropout_mask(c.dropped, c.dropout_seed, layer_tag(t, 0, l)));
        if (l == 0) break;
        fe[l].backward(c.fe_act[t][l - 1], c.fe_act[t][l], c.g, none, nullptr);
        c.g2.noalias() = c.g * fe[l].weight();
        c.g.swap(c.g2);
      }
      // first edge layer, split: pre_ij = A h_i + B h_j + w_d d_ij + b
      const long W1 = c.g.cols();
      c.sdst.setZero(n, W1);
      c.ssrc.setZero(n, W1);
      scatter_destinations_add(c.pairs, c.g, c.sdst);
      scatter_sources_add(c.pairs, c.by_source, c.g, c.ssrc);
      auto& w0 = fe[0].weight_grad();
      c.da.setZero(W1, F);
      c.db.setZero(W1, F);
      simd::add_weight_gradient(h, c.sdst, c.da);
      simd::add_weight_gradient(h, c.ssrc, c.db);
      w0.leftCols(F) += c.da;
      w0.middleCols(F, F) += c.db;
      add_column_sums(c.sdst, fe[0].bias_grad().row(0));
      c.dh.noalias() += c.sdst * fe[0].weight().leftCols(F);
      c.dh.noalias() += c.ssrc * fe[0].weight().middleCols(F, F);
      if (o_.pos_dims > 0) {
        const auto wd = fe[0].weight().col(2 * F);
        const long P = o_.pos_dims;
        for (index_t q = 0; q < b.num_graphs(); ++q) {
          const long a0 = b.begin(q), ng = b.size(q), e0 = c.pairs.offsets[a0];
          for (long i = 0; i < ng; ++i)
            for (long j = 0; j < ng; ++j) {
              const long e = e0 + i * ng + j;
              const T d = c.dist[t](e, 0);
              const T dd = c.g.row(e).dot(wd.transpose());
              if (d > T(0)) {
                for (long p = 0; p < P; ++p) {
                  const T v = dd * (h(a0 + i, p) - h(a0 + j, p)) / d;
                  c.dh(a0 + i, p) += v;
                  c.dh(a0 + j, p) -= v;
                }
              }
            }
        }
        // dL/dw_d = sum_e g_e d_e
        w0.col(2 * F).noalias() += c.g.transpose() * c.dist[t];
      }
    }
    if (dx) *dx = c.dh;
    (void)y;
  }

  /// @brief Visits "<t>.fe.<l>.*" and "<t>.fn.<l>.*".
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    for (int t = 0; t < o_.iterations; ++t) {
      const std::string p = prefix + std::to_string(t) + ".";
      for (std::size_t l = 0; l < fe_[t].size(); ++l) fe_[t][l].for_each_param(p + "fe." + std::to_string(l) + ".", f);
      for (std::size_t l = 0; l < fn_[t].size(); ++l) fn_[t][l].for_each_param(p + "fn." + std::to_string(l) + ".", f);
    }
  }

 private:
  static options complete(options o) {
    if (o.hidden == dynamic) o.hidden = o.in;
    if (o.out == dynamic) o.out = o.hidden;
    HEPGNN_CHECK(o.in > 0 && o.hidden > 0 && o.out > 0 && o.iterations > 0,
                 "mpgan_message_passing: in, hidden, out and iterations must be positive, got in = ", o.in,
                 ", hidden = ", o.hidden, ", out = ", o.out, ", iterations = ", o.iterations);
    HEPGNN_CHECK(width_accepts(In, o.in) && width_accepts(Out, o.out), "mpgan_message_passing: runtime widths ", o.in,
                 " -> ", o.out, " contradict the compile-time widths ", In, " -> ", Out);
    HEPGNN_CHECK(!o.fe_widths.empty(), "mpgan_message_passing: fe_widths must name at least the message width");
    for (int w : o.fe_widths) HEPGNN_CHECK(w > 0, "mpgan_message_passing: fe_widths must be positive, got ", w);
    for (int w : o.fn_widths) HEPGNN_CHECK(w > 0, "mpgan_message_passing: fn_widths must be positive, got ", w);
    HEPGNN_CHECK(o.pos_dims >= 0, "mpgan_message_passing: pos_dims must be >= 0, got ", o.pos_dims);
    HEPGNN_CHECK(o.negative_slope > 0, "mpgan_message_passing: negative_slope must be > 0, got ", o.negative_slope);
    HEPGNN_CHECK(o.dropout >= 0 && 1 > o.dropout, "mpgan_message_passing: dropout must be in [0, 1), got ", o.dropout);
    return o;
  }

  /// Distinct stream per (iteration, MLP: 0 edge / 1 node, layer).
  static std::uint64_t layer_tag(int t, int net, std::size_t l) {
    return (static_cast<std::uint64_t>(t) << 20) | (static_cast<std::uint64_t>(net) << 16) | l;
  }

  /// The dropout mask of layer `tag` in a call with dropout seed `seed`, or none.
  std::optional<hashed_dropout_mask<T>> dropout_mask(bool drop, std::uint64_t seed, std::uint64_t tag) const {
    if (!drop) return std::nullopt;
    return hashed_dropout_mask<T>(o_.dropout, seed, tag);
  }

  /// Calls f(r0, r1) on blocks of about 2^14 entries of an rows x cols matrix, in parallel when it is large.
  template <class F>
  static void row_blocks(long rows, long cols, F&& f) {
    const long block = std::max(1L, (1L << 14) / std::max(1L, cols)), blocks = (rows + block - 1) / block;
    parallel_for(blocks, rows * cols >= parallel_limits::min_work,
                 [&](long q) { f(q * block, std::min(rows, (q + 1) * block)); });
  }

  /// o = dropout(leaky(o + bias)): bias when not null, leaky when `act`, dropout when `mask`, each entry computed
  /// as separate passes would. Block by block (64 KiB, in cache), so the edge matrices, too large for the cache,
  /// are read from memory once, not three times.
  static void bias_activation_dropout(matrix<T>& o, const T* bias, bool act, T slope,
                                      const std::optional<hashed_dropout_mask<T>>& mask) {
    const long cols = o.cols();
    T* v = o.data();
    row_blocks(o.rows(), cols, [&](long r0, long r1) {
      const long k0 = r0 * cols, k1 = r1 * cols;
      const T s = slope;  // locals, not the closure's members: stores to v cannot alias them, the loops vectorise
      if (bias)
        for (long r = r0; r < r1; ++r)
          for (long j = 0; j < cols; ++j) v[r * cols + j] += bias[j];
      if (act)
        for (long k = k0; k < k1; ++k) v[k] = v[k] > T(0) ? v[k] : s * v[k];
      if (mask) {
        const hashed_dropout_mask<T> m = *mask;
        for (long k = k0; k < k1; ++k) v[k] *= m.factor(static_cast<std::uint64_t>(k));
      }
    });
  }

  /// The backward of bias_activation_dropout on its output `out`: g = g * mask, then g *= leaky'(.) when `act`.
  static void dropout_activation_backward(const matrix<T>& out, matrix<T>& g, bool act, T slope,
                                          const std::optional<hashed_dropout_mask<T>>& mask) {
    const long cols = g.cols();
    const T* y = out.data();
    T* v = g.data();
    row_blocks(g.rows(), cols, [&](long r0, long r1) {
      const long k0 = r0 * cols, k1 = r1 * cols;
      const T s = slope;
      if (mask) {
        const hashed_dropout_mask<T> m = *mask;
        for (long k = k0; k < k1; ++k) v[k] *= m.factor(static_cast<std::uint64_t>(k));
      }
      if (act)
        for (long k = k0; k < k1; ++k) v[k] = y[k] > T(0) ? v[k] : s * v[k];
    });
  }

  /// Multiplies the rows of the edge matrix m (e = e0 + i ng + j within a jet, j the source) by w_j.
  static void apply_source_mask(const batch& b, const graph& pairs, const std::vector<T>& w, matrix<T>& m) {
    for (index_t q = 0; q < b.num_graphs(); ++q) {
      const long a0 = b.begin(q), ng = b.size(q), e0 = pairs.offsets[a0];
      for (long i = 0; i < ng; ++i)
        for (long j = 0; j < ng; ++j) m.row(e0 + i * ng + j) *= w[static_cast<std::size_t>(a0 + j)];
    }
  }

  void run(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, const std::vector<T>* mask,
           const char* who, bool drop) const {
    check_cols(x, o_.in, who);
    b.validate_offsets(who);
    HEPGNN_CHECK(b.num_nodes() == x.rows(), who, ": the batch covers ", b.num_nodes(), " nodes but x has ", x.rows(),
                 " rows");
    if (mask) {
      HEPGNN_CHECK(static_cast<long>(mask->size()) == x.rows(), who, ": source_mask has ", mask->size(),
                   " weights, expected one per node (", x.rows(), ")");
      for (std::size_t k = 0; k < mask->size(); ++k)
        HEPGNN_CHECK(std::isfinite((*mask)[k]) && (*mask)[k] >= T(0), who, ": source_mask[", k, "] = ", (*mask)[k],
                     " must be finite and >= 0");
      c.source_mask = *mask;
    } else {
      c.source_mask.clear();
    }
    const T slope = static_cast<T>(o_.negative_slope);
    const long n = x.rows();
    c.jets = b.node_offsets;
    fully_connected_into(b, true, c.pairs);
    const long ne = c.pairs.num_edges();
    const aggregation reduce = o_.sum ? aggregation::sum : aggregation::mean;
    const int T_ = o_.iterations;
    c.h.resize(T_ + 1);
    c.fe_act.resize(T_);
    c.fn_act.resize(T_);
    c.dist.resize(T_);
    c.nin.resize(T_);
    c.pa.resize(T_);
    c.pb.resize(T_);
    c.h[0] = x;
    for (int t = 0; t < T_; ++t) {
      const matrix<T>& h = c.h[t];
      const long F = h.cols(), P = o_.pos_dims;
      auto& fe = fe_[t];
      auto& fn = fn_[t];
      c.fe_act[t].resize(fe.size());
      c.fn_act[t].resize(fn.size());
      // first edge layer from node-level products
      const long W1 = fe[0].out_features();
      multiply_transposed(h, fe[0].weight().leftCols(F), c.pa[t]);
      c.pa[t].rowwise() += fe[0].bias().row(0);
      multiply_transposed(h, fe[0].weight().middleCols(F, F), c.pb[t]);
      c.dist[t].resize(ne, 1);
      matrix<T>& z = c.fe_act[t][0];
      z.resize(ne, W1);
      for (index_t q = 0; q < b.num_graphs(); ++q) {
        const long a0 = b.begin(q), ng = b.size(q), e0 = c.pairs.offsets[a0];
        for (long i = 0; i < ng; ++i)
          for (long j = 0; j < ng; ++j) {
            const long e = e0 + i * ng + j;
            T d = 0;
            for (long p = 0; p < P; ++p) d += (h(a0 + i, p) - h(a0 + j, p)) * (h(a0 + i, p) - h(a0 + j, p));
            d = std::sqrt(d);
            c.dist[t](e, 0) = d;
            z.row(e) = c.pa[t].row(a0 + i) + c.pb[t].row(a0 + j);
            if (P > 0) z.row(e) += d * fe[0].weight().col(2 * F).transpose();
          }
      }
      bias_activation_dropout(z, nullptr, true, slope, dropout_mask(drop, c.dropout_seed, layer_tag(t, 0, 0)));
      for (std::size_t l = 1; l < fe.size(); ++l) {
        matrix<T>& o = c.fe_act[t][l];
        o.resize(ne, fe[l].out_features());
        multiply_transposed(c.fe_act[t][l - 1], fe[l].weight(), o);
        bias_activation_dropout(o, fe[l].bias().data(), true, slope,
                                dropout_mask(drop, c.dropout_seed, layer_tag(t, 0, l)));
      }
      // aggregate messages per receiving node
      if (!c.source_mask.empty()) apply_source_mask(b, c.pairs, c.source_mask, c.fe_act[t].back());
      const matrix<T>& msg = c.fe_act[t].back();
      const long Wm = msg.cols();
      segment_reduce(c.pairs, msg, reduce, c.agg);
      c.nin[t].resize(n, F + Wm);
      if (o_.message_first) {
        c.nin[t].leftCols(Wm) = c.agg;
        c.nin[t].rightCols(F) = h;
      } else {
        c.nin[t].leftCols(F) = h;
        c.nin[t].rightCols(Wm) = c.agg;
      }
      // node MLP
      for (std::size_t l = 0; l < fn.size(); ++l) {
        matrix<T>& o = c.fn_act[t][l];
        const matrix<T>& in = l == 0 ? c.nin[t] : c.fn_act[t][l - 1];
        o.resize(n, fn[l].out_features());
        multiply_transposed(in, fn[l].weight(), o);
        bias_activation_dropout(o, fn[l].bias().data(), l + 1 < fn.size() || (t + 1 == T_ && o_.final_activation),
                                slope, dropout_mask(drop, c.dropout_seed, layer_tag(t, 1, l)));
      }
      c.h[t + 1] = c.fn_act[t].back();
    }
    y = c.h[T_];
  }

  options o_;
  std::vector<std::vector<dense<T>>> fe_, fn_;
};

}  // namespace hepgnn
