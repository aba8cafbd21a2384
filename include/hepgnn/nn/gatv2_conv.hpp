#pragma once
/// @file gatv2_conv.hpp
/// @brief hepgnn::gatv2_conv: graph attention, version 2 (Brody, Alon, Yahav 2022, "How Attentive are Graph
/// Attention Networks?"), with PyTorch Geometric GATv2Conv semantics. Per head h, for the edges j -> i:
///
///   x_l = lin_l(x), x_r = lin_r(x)                       (N x H*C; share_weights: lin_r = lin_l)
///   e_ij = att_h . LeakyReLU(x_r[i] + x_l[j])            (negative_slope, default 0.2)
///   alpha_ij = softmax of e_ij over the edges entering i  (simd::softmax_segment)
///   out_i = sum_j alpha_ij x_l[j]                          (simd::reduce_segment, sum)
///   y_i = [out_i of every head] + bias (concat), or mean over heads of out_i + bias
///
/// The layer is only its message / update arithmetic and its parameters: the softmax, the reduction, the scatter to
/// sources and the products are the library's shared kernels. Every node's edges are handled by one thread (no
/// atomics), so results do not depend on the thread count.
///
/// Differences from PyG: no dropout on alpha (inference semantics; PyG's default dropout is 0), no edge features
/// (edge_dim), no bipartite input, no residual. With add_self_loops (default, as in PyG) the layer itself removes
/// the self loops of the caller's graph and gives every node one self loop, after its other incoming edges, as
/// PyG's remove_self_loops + add_self_loops do; the caller's graph is not changed. With share_weights only
/// lin_l.* is visited by for_each_param (as PyTorch's named_parameters; a PyG state_dict also lists the same tensors
/// as lin_r.*).

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/simd/segment_reduce.hpp"
#include "hepgnn/simd/segment_softmax.hpp"

namespace hepgnn {

/// @brief GATv2 attention (see the file comment). Parameters (PyG names): `att` [1, Heads, Out], `bias`
/// [Heads * Out] (concat) or [Out], `lin_l.weight` [Heads * Out, In], `lin_l.bias`, `lin_r.weight`, `lin_r.bias`.
/// @tparam In input width (in_channels), or dynamic.
/// @tparam Out channels per head (PyG out_channels), or dynamic. The output width is Heads * Out with Concat,
/// Out without.
/// @tparam Heads attention heads (>= 1). @tparam Concat concatenate the heads (true) or average them (false).
template <class T, int In = dynamic, int Out = dynamic, int Heads = 1, bool Concat = true>
class gatv2_conv {
  static_assert(Heads >= 1, "hepgnn::gatv2_conv: Heads must be at least 1");
  static constexpr int lin_width = Out == dynamic ? dynamic : Heads * Out;
  using linear = dense<T, In, lin_width>;

 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = Out == dynamic ? dynamic : (Concat ? Heads * Out : Out);
  static constexpr int heads = Heads;
  static constexpr bool concat = Concat;

  /// @brief Configuration (PyG argument names; heads and concat are template parameters).
  struct options {
    int in_channels = In;
    int out_channels = Out;  ///< per head
    double negative_slope = 0.2;
    bool add_self_loops = true;  ///< the layer adds them (see the file comment); false: the graph is used as given
    bool share_weights = false;
    bool bias = true;  ///< lin_l / lin_r biases and the output bias, as PyG's single `bias` flag
  };

  /// @brief What forward records for backward (and infer reuses as scratch: no allocation once shapes repeat).
  struct cache {
    matrix<T> xl, xr;    ///< lin_l(x), lin_r(x): N x H*C (xr unused with share_weights)
    matrix<T> alpha;     ///< E x H: scores, then attention coefficients
    matrix<T> edge;      ///< E x H*C: messages alpha * x_l[j] (forward), source-side gradients (backward)
    matrix<T> per_head;  ///< N x H*C: per-head sums before the head mean (Concat false)
    matrix<T> dscore, dout, dxl, dxr, datt, dx_r;
    graph loops;         ///< the caller's graph with one self loop per node (add_self_loops)
    source_index by_source;
    std::uint64_t forward_key = 0;  ///< fingerprint of the training forward's x and graph (0 after an infer)
  };

