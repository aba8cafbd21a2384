// simd/gemm_bf16.hpp: bf16 rounding, the packed panel, and the bf16 product (AVX-512 BF16 kernel where the build
// has it, and the float emulation always) against a double product of the bf16-rounded operands, on sizes around
// the tile edges, with every epilogue the interaction network uses.
#include "support/doctest.hpp"

#include <cmath>
#include <limits>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/simd/gemm_bf16.hpp"

namespace hepgnn_test_gemm_bf16 {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

std::vector<float> random_values(long n, std::uint64_t seed) {
  rng g(seed);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<float>(g.uniform(-1, 1));
  return v;
}

/// bf16 rounding by its definition: the nearest of the two bf16 neighbours (computed in double), ties to the one
/// with an even last bit.
float round_bf16_reference(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const float lo = std::bit_cast<float>(u & 0xffff0000u);
  const float hi = std::bit_cast<float>((u & 0xffff0000u) + 0x10000u);
  const double dl = std::abs(double(v) - lo), dh = std::abs(double(hi) - v);
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return ((u >> 16) & 1u) ? hi : lo;
}

struct product_case {
  long M, N, K;
  bool bias, relu, acc, residual;
};

/// C after bf16_mm<Native> against the double product of the rounded operands; the only other error is the
/// float summation (K terms of magnitude <= 1).
template <bool Native>
void check_product(const product_case& pc) {
  const long M = pc.M, N = pc.N, K = pc.K;  // not a structured binding: clang 14's CAPTURE cannot take one
  const bool bias = pc.bias, relu = pc.relu, acc = pc.acc, residual = pc.residual;
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(bias);
  CAPTURE(relu);
  CAPTURE(acc);
  CAPTURE(residual);
  const long ldc = N + 3;  // a row stride wider than the row
  const auto A = random_values(M * (K + 1), 1 + M), B = random_values(K * N, 2 + N), b = random_values(N, 3);
  const auto C0 = random_values(M * ldc, 4);
  simd::bf16_panel panel;
  panel.pack(K, N, B.data(), N);
  std::vector<float> C = C0;
  simd::gemm_detail::epilogue<float> e;
  e.bias = bias ? b.data() : nullptr;
  e.relu = relu;
  e.residual = residual;
  simd::bf16_mm<Native>(M, N, K, A.data(), K + 1, panel, C.data(), ldc, acc, e);
  double worst = 0;
  for (long m = 0; m < M; ++m)
    for (long n = 0; n < ldc; ++n) {
      if (n >= N) {  // past the row: untouched
        CHECK(C[m * ldc + n] == C0[m * ldc + n]);
        continue;
      }
      double s = (bias ? b[n] : 0.0) + (acc ? C0[m * ldc + n] : 0.0);
      for (long k = 0; k < K; ++k)
        s += double(round_bf16_reference(A[m * (K + 1) + k])) * double(round_bf16_reference(B[k * N + n]));
      if (relu) s = std::max(s, 0.0);
      if (residual) s += C0[m * ldc + n];
      worst = std::max(worst, std::abs(C[m * ldc + n] - s));
    }
  CHECK(worst < 2e-5 * std::max(1.0, std::sqrt(double(K))));

  // A given in bf16 (rows of an even stride, pad zero) runs the same products: the same bits. The bf16 copy of
  // the result is C rounded, with the pad entry of an odd N zero; without keep_float only the copy is written.
  const long Kp = (K + 1) / 2 * 2 + 2, Np = (N + 1) / 2 * 2 + 2;
  std::vector<std::uint16_t> Ab(static_cast<std::size_t>(M * Kp), 0);
  for (long m = 0; m < M; ++m)
    for (long k = 0; k < K; ++k) Ab[m * Kp + k] = simd::to_bf16(A[m * (K + 1) + k]);
  for (const bool keep : {true, false}) {
    CAPTURE(keep);
    std::vector<float> C2 = C0;
    std::vector<std::uint16_t> out(static_cast<std::size_t>(M * Np), 0xffff);
    simd::bf16_mm<Native>(M, N, K, Ab.data(), Kp, panel, C2.data(), ldc, acc, e, {out.data(), Np, keep});
    bool same = true, copied = true;
    for (long m = 0; m < M; ++m) {
      for (long n = 0; n < N; ++n) {
        if (keep) same = same && C2[m * ldc + n] == C[m * ldc + n];
        copied = copied && out[m * Np + n] == simd::to_bf16(C[m * ldc + n]);
      }
      if (N % 2) copied = copied && out[m * Np + N] == 0;
      copied = copied && out[m * Np + Np - 1] == 0xffff;  // past the pad: untouched
    }
    CHECK(same);
    CHECK(copied);
  }
}

// Sizes around a register (16 floats, 32 bf16 per conversion), a pair of k, a panel of 64 columns and a 6-row tile.
constexpr long sizes[] = {1, 2, 7, 16, 17, 31, 32, 33, 48, 64, 65, 80, 130};

template <bool Native>
void check_all() {
  for (long M : {1L, 5L, 6L, 7L, 13L, 250L})
    for (long N : sizes)
      for (long K : sizes) {
        if ((M * 7 + K * 3 + N) % 3 != 0 && M > 7) continue;  // a third of the large cases keeps the test fast
        const bool residual = (M + N + K) % 4 == 0;
        check_product<Native>({M, N, K, (N + K) % 2 == 0, K % 3 != 0, !residual && M % 2 == 1, residual});
      }
}

}  // namespace

