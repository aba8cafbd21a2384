#pragma once
/// @file dense.hpp
/// @brief hepgnn::quant::quantized_dense: bit-accurate fixed-point inference of a dense (Linear) layer as hls4ml's
/// nnet::dense (latency implementation) computes it, and quant::relu_raw (nnet::relu), with formats given at run
/// time (a search over bit widths needs no recompile).
///
/// Accumulation rule (hls4ml nnet_dense_latency): every product x_i * w_ij (exact, F_x + F_w fractional bits) is
/// cast to accum_t; the bias is cast to accum_t; acc_j = bias_j, then acc_j += product_ij for i = 0, 1, ... with
/// each sum cast back to accum_t (its Q and O); finally y_j = (res_t) acc_j. Casts follow fixed_spec.hpp.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/quant/fixed_spec.hpp"
#include "hepgnn/quant/integer_kernels.hpp"

namespace hepgnn::quant {

/// @brief Formats of one dense layer (hls4ml's input/data_t, weight_t, bias_t, accum_t, result_t); all signed
/// ap_fixed<16,6> by default, as hls4ml's default precision.
struct dense_precision {
  fixed_spec input{};
  fixed_spec weight{};
  fixed_spec bias{};
  fixed_spec accum{};
  fixed_spec result{};
};

/// @brief A dense layer with weights stored as raw fixed-point integers; forward_raw runs the integer kernel.
class quantized_dense {
 public:
  /// @brief Quantizes weight [out, in] (row-major, hepgnn::dense / PyTorch layout) and bias [out] (nullptr: none)
  /// to p.weight and p.bias, as ap_fixed converts doubles.
  quantized_dense(const double* weight, const double* bias, int in, int out, const dense_precision& p)
      : p_(p), in_(in), out_(out) {
    HEPGNN_CHECK(in > 0 && out > 0, "quantized_dense: in and out must be positive, got in = ", in, ", out = ", out);
    check_spec(p.input, "quantized_dense", "precision.input");
    check_spec(p.weight, "quantized_dense", "precision.weight");
    check_spec(p.bias, "quantized_dense", "precision.bias");
    check_spec(p.accum, "quantized_dense", "precision.accum");
    check_spec(p.result, "quantized_dense", "precision.result");
    shift_ = p.input.frac() + p.weight.frac() - p.accum.frac();
    HEPGNN_CHECK(shift_ < 63 && p.input.width + p.weight.width - std::min(shift_, 0) <= 64,
                 "quantized_dense: precision.accum has ", p.accum.frac(), " fractional bits, the products ",
                 p.input.frac() + p.weight.frac(), ": the shift between them must leave products within 64 bits");
    w_.resize(static_cast<std::size_t>(in) * out);
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i)
        w_[static_cast<std::size_t>(i) * out + o] =
            static_cast<std::int32_t>(quantize_double(weight[static_cast<std::size_t>(o) * in + i], p.weight));
    bias_acc_.assign(out, 0);
    bias_raw_.assign(bias ? out : 0, 0);
    if (bias)
      for (int o = 0; o < out; ++o) {  // (accum_t) bias_t(b); bias_t kept for export
        bias_raw_[o] = static_cast<std::int32_t>(quantize_double(bias[o], p.bias));
        bias_acc_[o] = quantize_raw(bias_raw_[o], p.bias.frac(), p.accum);
      }
  }

  /// @brief From a trained hepgnn::dense (float or double), with formats p.
  template <class T, int In, int Out>
  static quantized_dense from(const dense<T, In, Out>& layer, const dense_precision& p) {
    const int in = layer.in_features(), out = layer.out_features();
    std::vector<double> w(static_cast<std::size_t>(in) * out), b(out);
    for (int k = 0; k < in * out; ++k) w[k] = static_cast<double>(layer.weight().data()[k]);
    for (int o = 0; o < out && layer.has_bias(); ++o) b[o] = static_cast<double>(layer.bias().data()[o]);
    return quantized_dense(w.data(), layer.has_bias() ? b.data() : nullptr, in, out, p);
  }

