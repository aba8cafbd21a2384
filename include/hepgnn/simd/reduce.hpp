#pragma once
/// @file reduce.hpp
/// @brief Lane-wise reductions and updates over contiguous rows (minimum, running column minima, minimum of a
/// difference and its position, square root and scale) for the set losses (loss/chamfer.hpp, loss/emd_simplex.hpp,
/// loss/emd_cost.hpp). Each gives the same result for every architecture as its scalar tail loop would.

#include <algorithm>
#include <cmath>
#include <limits>

#include "hepgnn/simd/arch.hpp"

namespace hepgnn::simd {

/// @brief Minimum of x[0..m) (m >= 1), SIMD over the native architecture.
template <class T>
T minimum(const T* x, int m) {
  constexpr int W = lanes<T, native>();
  T best = std::numeric_limits<T>::infinity();
  int j = 0;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, native>;
    if (m >= W) {
      B acc = B::load_unaligned(x);
      for (j = W; j + W <= m; j += W) acc = xsimd::min(acc, B::load_unaligned(x + j));
      alignas(64) T buf[W];
      acc.store_aligned(buf);
      for (int l = 0; l < W; ++l) best = buf[l] < best ? buf[l] : best;
    }
  }
  for (; j < m; ++j) best = x[j] < best ? x[j] : best;
  return best;
}

/// @brief cmin = min(cmin, dist) and carg = row where dist < cmin, with full-width selects: masked stores
/// followed by reloads of the same lines (the next row) stall store forwarding.
template <class T>
void update_column_minima(const T* dist, int m, T row, T* cmin, T* carg) {
  constexpr int W = lanes<T, native>();
  int k = 0;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, native>;
    const B r(row);
    for (; k + W <= m; k += W) {
      const B d = B::load_unaligned(dist + k), c = B::load_unaligned(cmin + k);
      const auto lt = d < c;
      xsimd::select(lt, d, c).store_unaligned(cmin + k);
      xsimd::select(lt, r, B::load_unaligned(carg + k)).store_unaligned(carg + k);
    }
  }
  for (; k < m; ++k) {
    const bool lt = dist[k] < cmin[k];
    cmin[k] = lt ? dist[k] : cmin[k];
    carg[k] = lt ? row : carg[k];
  }
}

/// @brief min over j in [0, m) of c[j] - v[j] and the first j attaining it (SIMD: the minimum, then a search
/// for it, cheaper than tracking positions).
inline double min_difference(const double* c, const double* v, int m, int& arg) {
  constexpr int W = lanes<double, native>();
  using B = xsimd::batch<double, native>;
  double mn = std::numeric_limits<double>::infinity();
  B acc0(mn), acc1(mn);
  int j = 0;
  for (; j + 2 * W <= m; j += 2 * W) {
    acc0 = xsimd::min(acc0, B::load_unaligned(c + j) - B::load_unaligned(v + j));
    acc1 = xsimd::min(acc1, B::load_unaligned(c + j + W) - B::load_unaligned(v + j + W));
  }
  for (; j + W <= m; j += W) acc0 = xsimd::min(acc0, B::load_unaligned(c + j) - B::load_unaligned(v + j));
  for (; j < m; ++j) mn = std::min(mn, c[j] - v[j]);
  alignas(64) double lane[W];
  xsimd::min(acc0, acc1).store_aligned(lane);
  for (int l = 0; l < W; ++l) mn = std::min(mn, lane[l]);
  const B target(mn);
  for (j = 0; j + W <= m; j += W)
    if (xsimd::any(B::load_unaligned(c + j) - B::load_unaligned(v + j) == target)) break;
  while (j < m - 1 && !(c[j] - v[j] == mn)) ++j;
  arg = j;
  return mn;
}

/// @brief Calls f(i, j0, j1) for the row pieces of `count` consecutive entries of a row-major n x m matrix from
/// entry e, wrapping after the last row.
template <class F>
void for_each_row_piece(int n, int m, long e, long count, F&& f) {
  int i = static_cast<int>(e / m), j = static_cast<int>(e % m);
  while (count > 0) {
    const int j1 = static_cast<int>(std::min<long>(m, j + count));
    if (f(i, j, j1)) return;
    count -= j1 - j;
    j = j1;
    if (j == m) {
      j = 0;
      if (++i == n) i = 0;
    }
  }
}

/// @brief Most negative reduced cost (C_ij - v_j) - u_i over `count` consecutive entries from e (SIMD). When it is
/// below `below`, arg gets the first entry attaining it (a second pass: cheaper than tracking positions).
inline double price_block(const double* C, int n, int m, const double* u, const double* v, long e, long count,
                          double below, long& arg) {
  constexpr int W = lanes<double, native>();
  using B = xsimd::batch<double, native>;
  double mn = std::numeric_limits<double>::infinity();
  B acc0(mn), acc1(mn);
  for_each_row_piece(n, m, e, count, [&](int i, int j0, int j1) {
    const double* Ci = C + static_cast<long>(i) * m;
    const B ui(u[i]);
    int j = j0;
    for (; j + 2 * W <= j1; j += 2 * W) {  // two accumulators halve the min latency chain
      acc0 = xsimd::min(acc0, (B::load_unaligned(Ci + j) - B::load_unaligned(v + j)) - ui);
      acc1 = xsimd::min(acc1, (B::load_unaligned(Ci + j + W) - B::load_unaligned(v + j + W)) - ui);
    }
    for (; j + W <= j1; j += W) acc0 = xsimd::min(acc0, (B::load_unaligned(Ci + j) - B::load_unaligned(v + j)) - ui);
    for (; j < j1; ++j) mn = std::min(mn, (Ci[j] - v[j]) - u[i]);
    return false;
  });
  alignas(64) double lane[W];
  xsimd::min(acc0, acc1).store_aligned(lane);
  for (int l = 0; l < W; ++l) mn = std::min(mn, lane[l]);
  if (!(mn < below)) return mn;
  for_each_row_piece(n, m, e, count, [&](int i, int j0, int j1) {
    const double* Ci = C + static_cast<long>(i) * m;
    const B ui(u[i]), target(mn);
    int j = j0;
    for (; j + W <= j1; j += W)
      if (xsimd::any((B::load_unaligned(Ci + j) - B::load_unaligned(v + j)) - ui == target)) break;
    for (; j < j1; ++j)
      if ((Ci[j] - v[j]) - u[i] == mn) {
        arg = static_cast<long>(i) * m + j;
        return true;
      }
    return false;
  });
  return mn;
}

/// @brief row[j] = sqrt(row[j]) * scale for j in [0, m).
inline void sqrt_scale(double* row, long m, double scale) {
  using B = xsimd::batch<double, native>;
  constexpr int W = static_cast<int>(B::size);
  long j = 0;
  for (; j + W <= m; j += W) (xsimd::sqrt(B::load_unaligned(row + j)) * B(scale)).store_unaligned(row + j);
  for (; j < m; ++j) row[j] = std::sqrt(row[j]) * scale;
}

}  // namespace hepgnn::simd
