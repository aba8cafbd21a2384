#pragma once
/// @file distance.hpp
/// @brief Squared distances from one point to a block of points (Euclidean and delta-R), SIMD with a scalar twin.
///
/// Layouts. "AoS" is the natural row-major point matrix (point j, coordinate c at block[j*d + c]). "SoA" is its
/// transpose with a row stride (coordinate c of point j at block_t[c*stride + j]); the kernels vectorise across
/// points, so SoA is what they read. Convert once with transpose_to_soa() when the same block is scanned often
/// (kNN, Chamfer and EMD cost matrices); squared_distances() on an AoS block does that conversion per call.
///
/// Rounding. Every path accumulates coordinates in order c = 0..d-1 with fused multiply-adds
/// (acc = fma(diff, diff, acc)), so the scalar fallback and the SIMD path give bit-identical results on targets
/// with hardware FMA (x86-64 with FMA3 or AVX-512, AArch64); on others xsimd may not fuse and the last bit can differ.

#include <cmath>
#include <cstddef>
#include <numbers>
#include <type_traits>
#include <vector>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/simd/arch.hpp"

namespace hepgnn::simd {

/// @brief Distance functions the kernels know. Both give a *squared* distance.
enum class distance_kind {
  euclidean,  ///< sum_c (a_c - b_c)^2 over any number of coordinates
  delta_r     ///< (eta_a - eta_b)^2 + wrap(phi_a - phi_b)^2 on (eta, phi) points, wrap into [-pi, pi)
};

/// @brief Wraps an angle difference into [-pi, pi) (up to the rounding of 2 pi in T); any finite input.
template <class T>
T wrap_phi(T dphi) {
  constexpr T pi = std::numbers::pi_v<T>, two_pi = T(2) * std::numbers::pi_v<T>, inv_two_pi = T(1) / two_pi;
  return std::fma(-two_pi, std::floor((dphi + pi) * inv_two_pi), dphi);
}

namespace detail {

template <class V, class T>
V load(const T* p) {
  if constexpr (std::is_same_v<V, T>)
    return *p;
  else
    return V::load_unaligned(p);
}
/// Fused a*b + c. xsimd 8.1 has no AVX-512 fma kernel (its generic x*y+z is fused or not at the compiler's
/// whim), so AVX-512 calls the instruction directly: the SIMD and scalar paths must round alike.
template <class V>
V fmadd(const V& a, const V& b, const V& c) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::fma(a, b, c);
  } else {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, typename V::arch_type>) {
      if constexpr (std::is_same_v<typename V::value_type, float>)
        return V(_mm512_fmadd_ps(a, b, c));
      else
        return V(_mm512_fmadd_pd(a, b, c));
    }
#endif
    return xsimd::fma(a, b, c);
  }
}
template <class V>
V floor_of(const V& a) {
  if constexpr (std::is_floating_point_v<V>)
    return std::floor(a);
  else
    return xsimd::floor(a);
}

/// Squared distance from q to the point(s) starting at column j of an SoA block; V is T or an xsimd batch.
template <distance_kind Kind, int D, class V, class T>
V distance_at(const T* q, int d, const T* xt, std::ptrdiff_t stride, std::ptrdiff_t j) {
  if constexpr (Kind == distance_kind::euclidean) {
    const int dd = D == dynamic ? d : D;
    V acc(T(0));
    for (int c = 0; c < dd; ++c) {
      const V diff = V(q[c]) - load<V>(xt + c * stride + j);
      acc = fmadd(diff, diff, acc);
    }
    return acc;
  } else {
    constexpr T pi = std::numbers::pi_v<T>, two_pi = T(2) * std::numbers::pi_v<T>, inv_two_pi = T(1) / two_pi;
    const V deta = V(q[0]) - load<V>(xt + j);
    V dphi = V(q[1]) - load<V>(xt + stride + j);
    dphi = fmadd(V(-two_pi), floor_of((dphi + V(pi)) * V(inv_two_pi)), dphi);
    return fmadd(dphi, dphi, fmadd(deta, deta, V(T(0))));
  }
}

