#pragma once
/// @file dense.hpp
/// @brief hepgnn::dense: y = x W^T + b (PyTorch Linear; W stored [out, in]).

#include <cmath>
#include <string>

#include "hepgnn/simd/product.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Fully connected layer y = x W^T + b, row-wise over nodes/edges/graphs.
/// @tparam In, Out widths, or `dynamic` to give them at construction.
/// Parameters: `weight` [Out, In], `bias` [Out] (PyTorch Linear names and layout).
template <class T, int In = dynamic, int Out = dynamic>
class dense {
 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = Out;
  using cache = no_cache;

  /// @brief Initialises like PyTorch's Linear default: weight and bias uniform in +-1/sqrt(in).
  explicit dense(rng& gen, int in = In, int out = Out, bool bias = true) : has_bias_(bias) {
    HEPGNN_CHECK(in > 0 && out > 0, "dense: widths must be positive (pass them when In/Out are dynamic), got in = ",
                 in, ", out = ", out);
    HEPGNN_CHECK(width_accepts(In, in) && width_accepts(Out, out), "dense: runtime widths ", in, " -> ", out,
                 " contradict the compile-time widths ", In, " -> ", Out);
    weight_.resize(out, in);
    weight_grad_ = matrix<T>::Zero(out, in);
    bias_ = matrix<T>::Zero(1, bias ? out : 0);
    bias_grad_ = matrix<T>::Zero(1, bias ? out : 0);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    for (Eigen::Index i = 0; i < weight_.size(); ++i) weight_.data()[i] = static_cast<T>(gen.uniform(-bound, bound));
    for (Eigen::Index i = 0; i < bias_.size(); ++i) bias_.data()[i] = static_cast<T>(gen.uniform(-bound, bound));
  }
  /// @brief Same, with a fixed default seed (handy for static widths in tests).
  dense() requires(In != dynamic && Out != dynamic) : dense(default_rng(), In, Out) {}

  int in_features() const { return static_cast<int>(weight_.cols()); }
  int out_features() const { return static_cast<int>(weight_.rows()); }
  bool has_bias() const { return has_bias_; }
  matrix<T>& weight() { return weight_; }
  const matrix<T>& weight() const { return weight_; }
  /// @brief Bias as a 1 x out matrix (empty without bias).
  matrix<T>& bias() { return bias_; }
  const matrix<T>& bias() const { return bias_; }
  matrix<T>& weight_grad() { return weight_grad_; }
  matrix<T>& bias_grad() { return bias_grad_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { infer(x, y, c); }

  void infer(const matrix<T>& x, matrix<T>& y, cache&) const {
    check_cols(x, in_features(), "dense: input x");
    simd::linear_forward(x, weight_, has_bias_ ? bias_.data() : nullptr, y);
  }

  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache&, matrix<T>* dx) {
    check_shape(dy, x.rows(), out_features(), "dense: output gradient dy");
    simd::linear_backward(x, dy, weight_, weight_grad_, has_bias_ ? bias_grad_.data() : nullptr, dx);
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "weight", make_parameter(weight_, weight_grad_, {weight_.rows(), weight_.cols()}));
    if (has_bias_) f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
  }

 private:
  static rng& default_rng() {
    static thread_local rng gen(0xD15EA5E);
    return gen;
  }
  matrix<T> weight_, weight_grad_, bias_, bias_grad_;
  bool has_bias_ = true;
};

}  // namespace hepgnn
