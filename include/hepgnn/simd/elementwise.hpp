#pragma once
/// @file elementwise.hpp
/// @brief Element-wise kernels: the activation functions of namespace act (relu, leaky_relu, elu, gelu (erf
/// form), silu, tanh, sigmoid) and act::apply() / act::apply_gradient(), which run whole SIMD registers over an
/// array. nn/activation.hpp makes layers of them.
///
/// Each activation is written once over a value type V: a float or double (the portable path: std:: functions) or
/// an xsimd batch of them (the vectorised path: simd/exp.hpp's exp and tanh for floats, xsimd's functions for
/// doubles and erfc, within 2.5 epsilon (relative) of std:: on [-20, 20] except float gelu's negative tail (see
/// gelu), NaN and inf passed through the same way; tests/test_dense_gradients.cpp pins the bounds).

#include <algorithm>
#include <cmath>
#include <numbers>
#include <type_traits>

#include "hepgnn/simd/arch.hpp"
#include "hepgnn/simd/exp.hpp"

namespace hepgnn {

namespace simd {
/// @brief c ? a : b, for one value or lane by lane for an xsimd batch (whose comparisons give a mask).
template <class V>
V pick(bool c, V a, V b) {
  return c ? a : b;
}
template <class T, class A>
xsimd::batch<T, A> pick(const xsimd::batch_bool<T, A>& c, const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) {
  return xsimd::select(c, a, b);
}

/// @brief out[i] = op(in[i]...) for i in [0, n), whole registers of Arch at a time; the last register is padded
/// with zeros, so every element takes the same code path whatever its position. `out` may be one of the inputs.
/// One thread: a 23000 x 64 tanh takes under a millisecond, less than waking a thread team costs on a busy machine.
template <class Arch, class T, class Op, class... In>
void map_elements(long n, T* out, Op&& op, const In*... in) {
  if constexpr (is_scalar_v<Arch>) {
    for (long i = 0; i < n; ++i) out[i] = op(in[i]...);
  } else {
    using B = xsimd::batch<T, Arch>;
    constexpr long W = static_cast<long>(B::size);
    long i = 0;
    for (; i + W <= n; i += W) op(B::load_unaligned(in + i)...).store_unaligned(out + i);
    if (i == n) return;
    const auto padded = [&](const T* p) {
      alignas(64) T lane[W] = {};
      std::copy(p + i, p + n, lane);
      return B::load_aligned(lane);
    };
    alignas(64) T result[W];
    op(padded(in)...).store_aligned(result);
    std::copy(result, result + (n - i), out + i);
  }
}
}  // namespace simd

namespace act {
// Each policy gives f(x) and f'(x) from x and y = f(x) (whichever is cheaper). `a` is the policy's parameter.
// simd::exp and simd::tanh (simd/exp.hpp) are defined for every input and propagate NaN; for a plain float or
// double they are std::exp and std::tanh.
struct relu {  // NaN stays NaN, as in PyTorch (x <= 0 is false for NaN)
  template <class V> static V f(V x, V) { return simd::pick(x <= V(0), V(0), x); }
  template <class V> static V df(V, V y, V) { return simd::pick(y > V(0), V(1), V(0)); }
};
struct leaky_relu {  // PyTorch default negative_slope 0.01
  static constexpr double default_a = 0.01;
  template <class V> static V f(V x, V a) { return simd::pick(x > V(0), x, a * x); }
  template <class V> static V df(V x, V, V a) { return simd::pick(x > V(0), V(1), a); }
};
struct elu {  // PyTorch default alpha 1
  static constexpr double default_a = 1.0;
  // expm1 only on the lanes that use it, clamped to [-100, 0] (expm1(-100) is -1 in float and double): xsimd's
  // expm1 converts to an integer inside, undefined behaviour for large or infinite lanes. NaN stays NaN.
  template <class V> static V f(V x, V a) {
    const V e = a * xsimd::expm1(simd::pick(x < V(0), xsimd::max(x, V(-100)), V(0)));
    return simd::pick(x <= V(0), e, x);  // NaN is not <= 0: it passes through
  }
  template <class V> static V df(V x, V y, V a) { return simd::pick(x > V(0), V(1), y + a); }
};
// gelu: exact (erf) form, PyTorch's default, as x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 (no cancellation in
// 1 + erf(x / sqrt 2) for x < 0). xsimd's double erfc is off by up to 4e-12 (relative) near 2.2, so doubles take
// std::erfc; its float one drifts in the negative tail (relative to std::erfc: 5 eps at x = -2.4, 12 eps at
// gelu(x) = -1e-10, 36 eps at -1e-29), still far closer than the 1 + erf form was.
struct gelu {
  template <class T> static constexpr bool vectorise = std::is_same_v<T, float>;
  template <class V> static V f(V x, V) { return x * cdf(x); }
  template <class V> static V df(V x, V, V) {
    const V pdf = simd::exp(V(-0.5) * x * x) * V(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
    return cdf(x) + x * pdf;
  }
  template <class V> static V cdf(V x) { return V(0.5) * xsimd::erfc(x * V(-std::numbers::sqrt2 / 2)); }
};
struct silu {
  template <class V> static V f(V x, V) { return x / (V(1) + simd::exp(-x)); }
  template <class V> static V df(V x, V, V) {
    const V s = V(1) / (V(1) + simd::exp(-x));
    return s * (V(1) + x * (V(1) - s));
  }
};
struct tanh {
  template <class V> static V f(V x, V) { return simd::tanh(x); }
  template <class V> static V df(V, V y, V) { return V(1) - y * y; }
};
struct sigmoid {
  template <class V> static V f(V x, V) { return V(1) / (V(1) + simd::exp(-x)); }  // NaN: exp gives NaN
  template <class V> static V df(V, V y, V) { return y * (V(1) - y); }
};
/// @brief Whether act::apply() runs P on xsimd batches of T: float and double, unless the policy opts out where
/// xsimd is not accurate enough.
template <class P, class T>
constexpr bool vectorised() {
  if constexpr (requires { P::template vectorise<T>; })
    return P::template vectorise<T>;
  else
    return std::is_same_v<T, float> || std::is_same_v<T, double>;
}
template <class P>
constexpr double default_parameter() {
  if constexpr (requires { P::default_a; }) return P::default_a; else return 0.0;
}

/// @brief y[i] = P::f(x[i]) for i in [0, n) with parameter `a` (x and y may be the same array). Arch: simd::native
/// (vectorised) or simd::scalar (std:: functions, the reference the vectorised path is tested against).
template <class P, class Arch = simd::native, class T>
void apply(const T* x, T* y, long n, T a) {
  using A = std::conditional_t<vectorised<P, T>(), Arch, simd::scalar>;
  simd::map_elements<A>(n, y, [a](auto v) { return P::f(v, decltype(v)(a)); }, x);
}

/// @brief dx[i] = dy[i] * P::df(x[i], y[i]) for i in [0, n), y = P::f(x) (dx may alias dy).
template <class P, class Arch = simd::native, class T>
void apply_gradient(const T* x, const T* y, const T* dy, T* dx, long n, T a) {
  using A = std::conditional_t<vectorised<P, T>(), Arch, simd::scalar>;
  simd::map_elements<A>(
      n, dx, [a](auto v, auto fv, auto g) { return g * P::df(v, fv, decltype(v)(a)); }, x, y, dy);
}
}  // namespace act

}  // namespace hepgnn
