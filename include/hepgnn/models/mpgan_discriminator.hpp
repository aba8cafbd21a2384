#pragma once
/// @file mpgan_discriminator.hpp
/// @brief hepgnn::mpgan_discriminator: MPGAN's message-passing discriminator (Kansal et al., NeurIPS 2021,
/// arXiv:2106.11535; MPGAN's MPDiscriminator with the published settings, args.txt of mp_g/q/t).
///
/// Per jet: input [num_particles, input_features + 1] = (eta, phi, pt, mask - 0.5), the layout of the generator's
/// g_raw and of MPGAN's normalised real jets. Then, as MPDiscriminator with mask_c, dea and sum:
///   - mask = last column + 0.5 (1 real, 0 padded), taken off the features;
///   - message passing (nn/mpgan_message_passing.hpp) on the fully connected jet with self loops, `iterations`
///     times: edge MLP on [h_i, h_j] 6 -> 96 -> 160 -> 192 (64 -> ... in later iterations) with LeakyReLU(0.2)
///     after every layer, messages of padded particles zeroed, sum, node MLP on [m_i, h_i] -> 256 -> 256 -> 32
///     (linear last layer); in training, dropout 0.5 after every layer of every MLP, the last ones included
///     (MPGAN's LinearNet);
///   - pooling: the sum of the node features over the real particles (MPNet._post_mp: x * mask, sum; dea_sum is
///     args.sum = True, so no division by the multiplicity);
///   - fnd_layer: LinearNet(fnd, hidden -> 1, final_linear): Linear layers with LeakyReLU between them and
///     dropout after each, the last one included (fnd = [] published: one Linear 32 -> 1, then dropout);
///   - sigmoid.
/// Padded particles neither send messages nor enter the pooling, so their features do not change the output.
/// Parameter names are MPGAN's state dict: "mp_layers.<t>.fe.net.<l>.*", "mp_layers.<t>.fn.net.<l>.*",
/// "fnd_layer.net.<l>.*" (355,617 parameters published).

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
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/nn/mpgan_message_passing.hpp"
#include "hepgnn/nn/pooling.hpp"

namespace hepgnn {

/// @brief Hyperparameters of mpgan_discriminator (defaults: the published MPGAN discriminators).
struct mpgan_discriminator_config {
  int num_particles = 30;             ///< particles per jet (num_hits)
  int input_features = 3;             ///< eta_rel, phi_rel, pt_rel (before the mask column; node_feat_size)
  int hidden = 32;                    ///< node features between and after the iterations (hidden_node_size)
  int iterations = 2;                 ///< message-passing iterations (mp_iters_disc)
  std::vector<int> fe{96, 160, 192};  ///< edge MLP widths
  std::vector<int> fn{256, 256};      ///< node MLP hidden widths
  std::vector<int> fnd{};             ///< hidden widths of the final network (fnd; published: none)
  double dropout = 0.5;               ///< after every MLP layer in training (disc_dropout)
  double negative_slope = 0.2;        ///< LeakyReLU slope (leaky_relu_alpha)
  std::uint64_t seed = 1;             ///< weight initialisation

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("num_particles", num_particles, 1, 1 << 10);  // fully connected: N^2 edges per jet
    f("input_features", input_features, 1, 1 << 12);
    f("hidden", hidden, 1, 1 << 12);
    f("iterations", iterations, 1, 64);
    f("fe", fe, 1, 1 << 14);
    f("fn", fn, 1, 1 << 14);
    f("fnd", fnd, 1, 1 << 14);
    f("dropout", dropout, 0.0, 0.999);
    f("negative_slope", negative_slope, 1e-6, 1.0);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief MPGAN's discriminator (see the file comment). forward is the training pass (dropout from a generator);
/// infer is const and has no dropout (PyTorch's eval mode).
template <class T>
class mpgan_discriminator {
 public:
  using scalar = T;
  using block_type = mpgan_message_passing<T>;
  using config_type = mpgan_discriminator_config;
  static constexpr std::string_view family = "mpgan_discriminator";
  static constexpr int format_version = 1;

  /// @brief What forward, infer and backward use (one per thread; buffers reused for batches of the same size).
  struct workspace {
    typename block_type::cache c;
    batch b;
    std::vector<T> mask;           ///< 1 real, 0 padded, per particle
    matrix<T> h;                   ///< particle features (the input without its mask column)
    matrix<T> y;                   ///< message-passing output per particle
    matrix<T> masked, pooled;      ///< y times the mask; its sum per jet
    std::vector<matrix<T>> act;    ///< fnd layer outputs (after activation and dropout)
    matrix<T> out;                 ///< B x 1 probabilities
    matrix<T> g, g2, dy, dh;       ///< backward buffers
    std::uint64_t forward_key = 0;  ///< fingerprint of the training forward's x (0 after an infer)
    bool dropped = false;          ///< the last pass applied dropout
    std::uint64_t dropout_seed = 0;  ///< the fnd layers' seed of that pass
  };