TEST_CASE("to_bf16 rounds to the nearest bf16, ties to even, and keeps infinities and NaN") {
  CHECK(simd::to_bf16(1.0f) == 0x3f80);
  CHECK(simd::to_bf16(-2.0f) == 0xc000);
  CHECK(simd::to_bf16(1.0f + 0x1p-7f) == 0x3f81);          // representable
  CHECK(simd::to_bf16(1.0f + 0x1p-8f) == 0x3f80);          // halfway: to the even 0x3f80
  CHECK(simd::to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);      // halfway: to the even 0x3f82
  CHECK(simd::to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);  // just above halfway
  CHECK(simd::to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(simd::to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds past the largest bf16
  CHECK(std::isnan(simd::from_bf16(simd::to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(simd::from_bf16(simd::to_bf16(std::bit_cast<float>(0x7f800001u)))));  // signalling NaN stays NaN
  for (float v : random_values(20000, 9)) {
    const float x = v * 1e3f;
    REQUIRE(simd::from_bf16(simd::to_bf16(x)) == round_bf16_reference(x));
  }
}

TEST_CASE("bf16_panel packs pairs of rows per column, zero-padded") {
  const long K = 5, N = 18;
  const auto B = random_values(K * N, 11);
  simd::bf16_panel p;
  p.pack(K, N, B.data(), N);
  CHECK(p.padded_cols == 32);
  CHECK(p.data.size() == std::size_t(3 * 32 * 2));
  for (long k = 0; k < K; ++k)
    for (long n = 0; n < N; ++n) CHECK(p.at(k, n) == round_bf16_reference(B[k * N + n]));
  for (long n = N; n < 32; ++n) CHECK(p.at(0, n) == 0.0f);
  CHECK(p.at(5, 0) == 0.0f);  // the odd K's missing partner row
}

TEST_CASE("bf16_mm (float emulation) matches the double product of the rounded operands") { check_all<false>(); }

TEST_CASE("bf16_mm (the build's kernel) matches the double product of the rounded operands") {
  INFO("AVX-512 BF16 kernel in this build: ", simd::has_bf16_dot);
  check_all<simd::has_bf16_dot>();
}

TEST_CASE("bf16_mm is within bf16 rounding of the float product") {
  // the rounding of the operands is the error: relative 2^-9 each, so about 2^-8 sqrt(K) for K unit terms
  const long M = 40, N = 64, K = 64;
  const auto A = random_values(M * K, 21), B = random_values(K * N, 22);
  simd::bf16_panel p;
  p.pack(K, N, B.data(), N);
  std::vector<float> C(M * N);
  simd::bf16_mm(M, N, K, A.data(), K, p, C.data(), N, false, {});
  double worst = 0, scale = 0;
  for (long m = 0; m < M; ++m)
    for (long n = 0; n < N; ++n) {
      double s = 0;
      for (long k = 0; k < K; ++k) s += double(A[m * K + k]) * B[k * N + n];
      worst = std::max(worst, std::abs(C[m * N + n] - s));
      scale = std::max(scale, std::abs(s));
    }
  CHECK(worst > 0);  // really rounded
  CHECK(worst < 8 * 0x1p-8 * std::sqrt(double(K)) / 3);
  CHECK(scale > 1);
}

TEST_CASE("bf16_mm rejects a panel of the wrong shape and unsupported epilogues") {
  const auto B = random_values(8 * 16, 31);
  simd::bf16_panel p;
  p.pack(8, 16, B.data(), 16);
  std::vector<float> A(4 * 9), C(4 * 16);
  CHECK_THROWS_WITH_AS(simd::bf16_mm(4, 16, 9, A.data(), 9, p, C.data(), 16, false, {}),
                       doctest::Contains("the panel is 8 x 16, expected 9 x 16"), error);
  simd::gemm_detail::epilogue<float> e;
  e.residual = true;
  CHECK_THROWS_WITH_AS(simd::bf16_mm(4, 16, 8, A.data(), 8, p, C.data(), 16, true, e),
                       doctest::Contains("not supported"), error);
  CHECK_THROWS_WITH_AS(p.pack(-1, 4, B.data(), 4), doctest::Contains("K and N must be >= 0"), error);
  std::vector<std::uint16_t> Ab(4 * 8), out(4 * 16);
  CHECK_THROWS_WITH_AS(simd::bf16_mm(4, 16, 8, Ab.data(), 7, p, C.data(), 16, false, {}),
                       doctest::Contains("A's row stride must be >= K rounded up to even (8), got 7"), error);
  CHECK_THROWS_WITH_AS(simd::bf16_mm(4, 16, 8, A.data(), 8, p, C.data(), 16, false, {}, {out.data(), 15}),
                       doctest::Contains("bf16 output's row stride must be >= N rounded up to even (16), got 15"),
                       error);
  CHECK_THROWS_WITH_AS(simd::bf16_mm(4, 16, 8, A.data(), 8, p, C.data(), 16, false, {}, {nullptr, 0, false}),
                       doctest::Contains("keep_float = false needs a bf16 output"), error);
}

}  // namespace hepgnn_test_gemm_bf16
