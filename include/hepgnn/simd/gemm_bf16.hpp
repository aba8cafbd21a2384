#pragma once
/// @file gemm_bf16.hpp
/// @brief Products with bfloat16 operands and float accumulation, for inference: C = [C +] [bias +] A B, then
/// ReLU and/or a residual add (simd::gemm_detail::epilogue), with A (M x K) and B (K x N) rounded to bf16.
///
/// Why: bf16 keeps float's exponent range with an 8-bit significand, and the AVX-512 BF16 instruction
/// vdpbf16ps does 32 multiply-adds per register where a float FMA does 16, so a compute-bound network (the
/// tracking GNN) runs its products at up to twice the rate. A product of two bf16 values is exact in float and the
/// sums are float, so the error is the rounding of the operands (relative 2^-9 each), not growing with K beyond
/// float's own.
///
/// Layout: B is packed once into a bf16_panel (rows 2p and 2p + 1 interleaved per column, the pairs vdpbf16ps
/// multiplies); A is converted row block by row block into per-thread scratch, or given in bf16 already. A chain of
/// products (the interaction network's edge MLPs) skips the conversions: each product can write its result in
/// bf16 too (bf16_out), as the next one's A. Builds without the instruction
/// (no -mavx512bf16, e.g. not -march=native on such a CPU) multiply the same rounded operands with the float
/// kernels of gemm.hpp: the same results up to the order of the float additions, at float speed. `has_bf16_dot`
/// says which.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#define HEPGNN_BF16_DOT 1
#else
#define HEPGNN_BF16_DOT 0
#endif

#include "hepgnn/core/error.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn::simd {

/// @brief True when this build runs bf16 products on the AVX-512 BF16 instruction (else emulated in float).
inline constexpr bool has_bf16_dot = HEPGNN_BF16_DOT != 0;

/// @brief v rounded to the nearest bf16 (ties to even), as its 16 bits; NaN stays NaN.
inline std::uint16_t to_bf16(float v) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

/// @brief The float value of bf16 bits b (exact).
inline float from_bf16(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

/// @brief B (K x N) in bf16, packed for the product kernel: element (k, n) at ((k / 2) * Np + n) * 2 + k % 2,
/// with K rounded up to even and N up to 16 (zero-padded); and the same values as floats (K x Np, row-major) for
/// the float kernels that stand in where the bf16 kernel does not serve.
struct bf16_panel {
  long rows = 0, cols = 0, padded_cols = 0;
  std::vector<std::uint16_t> data;
  std::vector<float> rounded;

  /// @brief Packs B (K x N float, row stride ldb); allocation-free when the size is unchanged.
  void pack(long K, long N, const float* B, long ldb) {
    HEPGNN_CHECK(K >= 0 && N >= 0, "bf16_panel::pack: K and N must be >= 0, got ", K, " and ", N);
    rows = K, cols = N, padded_cols = (N + 15) / 16 * 16;
    data.assign(static_cast<std::size_t>((K + 1) / 2 * padded_cols * 2), 0);
    for (long k = 0; k < K; ++k)
      for (long n = 0; n < N; ++n)
        data[static_cast<std::size_t>(((k / 2) * padded_cols + n) * 2 + k % 2)] = to_bf16(B[k * ldb + n]);
    rounded.assign(static_cast<std::size_t>(K * padded_cols), 0.f);
    for (long k = 0; k < K; ++k)
      for (long n = 0; n < N; ++n) rounded[static_cast<std::size_t>(k * padded_cols + n)] = at(k, n);
  }
  /// @brief Element (k, n) as float.
  float at(long k, long n) const { return from_bf16(data[static_cast<std::size_t>(((k / 2) * padded_cols + n) * 2 + k % 2)]); }
};

/// @brief Where bf16_mm also writes its result rounded to bf16 (ties to even, as to_bf16), for a following product's
/// A: rows of `ld` >= N rounded up to even entries (the pad entry is written as zero).
struct bf16_out {
  std::uint16_t* data = nullptr;  ///< null: no bf16 copy
  long ld = 0;
  bool keep_float = true;  ///< false: only the bf16 copy is wanted; C's contents after the call are unspecified
};

namespace bf16_detail {

/// Rows of A (M x K float, row stride lda) into bf16 rows of ldo (>= K rounded up to even) entries; an odd K's
/// pad entry is written as zero, entries past it are left alone.
inline void convert_rows(long M, long K, const float* A, long lda, std::uint16_t* out, long ldo) {
  for (long m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    std::uint16_t* o = out + m * ldo;
    long k = 0;
#if HEPGNN_BF16_DOT
    for (; k + 32 <= K; k += 32) {  // the instruction rounds to nearest even, as to_bf16 does
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(a + k));
      _mm512_storeu_si512(o + k, reinterpret_cast<const __m512i&>(v));
    }
    for (; k + 16 <= K; k += 16) {  // hidden widths 16, 48, 80, ...
      const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(a + k));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k), reinterpret_cast<const __m256i&>(v));
    }
