#pragma once
/// @file pooling.hpp
/// @brief Graph-level readout per graph of a batch: global sum / mean / max pooling and attention pooling
/// (PyTorch Geometric global_add_pool, global_mean_pool, global_max_pool, GlobalAttention).

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/element.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/simd/segment_softmax.hpp"

namespace hepgnn {

namespace detail {
inline void check_pool_input(long rows, const batch& b, const char* who) {
  b.validate_offsets(who);
  HEPGNN_CHECK(b.num_nodes() == rows, who, ": x must have one row per batch node (", b.num_nodes(), "), got ", rows,
               " rows");
}
}  // namespace detail

/// @brief y[g] = AGG_{i in graph g} x[i] (G x F); empty graphs give 0. For max, `argmax` receives G x F node
/// ids (-1 for empty graphs) for the backward pass.
template <class T>
void global_pool(const matrix<T>& x, const batch& b, aggregation a, matrix<T>& y, std::vector<index_t>* argmax = nullptr) {
  detail::check_pool_input(x.rows(), b, "global_pool");
  const long ng = b.num_graphs(), f = x.cols();
  y.resize(ng, f);
  if (a == aggregation::max && argmax) argmax->resize(static_cast<std::size_t>(ng * f));
  index_t* ap = (a == aggregation::max && argmax) ? argmax->data() : nullptr;
  const T* xp = x.data();
  parallel_for(ng, long(x.rows()) * f >= detail::parallel_min_work, [&](long g) {
    simd::reduce_segment(b.node_offsets[g], b.node_offsets[g + 1], f, [&](index_t i) { return xp + long(i) * f; }, a,
                         y.data() + g * f, ap ? ap + g * f : nullptr);
  });
}

/// @brief Vector-Jacobian product of global_pool: writes dx (N x F) from dy (G x F).
template <class T>
void global_pool_backward(const batch& b, aggregation a, const matrix<T>& dy, const std::vector<index_t>* argmax,
                          matrix<T>& dx) {
  b.validate_offsets("global_pool_backward");
  HEPGNN_CHECK(dy.rows() == b.num_graphs(), "global_pool_backward: dy must have one row per graph (", b.num_graphs(),
               "), got ", dy.rows(), " x ", dy.cols());
  const long ng = b.num_graphs(), f = dy.cols();
  if (a == aggregation::max) {
    HEPGNN_CHECK(argmax && argmax->size() == static_cast<std::size_t>(ng * f),
                 "global_pool_backward: max needs the G x F arg-max of the forward pass (", ng * f, " entries), got ",
                 argmax ? argmax->size() : 0);
    // The arg-max ids index dx: each must lie in its graph (or be -1 for an empty one), as the forward over this
    // batch wrote them; another batch with the same graph count is refused here rather than written past.
    for (long g = 0; g < ng; ++g) {
      const index_t lo = b.node_offsets[g], hi = b.node_offsets[g + 1];
      for (long k = 0; k < f; ++k) {
        const index_t i = (*argmax)[static_cast<std::size_t>(g * f + k)];
        HEPGNN_CHECK(lo == hi ? i == -1 : (i >= lo && i < hi), "global_pool_backward: argmax[", g, "][", k, "] = ",
                     i, " is not a node of graph ", g, " (rows ", lo, "..", hi - 1,
                     "): pass the arg-max of the forward over this batch");
      }
    }
  }
  dx.resize(b.num_nodes(), f);
  T* dxp = dx.data();
  const index_t* arg = a == aggregation::max ? argmax->data() : nullptr;
  parallel_for(ng, long(b.num_nodes()) * f >= detail::parallel_min_work, [&](long g) {
    simd::reduce_segment_backward<simd::gradient_mode::assign>(b.node_offsets[g], b.node_offsets[g + 1], f, a,
                                                               dy.data() + g * f, arg ? arg + g * f : nullptr,
                                                               [&](index_t i) { return dxp + long(i) * f; });
  });
}

/// @brief Global pooling as a layer over a batch: forward(x, b, y, cache) with y G x F. No parameters.
template <class T>
class global_pool_layer {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  static constexpr rows_of output_rows = rows_of::graphs;  ///< one row per graph of the batch
  struct cache {
    std::vector<index_t> argmax;
  };
  explicit global_pool_layer(aggregation a = aggregation::mean) : aggr_(a) {}
  aggregation aggr() const { return aggr_; }

  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) { global_pool(x, b, aggr_, y, &c.argmax); }
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache&) const { global_pool(x, b, aggr_, y); }
  void backward(const matrix<T>& x, const batch& b, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    detail::check_pool_input(x.rows(), b, "global_pool_layer::backward");
    if (dx) global_pool_backward(b, aggr_, dy, &c.argmax, *dx);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  aggregation aggr_;
};

/// @brief Marker: attention pooling without a feature network (pools x itself).
struct no_feature_nn {};

