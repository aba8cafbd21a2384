#pragma once
/// @file epic_discriminator.hpp
/// @brief hepgnn::epic_discriminator: EPiC-GAN's discriminator (EPiC_discriminator of uhh-pd-ml/EPiC-GAN's
/// models.py) on the library's EPiC layers (nn/epic_layer.hpp).
///
/// Per jet: input [num_particles, input_features + 1] = (features, mask - 0.5), the layout of the generators'
/// g_raw and of MPGAN's normalised real jets (models/mpgan_training.hpp). Only the real particles (mask column
/// 0.5) are read; then
///   - p = lrelu(W_l1 x + b),  p = lrelu(W_l2 p + b + p)                                 (hidden wide)
///   - g = lrelu(W_g2 lrelu(W_g1 [mean p, s sum p] + b) + b)                            (latent wide)
///   - `layers` EPiC layers;
///   - d = lrelu(W_g3 [mean p, s sum p, g] + b),  d = lrelu(W_g4 d + b + d),  out = W_g5 d + b: one score per jet,
///     unbounded (EPiC-GAN trains its least-squares loss on it, no sigmoid).
/// Means and sums run over the real particles only: padded particles do not change the output and cost nothing.
/// s = sum_scale (1e-2, EPiC-GAN's masked discriminator EPiC_discriminator_mask; its mean divides the masked sum
/// by all num_particles slots, here by the real particles, as EPiC-GAN's unmasked code on single-multiplicity
/// batches does).
/// Not taken from EPiC-GAN: weight normalisation (plain Linear layers here).

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/fingerprint.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/epic_layer.hpp"
#include "hepgnn/nn/pooling.hpp"

namespace hepgnn {

/// @brief Hyperparameters of epic_discriminator (defaults: EPiC-GAN's start_training.py).
struct epic_discriminator_config {
  int num_particles = 30;        ///< particles per jet (n_points)
  int input_features = 3;        ///< eta_rel, phi_rel, pt_rel before the mask column (feats)
  int latent = 10;               ///< global state width (latent)
  int hidden = 128;              ///< particle feature width (hid_d)
  int layers = 3;                ///< EPiC layers (equiv_layers_discriminator)
  double negative_slope = 0.01;  ///< leaky ReLU slope (F.leaky_relu's default)
  double sum_scale = 1e-2;       ///< factor of the sum pools (EPiC-GAN's masked layers: sum_scale 1e-2)
  std::uint64_t seed = 1;        ///< weight initialisation

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("num_particles", num_particles, 1, 1 << 16);
    f("input_features", input_features, 1, 1 << 12);
    f("latent", latent, 1, 1 << 12);
    f("hidden", hidden, 1, 1 << 12);
    f("layers", layers, 1, 64);
    f("negative_slope", negative_slope, 1e-6, 0.999);
    f("sum_scale", sum_scale, 1e-12, 1e12);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief EPiC-GAN's discriminator (see the file comment). It has no dropout: forward and infer compute the same.
template <class T>
class epic_discriminator {
 public:
  using scalar = T;
  using config_type = epic_discriminator_config;
  static constexpr std::string_view family = "epic_discriminator";
  static constexpr int format_version = 1;

  /// @brief What forward, infer and backward use (one per thread).
  struct workspace {
    batch b;                          ///< the real particles of each jet
    std::vector<index_t> slots;       ///< row of x of each real particle
    matrix<T> x;                      ///< features of the real particles
    matrix<T> p1, p2;                 ///< particle embedding (after the first and the second layer)
    matrix<T> mean, sum, pooled0, a, g0;  ///< the first global state
    std::vector<matrix<T>> g, p;      ///< input of EPiC layer l; g[layers], p[layers]: the last one's output
    std::vector<typename epic_layer<T>::cache> c;
    matrix<T> pooled, d1, d2, out;    ///< the head; out: B x 1 scores
    matrix<T> dd, dt, dpooled, dg, dp, dg_next, dp_next, dpool;  ///< backward buffers
    std::uint64_t forward_key = 0;    ///< fingerprint of the training forward's x (0 after an infer)
  };

  explicit epic_discriminator(const epic_discriminator_config& cfg = {})
      : epic_discriminator(checked(cfg), rng(cfg.seed)) {}

  const epic_discriminator_config& config() const { return cfg_; }

  /// @brief Training forward: D(x) (B x 1) for x ((B * num_particles) x (input_features + 1), jet by jet, last
  /// column mask - 0.5 in {-0.5, 0.5}).
  const matrix<T>& forward(const matrix<T>& x, workspace& ws) const {
    run(x, ws, "epic_discriminator::forward");
    ws.forward_key = forward_key(x);
    return ws.out;
  }
  /// @brief As forward; `unused` is the dropout generator a GAN training step hands every discriminator.
  const matrix<T>& forward(const matrix<T>& x, workspace& ws, rng& /*unused*/) const { return forward(x, ws); }
  /// @brief Inference (the same computation).
  const matrix<T>& infer(const matrix<T>& x, workspace& ws) const {
    run(x, ws, "epic_discriminator::infer");
    ws.forward_key = 0;
    return ws.out;
  }

