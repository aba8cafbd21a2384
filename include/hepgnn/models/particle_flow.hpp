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
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/models/pf_baseline.hpp"
#include "hepgnn/nn/columns.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"
#include "hepgnn/nn/repeated.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/nn/skips.hpp"

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

/// @brief Architecture of the MLPF model: what a saved model records next to its weights (io/model_file.hpp).
/// The bounds of for_each_field are what a file may ask for.
struct mlpf_config {
  int hidden = 64;       ///< width of the encoder and graph layers
  int num_convs = 2;     ///< graph layers
  int head_hidden = 64;  ///< hidden width of each head
  // GNN-LSH layer settings (mlpf_graph_layer::options)
  int distance_dim = 32;         ///< learned distance embedding width
  int ffn_dist_hidden_dim = 64;  ///< hidden width of the distance network
  int num_node_messages = 2;     ///< gated message-passing steps inside each graph layer
  index_t bin_size = 64;         ///< LSH chunk size (elements that exchange messages)
  /// LSH bins over the calorimeter position (kept in the first mlpf_position_dims hidden channels before every
  /// graph layer) instead of the learned embedding: tracks and the clusters they point to then share a chunk.
  bool spatial_bins = true;
  /// with spatial_bins: width of the Gaussian locality factor of the kernel, in units of the position columns
  /// (1.5 eta, 3 sin phi, 3 cos phi; 0.4 ~ dR 0.13 in phi); 0 disables it
  double spatial_kernel_width = 0.4;
  std::uint64_t seed = 1;  ///< initialisation seed (the LSH projections have fixed seeds per layer)
  /// Dropout rate of the feed-forward networks (encoder and both heads: after every hidden activation, as in
  /// MLPF's ffn), in training forwards only; 0 (the default) leaves training bit-identical to a model without it.
  /// Not in the graph layers.
  double dropout = 0;

  template <class F>
  void for_each_field(F&& f) {
    f("hidden", hidden, 1, 4096);
    f("num_convs", num_convs, 0, 64);
    f("head_hidden", head_hidden, 1, 4096);
    f("distance_dim", distance_dim, 1, 4096);
    f("ffn_dist_hidden_dim", ffn_dist_hidden_dim, 1, 4096);
    f("num_node_messages", num_node_messages, 1, 64);
    f("bin_size", bin_size, 1, 4096);
    f("spatial_bins", spatial_bins, 0, 1);
    f("spatial_kernel_width", spatial_kernel_width, 0, 1e6);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the file's numbers
    f("dropout", dropout, 0, 0.99);           // format version 2; version 1 files read 0
  }
};

/// @brief Loss settings of MLPF training (not part of a saved model).
struct mlpf_loss_options {
  double focal_gamma = 2;             ///< focal loss exponent
  double huber_delta = 1;             ///< Huber threshold (regression targets are O(1))
  double regression_weight = 1;
  std::vector<double> class_weights;  ///< per-class loss weights (empty: all 1)
};

/// @brief Loss components of one training step.
struct mlpf_loss {
  double total = 0, classification = 0, regression = 0;
};

/// @brief The MLPF model (see the file comment) as one chain:
///   x0 -> [x0, trunk(x0)] -> [logits, regression] = [cls_head, reg_head]([x0, h])
///   trunk: h = encoder(x0), then per graph layer h <- LayerNorm(h + conv(h)), each with the position columns of x0
///          carried over the first hidden columns
/// Parameters (names of the weight files written before the chain): "encoder.*", "convs.<k>.*", "norms.<k>.*",
/// "heads.0.*" (classification), "heads.1.*" (regression).
template <class T>
class mlpf_model {
 public:
  using scalar = T;
  using config_type = mlpf_config;
  static constexpr std::string_view family = "mlpf";
  static constexpr int format_version = 2;  // 2: config field "dropout"
  using conv_type = mlpf_graph_layer<T>;
  /// One graph layer: h <- LayerNorm(h + conv(h)), the position columns of h carried over.
  using block_type = carry_columns<residual_skip<conv_type>, layer_norm<T>>;
  /// x0 -> h: the encoder (the position columns of x0 carried over its first outputs), then the graph layers.
  using trunk_type = graph_sequential<T, dynamic, carry_columns<mlp<T>>, repeated<block_type>>;
  using network = graph_sequential<T, mlpf_input_width, concat_branches<columns<T, 0, mlpf_input_width>, trunk_type>,
                                    concat<mlp<T>, mlp<T>>>;
  /// [0]: class logits (N x num_classes), [1]: regression (N x mlpf_regression_width).
  using outputs = std::array<matrix<T>, 2>;
  /// The most parameters a config may ask for (checked before anything is built).
  static constexpr double max_parameters = 1 << 27;