  explicit mpgan_discriminator(const mpgan_discriminator_config& cfg = {}) : cfg_(checked(cfg)), mp_(make(cfg_)) {
    rng gen(cfg_.seed ^ 0xD15C0000ULL);  // the final network's own stream (the block used cfg.seed)
    int w = cfg_.hidden;
    for (int width : cfg_.fnd) {
      fnd_.emplace_back(gen, w, width);
      w = width;
    }
    fnd_.emplace_back(gen, w, 1);
  }

  const mpgan_discriminator_config& config() const { return cfg_; }
  /// @brief The message-passing block (MPGAN's mp_layers).
  const block_type& message_passing() const { return mp_; }

  /// @brief Training forward: D(x) (B x 1, probabilities) for x ((B * num_particles) x (input_features + 1), jet
  /// by jet, last column mask - 0.5 in {-0.5, 0.5}); dropout masks drawn from `dropout_gen`.
  const matrix<T>& forward(const matrix<T>& x, workspace& ws, rng& dropout_gen) const {
    run(x, ws, true, &dropout_gen, "mpgan_discriminator::forward");
    return ws.out;
  }
  /// @brief Training forward without dropout (as forward with dropout 0; for gradient checks and comparisons).
  const matrix<T>& forward(const matrix<T>& x, workspace& ws) const {
    run(x, ws, true, nullptr, "mpgan_discriminator::forward");
    return ws.out;
  }
  /// @brief Inference (no dropout).
  const matrix<T>& infer(const matrix<T>& x, workspace& ws) const {
    run(x, ws, false, nullptr, "mpgan_discriminator::infer");
    return ws.out;
  }

  /// @brief Adds parameter gradients for dout (dL/dD(x), B x 1); writes dL/dx when dx is not null (its mask
  /// column is 0: the mask only selects). Call forward with this x first (checked: core/fingerprint.hpp).
  void backward(const matrix<T>& x, const matrix<T>& dout, workspace& ws, matrix<T>* dx) {
    const long n = x.rows(), B = ws.out.rows(), F = cfg_.input_features;
    check_same_forward(ws.forward_key, forward_key(x), "mpgan_discriminator::backward", "input x");
    check_shape(dout, B, 1, "mpgan_discriminator::backward: output gradient dout");
    // sigmoid' = s (1 - s)
    ws.g = (dout.array() * ws.out.array() * (T(1) - ws.out.array())).matrix();
    const T slope = static_cast<T>(cfg_.negative_slope);
    typename dense<T>::cache none;
    for (std::size_t l = fnd_.size(); l-- > 0;) {
      if (ws.dropped) hashed_dropout(ws.g, cfg_.dropout, ws.dropout_seed, l);
      if (l + 1 < fnd_.size()) ws.g = (ws.act[l].array() > T(0)).select(ws.g, slope * ws.g);
      const matrix<T>& in = l == 0 ? ws.pooled : ws.act[l - 1];
      fnd_[l].backward(in, ws.act[l], ws.g, none, &ws.g2);
      ws.g.swap(ws.g2);
    }
    // pooled_q = sum_i mask_i y_i
    global_pool_backward(ws.b, aggregation::sum, ws.g, nullptr, ws.dy);
    for (long r = 0; r < n; ++r) ws.dy.row(r) *= ws.mask[static_cast<std::size_t>(r)];
    mp_.backward(ws.h, ws.b, ws.y, ws.dy, ws.c, dx ? &ws.dh : nullptr);
    if (dx) {
      dx->resize(n, F + 1);
      dx->leftCols(F) = ws.dh;
      dx->col(F).setZero();
    }
  }

  /// @brief Visits the parameters with MPGAN's names ("mp_layers.<t>.fe.net.<l>.weight", "fnd_layer.net.0.bias").
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    mp_.for_each_param(prefix + "mp_layers.", [&](const std::string& name, auto p) {
      std::string n = name;
      for (const char* part : {".fe.", ".fn."})  // the block's "<t>.fe.<l>." is MPGAN's "<t>.fe.net.<l>."
        if (const auto k = n.find(part, prefix.size() + 10); k != std::string::npos) {
          n.insert(k + 4, "net.");
          break;
        }
      f(n, p);
    });
    for (std::size_t l = 0; l < fnd_.size(); ++l) fnd_[l].for_each_param(prefix + "fnd_layer.net." + std::to_string(l) + ".", f);
  }