#endif
    for (; k < K; ++k) o[k] = to_bf16(a[k]);
    if (K % 2) o[K] = 0;
  }
}

#if HEPGNN_BF16_DOT
#define HEPGNN_UNROLL_BF16 _Pragma("GCC unroll 16")
/// C tile (Mr rows x NV registers of 16 columns) over P pairs of k: the accumulators live in registers, B's pair
/// row (NV registers) is loaded once per pair and each row of A broadcasts its pair (32 bits) to all lanes.
template <int Mr, int NV>
inline void tile(long P, const std::uint16_t* A, long lda, const std::uint16_t* B, long ldp, float* C, long ldc,
                 bool acc, const gemm_detail::epilogue<float>& e, const bf16_out& out) {
  __m512 c[Mr][NV];
  HEPGNN_UNROLL_BF16
  for (int v = 0; v < NV; ++v) {
    const __m512 b0 = e.bias ? _mm512_loadu_ps(e.bias + 16 * v) : _mm512_setzero_ps();
    HEPGNN_UNROLL_BF16
    for (int m = 0; m < Mr; ++m) c[m][v] = acc ? _mm512_add_ps(b0, _mm512_loadu_ps(C + m * ldc + 16 * v)) : b0;
  }
  for (long p = 0; p < P; ++p) {
    __m512bh b[NV];
    HEPGNN_UNROLL_BF16
    for (int v = 0; v < NV; ++v) {
      const __m512i raw = _mm512_loadu_si512(B + p * ldp + 32 * v);
      b[v] = reinterpret_cast<const __m512bh&>(raw);
    }
    HEPGNN_UNROLL_BF16
    for (int m = 0; m < Mr; ++m) {
      std::uint32_t pair;
      __builtin_memcpy(&pair, A + m * lda + 2 * p, sizeof pair);
      const __m512i ai = _mm512_set1_epi32(static_cast<int>(pair));
      const __m512bh a = reinterpret_cast<const __m512bh&>(ai);
      HEPGNN_UNROLL_BF16
      for (int v = 0; v < NV; ++v) c[m][v] = _mm512_dpbf16_ps(c[m][v], a, b[v]);
    }
  }
  HEPGNN_UNROLL_BF16
  for (int m = 0; m < Mr; ++m)
    HEPGNN_UNROLL_BF16
    for (int v = 0; v < NV; ++v) {
      __m512 r = e.relu ? _mm512_max_ps(c[m][v], _mm512_setzero_ps()) : c[m][v];
      if (e.residual) r = _mm512_add_ps(r, _mm512_loadu_ps(C + m * ldc + 16 * v));
      if (out.keep_float) _mm512_storeu_ps(C + m * ldc + 16 * v, r);
      if (out.data) {
        const __m256bh h = _mm512_cvtneps_pbh(r);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data + m * out.ld + 16 * v), reinterpret_cast<const __m256i&>(h));
      }
    }
}
#undef HEPGNN_UNROLL_BF16