  /// @brief PyG's initialisation: glorot lin_l / lin_r weights and att, lin biases uniform in +-1/sqrt(in), zero
  /// output bias.
  explicit gatv2_conv(rng& gen, const options& o = {})
      : o_(checked(o)), lin_l_(gen, o.in_channels, Heads * o.out_channels, o.bias) {
    glorot(gen, lin_l_.weight());
    if (!o.share_weights) {
      lin_r_.emplace(gen, o.in_channels, Heads * o.out_channels, o.bias);
      glorot(gen, lin_r_->weight());
    }
    const long hc = long(Heads) * o.out_channels;
    att_.resize(1, hc);
    const double a = std::sqrt(6.0 / double(Heads + o.out_channels));  // glorot of [1, H, C]: fans H and C
    for (long k = 0; k < hc; ++k) att_(0, k) = T(gen.uniform(-a, a));
    att_grad_ = matrix<T>::Zero(1, hc);
    bias_ = matrix<T>::Zero(1, o.bias ? (Concat ? hc : o.out_channels) : 0);
    bias_grad_ = bias_;
  }

  const options& config() const { return o_; }
  int in_features() const { return o_.in_channels; }
  int out_features() const { return Concat ? Heads * o_.out_channels : o_.out_channels; }
  linear& lin_l() { return lin_l_; }
  /// @brief lin_r (lin_l itself with share_weights).
  linear& lin_r() { return lin_r_ ? *lin_r_ : lin_l_; }
  /// @brief att as 1 x H*C (head-major, as PyTorch's [1, H, C]).
  matrix<T>& att() { return att_; }
  /// @brief Output bias as 1 x out (empty without bias).
  matrix<T>& bias() { return bias_; }

  /// @brief Training forward: y (N x out). Records x_l, x_r and alpha in the cache.
  void forward(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) {
    run(x, g, y, c);
    c.forward_key = forward_key(x, g);
  }
  /// @brief Inference; the cache is the only state written (a later backward needs a new training forward).
  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) const {
    c.forward_key = 0;
    run(x, g, y, c);
  }

  /// @brief Adds parameter gradients for dy (N x out); writes dL/dx when dx is not null.
  void backward(const matrix<T>& x, const graph& g0, const matrix<T>&, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    check_input(x, g0, "gatv2_conv::backward");
    check_same_forward(c.forward_key, forward_key(x, g0), "gatv2_conv::backward", "graph or input x");
    const graph& g = o_.add_self_loops ? c.loops : g0;
    const long n = x.rows(), hc = long(Heads) * o_.out_channels, ne = g.num_edges();
    HEPGNN_CHECK(g.num_nodes == n && c.xl.rows() == n && c.alpha.rows() == ne, "gatv2_conv::backward: call forward "
                 "with this input (", n, " nodes) first");
    check_shape(dy, n, out_features(), "gatv2_conv::backward: output gradient dy");
    if (o_.bias) add_column_sums(dy, bias_grad_);
    const T* dout = dy.data();
    if constexpr (!Concat) {  // d(mean over heads) / d(head h) = 1 / H
      c.dout.resize(n, hc);
      for (long i = 0; i < n; ++i)
        for (int h = 0; h < Heads; ++h) c.dout.row(i).segment(long(h) * o_.out_channels, o_.out_channels) =
              dy.row(i) / T(Heads);
      dout = c.dout.data();
    }
    c.dscore.resize(ne, Heads);
    c.edge.resize(ne, hc);
    c.dxr.resize(n, hc);
    c.datt.resize(n, hc);
    parallel_for(n, long(ne) * hc >= detail::parallel_min_work,
                 [&](long i) { node_backward(g, static_cast<index_t>(i), dout, c); });
    // x_l[j] receives alpha * dout[i] and the score gradient of every edge leaving j: a gather by source.
    c.by_source.build(g);
    c.dxl.setZero(n, hc);
    scatter_sources_add(g, c.by_source, c.edge, c.dxl);
    no_cache nc;
    if (lin_r_) {
      lin_l_.backward(x, c.xl, c.dxl, nc, dx);
      lin_r_->backward(x, c.xr, c.dxr, nc, dx ? &c.dx_r : nullptr);
      if (dx) *dx += c.dx_r;
    } else {
      c.dxl += c.dxr;  // x_r is x_l
      lin_l_.backward(x, c.xl, c.dxl, nc, dx);
    }
    add_column_sums(c.datt, att_grad_);  // per-node partials, summed in node order
  }