 private:
  static mpgan_discriminator_config checked(const mpgan_discriminator_config& cfg) {
    check_config(cfg, "mpgan_discriminator");
    HEPGNN_CHECK(!cfg.fe.empty() && !cfg.fn.empty(), "mpgan_discriminator: fe and fn must each name at least one width");
    return cfg;
  }

  static std::uint64_t forward_key(const matrix<T>& x) { return fingerprint(x) | 1; }  // 0 means "none"

  static block_type make(const mpgan_discriminator_config& cfg) {
    rng gen(cfg.seed);
    typename block_type::options o;
    o.in = cfg.input_features;
    o.hidden = cfg.hidden;
    o.out = cfg.hidden;  // dea: the node features are pooled, then fnd_layer maps them to one value
    o.iterations = cfg.iterations;
    o.fe_widths = cfg.fe;
    o.fn_widths = cfg.fn;
    o.pos_dims = 0;  // pos_diffs False
    o.sum = true;
    o.negative_slope = cfg.negative_slope;
    o.final_activation = false;
    o.message_first = true;
    o.dropout = cfg.dropout;
    return block_type(gen, o);
  }

  void run(const matrix<T>& x, workspace& ws, bool training, rng* dropout_gen, const char* who) const {
    const long N = cfg_.num_particles, F = cfg_.input_features;
    HEPGNN_CHECK(x.cols() == F + 1, who, ": x must have ", F + 1, " columns (", F,
                 " particle features, then mask - 0.5), got ", x.cols());
    HEPGNN_CHECK(x.rows() > 0 && x.rows() % N == 0, who, ": x must have B * ", N,
                 " rows (num_particles per jet, B >= 1 jets), got ", x.rows());
    const long n = x.rows(), B = n / N;
    for (long r = 0; r < n; ++r) {
      for (long k = 0; k < F; ++k)
        HEPGNN_CHECK(std::isfinite(x(r, k)), who, ": x holds a non-finite value (", x(r, k), ") at row ", r,
                     ", column ", k);
      HEPGNN_CHECK(x(r, F) == T(-0.5) || x(r, F) == T(0.5), who, ": the mask column (", F, ") must be -0.5 (padded) or ",
                   "0.5 (real), got ", x(r, F), " at row ", r);
    }
    if (ws.b.num_graphs() != B || ws.b.num_nodes() != n) ws.b = batch::uniform(B, N);
    ws.mask.resize(static_cast<std::size_t>(n));
    for (long r = 0; r < n; ++r) ws.mask[static_cast<std::size_t>(r)] = x(r, F) + T(0.5);
    ws.h = x.leftCols(F);
    ws.forward_key = training ? forward_key(x) : 0;
    ws.dropped = dropout_gen != nullptr && cfg_.dropout > 0;
    if (training)
      mp_.forward(ws.h, ws.b, ws.y, ws.c, &ws.mask, ws.dropped ? dropout_gen : nullptr);
    else
      mp_.infer(ws.h, ws.b, ws.y, ws.c, &ws.mask);
    if (ws.dropped) ws.dropout_seed = (*dropout_gen)();
    ws.masked = ws.y;
    for (long r = 0; r < n; ++r) ws.masked.row(r) *= ws.mask[static_cast<std::size_t>(r)];
    global_pool(ws.masked, ws.b, aggregation::sum, ws.pooled);
    const T slope = static_cast<T>(cfg_.negative_slope);
    ws.act.resize(fnd_.size());
    for (std::size_t l = 0; l < fnd_.size(); ++l) {
      const matrix<T>& in = l == 0 ? ws.pooled : ws.act[l - 1];
      matrix<T>& o = ws.act[l];
      o.resize(B, fnd_[l].out_features());
      o.noalias() = in * fnd_[l].weight().transpose();
      o.rowwise() += fnd_[l].bias().row(0);
      if (l + 1 < fnd_.size()) o = (o.array() > T(0)).select(o, slope * o);
      if (ws.dropped) hashed_dropout(o, cfg_.dropout, ws.dropout_seed, l);
    }
    ws.out = (T(1) / (T(1) + (-ws.act.back().array()).exp())).matrix();
  }

  mpgan_discriminator_config cfg_;
  block_type mp_;
  std::vector<dense<T>> fnd_;
};

}  // namespace hepgnn
