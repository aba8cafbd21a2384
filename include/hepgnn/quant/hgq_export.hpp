#pragma once
/// @file hgq_export.hpp
/// @brief From a trained hgq_dense to bit-accurate fixed-point inference (quantized_dense) with one format per
/// tensor, wide enough that nothing rounds or overflows: every HGQ weight (F_w <= max F) and input value is exact
/// in the common format, and the accumulator holds every product and sum exactly, so the fixed-point layer gives
/// the same values as hgq_dense's forward (tests/quant/test_quantizers.cpp). Inputs must be quantized by the
/// HGQ input quantizer first (the `xq` of hgq_dense's cache: per-feature formats are not a dense_precision).
/// The bias, kept in floating point by hgq_dense, is converted to `bias_format` (exact only if it fits).

#include <algorithm>
#include <cmath>
#include <vector>

#include "hepgnn/quant/dense.hpp"
#include "hepgnn/quant/hgq.hpp"

namespace hepgnn::quant {

/// @brief The exact-accumulation formats for an hgq_dense (input, weight, accumulator = result) and `bias_format`.
/// Throws hepgnn::error when a format would need more than 32 bits.
template <class T>
dense_precision hgq_exact_precision(const hgq_dense<T>& l, fixed_spec bias_format = {16, 6, quant_mode::rnd}) {
  int fw = -max_layer_width, iw = 1;  // iw: integer bits with the sign
  for (int o = 0; o < l.out_features(); ++o)
    for (int i = 0; i < l.in_features(); ++i) {
      fw = std::max(fw, l.weight_frac(o, i));
      const double q = std::abs(l.quantized_weight(o, i));
      if (q > 0) iw = std::max(iw, hgq_integer_bits(q) + 1);
    }
  int fx = -max_layer_width, ix = 1;
  for (int i = 0; i < l.in_features(); ++i) {
    fx = std::max(fx, l.input_frac(i));
    ix = std::max(ix, l.input_integer_bits(i) + 1);  // one sign bit for all features
  }
  fw = std::max(fw, 0);
  fx = std::max(fx, 0);
  // a sum of `in` products and the bias needs ceil(log2(in + 1)) more integer bits than one product
  const int grow = static_cast<int>(std::ceil(std::log2(static_cast<double>(l.in_features()) + 1)));
  int ia = ix + iw + grow;
  if (l.has_bias()) ia = std::max(ia, bias_format.integer) + 1;
  dense_precision p;
  p.input = {ix + fx, ix};
  p.weight = {iw + fw, iw};
  p.bias = bias_format;
  p.accum = {ia + (l.has_bias() ? std::max(fx + fw, bias_format.frac()) : fx + fw), ia};
  p.result = p.accum;
  HEPGNN_CHECK(p.input.width <= max_layer_width && p.weight.width <= max_layer_width &&
                   p.accum.width <= max_layer_width,
               "hgq_exact_precision: the layer needs input ", p.input.width, ", weight ", p.weight.width,
               ", accumulator ", p.accum.width, " bits; at most ", max_layer_width, " are supported");
  return p;
}

/// @brief quantized_dense with the HGQ weights (already on their grids) and hgq_exact_precision's formats.
template <class T>
quantized_dense to_quantized_dense(const hgq_dense<T>& l, const dense_precision& p) {
  std::vector<double> w(static_cast<std::size_t>(l.out_features()) * l.in_features()), b(l.out_features());
  for (int o = 0; o < l.out_features(); ++o) {
    for (int i = 0; i < l.in_features(); ++i) w[static_cast<std::size_t>(o) * l.in_features() + i] = l.quantized_weight(o, i);
    if (l.has_bias()) b[o] = static_cast<double>(l.bias()(0, o));
  }
  return quantized_dense(w.data(), l.has_bias() ? b.data() : nullptr, l.in_features(), l.out_features(), p);
}

}  // namespace hepgnn::quant
