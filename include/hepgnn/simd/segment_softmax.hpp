#pragma once
/// @file segment_softmax.hpp
/// @brief The library's one segment softmax and its vector-Jacobian product: per segment [b, e) of rows (the edges
/// entering a node in CSR order, the nodes of a graph in a batch) and per column (attention head), alpha = softmax
/// of the scores over the segment (PyTorch Geometric `utils.softmax`).
///
/// Attention layers (attention_pool, gatv2_conv) call these per segment, like segment_reduce.hpp's reduction: a
/// segment is handled in row order by one thread and segments are independent, so results are bit-identical for
/// any thread count, with no atomics. Rows are addressed as base + r * ld (row-major matrices, ld = row stride).

#include <algorithm>
#include <cmath>
#include <span>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn::simd {

/// @brief alpha(r, k) = exp(s(r, k) - max_seg s(., k)) / sum_seg exp(s(., k) - max) for r in [b, e), k < h, with
/// s(r, k) = score[r * lds + k] and alpha(r, k) = alpha[r * lda + k]. alpha may be score itself (in place).
///
/// The max is subtracted so exp never overflows (the result is the same softmax); the division (not a product with
/// the reciprocal) keeps the rounding of PyTorch's `out / out_sum`. PyG adds 1e-16 to the sum: the sum is >= 1 (the
/// max row contributes exp(0)), so that changes no bit in float or double and is left out. An empty segment writes
/// nothing; non-finite scores (a +inf or NaN max) give NaN, as in PyTorch.
template <class T>
inline void softmax_segment(index_t b, index_t e, long h, const T* score, long lds, T* alpha, long lda) {
  if (b == e) return;
  // Column by column: segments are short (a node's edges, a jet's particles), so strided access costs little and
  // needs no scratch for per-column maxima and sums (inference stays allocation-free).
  for (long k = 0; k < h; ++k) {
    T mx = score[long(b) * lds + k];
    for (index_t r = b + 1; r < e; ++r) mx = std::max(mx, score[long(r) * lds + k]);
    T den = 0;
    for (index_t r = b; r < e; ++r) {
      const T a = std::exp(score[long(r) * lds + k] - mx);
      alpha[long(r) * lda + k] = a;
      den += a;
    }
    for (index_t r = b; r < e; ++r) alpha[long(r) * lda + k] /= den;
  }
}

/// @brief Vector-Jacobian product of softmax_segment: from alpha and its gradient dalpha to the gradient of the
/// scores, dscore(r, k) = alpha(r, k) * (dalpha(r, k) - sum_{r' in seg} alpha(r', k) dalpha(r', k)).
/// Writes (assigns) dscore; dscore may be dalpha itself (in place). An empty segment writes nothing.
template <class T>
inline void softmax_segment_backward(index_t b, index_t e, long h, const T* alpha, long lda, const T* dalpha,
                                     long ldd, T* dscore, long ldo) {
  for (long k = 0; k < h; ++k) {
    T dot = 0;
    for (index_t r = b; r < e; ++r) dot += alpha[long(r) * lda + k] * dalpha[long(r) * ldd + k];
    for (index_t r = b; r < e; ++r)
      dscore[long(r) * ldo + k] = alpha[long(r) * lda + k] * (dalpha[long(r) * ldd + k] - dot);
  }
}

namespace softmax_detail {
/// Rows x columns below which the whole-matrix forms stay on one thread (thread start-up costs more).
inline constexpr long parallel_min_work = 1L << 15;

inline void check_offsets(std::span<const index_t> offsets, long rows, const char* who) {
  HEPGNN_CHECK(!offsets.empty() && offsets.front() == 0 && offsets.back() == rows, who,
               ": segment offsets must run from 0 to the row count ", rows, ", got ",
               offsets.empty() ? 0 : offsets.front(), " .. ", offsets.empty() ? 0 : offsets.back());
}
}  // namespace softmax_detail

/// @brief alpha = softmax_segment over every segment [offsets[s], offsets[s+1]) of score (rows x heads); offsets is
/// a graph's CSR offsets (edges by destination) or a batch's node offsets. alpha is resized; it may be score.
/// Rows outside every segment cannot occur (offsets run from 0 to rows); rows of empty segments do not exist.
template <class T>
void segment_softmax(std::span<const index_t> offsets, const matrix<T>& score, matrix<T>& alpha) {
  softmax_detail::check_offsets(offsets, score.rows(), "segment_softmax");
  const long h = score.cols(), n = long(offsets.size()) - 1;
  if (&alpha != &score) alpha.resize(score.rows(), h);
  const T* s = score.data();
  T* a = alpha.data();
  parallel_for(n, score.size() >= softmax_detail::parallel_min_work,
               [&](long g) { softmax_segment(offsets[g], offsets[g + 1], h, s, h, a, h); });
}

/// @brief dscore = the vector-Jacobian product of segment_softmax (see softmax_segment_backward), per segment.
/// dscore is resized; it may be dalpha (in place).
template <class T>
void segment_softmax_backward(std::span<const index_t> offsets, const matrix<T>& alpha, const matrix<T>& dalpha,
                              matrix<T>& dscore) {
  softmax_detail::check_offsets(offsets, alpha.rows(), "segment_softmax_backward");
  HEPGNN_CHECK(dalpha.rows() == alpha.rows() && dalpha.cols() == alpha.cols(),
               "segment_softmax_backward: dalpha must have the shape of alpha (", alpha.rows(), " x ", alpha.cols(),
               "), got ", dalpha.rows(), " x ", dalpha.cols());
  const long h = alpha.cols(), n = long(offsets.size()) - 1;
  if (&dscore != &dalpha) dscore.resize(alpha.rows(), h);
  const T* a = alpha.data();
  const T* d = dalpha.data();
  T* o = dscore.data();
  parallel_for(n, alpha.size() >= softmax_detail::parallel_min_work,
               [&](long g) { softmax_segment_backward(offsets[g], offsets[g + 1], h, a, h, d, h, o, h); });
}

}  // namespace hepgnn::simd
