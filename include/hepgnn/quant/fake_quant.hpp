#pragma once
/// @file fake_quant.hpp
/// @brief Fake quantization at fixed bit widths for quantization-aware training (QKeras / Brevitas style):
/// the forward pass rounds to a fixed-point format (exactly as the firmware's ap_fixed would), the backward pass
/// is the straight-through estimator.
///
/// Gradient: dL/dx = dL/dy where x lies inside the format's range or the overflow mode wraps; 0 where a
/// saturating mode clips x (the output no longer depends on x there).

#include <cmath>
#include <string>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/quant/fixed_spec.hpp"

namespace hepgnn::quant {

/// @brief The value of x in format s (ap_fixed's conversion from double, returned as T).
template <class T>
T fake_quantize(T x, const fixed_spec& s) {
  return static_cast<T>(raw_to_double(quantize_double(static_cast<double>(x), s), s));
}

/// @brief Whether the straight-through gradient passes at x: inside [min, max] of s, or s wraps.
template <class T>
bool fake_quant_passes(T x, const fixed_spec& s) {
  if (s.o == overflow_mode::wrap) return true;
  const double v = static_cast<double>(x), lsb = std::ldexp(1.0, -s.frac());
  const double hi = (s.is_signed ? std::ldexp(1.0, s.integer - 1) : std::ldexp(1.0, s.integer)) - lsb;
  const double lo = s.is_signed ? -std::ldexp(1.0, s.integer - 1) : 0.0;
  return v >= lo && v <= hi;
}

/// @brief A row-wise layer y = fake_quantize(x) with the straight-through gradient; no parameters.
template <class T>
class fake_quant {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  using cache = no_cache;

  explicit fake_quant(const fixed_spec& s) : s_(s) { check_spec(s, "fake_quant", "spec", max_fixed_width - 1); }
  const fixed_spec& spec() const { return s_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { infer(x, y, c); }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const {
    y.resize(x.rows(), x.cols());
    for (Eigen::Index e = 0; e < x.size(); ++e) y.data()[e] = fake_quantize(x.data()[e], s_);
  }
  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache&, matrix<T>* dx) const {
    check_shape(dy, x.rows(), x.cols(), "fake_quant: output gradient dy");
    if (!dx) return;
    dx->resize(x.rows(), x.cols());
    for (Eigen::Index e = 0; e < x.size(); ++e)
      dx->data()[e] = fake_quant_passes(x.data()[e], s_) ? dy.data()[e] : T(0);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  fixed_spec s_;
};

}  // namespace hepgnn::quant