  int in_features() const { return in_; }
  int out_features() const { return out_; }
  const dense_precision& precision() const { return p_; }
  /// @brief Raw weight of output o, input i (format precision().weight).
  std::int32_t weight_raw(int o, int i) const { return w_[static_cast<std::size_t>(i) * out_ + o]; }
  /// @brief Bias of output o as a raw accumulator value (already cast to precision().accum).
  std::int64_t bias_accum_raw(int o) const { return bias_acc_[o]; }
  bool has_bias() const { return !bias_raw_.empty(); }
  /// @brief The bias in its own format (0 without a bias).
  std::int32_t bias_raw(int o) const { return bias_raw_.empty() ? 0 : bias_raw_[o]; }

  /// @brief y [batch, out] = the layer on x [batch, in], both raw integers (x in precision().input, y in
  /// precision().result). `acc` is scratch of batch * out entries (kept by the caller: no allocation).
  void forward_raw(const std::int32_t* x, int batch, std::int32_t* y, std::int64_t* acc) const {
    HEPGNN_CHECK(batch >= 0, "quantized_dense::forward_raw: batch must be >= 0, got ", batch);
    const dense_kernel_shape k{batch, in_, out_, shift_};
    const lane_range acc_range(p_.accum);
    with_modes(p_.accum.q, p_.accum.o, [&]<quant_mode Q, overflow_mode O>() {
      dense_accumulate<Q, O>(x, w_.data(), bias_acc_.data(), k, acc_range, acc);
    });
    const std::int64_t n = static_cast<std::int64_t>(batch) * out_;
    if (p_.result == p_.accum) {
      for (std::int64_t e = 0; e < n; ++e) y[e] = static_cast<std::int32_t>(acc[e]);
    } else {
      for (std::int64_t e = 0; e < n; ++e) y[e] = static_cast<std::int32_t>(quantize_raw(acc[e], p_.accum.frac(), p_.result));
    }
  }
  /// @brief The same, with its own scratch (allocates).
  void forward_raw(const std::int32_t* x, int batch, std::int32_t* y) const {
    std::vector<std::int64_t> acc(static_cast<std::size_t>(batch) * out_);
    forward_raw(x, batch, y, acc.data());
  }

  /// @brief Values in, values out: x is quantized to precision().input (ap_fixed's conversion), the result is the
  /// exact value of the result format. Allocates its scratch.
  template <class T>
  void forward(const matrix<T>& x, matrix<T>& y) const {
    check_cols(x, in_, "quantized_dense: input x");
    const int batch = static_cast<int>(x.rows());
    std::vector<std::int32_t> xr(static_cast<std::size_t>(x.size())), yr(static_cast<std::size_t>(batch) * out_);
    for (Eigen::Index e = 0; e < x.size(); ++e)
      xr[e] = static_cast<std::int32_t>(quantize_double(static_cast<double>(x.data()[e]), p_.input));
    forward_raw(xr.data(), batch, yr.data());
    y.resize(batch, out_);
    for (Eigen::Index e = 0; e < y.size(); ++e) y.data()[e] = static_cast<T>(raw_to_double(yr[e], p_.result));
  }

 private:
  dense_precision p_;
  int in_, out_, shift_ = 0;
  std::vector<std::int32_t> w_;         // [in, out]: the output index is the vector lane
  std::vector<std::int64_t> bias_acc_;  // [out], in the accumulator format
  std::vector<std::int32_t> bias_raw_;  // [out] in the bias format, empty without a bias
};

/// @brief hls4ml's relu: y = x > 0 ? (res_t) x : 0, on raw integers of format `in` into format `out`.
inline void relu_raw(const std::int32_t* x, std::int64_t n, const fixed_spec& in, const fixed_spec& out, std::int32_t* y) {
  check_spec(in, "relu_raw", "in");
  check_spec(out, "relu_raw", "out");
  if (in.frac() == out.frac() && in.width - in.is_signed <= out.width - out.is_signed) {  // positives all fit
    for (std::int64_t e = 0; e < n; ++e) y[e] = std::max<std::int32_t>(x[e], 0);
    return;
  }
  for (std::int64_t e = 0; e < n; ++e) y[e] = x[e] > 0 ? static_cast<std::int32_t>(quantize_raw(x[e], in.frac(), out)) : 0;
}

}  // namespace hepgnn::quant
