#pragma once
/// @file emd_cost.hpp
/// @brief Ground costs shared by the optimal-transport losses (exact EMD, Sinkhorn): cost = (theta / R)^beta with
/// theta the Euclidean distance, optionally with one periodic column (phi wrapped to [-pi, pi]).

#include <cmath>
#include <numbers>

#include <vector>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/simd/distance.hpp"
#include "hepgnn/simd/reduce.hpp"

namespace hepgnn {

/// @brief Ground cost between two points: c = (theta / R)^beta, theta = Euclidean distance.
/// beta = 1, R = 1 is the Euclidean distance, beta = 2 the squared Euclidean distance; periodic_column >= 0
/// wraps that coordinate difference into [-pi, pi] (phi in (y, phi) jets; energyflow's periodic_phi).
struct ground_cost {
  double R = 1;               ///< distance scale
  double beta = 1;            ///< exponent
  int periodic_column = -1;   ///< column whose difference is wrapped to [-pi, pi]; -1 for none

  /// @brief Difference a - b in column c, wrapped when c is the periodic column.
  double diff(double a, double b, int c) const {
    double d = a - b;
    if (c == periodic_column) {
      constexpr double two_pi = 2 * std::numbers::pi;
      if (d > std::numbers::pi || d < -std::numbers::pi) d -= two_pi * std::round(d / two_pi);
    }
    return d;
  }

  /// @brief Cost from a squared distance theta^2.
  double from_squared(double theta2) const {
    if (beta == 2) return theta2 / (R * R);
    if (beta == 1) return std::sqrt(theta2) / R;
    return std::pow(std::sqrt(theta2) / R, beta);
  }

  /// @brief d cost / d theta^2 (0 where theta = 0 and beta <= 2, the subgradient hepgnn uses at coincident points).
  double slope_squared(double theta2) const {
    if (beta == 2) return 1 / (R * R);
    if (theta2 <= 0) return 0;
    // c = (theta2)^(beta/2) / R^beta  ->  dc/dtheta2 = beta/2 * theta2^(beta/2 - 1) / R^beta
    return 0.5 * beta * std::pow(theta2, 0.5 * beta - 1) / std::pow(R, beta);
  }

  /// @brief Throws unless R > 0 and beta > 0 are finite and the periodic column exists.
  void validate(long dims, const char* who) const {
    HEPGNN_CHECK(std::isfinite(R) && R > 0, who, ": ground_cost.R must be finite and > 0, got ", R);
    HEPGNN_CHECK(std::isfinite(beta) && beta > 0, who, ": ground_cost.beta must be finite and > 0, got ", beta);
    HEPGNN_CHECK(periodic_column >= -1 && periodic_column < dims, who,
                 ": ground_cost.periodic_column must be -1 or a column in [0, ", dims, "), got ", periodic_column);
  }
};

namespace detail {

/// @brief Fills cost[i*m + j] (double) for rows [a0, a0+n) of xa and [b0, b0+m) of xb.
template <class T>
void fill_ground_cost(const matrix<T>& xa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb, Eigen::Index b0,
                      Eigen::Index m, const ground_cost& g, double* cost) {
  const Eigen::Index d = xa.cols();
  if (g.periodic_column < 0) {
    // no wrap-around: squared distances from the SIMD kernel on a double SoA copy of xb, then the power
    thread_local std::vector<double> bt, ai;
    bt.resize(static_cast<std::size_t>(m * d));
    ai.resize(static_cast<std::size_t>(d));
    for (Eigen::Index j = 0; j < m; ++j)
      for (Eigen::Index c = 0; c < d; ++c) bt[c * m + j] = static_cast<double>(xb(b0 + j, c));
    const double inv_r = 1 / g.R, inv_r2 = inv_r * inv_r;
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index c = 0; c < d; ++c) ai[c] = static_cast<double>(xa(a0 + i, c));
      double* row = cost + i * m;
      simd::squared_distances_soa(ai.data(), static_cast<int>(d), bt.data(), m, static_cast<int>(m), row);
      if (g.beta == 2) {
        for (Eigen::Index j = 0; j < m; ++j) row[j] *= inv_r2;
      } else if (g.beta == 1) {
        simd::sqrt_scale(row, static_cast<long>(m), inv_r);
      } else {
        for (Eigen::Index j = 0; j < m; ++j) row[j] = g.from_squared(row[j]);
      }
    }
    return;
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    const T* a = xa.data() + (a0 + i) * d;
    for (Eigen::Index j = 0; j < m; ++j) {
      const T* b = xb.data() + (b0 + j) * d;
      double s = 0;
      for (Eigen::Index c = 0; c < d; ++c) {
        const double t = g.diff(static_cast<double>(a[c]), static_cast<double>(b[c]), static_cast<int>(c));
        s += t * t;
      }
      cost[i * m + j] = g.from_squared(s);
    }
  }
}

/// @brief Adds sum_j plan_ij dcost_ij/dxa_i to ga rows and the matching terms to gb rows, for a dense plan
/// (n x m, row stride m), scaled by `scale`.
template <class T>
void accumulate_ground_gradient(const matrix<T>& xa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb,
                                Eigen::Index b0, Eigen::Index m, const ground_cost& g, const double* plan, double scale,
                                matrix<T>& ga, matrix<T>& gb) {
  const Eigen::Index d = xa.cols();
  constexpr int max_stack = 16;
  double diff[max_stack];
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < m; ++j) {
      const double f = plan[i * m + j];
      if (f == 0) continue;
      double s = 0;
      for (Eigen::Index c = 0; c < d; ++c) {
        const double t = g.diff(static_cast<double>(xa(a0 + i, c)), static_cast<double>(xb(b0 + j, c)),
                                static_cast<int>(c));
        if (c < max_stack) diff[c] = t;
        s += t * t;
      }
      const double w = scale * f * 2 * g.slope_squared(s);
      if (w == 0) continue;
      for (Eigen::Index c = 0; c < d; ++c) {
        const double t = c < max_stack ? diff[c]
                                       : g.diff(static_cast<double>(xa(a0 + i, c)), static_cast<double>(xb(b0 + j, c)),
                                                static_cast<int>(c));
        ga(a0 + i, c) += static_cast<T>(w * t);
        gb(b0 + j, c) -= static_cast<T>(w * t);
      }
    }
  }
}

}  // namespace detail
}  // namespace hepgnn
