#pragma once
/// @file gemm.hpp
/// @brief The three products of a dense layer on row-major matrices, as register-blocked AVX-512 kernels:
///   linear_forward   y = x W^T (+ b) (then ReLU)            forward
///   multiply         dx = dy W (or +=)                       input gradient
///   linear_backward  dW += dy^T x, db += sum_rows dy, dx = dy W in one pass over the rows   backward
///
/// How: one micro-kernel computes a tile of Mr rows x up to 4 vector registers of C with the accumulators in
/// registers, A broadcast element by element from memory and B read as whole rows (K x N, row-major). B must be
/// readable a whole register past its last column, so W^T (forward) and any operand whose width is not a multiple
/// of the register width are copied into a zero-padded panel first (weights are small; the row-chunks of x in the
/// backward are copied only in that case). The destination is written once: no zero fill, bias and ReLU are
/// applied on the way out.
///
/// Determinism: every element of C is reduced over k in order, by one tile. Forward products split rows over
/// threads; the weight-gradient reduction over rows is split into a fixed number of parts that depends only on
/// the row count (partial sums added in part order), so results do not depend on the thread count.
///
/// Other architectures (no AVX-512) and the `simd::scalar` tag use Eigen for the same operations; the weight
/// gradient there is also summed over a fixed split of the rows, each part's product on one thread (Eigen, when it
/// threads a product itself, blocks its depth by the thread count).

#include <algorithm>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/simd/arch.hpp"