  /// @brief Buffers of one inference or training pass (owned by the caller; reused without allocation).
  struct workspace {
    typename network::cache net;
    matrix<T> y, dy;    ///< the network's output [logits, regression] and its gradient
    outputs out, dout;  ///< y split into logits and regression, and their loss gradients
  };

  explicit mlpf_model(const mlpf_config& cfg = {}) : cfg_(checked(cfg)), net_(make(cfg_)) {}

  const mlpf_config& config() const { return cfg_; }
  mlp<T>& encoder() { return trunk().template get<0>().inner().template get<0>(); }
  conv_type& conv(std::size_t k) { return blocks()[k].inner().template get<0>().inner().template get<0>(); }
  layer_norm<T>& norm(std::size_t k) { return blocks()[k].inner().template get<1>(); }
  concat<mlp<T>, mlp<T>>& heads() { return net_.template get<1>(); }
  /// @brief What graph layer k kept in the last call with ws (e.g. its LSH bins).
  static const typename conv_type::cache& conv_cache(const workspace& ws, std::size_t k) {
    const auto& trunk = std::get<1>(std::get<0>(ws.net.elements).branches);
    const auto& block = std::get<1>(trunk.elements).copies.at(k);
    return std::get<0>(std::get<0>(block.inner.elements).inner.elements);
  }

  /// @brief Inference on preprocessed inputs x0 (rows of all events of the batch): the logits and regression
  /// outputs, held in ws.
  const outputs& infer(const matrix<T>& x0, const batch& b, workspace& ws) const {
    check_inputs(x0, b, "mlpf_model::infer");
    net_.infer(x0, b, ws.y, ws.net);
    split(ws);
    return ws.out;
  }

  /// @brief Reconstructs the candidates of one event from its element features (see mlpf_decode for the
  /// optional per-class logit offsets).
  candidates reconstruct(const matrix<double>& features, workspace& ws, std::span<const double> logit_offset = {}) const {
    const matrix<T> x0 = mlpf_inputs<T>(features);
    const outputs& out = infer(x0, batch::single(static_cast<index_t>(x0.rows())), ws);
    return mlpf_decode(features, out[0], out[1], true, logit_offset);
  }
  /// @brief Same, with a temporary workspace.
  candidates reconstruct(const matrix<double>& features) const {
    workspace ws;
    return reconstruct(features, ws);
  }

  /// @brief Training forward without backward: as infer, with dropout (mlpf_config::dropout) active. The masks
  /// are drawn per call from the workspace's count of training forwards, so a fresh workspace repeats them.
  const outputs& forward(const matrix<T>& x0, const batch& b, workspace& ws) {
    check_inputs(x0, b, "mlpf_model::forward");
    net_.forward(x0, b, ws.y, ws.net);
    split(ws);
    return ws.out;
  }

