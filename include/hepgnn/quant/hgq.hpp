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

namespace hepgnn::quant {

/// @brief How many fractional-bit parameters a tensor has.
enum class granularity : std::uint8_t {
  per_element,  ///< weights: one per weight; inputs: one per feature
  per_channel,  ///< weights: one per output; inputs: one per feature
  per_tensor    ///< one for the whole tensor
};

struct hgq_options {
  double init_weight_frac_bits = 6;
  double init_input_frac_bits = 6;
  granularity weights = granularity::per_element;
  granularity inputs = granularity::per_channel;
  bool bias = true;
};

/// @brief Integer bits (sign excluded) of a magnitude a: the smallest i with a < 2^i (a very negative number for 0).
inline int hgq_integer_bits(double a) {
  if (!(a > 0)) return -(1 << 20);
  int e = 0;
  std::frexp(a, &e);  // a = m 2^e, 0.5 <= m < 1
  return e;
}

template <class T>
class hgq_dense {
 public:
  using scalar = T;
  static constexpr int in_width = dynamic;
  static constexpr int out_width = dynamic;
  struct cache {
    matrix<T> xq, xc, wq;
  };

  hgq_dense(rng& gen, int in, int out, hgq_options o = {}) : o_(o) {
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
    const Eigen::Index fx_cols = o.inputs == granularity::per_tensor ? 1 : in;
    fx_ = matrix<T>::Constant(1, fx_cols, static_cast<T>(o.init_input_frac_bits));
    fx_grad_ = matrix<T>::Zero(1, fx_cols);
    max_abs_.assign(in, 0.0);
    negative_.assign(in, 0);
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
  matrix<T>& input_frac_bits() { return fx_; }
  matrix<T>& input_frac_bits_grad() { return fx_grad_; }

  /// @brief Widens the calibrated input range to cover x (a training forward does this first).
  void calibrate(const matrix<T>& x) {
    check_cols(x, in_features(), "hgq_dense::calibrate: input x");
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      for (Eigen::Index c = 0; c < x.cols(); ++c) {
        const double v = static_cast<double>(x(r, c));
        HEPGNN_CHECK(std::isfinite(v), "hgq_dense::calibrate: input x must be finite, got ", v, " at (", r, ", ", c, ")");
        max_abs_[c] = std::max(max_abs_[c], std::abs(v));
        negative_[c] |= v < 0;
      }
  }
  /// @brief Calibrated integer bits (sign excluded) and sign bit of input feature c, for F fractional bits.
  int input_integer_bits(int c) const { return std::max(hgq_integer_bits(max_abs_[c]), -input_frac(c)); }
  int input_sign_bit(int c) const { return negative_[c] ? 1 : 0; }
  /// @brief Fractional bits in use: round(f).
  int input_frac(int c) const { return static_cast<int>(std::nearbyint(static_cast<double>(fx_(0, fx_index(c))))); }
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
  int input_bits(int c) const { return std::max(0, input_integer_bits(c) + input_frac(c)) + input_sign_bit(c); }
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
      for (int i = 0; i < in_features(); ++i) s += surrogate_weight_bits(o, i) * surrogate_input_bits(i);
    return s;
  }
  /// @brief Adds beta * d(ebops_surrogate)/df to the fractional-bit gradients; returns beta * ebops_surrogate().
  double add_ebops_gradient(double beta) {
    for (int o = 0; o < out_features(); ++o)
      for (int i = 0; i < in_features(); ++i) {
        const double bw = surrogate_weight_bits(o, i), bx = surrogate_input_bits(i);
        if (bw > 0 && weight_bits(o, i) > 0) fw_grad_(fw_row(o), fw_col(i)) += static_cast<T>(beta * bx);
        if (input_active(i)) fx_grad_(0, fx_index(i)) += static_cast<T>(beta * bw);
      }
    return beta * ebops_surrogate();
  }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    calibrate(x);
    infer(x, y, c);
  }

  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    check_cols(x, in_features(), "hgq_dense: input x");
    const Eigen::Index n = x.rows(), in = in_features(), out = out_features();
    c.xq.resize(n, in);
    c.xc.resize(n, in);
    for (Eigen::Index i = 0; i < in; ++i) {
      const int f = input_frac(static_cast<int>(i)), ib = input_integer_bits(static_cast<int>(i));
      const double hi = std::ldexp(1.0, ib) - std::ldexp(1.0, -f), lo = negative_[i] ? -std::ldexp(1.0, ib) : 0.0;
      for (Eigen::Index r = 0; r < n; ++r) {
        const double v = std::min(hi, std::max(lo, static_cast<double>(x(r, i))));
        c.xc(r, i) = static_cast<T>(v);
        c.xq(r, i) = static_cast<T>(std::ldexp(std::floor(std::ldexp(v, f) + 0.5), -f));
      }
    }
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
    const matrix<T> dxq = dy * c.wq;  // [n, in]
    for (Eigen::Index r = 0; r < dxq.rows(); ++r)
      for (Eigen::Index i = 0; i < dxq.cols(); ++i)
        fx_grad_(0, fx_index(static_cast<int>(i))) += neg_ln2 * (c.xq(r, i) - c.xc(r, i)) * dxq(r, i);
    if (!dx) return;
    dx->resize(x.rows(), x.cols());
    for (Eigen::Index r = 0; r < dxq.rows(); ++r)
      for (Eigen::Index i = 0; i < dxq.cols(); ++i)
        (*dx)(r, i) = x(r, i) == c.xc(r, i) ? dxq(r, i) : T(0);  // clipped inputs get no gradient
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "weight", make_parameter(weight_, weight_grad_, {weight_.rows(), weight_.cols()}));
    if (bias_.size()) f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
    f(prefix + "weight_frac_bits", make_parameter(fw_, fw_grad_, {fw_.rows(), fw_.cols()}));
    f(prefix + "input_frac_bits", make_parameter(fx_, fx_grad_, {fx_.cols()}));
  }

 private:
  int fw_row(int o) const { return o_.weights == granularity::per_tensor ? 0 : o; }
  int fw_col(int i) const { return o_.weights == granularity::per_element ? i : 0; }
  int fx_index(int i) const { return o_.inputs == granularity::per_tensor ? 0 : i; }
  double surrogate_input_bits(int i) const {
    const double f = static_cast<double>(fx_(0, fx_index(i)));
    return std::max(0.0, hgq_integer_bits(max_abs_[i]) + f) + input_sign_bit(i);
  }
  bool input_active(int i) const { return hgq_integer_bits(max_abs_[i]) + static_cast<double>(fx_(0, fx_index(i))) > 0; }
  double surrogate_weight_bits(int o, int i) const {
    if (weight_bits(o, i) == 0) return 0;  // pruned
    const double f = static_cast<double>(fw_(fw_row(o), fw_col(i)));
    return std::max(0.0, hgq_integer_bits(std::abs(static_cast<double>(weight_(o, i)))) + f) + 1;
  }

  hgq_options o_;
  matrix<T> weight_, weight_grad_, bias_, bias_grad_, fw_, fw_grad_, fx_, fx_grad_;
  std::vector<double> max_abs_;
  std::vector<std::uint8_t> negative_;
};

}  // namespace hepgnn::quant
