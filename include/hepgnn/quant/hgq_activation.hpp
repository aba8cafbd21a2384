#pragma once
/// @file hgq_activation.hpp
/// @brief hepgnn::quant::hgq_activation: HGQ's activation quantizer as a row-wise layer (same width), to put before
/// any layer (graph layers included): trainable fractional bits per feature (or per tensor), integer bits and
/// sign from calibration (running max |x| and sign seen by training forwards), the same forward, surrogate
/// gradient and bit count as hgq_dense's input quantizer (see hgq.hpp):
/// x_c = clip(x, -k 2^i, 2^i - 2^-F), x_q = floor(x_c 2^F + 1/2) 2^-F with F = round(f);
/// dL/dx = dL/dx_q where not clipped; dL/df = -ln 2 (x_q - x_c) dL/dx_q; bits = max(0, i + F) + k.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/layer.hpp"

namespace hepgnn::quant {

/// @brief How many fractional-bit parameters a tensor has.
enum class granularity : std::uint8_t {
  per_element,  ///< weights: one per weight; inputs: one per feature
  per_channel,  ///< weights: one per output; inputs: one per feature
  per_tensor    ///< one for the whole tensor
};

/// @brief Integer bits (sign excluded) of a magnitude a: the smallest i with a < 2^i (a very negative number for 0).
inline int hgq_integer_bits(double a) {
  if (!(a > 0)) return -(1 << 20);
  int e = 0;
  std::frexp(a, &e);  // a = m 2^e, 0.5 <= m < 1
  return e;
}

template <class T>
class hgq_activation {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  struct cache {
    matrix<T> xc;  ///< the clipped input (what the rounding saw)
  };

  /// @brief `features` inputs, initial fractional bits `init_frac_bits`, one parameter per feature unless
  /// `g` is granularity::per_tensor.
  hgq_activation(int features, double init_frac_bits = 6, granularity g = granularity::per_channel) : g_(g) {
    HEPGNN_CHECK(features > 0, "hgq_activation: features must be positive, got ", features);
    HEPGNN_CHECK(std::isfinite(init_frac_bits), "hgq_activation: init_frac_bits must be finite, got ", init_frac_bits);
    const Eigen::Index n = g == granularity::per_tensor ? 1 : features;
    f_ = matrix<T>::Constant(1, n, static_cast<T>(init_frac_bits));
    f_grad_ = matrix<T>::Zero(1, n);
    max_abs_.assign(features, 0.0);
    negative_.assign(features, 0);
  }

  int features() const { return static_cast<int>(max_abs_.size()); }
  matrix<T>& frac_bits() { return f_; }
  matrix<T>& frac_bits_grad() { return f_grad_; }
  int frac(int c) const { return static_cast<int>(std::nearbyint(static_cast<double>(f_(0, index(c))))); }
  int integer_bits(int c) const { return std::max(hgq_integer_bits(max_abs_[c]), -frac(c)); }
  int sign_bit(int c) const { return negative_[c] ? 1 : 0; }
  /// @brief Bits of feature c: max(0, i + F) + k (0: the feature is pruned).
  int bits(int c) const { return std::max(0, integer_bits(c) + frac(c)) + sign_bit(c); }
  /// @brief The EBOPs surrogate's bits of feature c, max(0, i + f) + k with the continuous f, and whether its
  /// derivative in f is 1 (i + f > 0).
  double surrogate_bits(int c) const {
    return std::max(0.0, hgq_integer_bits(max_abs_[c]) + static_cast<double>(f_(0, index(c)))) + sign_bit(c);
  }
  bool surrogate_active(int c) const { return hgq_integer_bits(max_abs_[c]) + static_cast<double>(f_(0, index(c))) > 0; }
  /// @brief Which entry of frac_bits() feature c uses.
  int index(int c) const { return g_ == granularity::per_tensor ? 0 : c; }

  void calibrate(const matrix<T>& x) {
    check_cols(x, features(), "hgq_activation::calibrate: input x");
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      for (Eigen::Index c = 0; c < x.cols(); ++c) {
        const double v = static_cast<double>(x(r, c));
        HEPGNN_CHECK(std::isfinite(v), "hgq_activation::calibrate: input x must be finite, got ", v, " at (", r, ", ",
                     c, ")");
        max_abs_[c] = std::max(max_abs_[c], std::abs(v));
        negative_[c] |= v < 0;
      }
  }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    calibrate(x);
    infer(x, y, c);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    check_cols(x, features(), "hgq_activation: input x");
    y.resize(x.rows(), x.cols());
    c.xc.resize(x.rows(), x.cols());
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
      const int f = frac(static_cast<int>(i)), ib = integer_bits(static_cast<int>(i));
      const double hi = std::ldexp(1.0, ib) - std::ldexp(1.0, -f), lo = negative_[i] ? -std::ldexp(1.0, ib) : 0.0;
      for (Eigen::Index r = 0; r < x.rows(); ++r) {
        const double v = std::min(hi, std::max(lo, static_cast<double>(x(r, i))));
        c.xc(r, i) = static_cast<T>(v);
        y(r, i) = static_cast<T>(std::ldexp(std::floor(std::ldexp(v, f) + 0.5), -f));
      }
    }
  }
  void backward(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    check_shape(dy, x.rows(), x.cols(), "hgq_activation: output gradient dy");
    const T neg_ln2 = static_cast<T>(-0.69314718055994530942);
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      for (Eigen::Index i = 0; i < x.cols(); ++i) f_grad_(0, index(static_cast<int>(i))) += neg_ln2 * (y(r, i) - c.xc(r, i)) * dy(r, i);
    if (!dx) return;
    dx->resize(x.rows(), x.cols());
    for (Eigen::Index e = 0; e < x.size(); ++e) dx->data()[e] = x.data()[e] == c.xc.data()[e] ? dy.data()[e] : T(0);
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "frac_bits", make_parameter(f_, f_grad_, {f_.cols()}));
  }

 private:
  granularity g_;
  matrix<T> f_, f_grad_;
  std::vector<double> max_abs_;
  std::vector<std::uint8_t> negative_;
};

}  // namespace hepgnn::quant
