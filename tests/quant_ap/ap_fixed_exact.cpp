// Bit-exactness of hepgnn::quant against Xilinx's ap_fixed (headers from hls4ml's PyPI wheel, installed by
// scripts/setup_ap_types.sh; built only when HEPGNN_AP_TYPES_DIR holds ap_fixed.h). Compares, for every operation
// the quantized layers use: conversion from double, assignment of a wider value into a narrower format (each
// quantization and overflow mode, signed and unsigned), +, -, * (values and result widths), comparisons, and the
// hls4ml dense recipe. Exhaustive over small formats (W <= 6), random over large ones (up to W = 32).
// Not a doctest program: it is compiled alone with the vendor headers (their warnings are not ours).
#include <ap_fixed.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "hepgnn/quant/dense.hpp"
#include "hepgnn/quant/fixed_point.hpp"
#include "hepgnn/quant/integer_kernels.hpp"

namespace hq = hepgnn::quant;

namespace {

long g_checks = 0, g_failures = 0;
char g_context[160] = "";

void expect(bool ok, const char* what, double a, double b, double x = 0) {
  ++g_checks;
  static char last[160] = "";
  if (!ok && ++g_failures && std::strcmp(last, g_context) != 0 && g_failures < 100000) {
    std::strcpy(last, g_context);
    std::printf("MISMATCH %s [%s]: hepgnn %.17g, ap_fixed %.17g (input %.17g)\n", what, g_context, a, b, x);
  }
}

constexpr ap_q_mode to_ap(hq::quant_mode q) {
  switch (q) {
    case hq::quant_mode::trn: return AP_TRN;
    case hq::quant_mode::trn_zero: return AP_TRN_ZERO;
    case hq::quant_mode::rnd: return AP_RND;
    case hq::quant_mode::rnd_zero: return AP_RND_ZERO;
    case hq::quant_mode::rnd_min_inf: return AP_RND_MIN_INF;
    case hq::quant_mode::rnd_inf: return AP_RND_INF;
    case hq::quant_mode::rnd_conv: return AP_RND_CONV;
  }
  return AP_TRN;
}
constexpr ap_o_mode to_ap(hq::overflow_mode o) {
  switch (o) {
    case hq::overflow_mode::wrap: return AP_WRAP;
    case hq::overflow_mode::sat: return AP_SAT;
    case hq::overflow_mode::sat_zero: return AP_SAT_ZERO;
    case hq::overflow_mode::sat_sym: return AP_SAT_SYM;
  }
  return AP_WRAP;
}

template <int W, int I, bool S, int Qi, int Oi>
struct fmt {
  static constexpr hq::quant_mode q = static_cast<hq::quant_mode>(Qi);
  static constexpr hq::overflow_mode o = static_cast<hq::overflow_mode>(Oi);
  using mine = hq::fixed<W, I, q, o, S>;
  using ap = std::conditional_t<S, ap_fixed<W, I, to_ap(q), to_ap(o)>, ap_ufixed<W, I, to_ap(q), to_ap(o)>>;
};

// Values of a source format (every pattern when small), as exact doubles.
template <int W, int I, bool S>
std::vector<double> source_values(std::mt19937_64& gen, int random_count) {
  std::vector<double> v;
  using M = hq::fixed<W, I, hq::quant_mode::trn, hq::overflow_mode::wrap, S>;
  if (W <= 12) {
    for (std::int64_t r = 0; r < (std::int64_t(1) << W); ++r) v.push_back(M::from_raw(r).to_double());
  } else {
    std::uniform_int_distribution<std::uint64_t> bits;
    for (int k = 0; k < random_count; ++k) v.push_back(M::from_raw(static_cast<std::int64_t>(bits(gen))).to_double());
  }
  return v;
}

// Conversion from double and assignment from a wider source, into target format T.
template <class T, int WS, int IS, bool SS>
void check_assign(const std::vector<double>& src, const std::vector<double>& doubles) {
  using MS = hq::fixed<WS, IS, hq::quant_mode::trn, hq::overflow_mode::wrap, SS>;
  using AS = std::conditional_t<SS, ap_fixed<WS, IS>, ap_ufixed<WS, IS>>;
  std::snprintf(g_context, sizeof g_context, "target W=%d I=%d signed=%d q=%d o=%d, source W=%d I=%d signed=%d",
                T::mine::width, T::mine::integer, int(T::mine::is_signed), int(T::q), int(T::o), WS, IS, int(SS));
  for (double x : src) {
    const MS ms(x);
    const AS as(x);  // exact: x is a value of the source format
    const typename T::mine m(ms);
    typename T::ap a;
    a = as;
    expect(m.to_double() == a.to_double(), "assign", m.to_double(), a.to_double(), x);
  }
  for (double x : doubles) {
    const typename T::mine m(x);
    const typename T::ap a(x);
    expect(m.to_double() == a.to_double(), "from double", m.to_double(), a.to_double(), x);
  }
}

template <int W, int I, bool S, int WS, int IS, bool SS, int... Qs, int... Os>
void check_all_modes(const std::vector<double>& src, const std::vector<double>& doubles,
                     std::integer_sequence<int, Qs...>, std::integer_sequence<int, Os...>) {
  auto one_q = [&]<int Qi>() { (check_assign<fmt<W, I, S, Qi, Os>, WS, IS, SS>(src, doubles), ...); };
  (one_q.template operator()<Qs>(), ...);
}

using all_q = std::make_integer_sequence<int, 7>;
using all_o = std::make_integer_sequence<int, 4>;

// Doubles around a format's range: a grid of half-LSB steps (ties) and random values.
std::vector<double> doubles_for(int w, int i, std::mt19937_64& gen, int random_count) {
  std::vector<double> v;
  const int f = w - i;
  const double range = std::ldexp(1.0, i + 1);
  for (double x = -range; x <= range && v.size() < 4096; x += std::ldexp(1.0, -f - 2)) v.push_back(x);
  std::uniform_real_distribution<double> u(-range, range);
  for (int k = 0; k < random_count; ++k) v.push_back(u(gen));
  v.push_back(1e-300);
  v.push_back(-1e-300);
  v.push_back(1e300);
  v.push_back(-1e300);
  return v;
}

template <int W, int I, bool S>
void check_target(std::mt19937_64& gen) {
  const auto src = source_values<10, 5, true>(gen, 0);  // all 1024 patterns of ap_fixed<10,5>
  const auto usrc = source_values<9, 4, false>(gen, 0);
  const auto d = doubles_for(W, I, gen, 300);
  check_all_modes<W, I, S, 10, 5, true>(src, d, all_q{}, all_o{});
  check_all_modes<W, I, S, 9, 4, false>(usrc, {}, all_q{}, all_o{});
}

// +, -, *, comparisons: values and result widths, every pair of patterns of two small formats.
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
void check_arith() {
  std::snprintf(g_context, sizeof g_context, "arith <%d,%d,%d> <%d,%d,%d>", W1, I1, int(S1), W2, I2, int(S2));
  using M1 = hq::fixed<W1, I1, hq::quant_mode::trn, hq::overflow_mode::wrap, S1>;
  using M2 = hq::fixed<W2, I2, hq::quant_mode::trn, hq::overflow_mode::wrap, S2>;
  using A1 = std::conditional_t<S1, ap_fixed<W1, I1>, ap_ufixed<W1, I1>>;
  using A2 = std::conditional_t<S2, ap_fixed<W2, I2>, ap_ufixed<W2, I2>>;
  static_assert(decltype(M1() * M2())::width == decltype(A1() * A2())::width);
  static_assert(decltype(M1() * M2())::integer == decltype(A1() * A2())::iwidth);
  static_assert(decltype(M1() + M2())::width == decltype(A1() + A2())::width);
  static_assert(decltype(M1() + M2())::integer == decltype(A1() + A2())::iwidth);
  static_assert(decltype(M1() - M2())::width == decltype(A1() - A2())::width);
  static_assert(decltype(M1() - M2())::integer == decltype(A1() - A2())::iwidth);
  for (std::int64_t r1 = 0; r1 < (1 << W1); ++r1)
    for (std::int64_t r2 = 0; r2 < (1 << W2); ++r2) {
      const M1 m1 = M1::from_raw(r1);
      const M2 m2 = M2::from_raw(r2);
      const A1 a1(m1.to_double());
      const A2 a2(m2.to_double());
      expect((m1 * m2).to_double() == (a1 * a2).to_double(), "*", (m1 * m2).to_double(), (a1 * a2).to_double());
      expect((m1 + m2).to_double() == (a1 + a2).to_double(), "+", (m1 + m2).to_double(), (a1 + a2).to_double());
      expect((m1 - m2).to_double() == (a1 - a2).to_double(), "-", (m1 - m2).to_double(), (a1 - a2).to_double());
      expect((m1 < m2) == (a1 < a2) && (m1 == m2) == (a1 == a2) && (m1 > m2) == (a1 > a2), "compare", m1.to_double(),
             m2.to_double());
      // compound accumulation into the first format (hls4ml's acc += mult), each overflow mode
      hq::fixed<W1, I1, hq::quant_mode::rnd, hq::overflow_mode::sat, S1> ms(m1);
      ap_fixed<W1, I1, AP_RND, AP_SAT> as(a1);
      if (S1) {
        ms += m2;
        as += a2;
        expect(ms.to_double() == as.to_double(), "+= sat", ms.to_double(), as.to_double());
      }
      M1 mw(m1);
      A1 aw(a1);
      mw += m2;
      aw += a2;
      expect(mw.to_double() == aw.to_double(), "+= wrap", mw.to_double(), aw.to_double());
    }
}

// Large formats (W up to 32): random sources into each target and mode, and products of <16,6> into accumulators.
template <int W, int I, bool S>
void check_large(std::mt19937_64& gen) {
  const auto src = source_values<32, 12, true>(gen, 3000);
  const auto d = doubles_for(W, I, gen, 3000);
  check_all_modes<W, I, S, 32, 12, true>(src, d, all_q{}, all_o{});
}

template <int Qi, int Oi>
void check_products_into_accumulator(std::mt19937_64& gen) {
  using M = hq::fixed<16, 6>;
  using A = ap_fixed<16, 6>;
  using T = fmt<20, 10, true, Qi, Oi>;
  std::uniform_int_distribution<std::int64_t> raw(-(1 << 15), (1 << 15) - 1);
  for (int k = 0; k < 3000; ++k) {
    const M x = M::from_raw(raw(gen)), w = M::from_raw(raw(gen));
    const A ax(x.to_double()), aw(w.to_double());
    const typename T::mine m(x * w);
    const typename T::ap a = ax * aw;
    expect(m.to_double() == a.to_double(), "product into accumulator", m.to_double(), a.to_double());
  }
}

// hls4ml's dense (latency): each product cast to accum_t, bias cast to accum_t, acc += product in input order,
// result cast to res_t; against hepgnn's integer kernel with the same formats given at run time.
template <int Qa, int Oa, int Qr, int Or>
void check_dense(std::mt19937_64& gen) {
  using data_t = ap_fixed<12, 4>;
  using weight_t = ap_fixed<8, 2, AP_RND>;
  using bias_t = ap_fixed<10, 3>;
  using accum_t = typename fmt<14, 6, true, Qa, Oa>::ap;
  using res_t = typename fmt<9, 4, true, Qr, Or>::ap;
  const int n_in = 13, n_out = 7, batch = 5;
  std::snprintf(g_context, sizeof g_context, "dense accum q=%d o=%d result q=%d o=%d", Qa, Oa, Qr, Or);
  hq::dense_precision p;
  p.input = {12, 4};
  p.weight = {8, 2, hq::quant_mode::rnd};
  p.bias = {10, 3};
  p.accum = {14, 6, static_cast<hq::quant_mode>(Qa), static_cast<hq::overflow_mode>(Oa)};
  p.result = {9, 4, static_cast<hq::quant_mode>(Qr), static_cast<hq::overflow_mode>(Or)};
  std::normal_distribution<double> n(0, 1.5);
  std::vector<double> w(n_out * n_in), b(n_out), x(batch * n_in);
  for (auto& v : w) v = n(gen);
  for (auto& v : b) v = n(gen);
  for (auto& v : x) v = 3 * n(gen);
  const hq::quantized_dense layer(w.data(), b.data(), n_in, n_out, p);  // weights [out, in] as hepgnn::dense
  std::vector<std::int32_t> xr(x.size()), yr(batch * n_out);
  for (std::size_t k = 0; k < x.size(); ++k) xr[k] = static_cast<std::int32_t>(hq::quantize_double(x[k], p.input));
  layer.forward_raw(xr.data(), batch, yr.data());
  for (int s = 0; s < batch; ++s)
    for (int o = 0; o < n_out; ++o) {
      accum_t acc = (accum_t)bias_t(b[o]);
      for (int i = 0; i < n_in; ++i) {
        const accum_t prod = data_t(x[s * n_in + i]) * weight_t(w[o * n_in + i]);
        acc += prod;
      }
      const res_t r = acc;
      const double mine = hq::raw_to_double(yr[s * n_out + o], p.result);
      expect(mine == r.to_double(), "dense", mine, r.to_double());
    }
}

// The aggregation rule of fixed_interaction_network (quant/interaction_network.hpp): acc = 0 in accum_t, then
// acc += (accum_t) term for each term of a segment in order, result (res_t) acc; against segment_sum_accumulate
// (terms ap_fixed<9,4>: casts into accumulators with fewer (rounding) and more (left shift) fractional bits).
template <int Wa, int Ia, int Qa, int Oa, int Qr, int Or>
void check_segment_sum(std::mt19937_64& gen) {
  using term_t = ap_fixed<9, 4>;
  using accum_t = typename fmt<Wa, Ia, true, Qa, Oa>::ap;
  using res_t = typename fmt<8, 5, true, Qr, Or>::ap;
  std::snprintf(g_context, sizeof g_context, "segment sum accum <%d,%d> q=%d o=%d result q=%d o=%d", Wa, Ia, Qa, Oa, Qr, Or);
  const hq::fixed_spec term{9, 4}, accum{Wa, Ia, static_cast<hq::quant_mode>(Qa), static_cast<hq::overflow_mode>(Oa)};
  const hq::fixed_spec result{8, 5, static_cast<hq::quant_mode>(Qr), static_cast<hq::overflow_mode>(Or)};
  const int cols = 3;
  std::vector<int> offsets{0};
  for (int s = 0; s < 40; ++s) offsets.push_back(offsets.back() + static_cast<int>(gen() % 20));
  std::vector<std::int32_t> m(static_cast<std::size_t>(offsets.back()) * cols);
  for (auto& v : m) v = static_cast<std::int32_t>(gen() % 512) - 256;  // every pattern of ap_fixed<9,4>
  std::vector<std::int64_t> acc(static_cast<std::size_t>(offsets.size() - 1) * cols);
  const hq::lane_range range(accum);
  hq::with_modes(accum.q, accum.o, [&]<hq::quant_mode Q, hq::overflow_mode O>() {
    hq::segment_sum_accumulate<Q, O>(m.data(), cols, offsets.data(), static_cast<long>(offsets.size() - 1),
                                     term.frac() - accum.frac(), range, acc.data());
  });
  for (std::size_t s = 0; s + 1 < offsets.size(); ++s)
    for (int j = 0; j < cols; ++j) {
      accum_t a = 0;
      for (int r = offsets[s]; r < offsets[s + 1]; ++r) a += (accum_t)term_t(hq::raw_to_double(m[r * cols + j], term));
      const res_t y = a;
      const double mine = hq::raw_to_double(hq::quantize_raw(acc[s * cols + j], accum.frac(), result), result);
      expect(mine == y.to_double(), "segment sum", mine, y.to_double());
    }
}

}  // namespace

