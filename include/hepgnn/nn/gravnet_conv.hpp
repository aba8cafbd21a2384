#pragma once
/// @file gravnet_conv.hpp
/// @brief hepgnn::gravnet_conv: GravNet (Qasim et al. 2019) with PyTorch Geometric GravNetConv semantics.
///
///   s = lin_s(x)            learned coordinates (N x S)
///   h = lin_h(x)            features to propagate (N x P)
///   N(i) = the k nearest nodes to i in s within i's graph of the batch, i itself included (ties: lower index)
///   w_ij = exp(-10 |s_i - s_j|^2)
///   y_i = lin_out1(x_i) + lin_out2([mean_{j in N(i)} w_ij h_j, max_{j in N(i)} w_ij h_j])
/// lin_out1 has no bias, lin_out2 has one (as in PyG). The neighbour selection is piecewise constant; gradients
/// reach s (and lin_s) through the weights w_ij. Graphs with fewer than k nodes use all of their nodes.

#include <cmath>
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn {

/// @brief GravNetConv (see the file comment). Parameters: lin_s.{weight,bias}, lin_h.{weight,bias},
/// lin_out1.weight, lin_out2.{weight,bias}.
/// @tparam In, Out input and output widths, or dynamic.
template <class T, int In = dynamic, int Out = dynamic>
class gravnet_conv {
 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = Out;

  /// @brief Configuration (PyG argument names).
  struct options {
    int in_channels = In;
    int out_channels = Out;
    int space_dimensions = 4;
    int propagate_dimensions = 22;
    int k = 40;
  };

  /// @brief What forward records for backward (and infer reuses as scratch).
  struct cache {
    matrix<T> s, h, agg, dagg, dh, ds, dmsg, dse;
    matrix<T> msg;                ///< N x P scratch: row i holds one message into i at a time
    graph g;                      ///< kNN graph in s: incoming(i) = neighbours of i
    knn_workspace<T> knn;         ///< buffers of the kNN search
    source_index by_source;
    std::vector<T> w;             ///< per edge
    std::vector<index_t> argmax;  ///< N x P edge ids of the max
    matrix<T> out2;               ///< lin_out2 of the aggregated messages
    std::uint64_t forward_key = 0;  ///< fingerprint of the training forward's x and batch (0 after an infer)
  };

  gravnet_conv(rng& gen, const options& o)
      : o_(checked(o)),
        lin_s_(gen, o.in_channels, o.space_dimensions),
        lin_h_(gen, o.in_channels, o.propagate_dimensions),
        lin_out1_(gen, o.in_channels, o.out_channels, false),
        lin_out2_(gen, 2 * o.propagate_dimensions, o.out_channels) {}

  const options& config() const { return o_; }
  dense<T>& lin_s() { return lin_s_; }
  dense<T>& lin_h() { return lin_h_; }
  dense<T>& lin_out1() { return lin_out1_; }
  dense<T>& lin_out2() { return lin_out2_; }

  /// @brief Training forward: y (N x out).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const { run(x, b, y, c, true); }
  /// @brief Inference (reuses the cache: no allocation once the sizes repeat).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const { run(x, b, y, c, false); }

  /// @brief Adds parameter gradients for dy (N x out); writes dL/dx when dx is not null.
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    const long n = x.rows(), P = o_.propagate_dimensions, S = o_.space_dimensions;
    check_same_forward(c.forward_key, forward_key(x, b), "gravnet_conv::backward", "input x or batch");
    check_shape(dy, n, o_.out_channels, "gravnet_conv::backward: output gradient dy");
    typename dense<T>::cache none;
    lin_out1_.backward(x, y, dy, none, nullptr);
    lin_out2_.backward(c.agg, y, dy, none, nullptr);
    c.dagg.noalias() = dy * lin_out2_.weight();
    const index_t* off = c.g.offsets.data();
    const index_t* src = c.g.sources.data();
    const long ne = c.g.num_edges();
    c.dmsg.resize(ne, P);  // dL/dm_e
    c.dse.resize(ne, S);   // dL/ds_dst contribution of edge e (the source gets minus this)
    c.ds.resize(n, S);
    parallel_for(n, n * P * 8 >= detail::parallel_min_work, [&](long i) {
      const index_t e0 = off[i], e1 = off[i + 1];
      simd::reduce_segment_concat_backward<simd::gradient_mode::assign>(
          e0, e1, P, aggregations, c.dagg.data() + i * 2 * P, c.argmax.data() + i * P,
          [&](index_t e) { return c.dmsg.data() + long(e) * P; });
      // message m_e = w_e h_j, w_e = exp(-10 d), d = |s_i - s_j|^2: dd = -10 w dw, dd/ds_i = 2 (s_i - s_j)
      T* dsi = c.ds.data() + i * S;
      std::fill(dsi, dsi + S, T(0));
      const T* si = c.s.data() + i * S;
      for (index_t e = e0; e < e1; ++e) {
        const long j = src[e];
        const T* dm = c.dmsg.data() + long(e) * P;
        const T* hj = c.h.data() + j * P;
        T dw = 0;
        for (long f = 0; f < P; ++f) dw += dm[f] * hj[f];
        const T dd = T(-10) * c.w[e] * dw;
        const T* sj = c.s.data() + j * S;
        T* dse = c.dse.data() + long(e) * S;
        for (long q = 0; q < S; ++q) {
          dse[q] = T(2) * dd * (si[q] - sj[q]);
          dsi[q] += dse[q];
        }
      }
    });
    // to the sources j: dh_j gets w_e dL/dm_e, ds_j minus what ds_i got (through the source index: deterministic)
    c.dh.resize(n, P);
    parallel_for(n, n * P * 8 >= detail::parallel_min_work, [&](long j) {
      T* dhj = c.dh.data() + j * P;
      T* dsj = c.ds.data() + j * S;
      std::fill(dhj, dhj + P, T(0));
      for (index_t q = c.by_source.offsets[j]; q < c.by_source.offsets[j + 1]; ++q) {
        const index_t e = c.by_source.edges[q];
        const T we = c.w[e];
        const T* dm = c.dmsg.data() + long(e) * P;
        for (long f = 0; f < P; ++f) dhj[f] += we * dm[f];
        const T* dse = c.dse.data() + long(e) * S;
        for (long r = 0; r < S; ++r) dsj[r] -= dse[r];
      }
    });
    lin_h_.backward(x, c.h, c.dh, none, nullptr);
    lin_s_.backward(x, c.s, c.ds, none, nullptr);
    if (dx) {
      dx->resize(n, o_.in_channels);
      dx->noalias() = dy * lin_out1_.weight();
      dx->noalias() += c.dh * lin_h_.weight();
      dx->noalias() += c.ds * lin_s_.weight();
    }
    (void)b;
  }

  /// @brief Visits lin_s, lin_h, lin_out1, lin_out2 (PyG GravNetConv state_dict names).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    lin_s_.for_each_param(prefix + "lin_s.", f);
    lin_h_.for_each_param(prefix + "lin_h.", f);
    lin_out1_.for_each_param(prefix + "lin_out1.", f);
    lin_out2_.for_each_param(prefix + "lin_out2.", f);
  }

 private:
  static const options& checked(const options& o) {
    HEPGNN_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.space_dimensions > 0 && o.propagate_dimensions > 0 &&
                     o.k > 0,
                 "gravnet_conv: in_channels, out_channels, space_dimensions, propagate_dimensions and k must be "
                 "positive, got ",
                 o.in_channels, ", ", o.out_channels, ", ", o.space_dimensions, ", ", o.propagate_dimensions, ", ", o.k);
    HEPGNN_CHECK(width_accepts(In, o.in_channels) && width_accepts(Out, o.out_channels), "gravnet_conv: runtime widths ",
                 o.in_channels, " -> ", o.out_channels, " contradict the compile-time widths ", In, " -> ", Out);
    return o;
  }

  void run(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, bool train) const {
    const char* who = train ? "gravnet_conv::forward" : "gravnet_conv::infer";
    check_cols(x, o_.in_channels, who);
    b.validate_offsets(who);
    HEPGNN_CHECK(b.num_nodes() == x.rows(), who, ": the batch covers ", b.num_nodes(), " nodes but x has ", x.rows(),
                 " rows");
    check_finite(x, who);
    c.forward_key = train ? forward_key(x, b) : 0;  // infer overwrites what backward reads
    const long n = x.rows(), P = o_.propagate_dimensions, S = o_.space_dimensions;
    // The library's products, not Eigen's: Eigen's threaded GEMM allocates its blocking space on every call.
    simd::linear_forward(x, lin_s_.weight(), lin_s_.bias().data(), c.s);
    simd::linear_forward(x, lin_h_.weight(), lin_h_.bias().data(), c.h);
    knn_options ko;
    ko.include_self = true;
    knn_graph_into(c.s.data(), static_cast<index_t>(n), static_cast<int>(S), S, o_.k, b, ko, c.g, c.knn);
    const index_t* off = c.g.offsets.data();
    const index_t* src = c.g.sources.data();
    const long ne = c.g.num_edges();
    c.w.resize(static_cast<std::size_t>(ne));
    c.agg.resize(n, 2 * P);
    if (train) c.argmax.resize(static_cast<std::size_t>(n * P));
    c.msg.resize(n, P);
    parallel_for(n, n * P * 8 >= detail::parallel_min_work, [&](long i) {
      const index_t e0 = off[i], e1 = off[i + 1];
      const T* si = c.s.data() + i * S;
      for (index_t e = e0; e < e1; ++e) {
        const T* sj = c.s.data() + long(src[e]) * S;
        T d = 0;
        for (long q = 0; q < S; ++q) d += (si[q] - sj[q]) * (si[q] - sj[q]);
        c.w[e] = std::exp(T(-10) * d);
      }
      T* m = c.msg.data() + i * P;
      auto message = [&](index_t e) {  // m_e = w_e h_j, one edge at a time
        const T* hj = c.h.data() + long(src[e]) * P;
        const T we = c.w[e];
        for (long f = 0; f < P; ++f) m[f] = we * hj[f];
        return m;
      };
      simd::reduce_segment_concat(e0, e1, P, message, aggregations, c.agg.data() + i * 2 * P,
                                  train ? c.argmax.data() + i * P : nullptr);
    });
    if (train) c.by_source.build(c.g);
    simd::linear_forward(x, lin_out1_.weight(), nullptr, y);
    simd::linear_forward(c.agg, lin_out2_.weight(), lin_out2_.bias().data(), c.out2);
    y += c.out2;
  }

  /// y_i reads [mean, max] of the messages entering i.
  static constexpr aggregation aggregations[] = {aggregation::mean, aggregation::max};

  options o_;
  dense<T> lin_s_, lin_h_, lin_out1_, lin_out2_;
};

}  // namespace hepgnn
