#pragma once
/// @file activation.hpp
/// @brief Element-wise activations as layers: relu, leaky_relu, elu, gelu (erf form), silu, tanh, sigmoid.
///
/// The activation functions themselves (the policies of namespace act, and act::apply / act::apply_gradient that
/// run them over arrays) are kernels, in simd/elementwise.hpp; this header wraps them as layers.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <type_traits>

#include "hepgnn/nn/layer.hpp"
#include "hepgnn/simd/elementwise.hpp"

namespace hepgnn {

/// @brief Element-wise activation layer with policy P (one of hepgnn::act). No parameters; keeps the width.
template <class T, class P>
class activation {
 public:
  using scalar = T;
  using policy = P;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  using cache = no_cache;

  /// @brief `a` is the negative slope (leaky_relu) or alpha (elu); ignored by the others.
  explicit activation(T a = T(act::default_parameter<P>())) : a_(a) {}

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { infer(x, y, c); }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const {
    y.resize(x.rows(), x.cols());
    act::apply<P>(x.data(), y.data(), static_cast<long>(x.size()), a_);
  }
  void backward(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dy, cache&, matrix<T>* dx) {
    if (!dx) return;
    dx->resize(x.rows(), x.cols());
    act::apply_gradient<P>(x.data(), y.data(), dy.data(), dx->data(), static_cast<long>(x.size()), a_);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  T a_;
};

template <class T> using relu = activation<T, act::relu>;
template <class T> using leaky_relu = activation<T, act::leaky_relu>;
template <class T> using elu = activation<T, act::elu>;
template <class T> using gelu = activation<T, act::gelu>;
template <class T> using silu = activation<T, act::silu>;
template <class T> using tanh_layer = activation<T, act::tanh>;
template <class T> using sigmoid = activation<T, act::sigmoid>;

}  // namespace hepgnn