  /// @brief Adds parameter gradients for dout (dL/dD(x), B x 1); writes dL/dx when dx is not null (0 in the mask
  /// column and on padded rows). Call forward with this x first (checked: core/fingerprint.hpp).
  void backward(const matrix<T>& x, const matrix<T>& dout, workspace& ws, matrix<T>* dx) {
    check_same_forward(ws.forward_key, forward_key(x), "epic_discriminator::backward", "input x");
    check_shape(dout, ws.out.rows(), 1, "epic_discriminator::backward: output gradient dout");
    const long L = cfg_.latent, layers = cfg_.layers;
    const epic_layer<T>& act = layers_.front();
    no_cache none;
    // head
    g5_.backward(ws.d2, ws.out, dout, none, &ws.dd);
    act.activation_gradient(ws.d2, ws.dd, ws.dd);
    g4_.backward(ws.d1, ws.d2, ws.dd, none, &ws.dt);
    ws.dt += ws.dd;  // residual
    act.activation_gradient(ws.d1, ws.dt, ws.dt);
    g3_.backward(ws.pooled, ws.d1, ws.dt, none, &ws.dpooled);
    ws.dg = ws.dpooled.rightCols(L);
    pool_backward(ws, ws.dpooled, ws.dp);
    // EPiC layers
    for (long l = layers; l-- > 0;) {
      layers_[l].backward(ws.b, ws.g[l], ws.p[l], ws.g[l + 1], ws.p[l + 1], ws.dg, ws.dp, ws.c[l], ws.dg_next,
                          ws.dp_next);
      ws.dg.swap(ws.dg_next);
      ws.dp.swap(ws.dp_next);
    }
    // the first global state, then the particle embedding
    act.activation_gradient(ws.g0, ws.dg, ws.dg);
    g2_.backward(ws.a, ws.g0, ws.dg, none, &ws.dt);
    act.activation_gradient(ws.a, ws.dt, ws.dt);
    g1_.backward(ws.pooled0, ws.a, ws.dt, none, &ws.dpooled);
    pool_backward(ws, ws.dpooled, ws.dp_next);
    ws.dp += ws.dp_next;
    act.activation_gradient(ws.p2, ws.dp, ws.dp);
    l2_.backward(ws.p1, ws.p2, ws.dp, none, &ws.dt);
    ws.dt += ws.dp;  // residual
    act.activation_gradient(ws.p1, ws.dt, ws.dt);
    l1_.backward(ws.x, ws.p1, ws.dt, none, dx ? &ws.dpool : nullptr);
    if (dx) {
      dx->setZero(x.rows(), x.cols());
      for (long r = 0; r < ws.b.num_nodes(); ++r)
        dx->row(ws.slots[static_cast<std::size_t>(r)]).leftCols(cfg_.input_features) = ws.dpool.row(r);
    }
  }

  /// @brief Visits the parameters: "fc_l1.*", "fc_l2.*", "fc_g1.*", "fc_g2.*", "layers.<l>.<epic_layer name>",
  /// "fc_g3.*", "fc_g4.*", "fc_g5.*" (EPiC-GAN's module names).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    l1_.for_each_param(prefix + "fc_l1.", f);
    l2_.for_each_param(prefix + "fc_l2.", f);
    g1_.for_each_param(prefix + "fc_g1.", f);
    g2_.for_each_param(prefix + "fc_g2.", f);
    for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l].for_each_param(prefix + "layers." + std::to_string(l) + ".", f);
    g3_.for_each_param(prefix + "fc_g3.", f);
    g4_.for_each_param(prefix + "fc_g4.", f);
    g5_.for_each_param(prefix + "fc_g5.", f);
  }

 private:
  epic_discriminator(const epic_discriminator_config& cfg, rng&& gen)
      : cfg_(cfg),
        l1_(gen, cfg.input_features, cfg.hidden),
        l2_(gen, cfg.hidden, cfg.hidden),
        g1_(gen, 2 * cfg.hidden, cfg.hidden),
        g2_(gen, cfg.hidden, cfg.latent),
        g3_(gen, 2 * cfg.hidden + cfg.latent, cfg.hidden),
        g4_(gen, cfg.hidden, cfg.hidden),
        g5_(gen, cfg.hidden, 1) {
    for (int l = 0; l < cfg.layers; ++l) layers_.emplace_back(gen, cfg.hidden, cfg.latent, cfg.negative_slope, cfg.sum_scale);
  }

