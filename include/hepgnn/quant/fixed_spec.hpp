#pragma once
/// @file fixed_spec.hpp
/// @brief Fixed-point formats given at run time (ap_fixed's W, I, Q, O) and the one rounding/overflow rule that
/// every fixed-point type and kernel of hepgnn::quant uses: exact value in, ap_fixed's assignment semantics out.
///
/// Semantics (Xilinx ap_fixed / ap_ufixed, checked against its headers by tests/quant_ap):
/// - a format <W, I> holds W bits, I of them integer bits (sign included when signed), F = W - I fractional
///   bits; the value is raw * 2^-F. I may exceed W or be negative, as in ap_fixed.
/// - narrowing first quantizes the exact value to a multiple of 2^-F (quant_mode, decided on the bits dropped
///   and the sign of the *source*), then handles the rounded value outside the range (overflow_mode).

#include <cmath>
#include <cstdint>

#include "hepgnn/core/error.hpp"

namespace hepgnn::quant {

/// @brief Quantization modes of ap_fixed (how dropped fractional bits are handled).
enum class quant_mode : std::uint8_t {
  trn,          ///< AP_TRN: toward minus infinity (floor), the default
  trn_zero,     ///< AP_TRN_ZERO: toward zero
  rnd,          ///< AP_RND: to nearest, half toward plus infinity
  rnd_zero,     ///< AP_RND_ZERO: to nearest, half toward zero
  rnd_min_inf,  ///< AP_RND_MIN_INF: to nearest, half toward minus infinity
  rnd_inf,      ///< AP_RND_INF: to nearest, half away from zero
  rnd_conv      ///< AP_RND_CONV: to nearest, half to even
};

/// @brief Overflow modes of ap_fixed (AP_WRAP with saturation bits N > 0 and AP_WRAP_SM are not provided).
enum class overflow_mode : std::uint8_t {
  wrap,      ///< AP_WRAP: keep the low W bits (two's complement), the default
  sat,       ///< AP_SAT: clamp to [min, max]
  sat_zero,  ///< AP_SAT_ZERO: 0 when out of range
  sat_sym    ///< AP_SAT_SYM: clamp to [-max, max] (signed W >= 2: the most negative pattern is never produced)
};

// ap_fixed's spellings, so formats read as in HLS code and hls4ml configurations.
inline constexpr quant_mode AP_TRN = quant_mode::trn;
inline constexpr quant_mode AP_TRN_ZERO = quant_mode::trn_zero;
inline constexpr quant_mode AP_RND = quant_mode::rnd;
inline constexpr quant_mode AP_RND_ZERO = quant_mode::rnd_zero;
inline constexpr quant_mode AP_RND_MIN_INF = quant_mode::rnd_min_inf;
inline constexpr quant_mode AP_RND_INF = quant_mode::rnd_inf;
inline constexpr quant_mode AP_RND_CONV = quant_mode::rnd_conv;
inline constexpr overflow_mode AP_WRAP = overflow_mode::wrap;
inline constexpr overflow_mode AP_SAT = overflow_mode::sat;
inline constexpr overflow_mode AP_SAT_ZERO = overflow_mode::sat_zero;
inline constexpr overflow_mode AP_SAT_SYM = overflow_mode::sat_sym;

/// @brief Longest format the emulation stores (raw values live in int64; unsigned formats up to 63 bits).
inline constexpr int max_fixed_width = 64;
/// @brief Longest format a layer accepts at run time (ap_fixed widths used on FPGAs; int32 lanes).
inline constexpr int max_layer_width = 32;

/// @brief A fixed-point format given at run time: ap_fixed<width, integer, q, o> (ap_ufixed when !is_signed).
struct fixed_spec {
  int width = 16;   ///< W: total bits
  int integer = 6;  ///< I: integer bits, sign included (hls4ml's default precision is ap_fixed<16,6>)
  quant_mode q = quant_mode::trn;
  overflow_mode o = overflow_mode::wrap;
  bool is_signed = true;

