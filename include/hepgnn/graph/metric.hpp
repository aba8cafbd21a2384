#pragma once
/// @file metric.hpp
/// @brief Distance policies for the graph builders: hepgnn::metric::euclidean and hepgnn::metric::delta_r.
///
/// A metric is a type with `kind` (the simd kernel it maps to), `dims` (required number of coordinates, or
/// hepgnn::dynamic), `name`, and `squared(a, b, d)`, the scalar squared distance with exactly the rounding of the
/// kernels. Builders rank neighbours by this squared distance and report it.

#include "hepgnn/simd/distance.hpp"

namespace hepgnn::metric {

/// @brief Straight-line distance over any number of coordinates.
struct euclidean {
  static constexpr simd::distance_kind kind = simd::distance_kind::euclidean;
  static constexpr int dims = dynamic;
  static constexpr const char* name = "euclidean";
  /// @brief sum_c (a_c - b_c)^2, accumulated in order with fused multiply-adds.
  template <class T>
  static T squared(const T* a, const T* b, int d) {
    T acc(0);
    for (int c = 0; c < d; ++c) acc = std::fma(a[c] - b[c], a[c] - b[c], acc);
    return acc;
  }
};

/// @brief Delta-R on (eta, phi) points: sqrt(deta^2 + dphi^2) with dphi wrapped into [-pi, pi).
struct delta_r {
  static constexpr simd::distance_kind kind = simd::distance_kind::delta_r;
  static constexpr int dims = 2;
  static constexpr const char* name = "delta_r";
  /// @brief deta^2 + wrap(dphi)^2 (column 0 is eta, column 1 is phi).
  template <class T>
  static T squared(const T* a, const T* b, int /*d*/) {
    const T deta = a[0] - b[0], dphi = simd::wrap_phi(a[1] - b[1]);
    return std::fma(dphi, dphi, std::fma(deta, deta, T(0)));
  }
};

/// @brief True for the metric policy types above (and user types shaped like them).
template <class M>
concept metric_policy = requires {
  { M::kind } -> std::convertible_to<simd::distance_kind>;
  { M::dims } -> std::convertible_to<int>;
};

}  // namespace hepgnn::metric
