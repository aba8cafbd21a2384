#pragma once
/// @file particle_flow.hpp
/// @brief MLPF-style machine-learned particle flow: element encoder, a stack of graph layers that build their
/// own graph per event (the GNN-LSH layer of nn/mlpf_graph_layer.hpp), a classification head trained with
/// softmax focal loss and a regression head trained with Huber loss, composed from hepgnn blocks.
///
/// Data flow per event (a graph of a batch; events never exchange messages):
///   x0 = mlpf_inputs(features)                          N x input_width  (fixed preprocessing)
///   h0 = encoder(x0)                                    N x hidden
///   h_{k+1} = LayerNorm_k(h_k + conv_k(h_k, batch))     N x hidden       (residual graph layers)
///   with spatial_bins, columns [0, 3) of every h_k are overwritten by the calorimeter position of x0, and the
///   graph layers draw their LSH bins (and a locality factor of their kernel) from them
///   [logits, regression] = heads([x0, h_K])             N x 6, N x 5
/// Regression outputs are relative to the element: log(pT / pT_el), eta - eta_el, sin and cos of
/// phi - phi_el, log(E / E_el); `decode` turns them into candidates in the target layout.

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/models/pf_baseline.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace hepgnn::pf {

/// @brief Width of the preprocessed element inputs: one-hot type (3) plus 14 transformed features.
inline constexpr int mlpf_input_width = 3 + feature::count - 1;
/// @brief Width of the regression output (relative pT, eta, sin dphi, cos dphi, relative E).
inline constexpr int mlpf_regression_width = 5;
/// @brief First column of the calorimeter position (1.5 eta, 3 sin phi, 3 cos phi) in the preprocessed inputs.
inline constexpr int mlpf_position_col = 3 + feature::eta_calo - 1;
/// @brief Number of position columns.
inline constexpr int mlpf_position_dims = 3;

/// @brief Preprocesses element features (N x feature::count) into network inputs (N x mlpf_input_width):
/// one-hot element type, log-scaled momenta, angles, the calorimeter position of every element (scaled x3),
/// widths and counts rescaled to O(1).
/// Throws on wrong width, non-finite values and unknown element types.
template <class T>
matrix<T> mlpf_inputs(const matrix<double>& f) {
  check_elements(f, "mlpf_inputs");
  const Eigen::Index n = f.rows();
  matrix<T> x = matrix<T>::Zero(n, mlpf_input_width);
  for (Eigen::Index i = 0; i < n; ++i) {
    const int type = static_cast<int>(f(i, feature::type));
    x(i, type - 1) = T(1);
    auto put = [&](int col, double v) { x(i, 3 + col - 1) = static_cast<T>(v); };
    put(feature::pt, std::log1p(std::max(0.0, f(i, feature::pt))));
    put(feature::eta, f(i, feature::eta) / 2);
    put(feature::sin_phi, f(i, feature::sin_phi));
    put(feature::cos_phi, f(i, feature::cos_phi));
    put(feature::energy, std::log1p(std::max(0.0, f(i, feature::energy))));
    put(feature::charge, f(i, feature::charge));
    // Position at the calorimeter for every element (a cluster's own position), scaled up so that the
    // hidden states, and hence the learned LSH bins, start out dominated by position: PF links neighbours.
    const bool trk = type == track;
    put(feature::eta_calo, 1.5 * f(i, trk ? feature::eta_calo : feature::eta));
    put(feature::sin_phi_calo, 3 * f(i, trk ? feature::sin_phi_calo : feature::sin_phi));
    put(feature::cos_phi_calo, 3 * f(i, trk ? feature::cos_phi_calo : feature::cos_phi));
    put(feature::muon_hits, f(i, feature::muon_hits) / 4);
    put(feature::sigma_eta, f(i, feature::sigma_eta) * 20);
    put(feature::sigma_phi, f(i, feature::sigma_phi) * 20);
    put(feature::num_deposits, std::log1p(std::max(0.0, f(i, feature::num_deposits))));
    put(feature::track_hits, f(i, feature::track_hits) / 10);
  }
  return x;
}

namespace detail {
inline double element_phi(const matrix<double>& f, Eigen::Index i) {
  return std::atan2(f(i, feature::sin_phi), f(i, feature::cos_phi));
}
inline double element_pt(const matrix<double>& f, Eigen::Index i) { return std::max(f(i, feature::pt), 1e-3); }
inline double element_e(const matrix<double>& f, Eigen::Index i) { return std::max(f(i, feature::energy), 1e-3); }
}  // namespace detail

/// @brief Regression targets relative to the elements (N x mlpf_regression_width); rows of `none` elements are 0.
template <class T>
matrix<T> mlpf_regression_targets(const matrix<double>& f, std::span<const index_t> cls, const matrix<double>& tgt) {
  check_elements(f, "mlpf_regression_targets");
  HEPGNN_CHECK(static_cast<Eigen::Index>(cls.size()) == f.rows() && tgt.rows() == f.rows() && tgt.cols() == target::count,
               "mlpf_regression_targets: need one class and one ", int(target::count), "-column target row per element (",
               f.rows(), "), got ", cls.size(), " classes and a ", tgt.rows(), " x ", tgt.cols(), " target");
  matrix<T> r = matrix<T>::Zero(f.rows(), mlpf_regression_width);
  for (Eigen::Index i = 0; i < f.rows(); ++i) {
    HEPGNN_CHECK(cls[i] >= 0 && cls[i] < num_classes, "mlpf_regression_targets: class of element ", i,
                 " must be in [0, ", num_classes, "), got ", cls[i]);
    if (cls[i] == none) continue;
    const double dphi = std::atan2(tgt(i, target::sin_phi), tgt(i, target::cos_phi)) - detail::element_phi(f, i);
    r(i, 0) = static_cast<T>(std::log(std::max(tgt(i, target::pt), 1e-3) / detail::element_pt(f, i)));
    r(i, 1) = static_cast<T>(tgt(i, target::eta) - f(i, feature::eta));
    r(i, 2) = static_cast<T>(std::sin(dphi));
    r(i, 3) = static_cast<T>(std::cos(dphi));
    r(i, 4) = static_cast<T>(std::log(std::max(tgt(i, target::energy), 1e-3) / detail::element_e(f, i)));
  }
  return r;
}

/// @brief Turns network outputs into candidates: class = argmax of the logits, momenta from the relative
/// regression (log-ratios clamped to +-5 so an untrained network cannot overflow). With `track_kinematics`,
/// charged candidates on tracks keep the track momentum, as in rule-based PF (the tracker resolution is
/// better than any regression); the regression then serves the calorimeter candidates.
/// `logit_offset` (empty, or one value per class) is added to the logits before the argmax: a working point
/// chosen on validation events (e.g. fewer neutral-hadron fakes).
template <class T>
candidates mlpf_decode(const matrix<double>& f, const matrix<T>& logits, const matrix<T>& reg,
                       bool track_kinematics = true, std::span<const double> logit_offset = {}) {
  HEPGNN_CHECK(logits.rows() == f.rows() && logits.cols() == num_classes && reg.rows() == f.rows() &&
                   reg.cols() == mlpf_regression_width,
               "mlpf_decode: expected ", f.rows(), " x ", num_classes, " logits and ", f.rows(), " x ",
               mlpf_regression_width, " regression outputs, got ", logits.rows(), " x ", logits.cols(), " and ",
               reg.rows(), " x ", reg.cols());
  HEPGNN_CHECK(logit_offset.empty() || logit_offset.size() == static_cast<std::size_t>(num_classes),
               "mlpf_decode: logit_offset must be empty or have ", num_classes, " entries, got ", logit_offset.size());
  candidates c;
  c.cls.assign(static_cast<std::size_t>(f.rows()), none);
  c.p4 = matrix<double>::Zero(f.rows(), target::count);
  for (Eigen::Index i = 0; i < f.rows(); ++i) {
    Eigen::Index k = 0;
    if (logit_offset.empty()) {
      logits.row(i).maxCoeff(&k);
    } else {
      double best = -std::numeric_limits<double>::infinity();
      for (Eigen::Index j = 0; j < logits.cols(); ++j) {
        const double v = static_cast<double>(logits(i, j)) + logit_offset[static_cast<std::size_t>(j)];
        if (v > best) best = v, k = j;
      }
    }
    c.cls[i] = static_cast<index_t>(k);
    if (k == none) continue;
    if (track_kinematics && f(i, feature::type) == track && (k == charged_hadron || k == electron || k == muon)) {
      c.p4(i, target::pt) = f(i, feature::pt);
      c.p4(i, target::eta) = f(i, feature::eta);
      c.p4(i, target::sin_phi) = f(i, feature::sin_phi);
      c.p4(i, target::cos_phi) = f(i, feature::cos_phi);
      c.p4(i, target::energy) = f(i, feature::energy);
      continue;
    }
    auto v = [&](int col) { return static_cast<double>(reg(i, col)); };
    const double phi = detail::element_phi(f, i) + std::atan2(v(2), v(3));
    c.p4(i, target::pt) = detail::element_pt(f, i) * std::exp(std::clamp(v(0), -5.0, 5.0));
    c.p4(i, target::eta) = f(i, feature::eta) + v(1);
    c.p4(i, target::sin_phi) = std::sin(phi);
    c.p4(i, target::cos_phi) = std::cos(phi);
    c.p4(i, target::energy) = detail::element_e(f, i) * std::exp(std::clamp(v(4), -5.0, 5.0));
  }
  return c;
}

/// @brief Hyperparameters of the MLPF model.
struct mlpf_options {
  int hidden = 64;          ///< width of the encoder and graph layers
  int num_convs = 2;        ///< graph layers
  int head_hidden = 64;     ///< hidden width of each head
  // GNN-LSH layer settings (mlpf_graph_layer::options) used by make_mlpf
  int distance_dim = 32;        ///< learned distance embedding width
  int ffn_dist_hidden_dim = 64; ///< hidden width of the distance network
  int num_node_messages = 2;    ///< gated message-passing steps inside each graph layer
  index_t bin_size = 64;        ///< LSH chunk size (elements that exchange messages)
  /// LSH bins over the calorimeter position (kept in the first mlpf_position_dims hidden channels before every
  /// graph layer) instead of the learned embedding: tracks and the clusters they point to then share a chunk.
  bool spatial_bins = true;
  /// with spatial_bins: width of the Gaussian locality factor of the kernel, in units of the position columns
  /// (1.5 eta, 3 sin phi, 3 cos phi; 0.4 ~ dR 0.13 in phi); 0 disables it
  double spatial_kernel_width = 0.4;
  double focal_gamma = 2;   ///< focal loss exponent
  double huber_delta = 1;   ///< Huber threshold (regression targets are O(1))
  double regression_weight = 1;
  std::vector<double> class_weights;  ///< per-class loss weights (empty: all 1)
};

/// @brief Loss components of one training step.
struct mlpf_loss {
  double total = 0, classification = 0, regression = 0;
};

/// @brief The MLPF model. `Conv` is a batch_layer of width hidden -> hidden (the GNN-LSH layer of
/// nn/mlpf_graph_layer.hpp); the factory passed to the constructor builds one from (rng&, in, out).
/// Parameters: "encoder.*", "convs.<k>.*", "norms.<k>.*" (LayerNorm after each residual graph layer),
/// "heads.0.*" (classification), "heads.1.*" (regression).
template <class T, class Conv>
class mlpf_model {
  static_assert(batch_layer<Conv>, "mlpf_model: Conv must satisfy hepgnn::batch_layer (nn/graph_layer.hpp)");

 public:
  using scalar = T;
  using heads_type = heads<mlp<T>, mlp<T>>;

  /// @brief Buffers of one inference or training pass (owned by the caller; reused without allocation).
  struct workspace {
    typename mlp<T>::cache encoder;
    std::vector<typename Conv::cache> convs;
    std::vector<typename layer_norm<T>::cache> norms;
    std::vector<matrix<T>> h, conv_out, sum;  ///< h[k]: input of graph layer k (h[K]: last output); sum = h + conv
    matrix<T> z, dz, dh, dsum, dconv;
    typename heads_type::outputs out, dout;
    typename heads_type::cache head;
  };

  template <class Factory>
  mlpf_model(rng& gen, Factory&& make_conv, mlpf_options o = {})
      : o_(std::move(o)),
        encoder_(gen, {mlpf_input_width, o_.hidden, o_.hidden}, {activation_kind::elu, true}),
        heads_(mlp<T>(gen, {mlpf_input_width + o_.hidden, o_.head_hidden, o_.head_hidden, num_classes},
                      {activation_kind::elu, false}),
               mlp<T>(gen, {mlpf_input_width + o_.hidden, o_.head_hidden, o_.head_hidden, mlpf_regression_width},
                      {activation_kind::elu, false})) {
    HEPGNN_CHECK(o_.hidden > 0 && o_.head_hidden > 0 && o_.num_convs >= 0,
                 "mlpf_model: hidden and head_hidden must be positive and num_convs >= 0, got ", o_.hidden, ", ",
                 o_.head_hidden, ", ", o_.num_convs);
    HEPGNN_CHECK(!o_.spatial_bins || o_.hidden >= mlpf_position_dims, "mlpf_model: spatial_bins needs hidden >= ",
                 mlpf_position_dims, ", got ", o_.hidden);
    HEPGNN_CHECK(o_.class_weights.empty() || o_.class_weights.size() == static_cast<std::size_t>(num_classes),
                 "mlpf_model: class_weights must be empty or have ", num_classes, " entries, got ",
                 o_.class_weights.size());
    for (int k = 0; k < o_.num_convs; ++k) {
      convs_.push_back(make_conv(gen, o_.hidden, o_.hidden));
      norms_.emplace_back(o_.hidden);
    }
    for (double w : o_.class_weights) cw_.push_back(static_cast<T>(w));
  }

  const mlpf_options& options() const { return o_; }
  std::vector<Conv>& convs() { return convs_; }

  /// @brief Inference on preprocessed inputs x0 (rows of all events of the batch): fills ws.out[0] (logits)
  /// and ws.out[1] (regression).
  void infer(const matrix<T>& x0, const batch& b, workspace& ws) const {
    check_cols(x0, mlpf_input_width, "mlpf_model::infer: inputs x0");
    b.validate(static_cast<index_t>(x0.rows()));
    const_cast<mlpf_model*>(this)->template run<false>(x0, b, ws);
  }

  /// @brief Reconstructs the candidates of one event from its element features (see mlpf_decode for the
  /// optional per-class logit offsets).
  candidates reconstruct(const matrix<double>& features, workspace& ws, std::span<const double> logit_offset = {}) const {
    const matrix<T> x0 = mlpf_inputs<T>(features);
    infer(x0, batch::single(static_cast<index_t>(x0.rows())), ws);
    return mlpf_decode(features, ws.out[0], ws.out[1], true, logit_offset);
  }
  /// @brief Same, with a temporary workspace.
  candidates reconstruct(const matrix<double>& features) const {
    workspace ws;
    return reconstruct(features, ws);
  }

  /// @brief Training forward and backward on a batch of events: ADDS the parameter gradients of
  /// focal(logits, labels) + regression_weight * huber(regression rows of non-none elements) and returns the loss.
  mlpf_loss train_step(const matrix<T>& x0, const batch& b, std::span<const index_t> labels,
                       const matrix<T>& reg_target, workspace& ws) {
    check_cols(x0, mlpf_input_width, "mlpf_model::train_step: inputs x0");
    b.validate(static_cast<index_t>(x0.rows()));
    check_shape(reg_target, x0.rows(), mlpf_regression_width, "mlpf_model::train_step: regression targets");
    HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == x0.rows(), "mlpf_model::train_step: need one label per ",
                 "element (", x0.rows(), "), got ", labels.size());
    run<true>(x0, b, ws);
    mlpf_loss l = loss(labels, reg_target, ws, true);
    backward(x0, b, ws);
    return l;
  }

  /// @brief The loss of the outputs in ws (after infer or a training forward); with `grad`, fills ws.dout.
  mlpf_loss loss(std::span<const index_t> labels, const matrix<T>& reg_target, workspace& ws, bool grad) const {
    mlpf_loss l;
    const std::vector<T>* cw = cw_.empty() ? nullptr : &cw_;
    l.classification = static_cast<double>(focal_loss<T>(
        ws.out[0], labels, {.gamma = static_cast<T>(o_.focal_gamma), .class_weights = cw},
        grad ? &ws.dout[0] : nullptr));
    vector<T> w(static_cast<Eigen::Index>(labels.size()));
    for (std::size_t i = 0; i < labels.size(); ++i) w(static_cast<Eigen::Index>(i)) = labels[i] == none ? T(0) : T(1);
    const T rw = static_cast<T>(o_.regression_weight);
    l.regression = static_cast<double>(
        huber<T>(ws.out[1], reg_target, {.delta = static_cast<T>(o_.huber_delta), .row_weights = &w},
                 grad ? &ws.dout[1] : nullptr));
    if (grad) ws.dout[1] *= rw;
    l.total = l.classification + static_cast<double>(rw) * l.regression;
    return l;
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    encoder_.for_each_param(prefix + "encoder.", f);
    for (std::size_t k = 0; k < convs_.size(); ++k) {
      convs_[k].for_each_param(prefix + "convs." + std::to_string(k) + ".", f);
      norms_[k].for_each_param(prefix + "norms." + std::to_string(k) + ".", f);
    }
    heads_.for_each_param(prefix + "heads.", f);
  }

 private:
  template <bool Train>
  void run(const matrix<T>& x0, const batch& b, workspace& ws) {
    const std::size_t K = convs_.size();
    ws.convs.resize(K);
    ws.h.resize(K + 1);
    ws.conv_out.resize(K);
    ws.sum.resize(K);
    ws.norms.resize(K);
    if constexpr (Train) encoder_.forward(x0, ws.h[0], ws.encoder); else encoder_.infer(x0, ws.h[0], ws.encoder);
    set_position(x0, ws.h[0]);
    for (std::size_t k = 0; k < K; ++k) {
      if constexpr (Train)
        convs_[k].forward(ws.h[k], b, ws.conv_out[k], ws.convs[k]);
      else
        std::as_const(convs_[k]).infer(ws.h[k], b, ws.conv_out[k], ws.convs[k]);
      ws.sum[k].resize(ws.h[k].rows(), ws.h[k].cols());
      ws.sum[k].noalias() = ws.h[k] + ws.conv_out[k];
      norms_[k].infer(ws.sum[k], ws.h[k + 1], ws.norms[k]);
      set_position(x0, ws.h[k + 1]);
    }
    ws.z.resize(x0.rows(), x0.cols() + ws.h[K].cols());
    ws.z.leftCols(x0.cols()) = x0;
    ws.z.rightCols(ws.h[K].cols()) = ws.h[K];
    if constexpr (Train) heads_.forward(ws.z, ws.out, ws.head); else std::as_const(heads_).infer(ws.z, ws.out, ws.head);
  }

  void backward(const matrix<T>& x0, const batch& b, workspace& ws) {
    const std::size_t K = convs_.size();
    heads_.backward(ws.z, ws.out, ws.dout, ws.head, &ws.dz);
    ws.dh = ws.dz.rightCols(ws.h[K].cols());
    for (std::size_t k = K; k-- > 0;) {
      clear_position_grad(ws.dh);
      norms_[k].backward(ws.sum[k], ws.h[k + 1], ws.dh, ws.norms[k], &ws.dsum);
      convs_[k].backward(ws.h[k], b, ws.conv_out[k], ws.dsum, ws.convs[k], &ws.dconv);
      ws.dh = ws.dsum + ws.dconv;
    }
    clear_position_grad(ws.dh);
    encoder_.backward(x0, ws.h[0], ws.dh, ws.encoder, nullptr);
  }

  // With spatial_bins the first hidden channels carry the calorimeter position (overwritten, so no gradient).
  void set_position(const matrix<T>& x0, matrix<T>& h) const {
    if (o_.spatial_bins) h.leftCols(mlpf_position_dims) = x0.middleCols(mlpf_position_col, mlpf_position_dims);
  }
  void clear_position_grad(matrix<T>& dh) const {
    if (o_.spatial_bins) dh.leftCols(mlpf_position_dims).setZero();
  }

  mlpf_options o_;
  mlp<T> encoder_;
  std::vector<Conv> convs_;
  std::vector<layer_norm<T>> norms_;
  heads_type heads_;
  std::vector<T> cw_;
};

