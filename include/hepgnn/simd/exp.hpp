#pragma once
/// @file exp.hpp
/// @brief exp and tanh for float registers, written for the activations (silu, sigmoid, tanh, gelu's slope):
/// defined on every input (NaN stays NaN, +-inf and huge values saturate) with no integer conversion of an
/// unbounded value, and cheaper than xsimd's functions behind a clamp (which the activations needed, because
/// xsimd's convert their argument to an integer: undefined behaviour for NaN or huge lanes).
///
/// exp: x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' degree-6 minimax polynomial for expf, times 2^n: with
/// AVX-512 by vscalefps (x clamped to [-110, 100], NaN passing through), elsewhere as two normal powers
/// 2^(n/2) 2^(n - n/2) (x clamped to [-104, 88.8], NaN restored), so results down to the subnormal range and up
/// to infinity come out right. Within 1 ulp of std::exp on [-87, 88.7] (tests/simd/test_exp.cpp measures it).
/// tanh: Cephes' odd polynomial for |x| < 0.625, 1 - 2 / (e^{2|x|} + 1) above (no cancellation there), the sign
/// restored; within 2 ulp of std::tanh.
/// Doubles and single values keep std:: / xsimd (the portable path): these kernels are for the float hot loops.

#include <cmath>
#include <cstdint>
#include <limits>

#include "hepgnn/simd/arch.hpp"

namespace hepgnn::simd {

namespace exp_detail {
/// e^r on |r| <= ln2 / 2 and the power n, for x already in a finite range: x = n ln2 + r (ln2 in two parts,
/// 0.693359375 exact in float, so r is exact), e^r by Cephes' degree-6 minimax polynomial for expf.
template <class B>
B exp_reduced(B xc, B& n) {
  n = xsimd::nearbyint(xc * B(1.44269504088896341f));
  B r = xsimd::fma(n, B(-0.693359375f), xc);
  r = xsimd::fma(n, B(2.12194440e-4f), r);
  B p = B(1.9875691500e-4f);
  p = xsimd::fma(p, r, B(1.3981999507e-3f));
  p = xsimd::fma(p, r, B(8.3334519073e-3f));
  p = xsimd::fma(p, r, B(4.1665795894e-2f));
  p = xsimd::fma(p, r, B(1.6666665459e-1f));
  p = xsimd::fma(p, r, B(5.0000001201e-1f));
  return xsimd::fma(p * r, r, r) + B(1.0f);
}

/// e^x for every lane, NaN kept.
template <class A>
xsimd::batch<float, A> exp_float(xsimd::batch<float, A> x) {
  using B = xsimd::batch<float, A>;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    // max and min return their second operand when one is NaN: NaN passes the clamp and every step after it.
    // vscalefps applies 2^n with the overflow to infinity and the subnormal results of exp in one rounding.
    const B xc = _mm512_min_ps(_mm512_set1_ps(100.0f), _mm512_max_ps(_mm512_set1_ps(-110.0f), x));
    B n;
    const B p = exp_reduced(xc, n);
    return _mm512_scalef_ps(p, n);
  }
#endif
  using I = xsimd::batch<std::int32_t, A>;
  // x > lo is false for NaN, so NaN becomes lo here and is restored at the end: the integer steps see finite values
  const B xc = xsimd::min(xsimd::select(x > B(-104.0f), x, B(-104.0f)), B(88.8f));
  B n;
  const B p = exp_reduced(xc, n);
  const I ni = xsimd::to_int(n);  // n in [-150, 128]: exact
  const I n1 = ni >> 1, n2 = ni - n1;  // each in [-75, 64]: 2^n1 and 2^n2 are normal floats
  const B s1 = xsimd::bitwise_cast<B>((n1 + I(127)) << 23), s2 = xsimd::bitwise_cast<B>((n2 + I(127)) << 23);
  return xsimd::select(xsimd::isnan(x), x, p * s1 * s2);  // (xsimd's != is ordered on some targets)
}
}  // namespace exp_detail

/// @brief e^x lane by lane (float registers: the kernel above; anything else: xsimd / std::exp).
template <class A>
xsimd::batch<float, A> exp(xsimd::batch<float, A> x) {
  return exp_detail::exp_float(x);
}
template <class V>
V exp(V x) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::exp(x);
  } else {  // double registers: xsimd's exp on a finite argument (it saturates beyond +-800), NaN restored
    const V xc = xsimd::min(xsimd::select(x > V(-800), x, V(-800)), V(800));
    return xsimd::select(xsimd::isnan(x), x, xsimd::exp(xc));
  }
}

/// @brief tanh(x) lane by lane (float registers: the kernel above; anything else: xsimd / std::tanh).
template <class A>
xsimd::batch<float, A> tanh(xsimd::batch<float, A> x) {
  using B = xsimd::batch<float, A>;
  const B a = xsimd::abs(x), z = x * x;
  B small = B(-5.70498872745e-3f);
  small = xsimd::fma(small, z, B(2.06390887954e-2f));
  small = xsimd::fma(small, z, B(-5.37397155531e-2f));
  small = xsimd::fma(small, z, B(1.33314422036e-1f));
  small = xsimd::fma(small, z, B(-3.33332819422e-1f));
  small = xsimd::fma(small * z, x, x);
  const B large = B(1.0f) - B(2.0f) / (exp_detail::exp_float(a + a) + B(1.0f));  // NaN for NaN
  // tanh is odd: the sign of x (also for -0, which the polynomial's sum would make +0)
  return xsimd::copysign(xsimd::select(a < B(0.625f), xsimd::abs(small), large), x);
}
template <class V>
V tanh(V x) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::tanh(x);
  } else {  // double registers: xsimd's tanh sees at most |x| = 40, where tanh is already +-1
    const V xc = xsimd::min(xsimd::select(x > V(-40), x, V(-40)), V(40));
    return xsimd::select(xsimd::isnan(x), x, xsimd::tanh(xc));
  }
}

}  // namespace hepgnn::simd