namespace hepgnn::simd {

/// @brief True when the register-blocked kernels serve scalar T under Arch (AVX-512, float or double);
/// otherwise the entry points below fall back to Eigen.
template <class T, class Arch>
inline constexpr bool gemm_kernel_v = []() {
  if constexpr (is_scalar_v<Arch>)
    return false;
  else
    return std::is_base_of_v<xsimd::avx512f, Arch> && (std::is_same_v<T, float> || std::is_same_v<T, double>);
}();

namespace gemm_detail {

template <class T>
using buffer = std::vector<T, Eigen::aligned_allocator<T>>;

/// Per-thread scratch that only grows: allocation-free once warm (inference on a model shared by threads).
template <class T>
T* scratch(int slot, std::size_t n) {
  thread_local buffer<T> b[2];
  if (b[slot].size() < n) b[slot].resize(n);
  return b[slot].data();
}

/// Operations below this many multiply-adds run on the calling thread (fork/join costs ~ microseconds).
inline constexpr long parallel_min_flops = parallel_limits::gemm_min_flops;

inline bool go_parallel(long flops) {
#ifdef _OPENMP
  return flops >= parallel_min_flops && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
  (void)flops;
  return false;
#endif
}

template <class V, class T>
V load_part(const T* p, long n) {
  if (n == static_cast<long>(V::size)) return V::load_unaligned(p);
  alignas(64) T t[V::size] = {};
  std::copy_n(p, n, t);
  return V::load_aligned(t);
}
template <class V, class T>
void store_part(const V& v, T* p, long n) {
  if (n == static_cast<long>(V::size)) return v.store_unaligned(p);
  alignas(64) T t[V::size];
  v.store_aligned(t);
  std::copy_n(t, n, p);
}

/// What happens to a finished tile: + bias (readable a whole register past the last column), ReLU, and/or
/// zeroing where mask(m, n) <= 0 (the backward of a ReLU whose output is the mask), then with `residual` (and
/// acc false) C's previous value added: C = C + relu(bias + A B), a residual update in one pass.
template <class T>
struct epilogue {
  const T* bias = nullptr;
  bool relu = false;
  const T* mask = nullptr;
  long ldm = 0;
  bool residual = false;
};

/// Full unrolling of the tile loops over rows and registers, so the accumulators live in registers: GCC does it
/// by itself at -O3 but not at -O2 (CMake's RelWithDebInfo, distribution builds), where the tile spilled them to
/// the stack and the interaction network's training ran 3-4x slower.
#define HEPGNN_UNROLL _Pragma("GCC unroll 16")

/// Rows per tile for NV registers of columns: accumulators plus the B row fit the 32 vector registers.
template <int NV>
inline constexpr int tile_rows = NV == 4 ? 6 : NV == 3 ? 8 : NV == 2 ? 10 : 12;

/// C (Mr x NV registers) = [C +] [bias +] A B, then the epilogue. a(m, k) = A[m * sam + k * sak]; B row k starts
/// at B + k * ldb and has NV full registers readable. With Partial, the last register of C holds only `tail`
/// columns (loaded and stored through a stack copy); full tiles keep every branch out of the unrolled code.
template <class T, class Arch, int Mr, int NV, bool Partial>
inline void tile(long K, const T* A, long sam, long sak, const T* B, long ldb, T* C, long ldc, long tail, bool acc,
                 const epilogue<T>& e) {
  using V = xsimd::batch<T, Arch>;
  constexpr long L = static_cast<long>(V::size);
  const auto width = [&](int v) { return Partial && v == NV - 1 ? tail : L; };
  V c[Mr][NV];
  HEPGNN_UNROLL
  for (int v = 0; v < NV; ++v) {
    const V b0 = e.bias ? V::load_unaligned(e.bias + v * L) : V(T(0));
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m) c[m][v] = b0;
  }
  if (acc) {
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m)
      HEPGNN_UNROLL
      for (int v = 0; v < NV; ++v)
        c[m][v] += Partial ? load_part<V>(C + m * ldc + v * L, width(v)) : V::load_unaligned(C + m * ldc + v * L);
  }
  for (long k = 0; k < K; ++k) {
    V b[NV];
    HEPGNN_UNROLL
    for (int v = 0; v < NV; ++v) b[v] = V::load_unaligned(B + k * ldb + v * L);
    const T* a = A + k * sak;
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m) {
      const V am(a[m * sam]);
      HEPGNN_UNROLL
      for (int v = 0; v < NV; ++v) c[m][v] = xsimd::fma(am, b[v], c[m][v]);
    }
  }
  if (e.relu) {
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m)
      HEPGNN_UNROLL
      // x86 max returns its second operand when one is NaN: this order keeps NaN, as PyTorch's ReLU does
      for (int v = 0; v < NV; ++v) c[m][v] = xsimd::max(V(T(0)), c[m][v]);
  }
  if (e.mask) {
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m)
      HEPGNN_UNROLL
      for (int v = 0; v < NV; ++v) {
        const T* mp = e.mask + m * e.ldm + v * L;
        const V mv = Partial ? load_part<V>(mp, width(v)) : V::load_unaligned(mp);
        c[m][v] = xsimd::select(mv > V(T(0)), c[m][v], V(T(0)));
      }
  }
  if (e.residual) {
    HEPGNN_UNROLL
    for (int m = 0; m < Mr; ++m)
      HEPGNN_UNROLL
      for (int v = 0; v < NV; ++v)
        c[m][v] += Partial ? load_part<V>(C + m * ldc + v * L, width(v)) : V::load_unaligned(C + m * ldc + v * L);
  }
  HEPGNN_UNROLL
  for (int m = 0; m < Mr; ++m)
    HEPGNN_UNROLL
    for (int v = 0; v < NV; ++v) {
      if constexpr (Partial)
        store_part(c[m][v], C + m * ldc + v * L, width(v));
      else
        c[m][v].store_unaligned(C + m * ldc + v * L);
    }
}

#undef HEPGNN_UNROLL

template <class T, class Arch, int NV, bool Partial>
void panel_rows(long M, long K, const T* A, long sam, long sak, const T* B, long ldb, T* C, long ldc, long tail,
                bool acc, epilogue<T> e) {
  constexpr int Mr = tile_rows<NV>;
  constexpr long line = 64 / sizeof(T);
  long m = 0;
  for (; m + Mr <= M; m += Mr, e.mask += e.mask ? Mr * e.ldm : 0) {
    // Rows of A are a few cache lines each: too short for the hardware prefetcher, so fetch the next tile's rows.
    if (sak == 1)
      for (long r = m + Mr; r < std::min(M, m + 2 * Mr); ++r)
        for (long k = 0; k < K; k += line) __builtin_prefetch(A + r * sam + k);
    tile<T, Arch, Mr, NV, Partial>(K, A + m * sam, sam, sak, B, ldb, C + m * ldc, ldc, tail, acc, e);
  }
  // Leftover rows in tiles of 4, 2, 1: a single-row tile is bound by the FMA latency, not its throughput.
  const auto rest = [&]<int R>() {
    for (; m + R <= M; m += R, e.mask += e.mask ? R * e.ldm : 0)
      tile<T, Arch, R, NV, Partial>(K, A + m * sam, sam, sak, B, ldb, C + m * ldc, ldc, tail, acc, e);
  };
  if constexpr (Mr > 4) rest.template operator()<4>();
  rest.template operator()<2>();
  rest.template operator()<1>();
}

