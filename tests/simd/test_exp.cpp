// simd/exp.hpp: the float exp and tanh kernels of the activations against std::exp / std::tanh, in ulps, over a
// dense sweep of their whole range, and on NaN, infinities, saturation and subnormal results.
#include "support/doctest.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hepgnn/simd/exp.hpp"

namespace hepgnn_test_exp {

using B = xsimd::batch<float, hepgnn::simd::native>;
constexpr std::size_t lanes = B::size;

// f applied to xs register by register
template <class F>
std::vector<float> exp_lanes(const std::vector<float>& xs, F f) {
  std::vector<float> out(xs.size());
  for (std::size_t i = 0; i + lanes <= xs.size(); i += lanes) f(B::load_unaligned(xs.data() + i)).store_unaligned(out.data() + i);
  return out;
}

// distance in units in the last place between two finite floats of the same sign (or both zero)
long exp_ulps(float a, float b) {
  const auto key = [](float v) {
    const auto u = std::bit_cast<std::int32_t>(v);
    return u < 0 ? static_cast<long>(std::numeric_limits<std::int32_t>::min()) - u : static_cast<long>(u);
  };
  return std::labs(key(a) - key(b));
}

std::vector<float> exp_sweep(float lo, float hi, float step) {
  std::vector<float> xs;
  for (float x = lo; x < hi; x += step) xs.push_back(x);
  while (xs.size() % lanes) xs.push_back(0.0f);
  return xs;
}

TEST_CASE("simd::exp on float registers: within 1 ulp of std::exp where the result is normal") {
  const auto xs = exp_sweep(-87.0f, 88.7f, 1.0f / 1024);
  const auto got = exp_lanes(xs, [](B v) { return hepgnn::simd::exp(v); });
  long worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, exp_ulps(got[i], std::exp(xs[i])));
  CHECK(worst <= 1);
  MESSAGE("exp: worst ", worst, " ulp over ", xs.size(), " arguments");
}

TEST_CASE("simd::exp: subnormal results, saturation, infinities and NaN as std::exp") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> xs = {-inf, inf, nan, -1e30f, 1e30f, 88.72f, 88.8f, 89.0f, 1000.0f, -103.0f, -104.0f, -200.0f,
                           0.0f, -0.0f, 1e-30f};
  while (xs.size() % lanes) xs.push_back(1.0f);
  const auto got = exp_lanes(xs, [](B v) { return hepgnn::simd::exp(v); });
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CAPTURE(xs[i]);
    const float want = std::exp(xs[i]);
    if (std::isnan(want)) {
      CHECK(std::isnan(got[i]));
    } else if (std::isinf(want) || want == 0.0f) {
      CHECK(got[i] == want);
    } else {
      CHECK(exp_ulps(got[i], want) <= 1);
    }
  }
  // subnormal results (x in [-103.9, -87.4]): the last bits are what a subnormal can hold
  const auto tail = exp_sweep(-103.9f, -87.4f, 1.0f / 256);
  const auto t = exp_lanes(tail, [](B v) { return hepgnn::simd::exp(v); });
  float worst = 0;
  for (std::size_t i = 0; i < tail.size(); ++i) worst = std::max(worst, std::abs(t[i] - std::exp(tail[i])));
  CHECK(worst <= 2 * std::numeric_limits<float>::denorm_min());
}

TEST_CASE("simd::tanh on float registers: within 2 ulp of std::tanh, odd, saturating, NaN kept") {
  const auto xs = exp_sweep(-12.0f, 12.0f, 1.0f / 4096);
  const auto got = exp_lanes(xs, [](B v) { return hepgnn::simd::tanh(v); });
  long worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, exp_ulps(got[i], std::tanh(xs[i])));
  CHECK(worst <= 2);
  MESSAGE("tanh: worst ", worst, " ulp over ", xs.size(), " arguments");
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> special = {-inf, inf, nan, 1e-30f, -1e-30f, 0.0f, -0.0f, 50.0f, -50.0f, 0.625f, -0.625f, 1e30f};
  while (special.size() % lanes) special.push_back(0.5f);
  const auto s = exp_lanes(special, [](B v) { return hepgnn::simd::tanh(v); });
  for (std::size_t i = 0; i < special.size(); ++i) {
    CAPTURE(special[i]);
    if (std::isnan(special[i])) CHECK(std::isnan(s[i]));
    else CHECK(exp_ulps(s[i], std::tanh(special[i])) <= 2);
  }
  CHECK(std::signbit(s[6]));  // tanh(-0) = -0
}

}  // namespace hepgnn_test_exp
