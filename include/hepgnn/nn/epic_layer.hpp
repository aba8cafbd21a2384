#pragma once
/// @file epic_layer.hpp
/// @brief hepgnn::epic_layer: the equivariant point-cloud (EPiC) layer of EPiC-GAN (Buhmann, Kasieczka, Thaler,
/// arXiv:2301.08128): a global state per jet and per-particle features, updated in O(N) per jet.
///
/// For jet q with particles p_i (width `hidden`) and global state g_q (width `latent`):
///   global: a = lrelu(W_g1 [mean_i p_i, s sum_i p_i, g_q] + b_g1),   g'_q = lrelu(W_g2 a + b_g2 + g_q)
///   local:  c_i = lrelu(W_l1 [p_i, g'_q] + b_l1),                  p'_i = lrelu(W_l2 c_i + b_l2 + p_i)
/// (global first, then local, both residual before the activation, as EPiC-GAN's models.py). s is `sum_scale`:
/// EPiC-GAN's masked layer (EPiC_layer_mask, sum_scale 1e-2) scales the sum so that it stays O(1) at 150
/// particles; its unmasked layer (EPiC_layer, s = 1) meets only batches of one multiplicity. The particles are the
/// rows of a batch (core/batch.hpp): only real particles are stored, so the mean and sum pools are the batch's
/// global_pool and a padded particle costs nothing. W_l1 is kept as two products, W_l1 = [W_lp | W_lg]: the
/// global part W_lg g'_q runs once per jet and is broadcast, so the per-particle work is hidden^2 + hidden^2
/// multiply-adds (EPiC-GAN's concatenation would spend hidden * (hidden + latent) on every particle).
/// Parameters: "fc_global1.*", "fc_global2.*", "fc_local1.*" (the particle part, with the bias),
/// "fc_local1_global.weight" (the global part) and "fc_local2.*".

#include <cmath>
#include <string>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/simd/elementwise.hpp"

namespace hepgnn {

/// @brief One EPiC layer (see the file comment). forward is const (the cache is the caller's); backward adds
/// parameter gradients and writes the input gradients.
template <class T>
class epic_layer {
 public:
  using scalar = T;

  /// @brief What backward needs from forward, and backward's scratch.
  struct cache {
    matrix<T> mean, sum;        ///< pools of the input particles (G x hidden)
    matrix<T> pooled;           ///< [mean, sum, g] (G x (2 hidden + latent))
    matrix<T> a;                ///< global hidden state after its activation (G x hidden)
    matrix<T> broadcast_proj;   ///< W_lg g' per jet (G x hidden), then per particle
    matrix<T> c;                ///< local hidden state after its activation (rows x hidden)
    matrix<T> t, dt, dc, dp2, dproj, dg2, dpooled, dpool;  ///< scratch
  };

  /// @brief A layer on particles of width `hidden` and a global state of width `latent`; `negative_slope` of the
  /// leaky ReLUs (EPiC-GAN: PyTorch's default 0.01). Initialised like PyTorch's Linear.
  epic_layer(rng& gen, int hidden, int latent, double negative_slope = 0.01, double sum_scale = 1e-2)
      : fc_global1_(gen, 2 * hidden + latent, hidden),
        fc_global2_(gen, hidden, latent),
        fc_local1_(gen, hidden, hidden),
        fc_local1_global_(gen, latent, hidden, false),
        fc_local2_(gen, hidden, hidden),
        slope_(static_cast<T>(negative_slope)),
        sum_scale_(static_cast<T>(sum_scale)) {
    HEPGNN_CHECK(negative_slope > 0 && negative_slope < 1, "epic_layer: negative_slope must be in (0, 1), got ",
                 negative_slope);  // > 0: the sign of an output tells the backward which slope was taken
    HEPGNN_CHECK(std::isfinite(sum_scale) && sum_scale > 0, "epic_layer: sum_scale must be finite and > 0, got ",
                 sum_scale);
  }

  int hidden() const { return fc_local2_.out_features(); }
  int latent() const { return fc_global2_.out_features(); }
  T sum_scale() const { return sum_scale_; }

