#pragma once
/// @file fixed_point.hpp
/// @brief hepgnn::quant::fixed<W, I, Q, O, S>: a scalar with Xilinx ap_fixed<W, I, Q, O> semantics (ap_ufixed when
/// S = false), for bit-accurate simulation of firmware arithmetic.
///
/// As in ap_fixed, arithmetic is exact: a * b has W1 + W2 bits and I1 + I2 integer bits; a + b and a - b have
/// max(F1, F2) fractional bits and one integer bit more than the wider operand (a - b is always signed); -a has one
/// integer bit more. Rounding (Q) and overflow (O) happen only when a value is assigned to (constructed as) a
/// narrower type, decided by the destination's modes (fixed_spec.hpp). Results wider than 64 bits do not compile.

#include <compare>
#include <cstdint>
#include <ostream>
#include <type_traits>

#include "hepgnn/quant/fixed_spec.hpp"

namespace hepgnn::quant {

template <int W, int I, quant_mode Q = quant_mode::trn, overflow_mode O = overflow_mode::wrap, bool S = true>
class fixed;

/// @brief ap_ufixed<W, I, Q, O>.
template <int W, int I, quant_mode Q = quant_mode::trn, overflow_mode O = overflow_mode::wrap>
using ufixed = fixed<W, I, Q, O, false>;

namespace fixed_detail {
constexpr int max_int(int a, int b) { return a > b ? a : b; }
// Widths of exact results (ap_fixed's RType): integer bits of a sum, room for the sign of a signed operand.
constexpr int sum_integer(int i1, bool s1, int i2, bool s2) { return max_int(i1 + (s2 && !s1), i2 + (s1 && !s2)) + 1; }

template <class T>
struct is_fixed : std::false_type {};
template <int W, int I, quant_mode Q, overflow_mode O, bool S>
struct is_fixed<fixed<W, I, Q, O, S>> : std::true_type {};
}  // namespace fixed_detail

/// @brief True for every hepgnn::quant::fixed type.
template <class T>
concept fixed_point = fixed_detail::is_fixed<T>::value;

template <int W, int I, quant_mode Q, overflow_mode O, bool S>
class fixed {
  static_assert(W >= 1 && W <= max_fixed_width, "fixed: W must be in [1, 64] (the exact result of an operation too)");
  static_assert(S || W <= 63, "fixed: unsigned formats hold at most 63 bits (raw values are int64)");

 public:
  static constexpr int width = W;
  static constexpr int integer = I;
  static constexpr int frac = W - I;
  static constexpr bool is_signed = S;
  static constexpr quant_mode q_mode = Q;
  static constexpr overflow_mode o_mode = O;
  /// @brief The format as a run-time value (what layers and kernels take).
  static constexpr fixed_spec spec() { return fixed_spec{W, I, Q, O, S}; }

  constexpr fixed() = default;
  /// @brief From a double as ap_fixed(double): the exact binary value quantized by Q, overflow-handled by O.
  fixed(double d) : raw_(quantize_double(d, spec())) {}  // NOLINT: implicit, as ap_fixed's
  fixed(float d) : fixed(static_cast<double>(d)) {}      // NOLINT
  fixed(int v) : raw_(quantize_raw(v, 0, spec())) {}     // NOLINT
  /// @brief From another fixed-point format: ap_fixed's assignment (this type's Q and O decide).
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr fixed(const fixed<W2, I2, Q2, O2, S2>& o)  // NOLINT: implicit, as ap_fixed's
      : raw_(quantize_raw(o.raw(), W2 - I2, spec())) {}

  /// @brief The value whose raw integer is the low W bits of r (two's complement when signed).
  static constexpr fixed from_raw(std::int64_t r) {
    fixed f;
    f.raw_ = quantize_raw(r, frac, fixed_spec{W, I, quant_mode::trn, overflow_mode::wrap, S});
    return f;
  }
  /// @brief value * 2^F as an integer (sign-extended when signed).
  constexpr std::int64_t raw() const { return raw_; }
  double to_double() const { return raw_to_double(raw_, spec()); }
  explicit operator double() const { return to_double(); }
  explicit operator float() const { return static_cast<float>(to_double()); }

  // Exact arithmetic in the widened types.
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr auto operator*(const fixed<W2, I2, Q2, O2, S2>& b) const {
    using R = fixed<W + W2, I + I2, quant_mode::trn, overflow_mode::wrap, S || S2>;
    return R::from_exact(raw_ * b.raw());  // |product| < 2^63 since W + W2 <= 64
  }
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr auto operator+(const fixed<W2, I2, Q2, O2, S2>& b) const {
    constexpr int fr = fixed_detail::max_int(frac, W2 - I2), in = fixed_detail::sum_integer(I, S, I2, S2);
    using R = fixed<in + fr, in, quant_mode::trn, overflow_mode::wrap, S || S2>;
    return R::from_exact(aligned(fr) + b.aligned(fr));
  }
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr auto operator-(const fixed<W2, I2, Q2, O2, S2>& b) const {
    constexpr int fr = fixed_detail::max_int(frac, W2 - I2), in = fixed_detail::sum_integer(I, S, I2, S2);
    using R = fixed<in + fr, in, quant_mode::trn, overflow_mode::wrap, true>;
    return R::from_exact(aligned(fr) - b.aligned(fr));
  }
  constexpr auto operator-() const { return fixed<W + 1, I + 1, quant_mode::trn, overflow_mode::wrap, true>::from_exact(-raw_); }

  /// @brief a += b is a = a + b (exact sum, then this type's Q and O), as ap_fixed's compound assignments.
  template <class B>
  constexpr fixed& operator+=(const B& b) { return *this = fixed(*this + b); }
  template <class B>
  constexpr fixed& operator-=(const B& b) { return *this = fixed(*this - b); }
  template <class B>
  constexpr fixed& operator*=(const B& b) { return *this = fixed(*this * b); }

  /// @brief Exact comparison of the values (any two formats).
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr std::strong_ordering operator<=>(const fixed<W2, I2, Q2, O2, S2>& b) const {
    constexpr int fr = fixed_detail::max_int(frac, W2 - I2);
    static_assert(fr - frac <= 64 && fr - (W2 - I2) <= 64, "fixed: comparison of formats whose LSBs are over 2^64 apart");
    return aligned(fr) <=> b.aligned(fr);
  }
  template <int W2, int I2, quant_mode Q2, overflow_mode O2, bool S2>
  constexpr bool operator==(const fixed<W2, I2, Q2, O2, S2>& b) const {
    return (*this <=> b) == std::strong_ordering::equal;
  }

  /// @brief The raw integer at `fr` >= F fractional bits (exact; used by comparisons and sums).
  constexpr detail::int128 aligned(int fr) const { return detail::int128(raw_) * (detail::int128(1) << (fr - frac)); }

 private:
  template <int, int, quant_mode, overflow_mode, bool>
  friend class fixed;
  // An exact result that fits by construction of the widened type.
  static constexpr fixed from_exact(detail::int128 r) {
    fixed f;
    f.raw_ = static_cast<std::int64_t>(r);
    return f;
  }
  std::int64_t raw_ = 0;
};

template <fixed_point F>
std::ostream& operator<<(std::ostream& os, const F& a) { return os << a.to_double(); }

}  // namespace hepgnn::quant
