// quant::fixed (ap_fixed semantics): rounding and overflow modes on hand-worked values, widened arithmetic types,
// and conversion from double against an independent floating-point reference over random values and formats.
#include "support/doctest.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <type_traits>

#include "hepgnn/quant/fixed_point.hpp"
#include "hepgnn/quant/precision_string.hpp"

namespace hepgnn_test_fixed_point {

using namespace hepgnn::quant;

// Independent reference: round x * 2^F with std::floor and explicit tie rules, then wrap or clamp in doubles.
double reference_quantize(double x, const fixed_spec& s) {
  const double scaled = std::ldexp(x, s.frac());  // exact (power of two) for the magnitudes used here
  const double fl = std::floor(scaled), rem = scaled - fl;
  double q = fl;
  switch (s.q) {
    case quant_mode::trn: q = fl; break;
    case quant_mode::trn_zero: q = std::trunc(scaled); break;
    case quant_mode::rnd: q = rem >= 0.5 ? fl + 1 : fl; break;
    case quant_mode::rnd_zero: q = rem > 0.5 || (rem == 0.5 && x < 0) ? fl + 1 : fl; break;
    case quant_mode::rnd_min_inf: q = rem > 0.5 ? fl + 1 : fl; break;
    case quant_mode::rnd_inf: q = rem > 0.5 || (rem == 0.5 && x > 0) ? fl + 1 : fl; break;
    case quant_mode::rnd_conv: q = std::nearbyint(scaled); break;  // default FE_TONEAREST: half to even
  }
  const double span = std::ldexp(1.0, s.width);
  const double hi = s.is_signed ? span / 2 - 1 : span - 1, lo = s.is_signed ? -span / 2 : 0;
  switch (s.o) {
    case overflow_mode::wrap: {
      double m = std::fmod(q - lo, span);
      if (m < 0) m += span;
      q = m + lo;
      break;
    }
    case overflow_mode::sat: q = std::clamp(q, lo, hi); break;
    case overflow_mode::sat_zero: q = (q > hi || q < lo) ? 0 : q; break;
    case overflow_mode::sat_sym: q = std::clamp(q, s.is_signed && s.width > 1 ? -hi : lo, hi); break;  // W = 1: as AP_SAT
  }
  return q;
}

template <quant_mode Q, overflow_mode O = overflow_mode::wrap>
double q42(double x) {
  return fixed<4, 2, Q, O>(x).to_double();
}

TEST_CASE("fixed: each quantization mode on ties and non-ties of ap_fixed<4,2> (LSB 0.25)") {
  // 0.375 is 1.5 LSB, 0.625 is 2.5 LSB, 0.3 is 1.2 LSB.
  CHECK(q42<AP_TRN>(0.3) == 0.25);
  CHECK(q42<AP_RND>(0.3) == 0.25);
  CHECK(q42<AP_TRN>(0.375) == 0.25);
  CHECK(q42<AP_RND>(0.375) == 0.5);
  CHECK(q42<AP_RND_ZERO>(0.375) == 0.25);
  CHECK(q42<AP_RND_MIN_INF>(0.375) == 0.25);
  CHECK(q42<AP_RND_INF>(0.375) == 0.5);
  CHECK(q42<AP_RND_CONV>(0.375) == 0.5);
  CHECK(q42<AP_RND_CONV>(0.625) == 0.5);
  CHECK(q42<AP_RND>(0.625) == 0.75);
  CHECK(q42<AP_TRN>(-0.375) == -0.5);
  CHECK(q42<AP_TRN_ZERO>(-0.375) == -0.25);
  CHECK(q42<AP_TRN_ZERO>(0.375) == 0.25);
  CHECK(q42<AP_RND>(-0.375) == -0.25);
  CHECK(q42<AP_RND_ZERO>(-0.375) == -0.25);
  CHECK(q42<AP_RND_MIN_INF>(-0.375) == -0.5);
  CHECK(q42<AP_RND_INF>(-0.375) == -0.5);
  CHECK(q42<AP_RND_CONV>(-0.375) == -0.5);
  CHECK(q42<AP_RND_CONV>(-0.625) == -0.5);
  CHECK(q42<AP_RND>(-0.3) == -0.25);
}

TEST_CASE("fixed: overflow modes of ap_fixed<4,2> (range [-2, 1.75]) and ap_ufixed<4,2>") {
  CHECK(q42<AP_TRN, AP_WRAP>(2.0) == -2.0);
  CHECK(q42<AP_TRN, AP_WRAP>(2.5) == -1.5);
  CHECK(q42<AP_TRN, AP_SAT>(2.5) == 1.75);
  CHECK(q42<AP_TRN, AP_SAT>(-7.0) == -2.0);
  CHECK(q42<AP_TRN, AP_SAT_ZERO>(2.5) == 0.0);
  CHECK(q42<AP_TRN, AP_SAT_ZERO>(1.5) == 1.5);
  CHECK(q42<AP_TRN, AP_SAT_SYM>(-7.0) == -1.75);
  CHECK(q42<AP_TRN, AP_SAT_SYM>(-2.0) == -1.75);  // the most negative pattern is never produced
  CHECK(fixed<1, 1, AP_TRN, AP_SAT_SYM>(-5.0).to_double() == -1.0);  // ... except with W = 1 (ap_fixed's rule)
  // Rounding up past the largest value overflows: 1.9 is 7.6 LSB, rounds to 8.
  CHECK(q42<AP_RND, AP_WRAP>(1.9) == -2.0);
  CHECK(q42<AP_RND, AP_SAT>(1.9) == 1.75);
  CHECK(ufixed<4, 2>(-0.5).to_double() == 3.5);
  CHECK(ufixed<4, 2, AP_TRN, AP_SAT>(-0.5).to_double() == 0.0);
  CHECK(ufixed<4, 2, AP_TRN, AP_SAT>(9.0).to_double() == 3.75);
  // Formats with I > W (LSB 4) and I < 0 (all bits fractional below 1/4).
  CHECK(fixed<4, 6>(13.0).to_double() == 12.0);
  CHECK(fixed<4, -2, AP_RND>(0.03).to_double() == 0.03125);
  CHECK(fixed<4, -2, AP_TRN, AP_SAT>(0.5).to_double() == 0.109375);
  using F83 = fixed<8, 3>;
  CHECK_THROWS_AS(F83(std::nan("")), hepgnn::error);
}

TEST_CASE("fixed: arithmetic is exact in ap_fixed's widened result types; narrowing happens on assignment") {
  using A = fixed<8, 3>;
  using B = fixed<6, 2, AP_RND, AP_SAT>;
  using U = ufixed<5, 5>;
  static_assert(std::is_same_v<decltype(A() * B()), fixed<14, 5>>);
  static_assert(std::is_same_v<decltype(A() + B()), fixed<9, 4>>);  // F = max(5, 4), I = max(3, 2) + 1
  static_assert(std::is_same_v<decltype(A() + U()), fixed<12, 7>>);  // unsigned operand: one bit for the sign
  static_assert(std::is_same_v<decltype(U() + U()), ufixed<6, 6>>);
  static_assert(std::is_same_v<decltype(U() - U()), fixed<6, 6>>);  // differences are signed
  static_assert(std::is_same_v<decltype(-U()), fixed<6, 6>>);
  const A a(2.40625);  // 77/32
  const B b(-1.3);      // rounds to -1.3125 (-21/16)
  CHECK(b.to_double() == -1.3125);
  CHECK((a * b).to_double() == 2.40625 * -1.3125);
  CHECK((a + b).to_double() == 2.40625 - 1.3125);
  CHECK((b - a).to_double() == -1.3125 - 2.40625);
  CHECK((-fixed<4, 4>(-8.0)).to_double() == 8.0);  // needs the extra bit
  // Assignment into a narrow type applies its modes: 77/32 * -21/16 = -3.1582... into <6,3> (LSB 1/8).
  CHECK(fixed<6, 3, AP_TRN>(a * b).to_double() == -3.25);
  CHECK(fixed<6, 3, AP_RND>(a * b).to_double() == -3.125);
  CHECK(fixed<6, 2, AP_TRN, AP_SAT>(a * b).to_double() == -2.0);
  A acc(3.9);  // compound assignment keeps A's format: wraps past 3.96875
  acc += fixed<8, 3>(0.25);
  CHECK(acc.to_double() == 4.125 - 8);
  CHECK(a > b);
  CHECK(b < fixed<3, 3>(-1.0));
  CHECK(fixed<8, 3>(0.5) == fixed<4, 1>(0.5));
  CHECK(fixed<8, 3>(0.5) != fixed<8, 3>(0.53125));
  CHECK(fixed<8, 3>::from_raw(255).raw() == -1);
  CHECK(fixed<8, 3>(int{-3}).to_double() == -3.0);
}

TEST_CASE("fixed: conversion from double matches a floating-point reference over random formats and values") {
  std::mt19937_64 gen(26);
  std::uniform_int_distribution<int> width(1, 24), qd(0, 6), od(0, 3), coin(0, 1);
  std::uniform_real_distribution<double> unit(-1, 1);
  int checked = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    fixed_spec s;
    s.width = width(gen);
    s.integer = std::uniform_int_distribution<int>(-4, s.width + 4)(gen);
    s.q = static_cast<quant_mode>(qd(gen));
    s.o = static_cast<overflow_mode>(od(gen));
    s.is_signed = coin(gen) == 1;
    // Values around the format's range, some exactly on ties (a multiple of half an LSB).
    const double range = std::ldexp(1.0, s.integer);
    double x = unit(gen) * range * 1.5;
    if (coin(gen)) x = std::ldexp(std::round(std::ldexp(x, s.frac() + 1)), -(s.frac() + 1));
    const double got = raw_to_double(quantize_double(x, s), s);
    const double want = std::ldexp(reference_quantize(x, s), -s.frac());
    CHECK_MESSAGE(got == want, "x = ", x, " W = ", s.width, " I = ", s.integer, " q = ", int(s.q), " o = ", int(s.o),
                  " signed = ", s.is_signed);
    ++checked;
  }
  CHECK(checked == 20000);
}