  /// @brief The loss-and-gradients step of training (fit()'s step calls it): forward and backward on a batch of
  /// events; ADDS the parameter gradients of focal(logits, labels) + regression_weight * huber(regression rows of
  /// non-none elements) and returns the loss.
  mlpf_loss train_step(const matrix<T>& x0, const batch& b, std::span<const index_t> labels,
                       const matrix<T>& reg_target, workspace& ws, const mlpf_loss_options& lo = {}) {
    check_inputs(x0, b, "mlpf_model::train_step");
    check_shape(reg_target, x0.rows(), mlpf_regression_width, "mlpf_model::train_step: regression targets");
    HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == x0.rows(), "mlpf_model::train_step: need one label per ",
                 "element (", x0.rows(), "), got ", labels.size());
    net_.forward(x0, b, ws.y, ws.net);
    split(ws);
    const mlpf_loss l = loss(labels, reg_target, ws, true, lo);
    ws.dy.resize(ws.y.rows(), ws.y.cols());
    ws.dy.leftCols(num_classes) = ws.dout[0];
    ws.dy.rightCols(mlpf_regression_width) = ws.dout[1];
    net_.backward(x0, b, ws.y, ws.dy, ws.net, nullptr);
    return l;
  }

  /// @brief The loss of the outputs in ws (after infer or a training forward); with `grad`, fills ws.dout.
  mlpf_loss loss(std::span<const index_t> labels, const matrix<T>& reg_target, workspace& ws, bool grad,
                 const mlpf_loss_options& lo = {}) const {
    HEPGNN_CHECK(lo.class_weights.empty() || lo.class_weights.size() == static_cast<std::size_t>(num_classes),
                 "mlpf_model::loss: class_weights must be empty or have ", num_classes, " entries, got ",
                 lo.class_weights.size());
    mlpf_loss l;
    const std::vector<T> cw(lo.class_weights.begin(), lo.class_weights.end());
    l.classification = static_cast<double>(focal_loss<T>(
        ws.out[0], labels, {.gamma = static_cast<T>(lo.focal_gamma), .class_weights = cw.empty() ? nullptr : &cw},
        grad ? &ws.dout[0] : nullptr));
    vector<T> w(static_cast<Eigen::Index>(labels.size()));
    for (std::size_t i = 0; i < labels.size(); ++i) w(static_cast<Eigen::Index>(i)) = labels[i] == none ? T(0) : T(1);
    const T rw = static_cast<T>(lo.regression_weight);
    l.regression = static_cast<double>(
        huber<T>(ws.out[1], reg_target, {.delta = static_cast<T>(lo.huber_delta), .row_weights = &w},
                 grad ? &ws.dout[1] : nullptr));
    if (grad) ws.dout[1] *= rw;
    l.total = l.classification + static_cast<double>(rw) * l.regression;
    return l;
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    encoder().for_each_param(prefix + "encoder.", f);
    for (std::size_t k = 0; k < blocks().count(); ++k) {
      conv(k).for_each_param(prefix + "convs." + std::to_string(k) + ".", f);
      norm(k).for_each_param(prefix + "norms." + std::to_string(k) + ".", f);
    }
    heads().for_each_param(prefix + "heads.", f);
  }

  /// @brief The parameters a config asks for (what the constructor checks against max_parameters before building).
  static double parameter_count_of(const mlpf_config& c) {
    const double H = c.hidden, I = mlpf_input_width;
    auto linear = [](double in, double out) { return in * out + out; };
    double ffn = 0, w = H;
    for (int l = 0; l < typename conv_type::options{}.ffn_dist_num_layers; ++l, w = c.ffn_dist_hidden_dim)
      ffn += linear(w, c.ffn_dist_hidden_dim);
    ffn += linear(w, c.distance_dim);
    const double conv = ffn + c.num_node_messages * (3 * H * H + H) + 2 * H;  // + LayerNorm
    auto head = [&](double out) { return linear(I + H, c.head_hidden) + linear(c.head_hidden, c.head_hidden) + linear(c.head_hidden, out); };
    return linear(I, H) + linear(H, H) + c.num_convs * conv + head(num_classes) + head(mlpf_regression_width);
  }

 private:
  trunk_type& trunk() { return net_.template get<0>().template get<1>(); }
  repeated<block_type>& blocks() { return trunk().template get<1>(); }

  static const mlpf_config& checked(const mlpf_config& c) {
    check_config(c, "mlpf_model");
    HEPGNN_CHECK(!c.spatial_bins || c.hidden >= mlpf_position_dims, "mlpf_model: spatial_bins needs hidden >= ",
                 mlpf_position_dims, ", got ", c.hidden);
    const double n = parameter_count_of(c);
    HEPGNN_CHECK(n <= max_parameters, "mlpf_model: the config asks for ", n, " parameters, more than the ",
                 max_parameters, " allowed (hidden ", c.hidden, ", num_convs ", c.num_convs, ", num_node_messages ",
                 c.num_node_messages, ", head_hidden ", c.head_hidden, ")");
    return c;
  }

  static void check_inputs(const matrix<T>& x0, const batch& b, const char* who) {
    HEPGNN_CHECK(x0.cols() == mlpf_input_width, who, ": inputs x0 must have ", mlpf_input_width,
                 " columns (mlpf_inputs), got ", x0.rows(), " x ", x0.cols());
    b.validate(static_cast<index_t>(x0.rows()));
  }

  static void split(workspace& ws) {
    ws.out[0] = ws.y.leftCols(num_classes);
    ws.out[1] = ws.y.rightCols(mlpf_regression_width);
  }

  // The random draws come in the order of the model before it was a chain (encoder, regression head,
  // classification head, graph layers), so a seed gives the weights it gave then.
  static network make(const mlpf_config& c) {
    rng gen(c.seed);
    // each FFN its own dropout stream, apart from the weights' draws (so dropout does not change the weights)
    auto ffn = [&](bool last, std::uint64_t k) {
      return mlp_options{activation_kind::elu, last, c.dropout, mix64(c.seed ^ (0xD809D809ULL + k))};
    };
    mlp<T> encoder(gen, {mlpf_input_width, c.hidden, c.hidden}, ffn(true, 0));
    const int z = mlpf_input_width + c.hidden;
    mlp<T> reg(gen, {z, c.head_hidden, c.head_hidden, mlpf_regression_width}, ffn(false, 1));
    mlp<T> cls(gen, {z, c.head_hidden, c.head_hidden, num_classes}, ffn(false, 2));
    // with spatial_bins the first hidden channels carry the calorimeter position (overwritten, so no gradient)
    const int position = c.spatial_bins ? mlpf_position_dims : 0;
    std::vector<block_type> blocks;
    for (int k = 0; k < c.num_convs; ++k) {
      typename conv_type::options lo;
      lo.inout_dim = c.hidden;
      lo.distance_dim = c.distance_dim;
      lo.ffn_dist_hidden_dim = c.ffn_dist_hidden_dim;
      lo.num_node_messages = c.num_node_messages;
      lo.bin_size = c.bin_size;
      lo.hash_dims = c.spatial_bins ? mlpf_position_dims : 0;
      lo.hash_kernel_width = c.spatial_bins ? c.spatial_kernel_width : 0.0;
      lo.lsh_seed = 0x9F1A + static_cast<std::uint64_t>(k);  // fixed: an event's graph does not depend on the seed
      blocks.emplace_back(0, position, residual_skip<conv_type>(conv_type(gen, lo)), layer_norm<T>(c.hidden));
    }
    trunk_type trunk(carry_columns<mlp<T>>(mlpf_position_col, position, std::move(encoder)),
                     repeated<block_type>(std::move(blocks)));
    return network(concat_branches<columns<T, 0, mlpf_input_width>, trunk_type>({}, std::move(trunk)),
                   concat<mlp<T>, mlp<T>>(std::move(cls), std::move(reg)));
  }

  mlpf_config cfg_;
  network net_;
};

/// @brief The MLPF model (the family's short name).
template <class T>
using mlpf = mlpf_model<T>;

}  // namespace hepgnn::pf