  static epic_discriminator_config checked(const epic_discriminator_config& cfg) {
    check_config(cfg, "epic_discriminator");
    return cfg;
  }

  static std::uint64_t forward_key(const matrix<T>& x) { return fingerprint(x) | 1; }  // 0 means "none"

  /// [mean p, sum p, `extra` columns left to the caller] (G x (2 hidden + extra)) of the real particles p.
  void pool(workspace& ws, const matrix<T>& p, matrix<T>& out, long extra) const {
    global_pool(p, ws.b, aggregation::mean, ws.mean);
    global_pool(p, ws.b, aggregation::sum, ws.sum);
    ws.sum *= static_cast<T>(cfg_.sum_scale);
    out.resize(ws.b.num_graphs(), 2 * cfg_.hidden + extra);
    out.leftCols(cfg_.hidden) = ws.mean;
    out.middleCols(cfg_.hidden, cfg_.hidden) = ws.sum;
  }
  /// dp = pool's backward for the first 2 hidden columns of dpooled.
  void pool_backward(workspace& ws, const matrix<T>& dpooled, matrix<T>& dp) const {
    const long H = cfg_.hidden;
    ws.mean = dpooled.leftCols(H);
    global_pool_backward(ws.b, aggregation::mean, ws.mean, nullptr, dp);
    ws.sum = static_cast<T>(cfg_.sum_scale) * dpooled.middleCols(H, H);
    global_pool_backward(ws.b, aggregation::sum, ws.sum, nullptr, ws.dpool);
    dp += ws.dpool;
  }

  void run(const matrix<T>& x, workspace& ws, const char* who) const {
    const long N = cfg_.num_particles, F = cfg_.input_features, layers = cfg_.layers;
    HEPGNN_CHECK(x.cols() == F + 1, who, ": x must have ", F + 1, " columns (", F,
                 " particle features, then mask - 0.5), got ", x.cols());
    HEPGNN_CHECK(x.rows() > 0 && x.rows() % N == 0, who, ": x must have B * ", N,
                 " rows (num_particles per jet, B >= 1 jets), got ", x.rows());
    const long n = x.rows(), B = n / N;
    std::vector<index_t> sizes(static_cast<std::size_t>(B), 0);
    ws.slots.clear();
    for (long r = 0; r < n; ++r) {
      HEPGNN_CHECK(x(r, F) == T(-0.5) || x(r, F) == T(0.5), who, ": the mask column (", F,
                   ") must be -0.5 (padded) or 0.5 (real), got ", x(r, F), " at row ", r);
      if (x(r, F) == T(-0.5)) continue;
      for (long k = 0; k < F; ++k)
        HEPGNN_CHECK(std::isfinite(x(r, k)), who, ": x holds a non-finite value (", x(r, k), ") at row ", r,
                     ", column ", k, " (a real particle)");
      ++sizes[static_cast<std::size_t>(r / N)];
      ws.slots.push_back(static_cast<index_t>(r));
    }
    ws.b = batch::from_sizes(sizes);
    const long R = ws.b.num_nodes();
    ws.x.resize(R, F);
    for (long r = 0; r < R; ++r) ws.x.row(r) = x.row(ws.slots[static_cast<std::size_t>(r)]).leftCols(F);
    const epic_layer<T>& act = layers_.front();
    no_cache none;
    l1_.infer(ws.x, ws.p1, none);
    act.activate(ws.p1);
    l2_.infer(ws.p1, ws.p2, none);
    ws.p2 += ws.p1;
    act.activate(ws.p2);
    pool(ws, ws.p2, ws.pooled0, 0);
    g1_.infer(ws.pooled0, ws.a, none);
    act.activate(ws.a);
    g2_.infer(ws.a, ws.g0, none);
    act.activate(ws.g0);
    ws.g.resize(static_cast<std::size_t>(layers + 1));
    ws.p.resize(static_cast<std::size_t>(layers + 1));
    ws.c.resize(static_cast<std::size_t>(layers));
    ws.g[0] = ws.g0;
    ws.p[0] = ws.p2;
    for (long l = 0; l < layers; ++l) layers_[l].forward(ws.b, ws.g[l], ws.p[l], ws.g[l + 1], ws.p[l + 1], ws.c[l]);
    pool(ws, ws.p[layers], ws.pooled, cfg_.latent);
    ws.pooled.rightCols(cfg_.latent) = ws.g[layers];
    g3_.infer(ws.pooled, ws.d1, none);
    act.activate(ws.d1);
    g4_.infer(ws.d1, ws.d2, none);
    ws.d2 += ws.d1;
    act.activate(ws.d2);
    g5_.infer(ws.d2, ws.out, none);
  }

  epic_discriminator_config cfg_;
  dense<T> l1_, l2_, g1_, g2_, g3_, g4_, g5_;
  std::vector<epic_layer<T>> layers_;
};

}  // namespace hepgnn
