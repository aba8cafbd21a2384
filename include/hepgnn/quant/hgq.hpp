#pragma once
/// @file hgq.hpp
/// @brief hepgnn::quant::hgq_dense: a dense layer trained with HGQ-style learnable bit widths (High Granularity
/// Quantization, arXiv:2405.00645): trainable fractional bits per weight (or per output channel, or per tensor)
/// and per input feature (or per tensor), integer bits from the value range, pruning at 0 bits, and an EBOPs
/// estimate with a differentiable surrogate as the resource regulariser. The bit widths are parameters
/// (`weight_frac_bits`, `input_frac_bits`), so hepgnn's optimizers train them with the weights.
///
/// Forward, for a value x with fractional-bit parameter f: the format uses F = round(f) fractional bits;
/// inputs are first clipped to their calibrated range [-k 2^i, 2^i - 2^-F] (k = 1 when negative inputs were
/// seen, i = integer bits of the running max |x|, at least -F), then x_q = floor(x 2^F + 1/2) / 2^F (AP_RND).
/// Weights take their integer bits from their own magnitude (no clipping); a weight that rounds to 0 is pruned.
/// Backward (HGQ's surrogate): dL/dx = dL/dx_q inside the range, 0 where clipped (straight-through);
/// dL/df = -ln 2 (x_q - x_c) dL/dx_q with x_c the clipped x (from d x_q/df of 2^-f round(x 2^f), the rounding
/// held fixed); f's own rounding passes the gradient straight through.
/// Bits: an input feature has max(0, i + F) + k bits; a weight 1 + the bit length of |round(w 2^F)|, or 0 when pruned.
/// EBOPs = sum over weights of bits(weight) * bits(its input feature). The surrogate uses the continuous f:
/// bits_c = max(0, i + f) + k per input, max(0, i_w + f) + 1 per unpruned weight (i_w: integer bits of |w|).
/// The bias is not quantized here (kept in floating point).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/quant/hgq_activation.hpp"

namespace hepgnn::quant {

struct hgq_options {
  double init_weight_frac_bits = 6;
  double init_input_frac_bits = 6;
  granularity weights = granularity::per_element;
  granularity inputs = granularity::per_channel;
  bool bias = true;
};

template <class T>
class hgq_dense {
 public:
  using scalar = T;
  static constexpr int in_width = dynamic;
  static constexpr int out_width = dynamic;
  struct cache {
    matrix<T> xq, wq;
    typename hgq_activation<T>::cache act;  ///< act.xc: the clipped input
  };

  hgq_dense(rng& gen, int in, int out, hgq_options o = {})
      : o_(o),
        act_(std::max(in, 1), o.init_input_frac_bits,
             o.inputs == granularity::per_tensor ? granularity::per_tensor : granularity::per_channel) {
    HEPGNN_CHECK(in > 0 && out > 0, "hgq_dense: widths must be positive, got in = ", in, ", out = ", out);
    HEPGNN_CHECK(std::isfinite(o.init_weight_frac_bits) && std::isfinite(o.init_input_frac_bits),
                 "hgq_dense: initial fractional bits must be finite, got ", o.init_weight_frac_bits, ", ",
                 o.init_input_frac_bits);
    weight_.resize(out, in);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    for (Eigen::Index e = 0; e < weight_.size(); ++e) weight_.data()[e] = static_cast<T>(gen.uniform(-bound, bound));
    weight_grad_ = matrix<T>::Zero(out, in);
    bias_ = matrix<T>::Zero(1, o.bias ? out : 0);
    for (Eigen::Index e = 0; e < bias_.size(); ++e) bias_.data()[e] = static_cast<T>(gen.uniform(-bound, bound));
    bias_grad_ = matrix<T>::Zero(1, bias_.cols());
    const Eigen::Index fw_rows = o.weights == granularity::per_tensor ? 1 : out;
    const Eigen::Index fw_cols = o.weights == granularity::per_element ? in : 1;
    fw_ = matrix<T>::Constant(fw_rows, fw_cols, static_cast<T>(o.init_weight_frac_bits));
    fw_grad_ = matrix<T>::Zero(fw_rows, fw_cols);
  }

  int in_features() const { return static_cast<int>(weight_.cols()); }
  int out_features() const { return static_cast<int>(weight_.rows()); }
  bool has_bias() const { return bias_.size() > 0; }
  const matrix<T>& bias() const { return bias_; }
  matrix<T>& weight() { return weight_; }
  matrix<T>& bias() { return bias_; }
  matrix<T>& weight_grad() { return weight_grad_; }
  matrix<T>& bias_grad() { return bias_grad_; }
  matrix<T>& weight_frac_bits() { return fw_; }
  matrix<T>& weight_frac_bits_grad() { return fw_grad_; }
  matrix<T>& input_frac_bits() { return act_.frac_bits(); }
  matrix<T>& input_frac_bits_grad() { return act_.frac_bits_grad(); }
  /// @brief The input quantizer (an hgq_activation).
  const hgq_activation<T>& input_quantizer() const { return act_; }

  /// @brief Widens the calibrated input range to cover x (a training forward does this first).
  void calibrate(const matrix<T>& x) { act_.calibrate(x); }
  /// @brief Calibrated integer bits (sign excluded) and sign bit of input feature c.
  int input_integer_bits(int c) const { return act_.integer_bits(c); }
  int input_sign_bit(int c) const { return act_.sign_bit(c); }
  /// @brief Fractional bits in use: round(f).
  int input_frac(int c) const { return act_.frac(c); }
  int weight_frac(int o, int i) const {
    return static_cast<int>(std::nearbyint(static_cast<double>(fw_(fw_row(o), fw_col(i)))));
  }

