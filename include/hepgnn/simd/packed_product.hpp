#pragma once
/// @file packed_product.hpp
/// @brief The kernels of EdgeConv's fused inference: products with weights packed once as [W^T; b] (bias and ReLU
/// applied in registers, no packing of A, a few dozen rows at a time so activations stay in L1), and the edge
/// inputs P[dst] + Q[src] of the node-level split of the first Linear.

#include <algorithm>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/simd/arch.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn::simd {

namespace detail_packed {
/// One register tile of packed_product: Mr rows x NV registers of C = act(B[K] + sum_k a(m, k) B[k]),
/// a(m, k) = A[m * lda + k]; B row k at B + k * ldb, row K is the bias (the micro-kernel of simd/gemm.hpp).
template <class T, int Mr, int NV>
inline void packed_tile(const T* A, long lda, const T* B, long ldb, long K, T* C, long ldc, bool relu) {
  gemm_detail::epilogue<T> e;
  e.bias = B + K * ldb;
  e.relu = relu;
  gemm_detail::tile<T, native, Mr, NV, false>(K, A, lda, 1, B, ldb, C, ldc, 0, false, e);
}

template <class T, int NV>
inline void packed_panel(long M, const T* A, long lda, const T* B, long ldb, long K, T* C, long ldc, bool relu) {
  constexpr int Mr = NV >= 4 ? 6 : NV == 3 ? 8 : 12;  // <= 24 accumulators: they, B and a broadcast fit 32 registers
  long m = 0;
  for (; m + Mr <= M; m += Mr) packed_tile<T, Mr, NV>(A + m * lda, lda, B, ldb, K, C + m * ldc, ldc, relu);
  // Remaining rows in tiles of 8, 4, 2, 1 (single rows would be bound by their B loads).
  auto rest = [&]<int R>(std::integral_constant<int, R>) {
    if (R < Mr && M - m >= R) {
      packed_tile<T, R, NV>(A + m * lda, lda, B, ldb, K, C + m * ldc, ldc, relu);
      m += R;
    }
  };
  rest(std::integral_constant<int, 8>{});
  rest(std::integral_constant<int, 4>{});
  rest(std::integral_constant<int, 2>{});
  rest(std::integral_constant<int, 1>{});
}

}  // namespace detail_packed

/// @brief C (M x N, row stride ldc) = act(A W^T + b) with the weights packed as `wt` = [W^T; b] ((K + 1) x N,
/// N a multiple of the SIMD width, zero-padded columns): register-tiled, no packing of A, bias and ReLU applied
/// in registers. Each output element sums over k in order, so results do not depend on how rows are split.
template <class T>
void packed_product(long M, const T* A, long lda, const matrix<T>& wt, T* C, long ldc, bool relu) {
  constexpr long L = lanes<T, native>();
  const long K = wt.rows() - 1, N = wt.cols();
  for (long n0 = 0; n0 < N; n0 += 4 * L) {
    const T* B = wt.data() + n0;
    switch (std::min<long>(4, (N - n0) / L)) {
      case 1: detail_packed::packed_panel<T, 1>(M, A, lda, B, N, K, C + n0, ldc, relu); break;
      case 2: detail_packed::packed_panel<T, 2>(M, A, lda, B, N, K, C + n0, ldc, relu); break;
      case 3: detail_packed::packed_panel<T, 3>(M, A, lda, B, N, K, C + n0, ldc, relu); break;
      default: detail_packed::packed_panel<T, 4>(M, A, lda, B, N, K, C + n0, ldc, relu); break;
    }
  }
}

/// @brief Width rounded up to whole SIMD registers (the column count of a packed operand).
template <class T>
constexpr long padded_width(long n) {
  constexpr long L = lanes<T, native>();
  return (n + L - 1) / L * L;
}

/// @brief out[k] = p[k] + q[k] (then max(., 0) when relu) for k < n; n a multiple of the SIMD width (padded rows).
template <class T>
inline void add_padded_rows(const T* p, const T* q, T* out, long n, bool relu) {
  using V = xsimd::batch<T, native>;
  constexpr long L = static_cast<long>(V::size);
  for (long k = 0; k < n; k += L) {
    const V s = V::load_unaligned(p + k) + V::load_unaligned(q + k);
    (relu ? xsimd::max(V(T(0)), s) : s).store_unaligned(out + k);  // x86 max returns its 2nd operand on NaN: keeps it
  }
}

}  // namespace hepgnn::simd