template <int NV>
void panel(long M, long P, const std::uint16_t* A, long lda, const std::uint16_t* B, long ldp, float* C, long ldc,
           bool acc, const gemm_detail::epilogue<float>& e, bf16_out out) {
  constexpr int Mr = gemm_detail::tile_rows<NV>;
  const auto at = [&](long m) {
    bf16_out o = out;
    if (o.data) o.data += m * o.ld;
    return o;
  };
  long m = 0;
  for (; m + Mr <= M; m += Mr) tile<Mr, NV>(P, A + m * lda, lda, B, ldp, C + m * ldc, ldc, acc, e, at(m));
  for (; m + 4 <= M; m += 4) tile<4, NV>(P, A + m * lda, lda, B, ldp, C + m * ldc, ldc, acc, e, at(m));
  for (; m + 2 <= M; m += 2) tile<2, NV>(P, A + m * lda, lda, B, ldp, C + m * ldc, ldc, acc, e, at(m));
  for (; m < M; ++m) tile<1, NV>(P, A + m * lda, lda, B, ldp, C + m * ldc, ldc, acc, e, at(m));
}
#endif

/// The same product in float on the bf16-rounded operands (builds without the instruction, widths the bf16
/// kernel does not take): the float register kernel of gemm.hpp where it serves (AVX-512, whole registers),
/// else Eigen.
inline void emulated(long M, long N, long K, const std::uint16_t* A, long lda, const bf16_panel& B, float* C,
                     long ldc, bool acc, const gemm_detail::epilogue<float>& e) {
  float* a = gemm_detail::scratch<float>(1, static_cast<std::size_t>(M * K));
  for (long m = 0; m < M; ++m)
    for (long k = 0; k < K; ++k) a[m * K + k] = from_bf16(A[m * lda + k]);
  if constexpr (gemm_kernel_v<float, native>) {
    if (N % 16 == 0) {
      gemm_detail::block<float, native>(M, N, K, a, K, 1, B.rounded.data(), B.padded_cols, C, ldc, acc, e);
      return;
    }
  }
  using map = Eigen::Map<matrix<float>, 0, Eigen::OuterStride<>>;
  using cmap = Eigen::Map<const matrix<float>, 0, Eigen::OuterStride<>>;
  map c(C, M, N, Eigen::OuterStride<>(ldc));
  Eigen::Map<matrix<float>> t(gemm_detail::scratch<float>(0, static_cast<std::size_t>(M * N)), M, N);  // no allocation once warm
  t.noalias() = cmap(a, M, K, Eigen::OuterStride<>(K)) * cmap(B.rounded.data(), K, N, Eigen::OuterStride<>(B.padded_cols));
  if (e.bias) t.rowwise() += Eigen::Map<const row_vector<float>>(e.bias, N);
  if (acc) t += c;
  if (e.relu) t = t.cwiseMax(0.f);
  if (e.residual) c += t; else c = t;
}

/// C [+]= A B on A's bf16 rows (lda >= K rounded up to even, the pad entry zero), then the epilogue; the result
/// also in bf16 where `out` asks.
template <bool Native>
void product(long M, long N, long K, const std::uint16_t* A, long lda, const bf16_panel& B, float* C, long ldc,
             bool acc, const gemm_detail::epilogue<float>& e, const bf16_out& out) {
#if HEPGNN_BF16_DOT
  if constexpr (Native) {
    if (N % 16 == 0) {
      const long P = (K + 1) / 2, ldp = B.padded_cols * 2;
      for (long n = 0; n < N; n += 64) {
        gemm_detail::epilogue<float> en = e;
        if (en.bias) en.bias += n;
        bf16_out on = out;
        if (on.data) on.data += n;
        const std::uint16_t* b = B.data.data() + n * 2;
        switch (std::min<long>(4, (N - n) / 16)) {
          case 1: panel<1>(M, P, A, lda, b, ldp, C + n, ldc, acc, en, on); break;
          case 2: panel<2>(M, P, A, lda, b, ldp, C + n, ldc, acc, en, on); break;
          case 3: panel<3>(M, P, A, lda, b, ldp, C + n, ldc, acc, en, on); break;
          default: panel<4>(M, P, A, lda, b, ldp, C + n, ldc, acc, en, on); break;
        }
      }
      if (out.data && N % 2) for (long m = 0; m < M; ++m) out.data[m * out.ld + N] = 0;
      return;
    }
  }
#endif
  emulated(M, N, K, A, lda, B, C, ldc, acc, e);
  if (out.data) convert_rows(M, N, C, ldc, out.data, out.ld);
}