  /// @brief The quantized weight of output o, input i.
  double quantized_weight(int o, int i) const {
    const int f = weight_frac(o, i);
    return std::ldexp(std::floor(std::ldexp(static_cast<double>(weight_(o, i)), f) + 0.5), -f);
  }
  /// @brief Bits of a weight (0 when pruned) and of an input feature.
  int weight_bits(int o, int i) const {
    const double m = std::abs(std::ldexp(quantized_weight(o, i), weight_frac(o, i)));
    return m == 0 ? 0 : hgq_integer_bits(m) + 1;  // |m| < 2^bits; plus the sign
  }
  int input_bits(int c) const { return act_.bits(c); }
  /// @brief Effective bit operations: sum over weights of bits(weight) * bits(input feature).
  double ebops() const {
    double s = 0;
    for (int o = 0; o < out_features(); ++o)
      for (int i = 0; i < in_features(); ++i) s += static_cast<double>(weight_bits(o, i)) * input_bits(i);
    return s;
  }
  /// @brief Fraction of weights that round to 0.
  double pruned_fraction() const {
    long n = 0;
    for (int o = 0; o < out_features(); ++o)
      for (int i = 0; i < in_features(); ++i) n += weight_bits(o, i) == 0;
    return static_cast<double>(n) / static_cast<double>(weight_.size());
  }

  /// @brief The differentiable EBOPs surrogate (continuous f, see the file comment).
  double ebops_surrogate() const {
    double s = 0;
    for (int o = 0; o < out_features(); ++o)
      for (int i = 0; i < in_features(); ++i) s += surrogate_weight_bits(o, i) * act_.surrogate_bits(i);
    return s;
  }
  /// @brief Adds beta * d(ebops_surrogate)/df to the fractional-bit gradients; returns beta * ebops_surrogate().
  double add_ebops_gradient(double beta) {
    for (int o = 0; o < out_features(); ++o)
      for (int i = 0; i < in_features(); ++i) {
        const double bw = surrogate_weight_bits(o, i), bx = act_.surrogate_bits(i);
        if (bw > 0 && weight_bits(o, i) > 0) fw_grad_(fw_row(o), fw_col(i)) += static_cast<T>(beta * bx);
        if (act_.surrogate_active(i)) act_.frac_bits_grad()(0, act_.index(i)) += static_cast<T>(beta * bw);
      }
    return beta * ebops_surrogate();
  }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    calibrate(x);
    infer(x, y, c);
  }

  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    check_cols(x, in_features(), "hgq_dense: input x");
    const Eigen::Index in = in_features(), out = out_features();
    act_.infer(x, c.xq, c.act);
    c.wq.resize(out, in);
    for (Eigen::Index o = 0; o < out; ++o)
      for (Eigen::Index i = 0; i < in; ++i)
        c.wq(o, i) = static_cast<T>(quantized_weight(static_cast<int>(o), static_cast<int>(i)));
    y.noalias() = c.xq * c.wq.transpose();
    if (bias_.size()) y.rowwise() += bias_.row(0);
  }

  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    check_shape(dy, x.rows(), out_features(), "hgq_dense: output gradient dy");
    const T neg_ln2 = static_cast<T>(-0.69314718055994530942);
    const matrix<T> dwq = dy.transpose() * c.xq;  // [out, in]
    weight_grad_ += dwq;
    for (Eigen::Index o = 0; o < dwq.rows(); ++o)
      for (Eigen::Index i = 0; i < dwq.cols(); ++i)
        fw_grad_(fw_row(static_cast<int>(o)), fw_col(static_cast<int>(i))) += neg_ln2 * (c.wq(o, i) - weight_(o, i)) * dwq(o, i);
    if (bias_.size()) bias_grad_.row(0) += dy.colwise().sum();
    const matrix<T> dxq = dy * c.wq;  // [n, in]: the input quantizer adds its f gradient and writes dx
    act_.backward(x, c.xq, dxq, c.act, dx);
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "weight", make_parameter(weight_, weight_grad_, {weight_.rows(), weight_.cols()}));
    if (bias_.size()) f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
    f(prefix + "weight_frac_bits", make_parameter(fw_, fw_grad_, {fw_.rows(), fw_.cols()}));
    f(prefix + "input_frac_bits", make_parameter(act_.frac_bits(), act_.frac_bits_grad(), {act_.frac_bits().cols()}));
  }

 private:
  int fw_row(int o) const { return o_.weights == granularity::per_tensor ? 0 : o; }
  int fw_col(int i) const { return o_.weights == granularity::per_element ? i : 0; }
  double surrogate_weight_bits(int o, int i) const {
    if (weight_bits(o, i) == 0) return 0;  // pruned
    const double f = static_cast<double>(fw_(fw_row(o), fw_col(i)));
    return std::max(0.0, hgq_integer_bits(std::abs(static_cast<double>(weight_(o, i)))) + f) + 1;
  }

  hgq_options o_;
  hgq_activation<T> act_;
  matrix<T> weight_, weight_grad_, bias_, bias_grad_, fw_, fw_grad_;
};

}  // namespace hepgnn::quant
