#pragma once
/// @file activation.hpp
/// @brief Element-wise activations as layers: relu, leaky_relu, elu, gelu (erf form), silu, tanh, sigmoid.

#include <cmath>
#include <numbers>
#include <string>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

namespace act {
// Each policy gives f(x) and f'(x) from x and y = f(x) (whichever is cheaper). `a` is the policy's parameter.
struct relu {
  template <class T> static T f(T x, T) { return x > T(0) ? x : T(0); }
  template <class T> static T df(T, T y, T) { return y > T(0) ? T(1) : T(0); }
};
struct leaky_relu {  // PyTorch default negative_slope 0.01
  static constexpr double default_a = 0.01;
  template <class T> static T f(T x, T a) { return x > T(0) ? x : a * x; }
  template <class T> static T df(T x, T, T a) { return x > T(0) ? T(1) : a; }
};
struct elu {  // PyTorch default alpha 1
  static constexpr double default_a = 1.0;
  template <class T> static T f(T x, T a) { return x > T(0) ? x : a * std::expm1(x); }
  template <class T> static T df(T x, T y, T a) { return x > T(0) ? T(1) : y + a; }
};
struct gelu {  // exact (erf) form, PyTorch's default
  template <class T> static T f(T x, T) { return T(0.5) * x * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2))); }
  template <class T> static T df(T x, T, T) {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
    return cdf + x * pdf;
  }
};
struct silu {
  template <class T> static T f(T x, T) { return x / (T(1) + std::exp(-x)); }
  template <class T> static T df(T x, T, T) {
    const T s = T(1) / (T(1) + std::exp(-x));
    return s * (T(1) + x * (T(1) - s));
  }
};
struct tanh {
  template <class T> static T f(T x, T) { return std::tanh(x); }
  template <class T> static T df(T, T y, T) { return T(1) - y * y; }
};
struct sigmoid {
  template <class T> static T f(T x, T) { return T(1) / (T(1) + std::exp(-x)); }
  template <class T> static T df(T, T y, T) { return y * (T(1) - y); }
};
template <class P>
constexpr double default_parameter() {
  if constexpr (requires { P::default_a; }) return P::default_a; else return 0.0;
}
}  // namespace act

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
    const T a = a_;
    y = x.unaryExpr([a](T v) { return P::f(v, a); });
  }
  void backward(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dy, cache&, matrix<T>* dx) {
    if (!dx) return;
    dx->resize(x.rows(), x.cols());
    const T a = a_;
    const T* xs = x.data();
    const T* ys = y.data();
    const T* g = dy.data();
    T* out = dx->data();
    for (Eigen::Index i = 0; i < x.size(); ++i) out[i] = g[i] * P::df(xs[i], ys[i], a);
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
