#pragma once
/// @file integer_kernels.hpp
/// @brief Lane-wise integer versions of fixed_spec's rounding and overflow rule (int64 lanes, branch-free), and
/// the fixed-point dense product built from them. Plain loops over output lanes that the compiler vectorises
/// (AVX-512/AVX2 integer lanes: sign-extended int32 operands, int64 products, shifts, compares, blends); each mode
/// pair is its own instantiation, chosen once per call, so the loops carry no mode branches.

#include <cstdint>

#include "hepgnn/quant/fixed_spec.hpp"

namespace hepgnn::quant {

/// @brief p * 2^-shift rounded by mode Q (shift >= 1), in int64 (p any int64 value).
template <quant_mode Q>
inline std::int64_t round_shift_lane(std::int64_t p, int shift) {
  const std::int64_t fl = p >> shift;  // floor
  if constexpr (Q == quant_mode::trn) {
    return fl;
  } else {
    const std::int64_t low = p & ((std::int64_t(1) << shift) - 1);  // dropped bits, as a non-negative value
    const std::int64_t half = std::int64_t(1) << (shift - 1);
    const bool qb = low >= half, r = (low & (half - 1)) != 0, neg = p < 0;
    bool up = false;
    if constexpr (Q == quant_mode::trn_zero) up = neg && low != 0;
    if constexpr (Q == quant_mode::rnd) up = qb;
    if constexpr (Q == quant_mode::rnd_zero) up = qb && (neg || r);
    if constexpr (Q == quant_mode::rnd_min_inf) up = qb && r;
    if constexpr (Q == quant_mode::rnd_inf) up = qb && (!neg || r);
    if constexpr (Q == quant_mode::rnd_conv) up = qb && ((fl & 1) != 0 || r);
    return fl + static_cast<std::int64_t>(up);
  }
}

/// @brief Bounds of a format's raw integers, and the overflow rule on an int64 lane.
struct lane_range {
  std::int64_t lo, hi, sym_lo;  // sym_lo: the lower bound of AP_SAT_SYM
  int width;
  bool is_signed;
  explicit lane_range(const fixed_spec& s)
      : lo(s.is_signed ? -(std::int64_t(1) << (s.width - 1)) : 0),
        hi(s.is_signed ? (std::int64_t(1) << (s.width - 1)) - 1 : (std::int64_t(1) << s.width) - 1),
        sym_lo(s.is_signed && s.width > 1 ? -hi : lo),  // as apply_overflow (ap_fixed's W = 1 case)
        width(s.width),
        is_signed(s.is_signed) {}
};

template <overflow_mode O>
inline std::int64_t overflow_lane(std::int64_t v, const lane_range& r) {
  if constexpr (O == overflow_mode::wrap) {
    const int up = 64 - r.width;  // keep the low W bits, sign- or zero-extended
    const auto shifted = static_cast<std::uint64_t>(v) << up;
    return r.is_signed ? static_cast<std::int64_t>(shifted) >> up : static_cast<std::int64_t>(shifted >> up);
  } else if constexpr (O == overflow_mode::sat) {
    return v > r.hi ? r.hi : (v < r.lo ? r.lo : v);
  } else if constexpr (O == overflow_mode::sat_zero) {
    return (v > r.hi || v < r.lo) ? 0 : v;
  } else {
    return v > r.hi ? r.hi : (v < r.sym_lo ? r.sym_lo : v);
  }
}

/// @brief Calls f.template operator()<Q, O>() for the run-time modes (one instantiation per pair).
template <class F>
decltype(auto) with_modes(quant_mode q, overflow_mode o, F&& f) {
  auto by_o = [&]<quant_mode Q>() -> decltype(auto) {
    switch (o) {
      case overflow_mode::sat: return f.template operator()<Q, overflow_mode::sat>();
      case overflow_mode::sat_zero: return f.template operator()<Q, overflow_mode::sat_zero>();
      case overflow_mode::sat_sym: return f.template operator()<Q, overflow_mode::sat_sym>();
      default: return f.template operator()<Q, overflow_mode::wrap>();
    }
  };
  switch (q) {
    case quant_mode::trn_zero: return by_o.template operator()<quant_mode::trn_zero>();
    case quant_mode::rnd: return by_o.template operator()<quant_mode::rnd>();
    case quant_mode::rnd_zero: return by_o.template operator()<quant_mode::rnd_zero>();
    case quant_mode::rnd_min_inf: return by_o.template operator()<quant_mode::rnd_min_inf>();
    case quant_mode::rnd_inf: return by_o.template operator()<quant_mode::rnd_inf>();
    case quant_mode::rnd_conv: return by_o.template operator()<quant_mode::rnd_conv>();
    default: return by_o.template operator()<quant_mode::trn>();
  }
}

/// @brief a + b modulo 2^64 (no signed overflow): AP_WRAP sums reduced to W bits at the end give the same bits.
inline std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

/// @brief a (+)= p in the accumulator format: overflow-handled after the addition (p already cast to it), or, for
/// AP_WRAP, modulo 2^64 (the caller reduces to W bits once at the end: the same bits).
template <overflow_mode O>
inline std::int64_t accumulate_lane(std::int64_t a, std::int64_t p, const lane_range& r) {
  if constexpr (O == overflow_mode::wrap)
    return wrapping_add(a, p);
  else
    return overflow_lane<O>(a + overflow_lane<O>(p, r), r);
}

/// @brief Sizes and shifts of one fixed-point dense product (see quantized_dense).
struct dense_kernel_shape {
  int batch, in, out;
  int product_shift;  ///< F_input + F_weight - F_accum: > 0 rounds right, <= 0 shifts left (W_in + W_w - shift <= 64)
};

/// @brief acc[s, j] = bias_acc[j] (+)= cast_accum(x[s, i] * w[i, j]) over i ascending, the sums overflow-handled in
/// the accumulator format after every addition (AP_WRAP: once at the end, the same bits modulo 2^W). x is
/// [batch, in] raw, w is [in, out] raw (output-contiguous lanes), acc is [batch, out] raw accumulator values.
template <quant_mode Q, overflow_mode O>
void dense_accumulate(const std::int32_t* x, const std::int32_t* w, const std::int64_t* bias_acc,
                      const dense_kernel_shape& k, const lane_range& acc_range, std::int64_t* acc) {
  const int sh = k.product_shift;
  for (int s = 0; s < k.batch; ++s) {
    std::int64_t* a = acc + static_cast<std::int64_t>(s) * k.out;
    const std::int32_t* xs = x + static_cast<std::int64_t>(s) * k.in;
    for (int j = 0; j < k.out; ++j) a[j] = bias_acc[j];
    for (int i = 0; i < k.in; ++i) {
      const std::int64_t xi = xs[i];
      const std::int32_t* wi = w + static_cast<std::int64_t>(i) * k.out;
      if (sh > 0) {
        for (int j = 0; j < k.out; ++j) {
          a[j] = accumulate_lane<O>(a[j], round_shift_lane<Q>(xi * static_cast<std::int64_t>(wi[j]), sh), acc_range);
        }
      } else {
        const int left = -sh;
        for (int j = 0; j < k.out; ++j) {
          a[j] = accumulate_lane<O>(a[j], (xi * static_cast<std::int64_t>(wi[j])) * (std::int64_t(1) << left), acc_range);
        }
      }
    }
    if constexpr (O == overflow_mode::wrap)
      for (int j = 0; j < k.out; ++j) a[j] = overflow_lane<O>(a[j], acc_range);
  }
}

/// @brief The fixed-point sum of each segment of rows (aggregation over a node's incoming edges, pooling over a
/// graph's nodes): acc[s, j] = 0, then acc[s, j] (+)= (accum_t) m[r, j] for r = offsets[s], ..., offsets[s + 1] - 1,
/// each term cast to the accumulator (shift = F_m - F_accum: > 0 rounds by Q, <= 0 shifts left) and each sum
/// overflow-handled by O (AP_WRAP: once at the end, the same bits). m is [rows, cols] raw, acc [segments, cols].
template <quant_mode Q, overflow_mode O, class Index>
void segment_sum_accumulate(const std::int32_t* m, int cols, const Index* offsets, long segments, int shift,
                            const lane_range& acc_range, std::int64_t* acc) {
  for (long s = 0; s < segments; ++s) {
    std::int64_t* a = acc + s * cols;
    for (int j = 0; j < cols; ++j) a[j] = 0;
    for (Index r = offsets[s]; r < offsets[s + 1]; ++r) {
      const std::int32_t* mr = m + static_cast<std::int64_t>(r) * cols;
      if (shift > 0) {
        for (int j = 0; j < cols; ++j) a[j] = accumulate_lane<O>(a[j], round_shift_lane<Q>(mr[j], shift), acc_range);
      } else {
        const std::int64_t scale = std::int64_t(1) << -shift;
        for (int j = 0; j < cols; ++j) a[j] = accumulate_lane<O>(a[j], static_cast<std::int64_t>(mr[j]) * scale, acc_range);
      }
    }
    if constexpr (O == overflow_mode::wrap)
      for (int j = 0; j < cols; ++j) a[j] = overflow_lane<O>(a[j], acc_range);
  }
}

/// @brief The dense product with rows as the vector lanes (for many short rows: edges, nodes): x is feature-major
/// [in, stride] (input i of row r at x[i * stride + r]), w is [out, in] raw, acc [out, stride] raw accumulators
/// for rows r < rows. Per output o and row r: acc = bias_acc[o], then acc (+)= cast_accum(x_i * w_oi) for i
/// ascending, exactly as dense_accumulate (the same bits).
template <quant_mode Q, overflow_mode O>
void dense_accumulate_rows(const std::int32_t* x, long rows, long stride, const std::int32_t* w,
                           const std::int64_t* bias_acc, int in, int out, int shift, const lane_range& acc_range,
                           std::int64_t* acc) {
  for (int o = 0; o < out; ++o) {
    std::int64_t* a = acc + o * stride;
    for (long r = 0; r < rows; ++r) a[r] = bias_acc[o];
    for (int i = 0; i < in; ++i) {
      const std::int64_t wi = w[static_cast<long>(o) * in + i];
      const std::int32_t* xi = x + i * stride;
      if (shift > 0) {
        for (long r = 0; r < rows; ++r) a[r] = accumulate_lane<O>(a[r], round_shift_lane<Q>(xi[r] * wi, shift), acc_range);
      } else {
        const std::int64_t scale = std::int64_t(1) << -shift;
        for (long r = 0; r < rows; ++r) a[r] = accumulate_lane<O>(a[r], xi[r] * wi * scale, acc_range);
      }
    }
    if constexpr (O == overflow_mode::wrap)
      for (long r = 0; r < rows; ++r) a[r] = overflow_lane<O>(a[r], acc_range);
  }
}

/// @brief dense_accumulate_rows for AP_TRN / AP_WRAP accumulators (hls4ml's default) whose products fit int32
/// (W_x + W_w <= 32, shift > 0, W_accum <= 32), on int32 lanes (twice as many per vector): the sums are kept
/// modulo 2^32 and wrapped to W once at the end, the same bits as the int64 kernel since 2^W divides 2^32. Writes
/// the wrapped accumulators, [out, stride] int32.
inline void dense_accumulate_rows_trn_wrap32(const std::int32_t* x, long rows, long stride, const std::int32_t* w,
                                             const std::int64_t* bias_acc, int in, int out, int shift,
                                             const lane_range& acc_range, std::int32_t* acc) {
  const int up = 32 - acc_range.width;
  constexpr long chunk = 32;  // rows whose sums stay in registers over all inputs (4 AVX2 / 2 AVX-512 vectors)
  for (int o = 0; o < out; ++o) {
    std::int32_t* a = acc + o * stride;
    const auto b = static_cast<std::uint32_t>(bias_acc[o]);
    long r0 = 0;
    for (; r0 + chunk <= rows; r0 += chunk) {
      std::uint32_t t[chunk];
      for (long l = 0; l < chunk; ++l) t[l] = b;
      for (int i = 0; i < in; ++i) {
        const std::int32_t wi = w[static_cast<long>(o) * in + i];
        const std::int32_t* xi = x + i * stride + r0;
        for (long l = 0; l < chunk; ++l) t[l] += static_cast<std::uint32_t>((xi[l] * wi) >> shift);
      }
      for (long l = 0; l < chunk; ++l) a[r0 + l] = static_cast<std::int32_t>(t[l]);
    }
    for (long r = r0; r < rows; ++r) a[r] = static_cast<std::int32_t>(b);
    for (int i = 0; i < in && r0 < rows; ++i) {
      const std::int32_t wi = w[static_cast<long>(o) * in + i];
      const std::int32_t* xi = x + i * stride;
      for (long r = r0; r < rows; ++r)
        a[r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(a[r]) + static_cast<std::uint32_t>((xi[r] * wi) >> shift));
    }
    for (long r = 0; r < rows; ++r) {
      const std::uint32_t v = static_cast<std::uint32_t>(a[r]) << up;
      a[r] = acc_range.is_signed ? static_cast<std::int32_t>(v) >> up : static_cast<std::int32_t>(v >> up);
    }
  }
}

}  // namespace hepgnn::quant