/// The checks both entry points share.
inline void check_product(long K, long N, const bf16_panel& B, bool acc, const gemm_detail::epilogue<float>& e,
                          const bf16_out& out) {
  HEPGNN_CHECK(B.rows == K && B.cols == N, "simd::bf16_mm: the panel is ", B.rows, " x ", B.cols, ", expected ", K,
               " x ", N);
  HEPGNN_CHECK(!e.mask && !(acc && e.residual), "simd::bf16_mm: the epilogue's mask and acc with residual are not "
               "supported");
  HEPGNN_CHECK(!out.data || out.ld >= (N + 1) / 2 * 2, "simd::bf16_mm: the bf16 output's row stride must be >= N ",
               "rounded up to even (", (N + 1) / 2 * 2, "), got ", out.ld);
  HEPGNN_CHECK(out.data || out.keep_float, "simd::bf16_mm: keep_float = false needs a bf16 output");
}

}  // namespace bf16_detail

/// @brief C (M x N, row stride ldc) = [C +] [bias +] A B, then ReLU and/or C's previous value added (the
/// epilogue's relu and residual; its mask is not supported), with A (M x K float, row stride lda) and B (the
/// packed K x N panel) rounded to bf16 and float sums. With `residual`, acc must be false. `out`: the result in
/// bf16 as well. Runs on the calling thread; A is converted in blocks of rows into per-thread scratch (no
/// allocation once warm). `Native` false forces the float emulation (for tests).
template <bool Native = has_bf16_dot>
void bf16_mm(long M, long N, long K, const float* A, long lda, const bf16_panel& B, float* C, long ldc, bool acc,
             const gemm_detail::epilogue<float>& e, const bf16_out& out = {}) {
  bf16_detail::check_product(K, N, B, acc, e, out);
  if (M <= 0 || N <= 0) return;
  const long Kp = (K + 1) / 2 * 2, rows_per_block = 240;
  std::uint16_t* a = gemm_detail::scratch<std::uint16_t>(0, static_cast<std::size_t>(rows_per_block * Kp));
  for (long m0 = 0; m0 < M; m0 += rows_per_block) {
    const long mb = std::min(rows_per_block, M - m0);
    bf16_detail::convert_rows(mb, K, A + m0 * lda, lda, a, Kp);
    bf16_out o = out;
    if (o.data) o.data += m0 * o.ld;
    bf16_detail::product<Native>(mb, N, K, a, Kp, B, C + m0 * ldc, ldc, acc, e, o);
  }
}

/// @brief The same with A given in bf16: M rows of lda >= K rounded up to even entries, the pad entry zero (a
/// bf16_out of an earlier product): no conversion.
template <bool Native = has_bf16_dot>
void bf16_mm(long M, long N, long K, const std::uint16_t* A, long lda, const bf16_panel& B, float* C, long ldc,
             bool acc, const gemm_detail::epilogue<float>& e, const bf16_out& out = {}) {
  bf16_detail::check_product(K, N, B, acc, e, out);
  HEPGNN_CHECK(lda >= (K + 1) / 2 * 2, "simd::bf16_mm: A's row stride must be >= K rounded up to even (",
               (K + 1) / 2 * 2, "), got ", lda);
  if (M <= 0 || N <= 0) return;
  bf16_detail::product<Native>(M, N, K, A, lda, B, C, ldc, acc, e, out);
}

}  // namespace hepgnn::simd