template <class T, class Arch, int NV>
void panel(long M, long K, const T* A, long sam, long sak, const T* B, long ldb, T* C, long ldc, long tail, bool acc,
           const epilogue<T>& e) {
  if (tail == static_cast<long>(xsimd::batch<T, Arch>::size))
    panel_rows<T, Arch, NV, false>(M, K, A, sam, sak, B, ldb, C, ldc, tail, acc, e);
  else
    panel_rows<T, Arch, NV, true>(M, K, A, sam, sak, B, ldb, C, ldc, tail, acc, e);
}

/// C (M x N) = [C +] A B, then the epilogue, on one thread, in column panels of 4 registers; B (and the bias)
/// readable up to N rounded up to a whole register.
template <class T, class Arch>
void block(long M, long N, long K, const T* A, long sam, long sak, const T* B, long ldb, T* C, long ldc, bool acc,
           const epilogue<T>& e) {
  constexpr long L = static_cast<long>(xsimd::batch<T, Arch>::size);
  for (long n = 0; n < N; n += 4 * L) {
    const long w = std::min(4 * L, N - n), nv = (w + L - 1) / L, tail = w - (nv - 1) * L;
    epilogue<T> en = e;
    if (en.bias) en.bias += n;
    if (en.mask) en.mask += n;
    switch (nv) {
      case 1: panel<T, Arch, 1>(M, K, A, sam, sak, B + n, ldb, C + n, ldc, tail, acc, en); break;
      case 2: panel<T, Arch, 2>(M, K, A, sam, sak, B + n, ldb, C + n, ldc, tail, acc, en); break;
      case 3: panel<T, Arch, 3>(M, K, A, sam, sak, B + n, ldb, C + n, ldc, tail, acc, en); break;
      default: panel<T, Arch, 4>(M, K, A, sam, sak, B + n, ldb, C + n, ldc, tail, acc, en); break;
    }
  }
}

/// C[m, n] = bias[n] + A row m . W row n (then ReLU) for outputs narrower than one register, where the tiles
/// above would waste most lanes. W rows are zero-padded to a whole number of registers (row stride ldw).
/// (Not xsimd::haddp: in xsimd 8.1 its AVX-512 float version returns the row sums in permuted lanes.)
template <class T, class Arch>
void dots(long M, long N, long K, const T* A, long lda, const T* W, long ldw, T* C, long ldc, const epilogue<T>& e) {
  using V = xsimd::batch<T, Arch>;
  constexpr int L = static_cast<int>(V::size);
  const long Kf = K / L * L;
  for (long m = 0; m < M; m += L) {
    const int rows = static_cast<int>(std::min<long>(L, M - m));
    const T* a = A + m * lda;
    for (long n = 0; n < N; ++n) {
      const T* w = W + n * ldw;
      V acc[L];
      for (int r = 0; r < L; ++r) acc[r] = V(T(0));
      if (rows == L) {
        for (long k = 0; k < Kf; k += L) {
          const V wv = V::load_unaligned(w + k);
          for (int r = 0; r < L; ++r) acc[r] = xsimd::fma(V::load_unaligned(a + r * lda + k), wv, acc[r]);
        }
      } else {
        for (long k = 0; k < Kf; k += L) {
          const V wv = V::load_unaligned(w + k);
          for (int r = 0; r < rows; ++r) acc[r] = xsimd::fma(V::load_unaligned(a + r * lda + k), wv, acc[r]);
        }
      }
      if (Kf < K) {
        const V wv = V::load_unaligned(w + Kf);
        for (int r = 0; r < rows; ++r) acc[r] = xsimd::fma(load_part<V>(a + r * lda + Kf, K - Kf), wv, acc[r]);
      }
      const T b = e.bias ? e.bias[n] : T(0);
      for (int r = 0; r < rows; ++r) {
        const T v = xsimd::hadd(acc[r]) + b;
        C[(m + r) * ldc + n] = e.relu ? std::max(v, T(0)) : v;
      }
    }
  }
}