TEST_CASE("fixed: narrowing a fixed value equals converting its exact double") {
  std::mt19937_64 gen(27);
  std::uniform_int_distribution<std::int64_t> raw(-(1LL << 20), (1LL << 20) - 1);
  for (int trial = 0; trial < 5000; ++trial) {
    const auto wide = fixed<21, 9>::from_raw(raw(gen));  // exact in a double
    CHECK(fixed<7, 3, AP_RND_CONV, AP_SAT>(wide).raw() ==
          quantize_double(wide.to_double(), fixed<7, 3, AP_RND_CONV, AP_SAT>::spec()));
    CHECK(fixed<9, 2, AP_RND_ZERO, AP_WRAP>(wide).raw() ==
          fixed<9, 2, AP_RND_ZERO, AP_WRAP>(wide.to_double()).raw());
  }
}

TEST_CASE("precision strings: hls4ml's spelling out, ap_fixed / ap_ufixed strings in, errors name the text") {
  CHECK(to_string(fixed<16, 6>::spec()) == "ap_fixed<16,6>");
  CHECK(to_string(fixed<18, 8, AP_RND>::spec()) == "ap_fixed<18,8,AP_RND>");
  CHECK(to_string(fixed<18, 8, AP_TRN, AP_SAT>::spec()) == "ap_fixed<18,8,AP_TRN,AP_SAT>");
  CHECK(to_string(ufixed<8, -2, AP_RND_CONV, AP_SAT_SYM>::spec()) == "ap_ufixed<8,-2,AP_RND_CONV,AP_SAT_SYM>");
  CHECK(parse_fixed_spec("ap_fixed<16,6>") == fixed<16, 6>::spec());
  CHECK(parse_fixed_spec(" ap_ufixed< 9, 3, AP_RND_ZERO >") == ufixed<9, 3, AP_RND_ZERO>::spec());
  CHECK(parse_fixed_spec("ap_fixed<32,-4,AP_RND_MIN_INF,AP_SAT_ZERO>") == fixed<32, -4, AP_RND_MIN_INF, AP_SAT_ZERO>::spec());
  for (int q = 0; q < 7; ++q)
    for (int o = 0; o < 4; ++o) {
      const fixed_spec s{12, 5, static_cast<quant_mode>(q), static_cast<overflow_mode>(o), (q + o) % 2 == 0};
      CHECK(parse_fixed_spec(to_string(s)) == s);
    }
  CHECK_THROWS_WITH_AS(parse_fixed_spec("ap_int<8>"), doctest::Contains("got 'ap_int<8>'"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<16>"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<16,6,AP_RND,AP_SAT,3>"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<16,6,AP_RND,AP_WRAP_SM>"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<0,0>"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<1x,6>"), hepgnn::error);
  CHECK_THROWS_AS(parse_fixed_spec("ap_fixed<16,6"), hepgnn::error);
}

}  // namespace hepgnn_test_fixed_point