/// @brief The MLPF model with the GNN-LSH graph layer (nn/mlpf_graph_layer.hpp).
template <class T>
using mlpf = mlpf_model<T, mlpf_graph_layer<T>>;

/// @brief Builds the MLPF model with GNN-LSH graph layers configured from `o` (LSH seeds fixed per layer, so
/// saved weights reproduce the outputs and an event's graph does not depend on the rest of its batch).
template <class T>
mlpf<T> make_mlpf(rng& gen, const mlpf_options& o = {}) {
  int layer = 0;
  auto factory = [&](rng& g, int in, int out) {
    HEPGNN_CHECK(in == out, "make_mlpf: the GNN-LSH layer keeps the width, got ", in, " -> ", out);
    typename mlpf_graph_layer<T>::options lo;
    lo.inout_dim = in;
    lo.distance_dim = o.distance_dim;
    lo.ffn_dist_hidden_dim = o.ffn_dist_hidden_dim;
    lo.num_node_messages = o.num_node_messages;
    lo.bin_size = o.bin_size;
    lo.hash_dims = o.spatial_bins ? mlpf_position_dims : 0;
    lo.hash_kernel_width = o.spatial_bins ? o.spatial_kernel_width : 0.0;
    lo.lsh_seed = 0x9F1A + static_cast<std::uint64_t>(layer++);
    return mlpf_graph_layer<T>(g, lo);
  };
  return mlpf<T>(gen, factory, o);
}

}  // namespace hepgnn::pf