/// Rows per unit of work in the row-parallel products (a multiple of every tile height and register width).
inline constexpr long row_group = 240;

/// A row-group callback that does nothing (linear_forward without `then`).
struct no_rows_done {
  void operator()(long, long) const {}
};

/// C (M x N, row-major A with row stride lda) = [C +] [bias +] A B [ReLU], rows split over threads; done(m0, m1)
/// runs on each finished group of rows [m0, m1) while it is in cache.
/// With `dot` set, B is W (N x K, padded rows of stride ldb) and the narrow-output dot kernel runs instead.
template <class T, class Arch, class Done = no_rows_done>
void rows(long M, long N, long K, const T* A, long lda, const T* B, long ldb, T* C, long ldc, bool acc,
          const epilogue<T>& e, bool dot = false, const Done& done = {}) {
  const long groups = (M + row_group - 1) / row_group;
  parallel_for(groups, groups > 1 && go_parallel(M * N * K), [&](long g) {
    const long m0 = g * row_group, m1 = std::min(M, m0 + row_group);
    if (dot)
      dots<T, Arch>(m1 - m0, N, K, A + m0 * lda, lda, B, ldb, C + m0 * ldc, ldc, e);
    else
      block<T, Arch>(m1 - m0, N, K, A + m0 * lda, lda, 1, B, ldb, C + m0 * ldc, ldc, acc, e);
    done(m0, m1);
  });
}

inline long padded(long n, long L) { return (n + L - 1) / L * L; }