  /// @brief g_out (G x latent) and p_out (rows x hidden) from g (G x latent) and p (rows x hidden), rows the
  /// particles of b's jets.
  void forward(const batch& b, const matrix<T>& g, const matrix<T>& p, matrix<T>& g_out, matrix<T>& p_out,
               cache& c) const {
    const long H = hidden(), L = latent(), G = b.num_graphs();
    check_shape(g, G, L, "epic_layer: global state g");
    check_shape(p, b.num_nodes(), H, "epic_layer: particles p");
    global_pool(p, b, aggregation::mean, c.mean);
    global_pool(p, b, aggregation::sum, c.sum);
    c.sum *= sum_scale_;
    c.pooled.resize(G, 2 * H + L);
    c.pooled << c.mean, c.sum, g;
    affine(fc_global1_, c.pooled, c.a);
    activate(c.a);
    affine(fc_global2_, c.a, g_out);
    g_out += g;
    activate(g_out);
    affine(fc_local1_global_, g_out, c.t);
    global_pool_backward(b, aggregation::sum, c.t, nullptr, c.broadcast_proj);  // jet row -> its particles
    affine(fc_local1_, p, c.c);
    c.c += c.broadcast_proj;
    activate(c.c);
    affine(fc_local2_, c.c, p_out);
    p_out += p;
    activate(p_out);
  }

  /// @brief Adds the parameter gradients for dg_out, dp_out and writes dg, dp. g_out, p_out: forward's outputs
  /// for (b, g, p) with the cache c it filled.
  void backward(const batch& b, const matrix<T>& g, const matrix<T>& p, const matrix<T>& g_out,
                const matrix<T>& p_out, const matrix<T>& dg_out, const matrix<T>& dp_out, cache& c, matrix<T>& dg,
                matrix<T>& dp) {
    const long H = hidden(), L = latent();
    check_shape(dg_out, g_out.rows(), L, "epic_layer::backward: global gradient dg_out");
    check_shape(dp_out, p_out.rows(), H, "epic_layer::backward: particle gradient dp_out");
    no_cache none;
    // local update
    activation_gradient(p_out, dp_out, c.dt);
    fc_local2_.backward(c.c, p_out, c.dt, none, &c.dc);
    dp = c.dt;  // residual
    activation_gradient(c.c, c.dc, c.dc);
    fc_local1_.backward(p, c.c, c.dc, none, &c.dp2);
    dp += c.dp2;
    global_pool(c.dc, b, aggregation::sum, c.dproj);  // the broadcast's backward: sum over each jet's particles
    fc_local1_global_.backward(g_out, c.t, c.dproj, none, &c.dg2);
    c.dg2 += dg_out;
    // global update
    activation_gradient(g_out, c.dg2, c.dg2);
    fc_global2_.backward(c.a, g_out, c.dg2, none, &c.dt);
    dg = c.dg2;  // residual
    activation_gradient(c.a, c.dt, c.dt);
    fc_global1_.backward(c.pooled, c.a, c.dt, none, &c.dpooled);
    dg += c.dpooled.rightCols(L);
    c.t = c.dpooled.leftCols(H);
    global_pool_backward(b, aggregation::mean, c.t, nullptr, c.dpool);
    dp += c.dpool;
    c.t = sum_scale_ * c.dpooled.middleCols(H, H);
    global_pool_backward(b, aggregation::sum, c.t, nullptr, c.dpool);
    dp += c.dpool;
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    fc_global1_.for_each_param(prefix + "fc_global1.", f);
    fc_global2_.for_each_param(prefix + "fc_global2.", f);
    fc_local1_.for_each_param(prefix + "fc_local1.", f);
    fc_local1_global_.for_each_param(prefix + "fc_local1_global.", f);
    fc_local2_.for_each_param(prefix + "fc_local2.", f);
  }

  /// @brief Multiply-adds of one forward: per jet (global update and the broadcast projection) and per particle.
  long macs_per_jet() const {
    const long H = hidden(), L = latent();
    return (2 * H + L) * H + H * L + L * H;
  }
  long macs_per_particle() const { return 2L * hidden() * hidden(); }

  /// @brief y = lrelu(y) in place, with this layer's slope.
  void activate(matrix<T>& y) const { act::apply<act::leaky_relu>(y.data(), y.data(), static_cast<long>(y.size()), slope_); }
  /// @brief dx = dy * lrelu'(.) given the activation's output y (its sign is the input's: the slope is > 0).
  void activation_gradient(const matrix<T>& y, const matrix<T>& dy, matrix<T>& dx) const {
    dx.resize(dy.rows(), dy.cols());
    act::apply_gradient<act::leaky_relu>(y.data(), y.data(), dy.data(), dx.data(), static_cast<long>(y.size()),
                                         slope_);
  }

 private:
  static void affine(const dense<T>& l, const matrix<T>& x, matrix<T>& y) {
    no_cache none;
    l.infer(x, y, none);
  }

  dense<T> fc_global1_, fc_global2_, fc_local1_, fc_local1_global_, fc_local2_;
  T slope_, sum_scale_;
};

}  // namespace hepgnn