  /// @brief att, bias, lin_l.*, lin_r.* (PyTorch's state_dict order); lin_r.* only without share_weights.
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "att", make_parameter(att_, att_grad_, {1, Heads, o_.out_channels}));
    if (o_.bias) f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
    lin_l_.for_each_param(prefix + "lin_l.", f);
    if (lin_r_) lin_r_->for_each_param(prefix + "lin_r.", f);
  }

 private:
  static options checked(const options& o) {
    HEPGNN_CHECK(o.in_channels > 0 && o.out_channels > 0, "gatv2_conv: in_channels and out_channels must be positive "
                 "(pass them when In/Out are dynamic), got ", o.in_channels, " and ", o.out_channels);
    HEPGNN_CHECK(width_accepts(In, o.in_channels) && width_accepts(Out, o.out_channels), "gatv2_conv: options ",
                 o.in_channels, " -> ", o.out_channels, " contradict the compile-time widths ", In, " -> ", Out);
    return o;
  }
  static void glorot(rng& gen, matrix<T>& w) {
    const double a = std::sqrt(6.0 / double(w.rows() + w.cols()));
    for (long k = 0; k < w.size(); ++k) w.data()[k] = T(gen.uniform(-a, a));
  }

  void check_input(const matrix<T>& x, const graph& g, const char* who) const {
    check_graph_input(x, g, who);
    HEPGNN_CHECK(x.cols() == o_.in_channels, who, ": x must have ", o_.in_channels, " features (in_channels), got ",
                 x.rows(), " x ", x.cols());
  }

  /// The caller's graph without self loops, then one self loop per node at the end of its incoming edges (PyG
  /// appends the loops after all edges). Reuses the cache's vectors: no allocation once the sizes repeat.
  static void add_loops(const graph& g, graph& out) {
    const index_t n = g.num_nodes;
    out.num_nodes = n;
    out.offsets.resize(static_cast<std::size_t>(n) + 1);
    out.sources.resize(g.sources.size() + static_cast<std::size_t>(n));
    index_t k = 0;
    for (index_t i = 0; i < n; ++i) {
      for (index_t j : g.incoming(i))
        if (j != i) out.sources[k++] = j;
      out.sources[k++] = i;
      out.offsets[i + 1] = k;
    }
    out.sources.resize(static_cast<std::size_t>(k));
  }

  void run(const matrix<T>& x, const graph& g0, matrix<T>& y, cache& c) const {
    check_input(x, g0, "gatv2_conv");
    if (o_.add_self_loops) add_loops(g0, c.loops);
    const graph& g = o_.add_self_loops ? c.loops : g0;
    no_cache nc;
    lin_l_.infer(x, c.xl, nc);
    if (lin_r_) lin_r_->infer(x, c.xr, nc);
    const long n = x.rows(), hc = long(Heads) * o_.out_channels, ne = g.num_edges();
    c.alpha.resize(ne, Heads);
    c.edge.resize(ne, hc);
    if constexpr (!Concat) c.per_head.resize(n, hc);
    y.resize(n, out_features());
    parallel_for(n, long(ne) * hc >= detail::parallel_min_work,
                 [&](long i) { node_forward(g, static_cast<index_t>(i), c, y); });
  }

  /// Scores, softmax and aggregation of the edges entering node i (one thread per node).
  void node_forward(const graph& g, index_t i, cache& c, matrix<T>& y) const {
    const long C = o_.out_channels, hc = Heads * C;
    const T slope = T(o_.negative_slope);
    const index_t b = g.offsets[i], e = g.offsets[i + 1];
    const T* xl = c.xl.data();
    const T* xri = (lin_r_ ? c.xr.data() : xl) + long(i) * hc;
    const T* att = att_.data();
    T* a = c.alpha.data();
    for (index_t r = b; r < e; ++r) {
      const T* xlj = xl + long(g.sources[r]) * hc;
      for (int h = 0; h < Heads; ++h) {
        T s = 0;
        for (long k = h * C; k < (h + 1) * C; ++k) {
          const T z = xri[k] + xlj[k];
          s += att[k] * (z > T(0) ? z : slope * z);
        }
        a[long(r) * Heads + h] = s;
      }
    }
    simd::softmax_segment(b, e, Heads, a, Heads, a, Heads);
    T* m = c.edge.data();
    for (index_t r = b; r < e; ++r) {
      const T* xlj = xl + long(g.sources[r]) * hc;
      for (int h = 0; h < Heads; ++h) {
        const T ah = a[long(r) * Heads + h];
        for (long k = h * C; k < (h + 1) * C; ++k) m[long(r) * hc + k] = ah * xlj[k];
      }
    }
    T* out = Concat ? y.data() + long(i) * hc : c.per_head.data() + long(i) * hc;
    simd::reduce_segment(b, e, hc, [&](index_t r) { return m + long(r) * hc; }, aggregation::sum, out,
                         static_cast<index_t*>(nullptr));
    const T* bias = o_.bias ? bias_.data() : nullptr;
    if constexpr (Concat) {
      if (bias) simd::row_add(out, bias, hc);
    } else {
      T* yi = y.data() + long(i) * C;
      for (long k = 0; k < C; ++k) {
        T s = out[k];
        for (int h = 1; h < Heads; ++h) s += out[h * C + k];
        yi[k] = s / T(Heads) + (bias ? bias[k] : T(0));
      }
    }
  }

  /// Gradients of the edges entering node i: dscore (softmax VJP), the att partial of node i, dx_r[i] (a sum
  /// segment reduction of the pre-activation gradients) and, per edge, the gradient that goes to x_l[j].
  void node_backward(const graph& g, index_t i, const T* dout, cache& c) const {
    const long C = o_.out_channels, hc = Heads * C;
    const T slope = T(o_.negative_slope);
    const index_t b = g.offsets[i], e = g.offsets[i + 1];
    const T* xl = c.xl.data();
    const T* xri = (lin_r_ ? c.xr.data() : xl) + long(i) * hc;
    const T* doi = dout + long(i) * hc;
    const T* att = att_.data();
    const T* a = c.alpha.data();
    T* ds = c.dscore.data();
    for (index_t r = b; r < e; ++r) {  // dalpha = dout[i] . x_l[j] per head
      const T* xlj = xl + long(g.sources[r]) * hc;
      for (int h = 0; h < Heads; ++h) {
        T s = 0;
        for (long k = h * C; k < (h + 1) * C; ++k) s += doi[k] * xlj[k];
        ds[long(r) * Heads + h] = s;
      }
    }
    simd::softmax_segment_backward(b, e, Heads, a, Heads, ds, Heads, ds, Heads);
    T* dat = c.datt.data() + long(i) * hc;
    std::fill(dat, dat + hc, T(0));
    T* d = c.edge.data();
    for (index_t r = b; r < e; ++r) {  // through att . LeakyReLU(x_r[i] + x_l[j]); z recomputed, not stored
      const T* xlj = xl + long(g.sources[r]) * hc;
      for (int h = 0; h < Heads; ++h) {
        const T dsh = ds[long(r) * Heads + h];
        for (long k = h * C; k < (h + 1) * C; ++k) {
          const T z = xri[k] + xlj[k];
          const bool pos = z > T(0);  // PyTorch's leaky_relu backward: slope where z <= 0
          dat[k] += dsh * (pos ? z : slope * z);
          d[long(r) * hc + k] = dsh * att[k] * (pos ? T(1) : slope);
        }
      }
    }
    simd::reduce_segment(b, e, hc, [&](index_t r) { return d + long(r) * hc; }, aggregation::sum,
                         c.dxr.data() + long(i) * hc, static_cast<index_t*>(nullptr));
    for (index_t r = b; r < e; ++r)  // x_l[j] also carries the message alpha * x_l[j]
      for (int h = 0; h < Heads; ++h) {
        const T ah = a[long(r) * Heads + h];
        for (long k = h * C; k < (h + 1) * C; ++k) d[long(r) * hc + k] += ah * doi[k];
      }
  }

  options o_;
  linear lin_l_;
  std::optional<linear> lin_r_;
  matrix<T> att_, att_grad_, bias_, bias_grad_;
};

}  // namespace hepgnn