/// dst (cols x ldd, zero-padded past rows) = the transpose of src (rows x cols, row stride lds), in 16 x 16 blocks:
/// the 16 destination rows a block writes stay in L1 (element by element, each write would touch another line).
template <class T>
void transpose_padded(long rows, long cols, const T* src, long lds, T* dst, long ldd) {
  constexpr long B = 16;
  for (long c = 0; c < cols; ++c) std::fill(dst + c * ldd + rows, dst + (c + 1) * ldd, T(0));
  for (long r0 = 0; r0 < rows; r0 += B)
    for (long c0 = 0; c0 < cols; c0 += B) {
      const long r1 = std::min(r0 + B, rows), c1 = std::min(c0 + B, cols);
      for (long r = r0; r < r1; ++r)
        for (long c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
}

/// dst (rows x ldd, zero-padded past cols) = src rows (row stride lds).
template <class T>
void copy_padded(long rows, long cols, const T* src, long lds, T* dst, long ldd) {
  for (long r = 0; r < rows; ++r) {
    std::copy_n(src + r * lds, cols, dst + r * ldd);
    std::fill(dst + r * ldd + cols, dst + (r + 1) * ldd, T(0));
  }
}

}  // namespace gemm_detail

/// @brief Small dense product (the interaction network's edge and node blocks): C (M x N, row stride ldc) = or +=
/// A B, then + bias (1 x N, or null) and optionally ReLU; with `residual` (acc false) the result is added to C
/// instead: C += relu(bias + A B).
/// a(m, k) = A[m * sam + k * sak] (so A may be read transposed), B is K x N with row stride ldb. The
/// register-tiled kernel of simd/gemm.hpp when N is a whole number of registers (no packing: the operands of an
/// edge block sit in L1/L2), Eigen otherwise. The reduction runs over k in order, so results do not depend on how
/// rows are split.
template <class T>
void block_mm(long M, long N, long K, const T* A, long sam, long sak, const T* B, long ldb, T* C, long ldc, bool acc,
              bool relu, const T* bias = nullptr, bool residual = false) {
  if (M == 0 || N == 0) return;
  if constexpr (gemm_kernel_v<T, native>) {
    constexpr long L = static_cast<long>(xsimd::batch<T, native>::size);
    if (N % L == 0) {
      gemm_detail::epilogue<T> e;
      e.relu = relu;
      e.bias = bias;
      e.residual = residual;
      gemm_detail::block<T, native>(M, N, K, A, sam, sak, B, ldb, C, ldc, acc && !residual, e);
      return;
    }
  }
  using S = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::Map<const matrix<T>, 0, S> a(A, M, K, S(sam, sak));
  Eigen::Map<const matrix<T>, 0, S> b(B, K, N, S(ldb, 1));
  Eigen::Map<matrix<T>, 0, S> c(C, M, N, S(ldc, 1));
  if (!bias && !residual) {
    if (acc) c.noalias() += a * b; else c.noalias() = a * b;
    if (relu) c = c.cwiseMax(T(0));
    return;
  }
  Eigen::Map<matrix<T>> t(gemm_detail::scratch<T>(1, static_cast<std::size_t>(M * N)), M, N);  // no allocation once warm
  if (bias) t.rowwise() = Eigen::Map<const row_vector<T>>(bias, N);
  else t.setZero();
  if (acc && !residual) t += c;
  t.noalias() += a * b;
  if (relu) t = t.cwiseMax(T(0));
  if (residual) c += t; else c = t;
}

/// @brief y = x w^T (+ bias) (then ReLU when `relu`); y is resized to x.rows() x w.rows().
/// x: M x K, w: N x K (PyTorch Linear layout), bias: nullptr or N values. y must not alias x or w.
/// then(m0, m1), when given, runs on each finished block of rows [m0, m1) of y, on the thread that made it and while
/// it is in cache (an activation applied there costs no extra pass over y, and runs on every thread).
template <class T, class Arch = native, class Then = gemm_detail::no_rows_done>
void linear_forward(const matrix<T>& x, const matrix<T>& w, const std::type_identity_t<T>* bias, matrix<T>& y,
                    bool relu = false, const Then& then = {}) {
  HEPGNN_CHECK(x.cols() == w.cols(), "linear_forward: x has ", x.cols(), " columns but w is ", w.rows(), " x ",
               w.cols(), " (expected ", x.cols(), " columns)");
  const long M = x.rows(), N = w.rows(), K = x.cols();
  y.resize(M, N);
  if (M == 0 || N == 0) return;
  if constexpr (gemm_kernel_v<T, Arch>) {
    constexpr long L = static_cast<long>(xsimd::batch<T, Arch>::size);
    // Narrow output, or one or two rows (a pooled jet in a classifier head): dot products along the rows of x and
    // w, whose rows are read in place when K fills whole registers (zero-padded copy otherwise): transposing W
    // into a panel would cost more than the product.
    if (N < L || M <= 2) {
      const long Kp = gemm_detail::padded(K, L);
      const T* wp = w.data();
      if (Kp != K) {
        T* copy = gemm_detail::scratch<T>(0, static_cast<std::size_t>(N * Kp));
        gemm_detail::copy_padded(N, K, w.data(), K, copy, Kp);
        wp = copy;
      }
      gemm_detail::rows<T, Arch>(M, N, K, x.data(), K, wp, Kp, y.data(), N, false, {bias, relu}, true, then);
      return;
    }
    const long Np = gemm_detail::padded(N, L);
    // W^T as a zero-padded K x Np panel, followed by the padded bias.
    T* bt = gemm_detail::scratch<T>(0, static_cast<std::size_t>((K + 1) * Np));
    gemm_detail::transpose_padded(N, K, w.data(), K, bt, Np);
    std::fill(bt + K * Np, bt + (K + 1) * Np, T(0));
    if (bias) std::copy_n(bias, N, bt + K * Np);
    gemm_detail::rows<T, Arch>(M, N, K, x.data(), K, bt, Np, y.data(), N, false, {bias ? bt + K * Np : nullptr, relu},
                               false, then);
  } else {
    if (M <= 128)  // Eigen's GEMM allocates its packing buffers; the lazy product does not
      y.noalias() = x.lazyProduct(w.transpose());
    else
      y.noalias() = x * w.transpose();
    if (bias) y.rowwise() += Eigen::Map<const row_vector<T>>(bias, N);
    if (relu) y = y.cwiseMax(T(0));
    then(0, M);
  }
}

/// @brief dx = dy w, or dx += dy w when `accumulate` (dx must then already be dy.rows() x w.cols()).
/// dy: M x N, w: N x K; dx is resized to M x K otherwise. dx must not alias dy or w.
template <class T, class Arch = native>
void multiply(const matrix<T>& dy, const matrix<T>& w, matrix<T>& dx, bool accumulate = false) {
  HEPGNN_CHECK(dy.cols() == w.rows(), "multiply: dy has ", dy.cols(), " columns but w has ", w.rows(), " rows");
  if (accumulate)
    HEPGNN_CHECK(dx.rows() == dy.rows() && dx.cols() == w.cols(), "multiply: accumulating into dx of ", dx.rows(),
                 " x ", dx.cols(), ", expected ", dy.rows(), " x ", w.cols());
  else
    dx.resize(dy.rows(), w.cols());
  const long M = dy.rows(), N = w.cols(), K = dy.cols();
  if (M == 0 || N == 0) return;
  if constexpr (gemm_kernel_v<T, Arch>) {
    constexpr long L = static_cast<long>(xsimd::batch<T, Arch>::size);
    const long Np = gemm_detail::padded(N, L);
    const T* b = w.data();
    if (Np != N) {
      T* p = gemm_detail::scratch<T>(0, static_cast<std::size_t>(K * Np));
      gemm_detail::copy_padded(K, N, w.data(), N, p, Np);
      b = p;
    }
    if (K == 0) {
      if (!accumulate) dx.setZero();
      return;
    }
    gemm_detail::rows<T, Arch>(M, N, K, dy.data(), K, b, Np, dx.data(), N, accumulate, {});
  } else {
    if (accumulate) dx.noalias() += dy * w; else dx.noalias() = dy * w;
  }
}

/// @brief Backward of y = x w^T + b in one pass over the rows: dw += dy^T x, db += column sums of dy (db may be
/// nullptr), and *dx = dy w when dx is not null (resized to x.rows() x w.cols()). With `dx_mask` (R x I), dx is
/// zeroed where dx_mask <= 0: the backward of a ReLU whose output is dx_mask, fused in.
/// x: R x I, dy: R x O, w and dw: O x I, db: O values. dx must not alias the inputs.
template <class T, class Arch = native>
void linear_backward(const matrix<T>& x, const matrix<T>& dy, const matrix<T>& w, matrix<T>& dw,
                     std::type_identity_t<T>* db, matrix<T>* dx, const matrix<T>* dx_mask = nullptr) {
  const long R = x.rows(), I = x.cols(), O = dy.cols();
  HEPGNN_CHECK(dy.rows() == R, "linear_backward: dy has ", dy.rows(), " rows, x has ", R);
  HEPGNN_CHECK(w.rows() == O && w.cols() == I && dw.rows() == O && dw.cols() == I, "linear_backward: w is ",
               w.rows(), " x ", w.cols(), " and dw ", dw.rows(), " x ", dw.cols(), ", expected ", O, " x ", I);
  HEPGNN_CHECK(!dx_mask || (dx_mask->rows() == R && dx_mask->cols() == I), "linear_backward: dx_mask is ",
               dx_mask ? dx_mask->rows() : 0, " x ", dx_mask ? dx_mask->cols() : 0, ", expected ", R, " x ", I);
  if (dx) dx->resize(R, I);
  if (R == 0) return;
  if constexpr (gemm_kernel_v<T, Arch>) {
    namespace gd = gemm_detail;
    constexpr long L = static_cast<long>(xsimd::batch<T, Arch>::size);
    constexpr long chunk = 128;  // rows whose dy and x slices stay in L1/L2 while every dW tile passes over them
    const long Ip = gd::padded(I, L), Op = gd::padded(O, L);
    // Fixed split of the rows (depends on R only): part s sums its rows into its own partial dW / db.
    const long parts = std::clamp(R / (4 * chunk), 1L, 8L);
    const bool pad_x = Ip != I, pad_w = dx && Ip != I;
    // One part sums straight into dw and db; several keep partial sums (O x Ip, then Op) to add in part order.
    const bool direct = parts == 1;
    const long part_size = (direct ? 0 : O * Ip + Op) + (pad_x ? chunk * Ip : 0);
    const long wsize = pad_w ? O * Ip : 0;
    T* s = gd::scratch<T>(1, static_cast<std::size_t>(parts * part_size + wsize));
    const auto dx_epilogue = [&](long r0) {
      return dx_mask ? gd::epilogue<T>{nullptr, false, dx_mask->data() + r0 * I, I} : gd::epilogue<T>{};
    };
    const T* wb = w.data();
    if (pad_w) {
      T* p = s + parts * part_size;
      gd::copy_padded(O, I, w.data(), I, p, Ip);
      wb = p;
    }
    parallel_for(parts, parts > 1 && gd::go_parallel(3 * R * I * O), [&](long p) {
      T* const own = s + p * part_size;
      T* pw = direct ? dw.data() : own;
      const long ldp = direct ? I : Ip;
      T* pb = direct ? db : own + O * Ip;
      T* px = direct ? own : own + O * Ip + Op;  // padded copy of a chunk of x
      if (!direct && db) std::fill(pb, pb + O, T(0));
      const long r0 = R * p / parts, r1 = R * (p + 1) / parts;
      for (long c0 = r0; c0 < r1; c0 += chunk) {
        const long n = std::min(chunk, r1 - c0);
        const T* d = dy.data() + c0 * O;
        const T* xs = x.data() + c0 * I;
        if (pad_x) {
          gd::copy_padded(n, I, xs, I, px, Ip);
          xs = px;
        }
        if (dx) gd::block<T, Arch>(n, I, O, d, O, 1, wb, Ip, dx->data() + c0 * I, I, false, dx_epilogue(c0));
        gd::block<T, Arch>(O, I, n, d, 1, O, xs, Ip, pw, ldp, direct || c0 > r0, {});
        if (db) {
          Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> acc(pb, O);
          for (long r = 0; r < n; ++r) acc += Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(d + r * O, O);
        }
      }
    });
    for (long p = 0; p < parts && !direct; ++p) {
      const T* pw = s + p * part_size;
      for (long o = 0; o < O; ++o)
        for (long i = 0; i < I; ++i) dw(o, i) += pw[o * Ip + i];
      if (db)
        for (long o = 0; o < O; ++o) db[o] += pw[O * Ip + o];
    }
  } else {
    // Eigen's GEMM, threaded, picks its depth blocking by thread count, and dW sums over the rows (its depth): the
    // rounding would follow the thread count. Instead a fixed split of the rows (at least two parts, so each
    // product runs inside a parallel region or on one thread, where Eigen does not thread it), partial sums added
    // in part order.
    const long parts = std::clamp(R / 512, std::min(R, 2L), 8L);
    T* s = gemm_detail::scratch<T>(1, static_cast<std::size_t>(parts * O * I));
    parallel_for(parts, true, [&](long p) {
      const long r0 = R * p / parts, n = R * (p + 1) / parts - r0;
      Eigen::Map<matrix<T>>(s + p * O * I, O, I).noalias() = dy.middleRows(r0, n).transpose() * x.middleRows(r0, n);
      if (dx) dx->middleRows(r0, n).noalias() = dy.middleRows(r0, n) * w;
    });
    for (long p = 0; p < parts; ++p) dw += Eigen::Map<const matrix<T>>(s + p * O * I, O, I);
    if (db) add_column_sums(dy, Eigen::Map<row_vector<T>>(db, O));
    if (dx && dx_mask) *dx = (dx_mask->array() > T(0)).select(dx->array(), T(0));
  }
}

/// @brief dw += dy^T x (O x I from R x O and R x I): linear_backward's weight gradient alone, summed over the same
/// fixed split of the rows, so the result does not depend on the thread count (Eigen's threaded product would).
template <class T, class Arch = native>
void add_weight_gradient(const matrix<T>& x, const matrix<T>& dy, matrix<T>& dw) {
  linear_backward<T, Arch>(x, dy, dw, dw, nullptr, nullptr);  // w is read only for dx
}

}  // namespace hepgnn::simd