/// @brief Attention pooling (PyG GlobalAttention): out_g = sum_{i in g} softmax_g(gate_nn(x_i)) * nn(x_i).
///
/// `Gate` is a layer mapping F -> 1 (a dense or an MLP); `NN` an optional layer applied to x before pooling
/// (no_feature_nn: pool x). The softmax runs over the nodes of each graph (simd::segment_softmax, max-subtracted);
/// empty graphs give 0.
/// Parameters "gate_nn.<name>" and "nn.<name>" as in PyG.
template <class T, class Gate, class NN = no_feature_nn>
class attention_pool {
  static constexpr bool has_nn = !std::is_same_v<NN, no_feature_nn>;
  static_assert(layer<Gate>, "hepgnn::attention_pool: Gate must satisfy the hepgnn::layer concept");
  struct empty {};
  using nn_type = std::conditional_t<has_nn, NN, empty>;
  template <class L>
  struct cache_of {
    using type = typename L::cache;
  };
  using nn_cache = typename std::conditional_t<has_nn, cache_of<nn_type>, std::type_identity<empty>>::type;

 public:
  using scalar = T;
  static constexpr int in_width = Gate::in_width;
  static constexpr int out_width = dynamic;
  static constexpr rows_of output_rows = rows_of::graphs;  ///< one row per graph of the batch
  struct cache {
    typename Gate::cache gate;
    nn_cache nn;
    matrix<T> score, feat, alpha, dscore, dfeat, dx2;
  };

  explicit attention_pool(Gate gate) requires(!has_nn) : gate_(std::move(gate)) {}
  attention_pool(Gate gate, NN nn) requires(has_nn) : gate_(std::move(gate)), nn_(std::move(nn)) {}

  Gate& gate_nn() { return gate_; }
  nn_type& nn() { return nn_; }

  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) { run<true>(*this, x, b, y, c); }
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const { run<false>(*this, x, b, y, c); }

  void backward(const matrix<T>& x, const batch& b, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    detail::check_pool_input(x.rows(), b, "attention_pool::backward");
    const matrix<T>& v = features(x, c);
    HEPGNN_CHECK(dy.rows() == b.num_graphs() && dy.cols() == v.cols(), "attention_pool::backward: dy must be ",
                 b.num_graphs(), " x ", v.cols(), ", got ", dy.rows(), " x ", dy.cols());
    const long f = v.cols();
    c.dscore.resize(x.rows(), 1);
    if constexpr (has_nn) c.dfeat.resize(x.rows(), f);
    // da_i = dy_g . v_i (into dscore), then the softmax VJP in place: ds_i = a_i (da_i - sum_k a_k da_k);
    // dv_i = a_i dy_g.
    for (index_t g = 0; g < b.num_graphs(); ++g)
      for (index_t i = b.begin(g); i < b.end(g); ++i) {
        c.dscore(i, 0) = dy.row(g).dot(v.row(i));
        if constexpr (has_nn) c.dfeat.row(i) = c.alpha(i, 0) * dy.row(g);
      }
    simd::segment_softmax_backward(std::span<const index_t>(b.node_offsets), c.alpha, c.dscore, c.dscore);
    gate_.backward(x, c.score, c.dscore, c.gate, dx);
    if constexpr (has_nn) {
      nn_.backward(x, c.feat, c.dfeat, c.nn, dx ? &c.dx2 : nullptr);
      if (dx) *dx += c.dx2;
    } else if (dx) {
      for (index_t g = 0; g < b.num_graphs(); ++g)
        for (index_t i = b.begin(g); i < b.end(g); ++i) dx->row(i) += c.alpha(i, 0) * dy.row(g);
    }
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    gate_.for_each_param(prefix + "gate_nn.", f);
    if constexpr (has_nn) nn_.for_each_param(prefix + "nn.", f);
  }

 private:
  static const matrix<T>& features(const matrix<T>& x, const cache& c) {
    if constexpr (has_nn) return c.feat; else return x;
  }

  /// Self is attention_pool (training) or const attention_pool (inference).
  template <bool Train, class Self>
  static void run(Self& self, const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) {
    detail::check_pool_input(x.rows(), b, "attention_pool");
    if constexpr (Train) self.gate_.forward(x, c.score, c.gate); else self.gate_.infer(x, c.score, c.gate);
    HEPGNN_CHECK(c.score.cols() == 1 && c.score.rows() == x.rows(),
                 "attention_pool: gate_nn must give one score per node (N x 1), got ", c.score.rows(), " x ",
                 c.score.cols());
    if constexpr (has_nn) {
      if constexpr (Train) self.nn_.forward(x, c.feat, c.nn); else self.nn_.infer(x, c.feat, c.nn);
    }
    const matrix<T>& v = features(x, c);
    const long f = v.cols();
    simd::segment_softmax(std::span<const index_t>(b.node_offsets), c.score, c.alpha);
    y.setZero(b.num_graphs(), f);
    for (index_t g = 0; g < b.num_graphs(); ++g)
      for (index_t i = b.begin(g); i < b.end(g); ++i) y.row(g) += c.alpha(i, 0) * v.row(i);
  }

  Gate gate_;
  [[no_unique_address]] nn_type nn_;
};

}  // namespace hepgnn
