#pragma once
/// @file segment_reduce.hpp
/// @brief The library's one segment reduction and its vector-Jacobian product: the rows [b, e) of a matrix (the
/// edges entering a node in CSR order, the nodes of a graph in a batch) combined by sum, mean or max into one row.
///
/// Message passing (nn/aggregate.hpp, edge_conv, interaction_network, gravnet_conv, mpgan_message_passing) and
/// pooling call these per segment. A segment is reduced in row order by one thread, and segments are independent,
/// so callers split segments over threads and results are bit-identical for any thread count, with no atomics.
/// Sum and mean start from the first row (not from 0), so a segment whose rows are all -0.0 sums to -0.0.
///
/// `row(r)` is called once per row, in order, and its pointer is read before the next call: a caller can compute
/// each row (a message) into one reused buffer instead of storing every row.

#include <algorithm>
#include <span>

#include "hepgnn/core/aggregation.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn::simd {

template <class T>
inline void row_copy(T* __restrict y, const T* __restrict a, long f) {
  for (long c = 0; c < f; ++c) y[c] = a[c];
}
template <class T>
inline void row_add(T* __restrict y, const T* __restrict a, long f) {
  for (long c = 0; c < f; ++c) y[c] += a[c];
}
template <class T>
inline void row_scale(T* __restrict y, T s, long f) {
  for (long c = 0; c < f; ++c) y[c] *= s;
}
/// @brief y = max(y, a) with arg-max bookkeeping; strict '>' keeps the first row on ties, and a NaN row wins
/// and stays (PyTorch's max propagates NaN; the gradient goes to it).
template <class T>
inline void row_max(T* __restrict y, index_t* __restrict arg, const T* __restrict a, index_t r, long f) {
  for (long c = 0; c < f; ++c) {
    const bool take = (a[c] > y[c]) | (a[c] != a[c]);
    y[c] = take ? a[c] : y[c];
    arg[c] = take ? r : arg[c];
  }
}
/// @brief y = max(y, a) without arg-max (the same choice as the overload above).
template <class T>
inline void row_max(T* y, const T* a, long f) {
  for (long c = 0; c < f; ++c) y[c] = ((a[c] > y[c]) | (a[c] != a[c])) ? a[c] : y[c];
}

/// @brief y (f values) = AGG over r in [b, e) of row(r) (a pointer to f values). An empty segment gives 0 (PyG).
/// For max, `arg` (f ids, may be null) receives the winning r of every feature, -1 for an empty segment.
template <class T, class Row>
[[gnu::always_inline]] inline void reduce_segment(index_t b, index_t e, long f, const Row& row, aggregation a, T* __restrict y,
                           index_t* __restrict arg) {
  if (b == e) {
    std::fill(y, y + f, T(0));
    if (arg) std::fill(arg, arg + f, index_t(-1));
    return;
  }
  row_copy(y, row(b), f);
  if (a == aggregation::max) {
    if (arg) {
      std::fill(arg, arg + f, b);
      for (index_t r = b + 1; r < e; ++r) row_max(y, arg, row(r), r, f);
    } else {
      for (index_t r = b + 1; r < e; ++r) row_max(y, row(r), f);
    }
  } else {
    for (index_t r = b + 1; r < e; ++r) row_add(y, row(r), f);
    if (a == aggregation::mean) row_scale(y, T(1) / T(e - b), f);
  }
}

/// @brief Several aggregations of the same rows at once, concatenated (GravNet's [mean, max]): y holds a.size()
/// blocks of f values, block k equal bit for bit to reduce_segment with a[k], while row(r) is evaluated once per
/// row. `arg` (may be null) receives f ids per max block, in block order.
template <class T, class Row>
[[gnu::always_inline]] inline void reduce_segment_concat(index_t b, index_t e, long f, const Row& row,
                                                         std::span<const aggregation> a, T* __restrict y,
                                                         index_t* __restrict arg) {
  const std::size_t blocks = a.size();
  if (b == e) {
    std::fill(y, y + long(blocks) * f, T(0));
    for (std::size_t k = 0; arg && k < blocks; ++k)
      if (a[k] == aggregation::max) arg = std::fill_n(arg, f, index_t(-1));
    return;
  }
  const T* first = row(b);
  index_t* ak = arg;
  for (std::size_t k = 0; k < blocks; ++k) {
    row_copy(y + long(k) * f, first, f);
    if (a[k] == aggregation::max && ak) ak = std::fill_n(ak, f, b);
  }
  for (index_t r = b + 1; r < e; ++r) {
    const T* m = row(r);
    ak = arg;
    for (std::size_t k = 0; k < blocks; ++k) {
      T* yk = y + long(k) * f;
      if (a[k] != aggregation::max) {
        row_add(yk, m, f);
      } else if (ak) {
        row_max(yk, ak, m, r, f);
        ak += f;
      } else {
        row_max(yk, m, f);
      }
    }
  }
  for (std::size_t k = 0; k < blocks; ++k)
    if (a[k] == aggregation::mean) row_scale(y + long(k) * f, T(1) / T(e - b), f);
}

/// @brief Whether reduce_segment_backward writes the row gradients or adds them to what is there.
enum class gradient_mode { assign, add };

/// @brief Vector-Jacobian product of reduce_segment: from dy (f values, the gradient of y) to the gradients of
/// rows [b, e), drow(r) (a pointer to f values). sum: dy to every row; mean: dy / (e - b); max: dy to the arg-max
/// row of each feature only (`arg` from the forward), the other rows 0 (assign) or unchanged (add).
template <gradient_mode Mode, class T, class Row>
[[gnu::always_inline]] inline void reduce_segment_backward(index_t b, index_t e, long f, aggregation a, const T* __restrict dy,
                                    const index_t* __restrict arg, const Row& drow) {
  if (a == aggregation::max) {
    if constexpr (Mode == gradient_mode::assign)
      for (index_t r = b; r < e; ++r) std::fill(drow(r), drow(r) + f, T(0));
    if (b == e) return;
    for (long c = 0; c < f; ++c) {
      if constexpr (Mode == gradient_mode::assign) drow(arg[c])[c] = dy[c]; else drow(arg[c])[c] += dy[c];
    }
  } else {
    const T s = a == aggregation::mean && e > b ? T(1) / T(e - b) : T(1);
    for (index_t r = b; r < e; ++r) {
      T* d = drow(r);
      for (long c = 0; c < f; ++c) {
        if constexpr (Mode == gradient_mode::assign) d[c] = s * dy[c]; else d[c] += s * dy[c];
      }
    }
  }
}

/// @brief Vector-Jacobian product of reduce_segment_concat: dy holds a.size() blocks of f values (`arg` as the
/// forward wrote it); the first block's gradient is written as `Mode` says, the others are added to it.
template <gradient_mode Mode, class T, class Row>
[[gnu::always_inline]] inline void reduce_segment_concat_backward(index_t b, index_t e, long f,
                                                                  std::span<const aggregation> a,
                                                                  const T* __restrict dy,
                                                                  const index_t* __restrict arg, const Row& drow) {
  for (std::size_t k = 0; k < a.size(); ++k) {
    const index_t* ak = a[k] == aggregation::max ? arg : nullptr;
    if (k == 0 && Mode == gradient_mode::assign)
      reduce_segment_backward<gradient_mode::assign>(b, e, f, a[k], dy, ak, drow);
    else
      reduce_segment_backward<gradient_mode::add>(b, e, f, a[k], dy, ak, drow);
    dy += f;
    if (ak) arg += f;
  }
}

}  // namespace hepgnn::simd