  constexpr int frac() const { return width - integer; }
  constexpr bool operator==(const fixed_spec&) const = default;
};

namespace detail {
__extension__ using int128 = __int128;  // exact room for a 64-bit value shifted by up to 63 bits
__extension__ using uint128 = unsigned __int128;

/// @brief The exact value src * 2^-shift rounded to an integer by mode q (shift > 0); `neg` is the sign of src.
constexpr int128 round_shift(int128 src, int shift, quant_mode q) {
  const bool neg = src < 0;
  int128 fl;
  bool qb, r;  // qb: the first dropped bit; r: any dropped bit below it
  if (shift > 100) {  // |src| < 2^100: floor is 0 or -1; for negative src the dropped part is 2^shift + src
    fl = neg ? -1 : 0;
    qb = neg;
    r = src != 0;
  } else {
    fl = src >> shift;  // arithmetic shift: floor
    const int128 rem = src - fl * (int128(1) << shift);
    const int128 half = int128(1) << (shift - 1);
    qb = rem >= half;
    r = (rem & (half - 1)) != 0;
  }
  bool up = false;
  switch (q) {
    case quant_mode::trn: up = false; break;
    case quant_mode::trn_zero: up = neg && (qb || r); break;
    case quant_mode::rnd: up = qb; break;
    case quant_mode::rnd_zero: up = qb && (neg || r); break;
    case quant_mode::rnd_min_inf: up = qb && r; break;
    case quant_mode::rnd_inf: up = qb && (!neg || r); break;
    case quant_mode::rnd_conv: up = qb && ((fl & 1) != 0 || r); break;
  }
  return fl + (up ? 1 : 0);
}

/// @brief Applies overflow mode of `s` to an integer v already at the scale 2^-F of s.
constexpr std::int64_t apply_overflow(int128 v, const fixed_spec& s) {
  const int w = s.width;
  const int128 hi = s.is_signed ? (int128(1) << (w - 1)) - 1 : (int128(1) << w) - 1;
  const int128 lo = s.is_signed ? -(int128(1) << (w - 1)) : 0;
  switch (s.o) {
    case overflow_mode::wrap: {
      const uint128 mask = (uint128(1) << w) - 1;
      uint128 u = static_cast<uint128>(v) & mask;
      if (s.is_signed && ((u >> (w - 1)) & 1)) return static_cast<std::int64_t>(static_cast<int128>(u) - (int128(1) << w));
      return static_cast<std::int64_t>(u);
    }
    case overflow_mode::sat: return static_cast<std::int64_t>(v > hi ? hi : (v < lo ? lo : v));
    case overflow_mode::sat_zero: return static_cast<std::int64_t>((v > hi || v < lo) ? 0 : v);
    case overflow_mode::sat_sym: {
      // ap_fixed sets the lowest bit of the most negative pattern: with W = 1 that is the pattern itself
      const int128 l = s.is_signed && w > 1 ? -hi : lo;
      return static_cast<std::int64_t>(v > hi ? hi : (v < l ? l : v));
    }
  }
  return 0;
}
}  // namespace detail

/// @brief ap_fixed's assignment: the exact value src * 2^-src_frac quantized and overflow-handled into format s.
/// Returns the raw integer of the result (value * 2^F, sign-extended for signed formats). Any src_frac is allowed
/// (conversion from double passes up to ~1100). Formats are not checked here (see check_spec).
constexpr std::int64_t quantize_raw(std::int64_t src, int src_frac, const fixed_spec& s) {
  const int shift = src_frac - s.frac();
  if (shift > 0) return detail::apply_overflow(detail::round_shift(src, shift, s.q), s);
  if (shift == 0 || src == 0) return detail::apply_overflow(src, s);
  if (-shift < 64) return detail::apply_overflow(detail::int128(src) * (detail::int128(1) << -shift), s);
  // |value| >= 2^64 LSBs: the low W bits are zero (wrap), every other mode saturates by the sign.
  if (s.o == overflow_mode::wrap) return 0;
  return detail::apply_overflow(src < 0 ? -(detail::int128(1) << 100) : (detail::int128(1) << 100), s);
}

/// @brief Raw integer of a finite double converted to format s as ap_fixed's constructor does: the exact binary
/// value of d, quantized by s.q and overflow-handled by s.o (no detour through a rounded double product).
/// Throws hepgnn::error for NaN or infinity (ap_fixed gives an unspecified pattern with a warning).
inline std::int64_t quantize_double(double d, const fixed_spec& s) {
  HEPGNN_CHECK(std::isfinite(d), "quantize_double: value must be finite, got ", d);
  if (d == 0) return 0;
  int e = 0;
  const double m = std::frexp(d, &e);  // d = m 2^e, 0.5 <= |m| < 1
  const auto mant = static_cast<std::int64_t>(std::ldexp(m, 53));  // exact: 53 significant bits
  return quantize_raw(mant, 53 - e, s);
}

/// @brief The value of a raw integer of format s (exact when W <= 53).
inline double raw_to_double(std::int64_t raw, const fixed_spec& s) { return std::ldexp(static_cast<double>(raw), -s.frac()); }

/// @brief Checks a format given at run time by a caller `who` for argument `arg`: 1 <= W <= max_width and
/// -max_layer_width <= I <= W (0 <= F <= W + 32: the shifts of the integer kernels stay below 64 bits); unsigned
/// formats one bit shorter (their raw values must fit the signed lanes).
inline void check_spec(const fixed_spec& s, const char* who, const char* arg, int max_width = max_layer_width) {
  HEPGNN_CHECK(s.width >= 1 && s.width <= max_width, who, ": ", arg, ".width must be in [1, ", max_width, "], got ",
               s.width);
  HEPGNN_CHECK(s.integer <= s.width && s.integer >= -max_layer_width, who, ": ", arg, ".integer must be in [",
               -max_layer_width, ", width = ", s.width, "], got ", s.integer);
  HEPGNN_CHECK(s.is_signed || s.width < max_width, who, ": ", arg, ".width of an unsigned format must be < ", max_width,
               " (raw values are int", max_width, " lanes), got ", s.width);
}

}  // namespace hepgnn::quant