int main() {
  std::mt19937_64 gen(2026);
  // Every small format W <= 6 with I from below 0 to above W, signed and unsigned, each Q and O.
  [&]<int... Ws>(std::integer_sequence<int, Ws...>) {
    auto one_w = [&]<int W>() {
      check_target<W, -1, true>(gen);
      check_target<W, 1, true>(gen);
      check_target<W, W, true>(gen);
      check_target<W, W + 1, true>(gen);
      check_target<W, 2, false>(gen);
      check_target<W, W, false>(gen);
    };
    (one_w.template operator()<Ws + 1>(), ...);
  }(std::make_integer_sequence<int, 6>{});
  check_arith<5, 2, true, 4, 3, true>();
  check_arith<4, 1, true, 5, 5, false>();
  check_arith<5, 3, false, 3, -1, true>();
  check_arith<4, 4, false, 4, 2, false>();
  check_large<16, 6, true>(gen);
  check_large<18, 8, true>(gen);
  check_large<24, 3, true>(gen);
  check_large<32, 16, true>(gen);
  check_large<31, 31, true>(gen);
  check_large<20, 10, false>(gen);
  [&]<int... Qs>(std::integer_sequence<int, Qs...>) {
    ((check_products_into_accumulator<Qs, 0>(gen), check_products_into_accumulator<Qs, 1>(gen),
      check_products_into_accumulator<Qs, 3>(gen)),
     ...);
  }(all_q{});
  check_dense<0, 0, 0, 0>(gen);
  check_dense<2, 1, 6, 1>(gen);
  check_dense<6, 3, 2, 2>(gen);
  check_dense<1, 2, 5, 0>(gen);
  check_segment_sum<12, 6, 0, 0, 0, 0>(gen);  // hls4ml's defaults, wrapping
  check_segment_sum<8, 5, 2, 1, 6, 1>(gen);   // rounding terms, saturating
  check_segment_sum<10, 4, 6, 3, 2, 2>(gen);  // terms shifted left, AP_SAT_SYM
  check_segment_sum<7, 4, 1, 0, 5, 0>(gen);   // wrapping narrow sums
  std::printf("ap_fixed bit-exactness: %ld checks, %ld mismatches\n", g_checks, g_failures);
  return g_failures == 0 && g_checks > 0 ? 0 : 1;
}
