// quant::quantized_dense and relu_raw: the integer kernel against the fixed<> scalar applied element by element in
// hls4ml's order (product cast to accum_t, bias cast to accum_t, acc += product, result cast to res_t).
#include "support/doctest.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "hepgnn/quant/dense.hpp"
#include "hepgnn/quant/fixed_point.hpp"

namespace hepgnn_test_quant_dense {

using namespace hepgnn::quant;

struct dense_case {
  int in, out, batch;
  std::vector<double> w, b, x;
};

dense_case make_case(int in, int out, int batch, double scale, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> n(0, 1);
  dense_case c{in, out, batch, {}, {}, {}};
  c.w.resize(static_cast<std::size_t>(in) * out);
  c.b.resize(out);
  c.x.resize(static_cast<std::size_t>(batch) * in);
  for (auto& v : c.w) v = 0.7 * n(gen);
  for (auto& v : c.b) v = n(gen);
  for (auto& v : c.x) v = scale * n(gen);
  return c;
}

// The scalar emulation: compile-time formats, one element at a time.
template <class X, class Wt, class B, class A, class R>
std::vector<double> scalar_dense(const dense_case& c) {
  std::vector<double> y(static_cast<std::size_t>(c.batch) * c.out);
  for (int s = 0; s < c.batch; ++s)
    for (int o = 0; o < c.out; ++o) {
      A acc = A(B(c.b[o]));
      for (int i = 0; i < c.in; ++i) {
        const A prod = A(X(c.x[s * c.in + i]) * Wt(c.w[o * c.in + i]));
        acc = A(acc + prod);
      }
      y[s * c.out + o] = R(acc).to_double();
    }
  return y;
}

template <class X, class Wt, class B, class A, class R>
void check_against_scalar(const dense_case& c) {
  const dense_precision p{X::spec(), Wt::spec(), B::spec(), A::spec(), R::spec()};
  const quantized_dense layer(c.w.data(), c.b.data(), c.in, c.out, p);
  hepgnn::matrix<double> x(c.batch, c.in), y;
  for (int e = 0; e < c.batch * c.in; ++e) x.data()[e] = c.x[e];
  layer.forward(x, y);
  const auto want = scalar_dense<X, Wt, B, A, R>(c);
  int mismatches = 0, nonzero = 0;
  for (int e = 0; e < c.batch * c.out; ++e) {
    mismatches += y.data()[e] != want[e];
    nonzero += want[e] != 0;
  }
  CHECK(mismatches == 0);
  CHECK(nonzero > c.batch * c.out / 2);  // the case exercises values, not a layer of zeros
}

TEST_CASE("quantized_dense: hls4ml's default ap_fixed<16,6> everywhere equals the scalar emulation") {
  using F = fixed<16, 6>;
  check_against_scalar<F, F, F, F, F>(make_case(37, 19, 9, 2.0, 1));
}

TEST_CASE("quantized_dense: each accumulator quantization and overflow mode equals the scalar emulation") {
  using X = fixed<12, 4>;
  using Wt = fixed<8, 1, AP_RND_CONV>;
  using B = fixed<10, 3>;
  const auto c = make_case(64, 11, 7, 4.0, 2);  // large inputs: narrow accumulators overflow
  check_against_scalar<X, Wt, B, fixed<12, 5, AP_TRN, AP_WRAP>, fixed<8, 4, AP_RND, AP_SAT>>(c);
  check_against_scalar<X, Wt, B, fixed<12, 5, AP_RND, AP_SAT>, fixed<8, 4>>(c);
  check_against_scalar<X, Wt, B, fixed<12, 5, AP_RND_CONV, AP_SAT_SYM>, fixed<9, 5, AP_RND_ZERO, AP_SAT_ZERO>>(c);
  check_against_scalar<X, Wt, B, fixed<13, 6, AP_TRN_ZERO, AP_SAT_ZERO>, fixed<8, 3, AP_RND_INF, AP_SAT>>(c);
  check_against_scalar<X, Wt, B, fixed<14, 6, AP_RND_ZERO, AP_WRAP>, fixed<8, 3, AP_RND_MIN_INF, AP_SAT>>(c);
  check_against_scalar<X, Wt, B, fixed<14, 6, AP_RND_MIN_INF, AP_SAT>, fixed<16, 6>>(c);
  check_against_scalar<X, Wt, B, fixed<14, 6, AP_RND_INF, AP_WRAP>, fixed<16, 6>>(c);
  // an accumulator with more fractional bits than the products (left shift), and 32-bit formats
  check_against_scalar<fixed<6, 3>, fixed<6, 1>, B, fixed<20, 8>, fixed<10, 5>>(c);
  check_against_scalar<fixed<32, 12>, fixed<32, 4, AP_RND>, fixed<32, 8>, fixed<32, 16, AP_RND, AP_SAT>, fixed<24, 12>>(
      c);
  check_against_scalar<ufixed<10, 4>, Wt, B, fixed<18, 8>, ufixed<10, 4, AP_RND, AP_SAT>>(make_case(20, 6, 5, 1.0, 3));
}

TEST_CASE("quantized_dense: weights, biases and errors") {
  const auto c = make_case(5, 3, 2, 1.0, 4);
  dense_precision p;
  p.weight = {8, 2, AP_RND};
  p.bias = {6, 3};
  p.accum = {20, 10};
  const quantized_dense layer(c.w.data(), c.b.data(), 5, 3, p);
  CHECK(layer.weight_raw(2, 4) == fixed<8, 2, AP_RND>(c.w[2 * 5 + 4]).raw());
  CHECK(layer.bias_accum_raw(1) == fixed<20, 10>(fixed<6, 3>(c.b[1])).raw());
  const quantized_dense no_bias(c.w.data(), nullptr, 5, 3, p);
  CHECK(no_bias.bias_accum_raw(0) == 0);
  hepgnn::rng gen(5);
  hepgnn::dense<float> d(gen, 5, 3);
  const auto from = quantized_dense::from(d, p);
  CHECK(from.weight_raw(1, 2) == fixed<8, 2, AP_RND>(d.weight()(1, 2)).raw());
  CHECK(from.in_features() == 5);
  dense_precision bad = p;
  bad.accum.width = 33;
  CHECK_THROWS_WITH_AS(quantized_dense(c.w.data(), c.b.data(), 5, 3, bad),
                       doctest::Contains("precision.accum.width must be in [1, 32], got 33"), hepgnn::error);
  bad = p;
  bad.weight.integer = 9;
  CHECK_THROWS_WITH_AS(quantized_dense(c.w.data(), c.b.data(), 5, 3, bad), doctest::Contains("precision.weight.integer"),
                       hepgnn::error);
  hepgnn::matrix<double> x(2, 4), y;
  CHECK_THROWS_AS(layer.forward(x, y), hepgnn::error);
}

TEST_CASE("relu_raw: hls4ml's relu (x > 0 ? (res_t) x : 0) into the same and into narrower formats") {
  std::mt19937_64 gen(6);
  std::uniform_int_distribution<std::int32_t> raw(-(1 << 15), (1 << 15) - 1);
  std::vector<std::int32_t> x(500), y(500), z(500);
  for (auto& v : x) v = raw(gen);
  relu_raw(x.data(), 500, fixed<16, 6>::spec(), fixed<16, 6>::spec(), y.data());
  relu_raw(x.data(), 500, fixed<16, 6>::spec(), ufixed<8, 3, AP_RND, AP_SAT>::spec(), z.data());
  int positive = 0;
  for (int e = 0; e < 500; ++e) {
    const auto v = fixed<16, 6>::from_raw(x[e]);
    CHECK(y[e] == (x[e] > 0 ? x[e] : 0));
    CHECK(z[e] == (x[e] > 0 ? ufixed<8, 3, AP_RND, AP_SAT>(v).raw() : 0));
    positive += x[e] > 0;
  }
  CHECK(positive > 100);
}

}  // namespace hepgnn_test_quant_dense