/// U consecutive SIMD blocks at once: U independent fma chains hide the fma latency (same per-element order).
template <distance_kind Kind, int D, int U, class B, class T>
void distance_at_unrolled(const T* q, int d, const T* xt, std::ptrdiff_t stride, std::ptrdiff_t j, B* out) {
  constexpr std::ptrdiff_t W = B::size;
  if constexpr (Kind == distance_kind::euclidean) {
    const int dd = D == dynamic ? d : D;
    for (int u = 0; u < U; ++u) out[u] = B(T(0));
    for (int c = 0; c < dd; ++c) {
      const B qc(q[c]);
      const T* row = xt + c * stride + j;
      for (int u = 0; u < U; ++u) {
        const B diff = qc - B::load_unaligned(row + u * W);
        out[u] = fmadd(diff, diff, out[u]);
      }
    }
  } else {
    for (int u = 0; u < U; ++u) out[u] = distance_at<Kind, D, B>(q, d, xt, stride, j + u * W);
  }
}

}  // namespace detail

/// @brief out[j] = squared distance (of the given kind) from point a to point j of an SoA block, j in [0, m).
/// @param a       the query point, d coordinates (for delta_r: eta, phi)
/// @param d       number of coordinates (must be 2 for delta_r; equals D when D is not dynamic)
/// @param block_t SoA block: coordinate c of point j at block_t[c*stride + j]
/// @param stride  distance between coordinate rows of block_t, >= m
/// @param m       number of points in the block
/// @param out     m results
template <distance_kind Kind = distance_kind::euclidean, class Arch = native, int D = dynamic, class T>
void distances_soa(const T* a, int d, const T* block_t, std::ptrdiff_t stride, int m, T* out) {
  static_assert(std::is_floating_point_v<T>, "hepgnn::simd::distances_soa: T must be a floating-point type");
  constexpr int W = lanes<T, Arch>();
  int j = 0;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, Arch>;
    for (; j + 4 * W <= m; j += 4 * W) {
      B r[4];
      detail::distance_at_unrolled<Kind, D, 4>(a, d, block_t, stride, j, r);
      for (int u = 0; u < 4; ++u) r[u].store_unaligned(out + j + u * W);
    }
    for (; j + W <= m; j += W) detail::distance_at<Kind, D, B>(a, d, block_t, stride, j).store_unaligned(out + j);
  }
  for (; j < m; ++j) out[j] = detail::distance_at<Kind, D, T>(a, d, block_t, stride, j);
}

/// @brief Euclidean squared distances from a to each point of an SoA block (see distances_soa).
template <class Arch = native, int D = dynamic, class T>
void squared_distances_soa(const T* a, int d, const T* block_t, std::ptrdiff_t stride, int m, T* out) {
  distances_soa<distance_kind::euclidean, Arch, D>(a, d, block_t, stride, m, out);
}

/// @brief Writes the m x d row-major block into SoA form: out[c*stride + j] = block[j*d + c]; stride >= m.
template <class T>
void transpose_to_soa(const T* block, int m, int d, T* out, std::ptrdiff_t stride) {
  for (int j = 0; j < m; ++j)
    for (int c = 0; c < d; ++c) out[c * stride + j] = block[static_cast<std::ptrdiff_t>(j) * d + c];
}

/// @brief out[j] = sum_c (a[c] - block[j*d + c])^2 for j in [0, m): Euclidean squared distances from point a
/// (d coordinates) to the m points of a row-major (AoS) block. Bit-identical for every Arch (scalar included).
/// Converts the block to SoA in a thread-local buffer each call; for repeated scans of one block prefer
/// transpose_to_soa() once plus squared_distances_soa().
template <class Arch = native, class T>
void squared_distances(const T* a, int d, const T* block, int m, T* out) {
  thread_local std::vector<T> soa;
  soa.resize(static_cast<std::size_t>(m) * static_cast<std::size_t>(d));
  transpose_to_soa(block, m, d, soa.data(), m);
  squared_distances_soa<Arch>(a, d, soa.data(), m, m, out);
}

}  // namespace hepgnn::simd
