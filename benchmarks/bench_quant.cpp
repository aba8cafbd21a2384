// Fixed-point dense inference (quant/dense.hpp): the integer kernel (int64 lanes, formats at run time) against a
// scalar emulation loop over quant::fixed values in hls4ml's order (the way a C simulation of ap_fixed code runs).
// Both take pre-quantized inputs and weights and produce the same bits (tests/quant/test_dense.cpp).
// Arguments: batch, in, out. Counter: MAC/s (batch * in * out multiply-accumulates per iteration).
// Accumulators: ap_fixed<16,6> AP_TRN/AP_WRAP (hls4ml's default) and ap_fixed<20,8> AP_RND/AP_SAT.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "hepgnn/quant/dense.hpp"
#include "hepgnn/quant/fixed_point.hpp"

using namespace hepgnn::quant;

namespace {

struct bench_data {
  std::vector<double> w, b, x;
};

bench_data make_data(long n, long in, long out) {
  std::mt19937_64 gen(1);
  std::normal_distribution<double> d(0, 1);
  bench_data c;
  c.w.resize(in * out);
  c.b.resize(out);
  c.x.resize(n * in);
  for (auto& v : c.w) v = 0.3 * d(gen);
  for (auto& v : c.b) v = d(gen);
  for (auto& v : c.x) v = 2 * d(gen);
  return c;
}

void set_counters(benchmark::State& s, long n, long in, long out) {
  s.counters["MAC/s"] = benchmark::Counter(static_cast<double>(n * in * out), benchmark::Counter::kIsIterationInvariantRate);
}

template <class X, class Wt, class B, class A, class R>
void quant_dense_kernel(benchmark::State& s) {
  const long n = s.range(0), in = s.range(1), out = s.range(2);
  const auto c = make_data(n, in, out);
  const dense_precision p{X::spec(), Wt::spec(), B::spec(), A::spec(), R::spec()};
  const quantized_dense layer(c.w.data(), c.b.data(), static_cast<int>(in), static_cast<int>(out), p);
  std::vector<std::int32_t> x(n * in), y(n * out);
  std::vector<std::int64_t> acc(n * out);
  for (long e = 0; e < n * in; ++e) x[e] = static_cast<std::int32_t>(quantize_double(c.x[e], p.input));
  for (auto _ : s) {
    layer.forward_raw(x.data(), static_cast<int>(n), y.data(), acc.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(s, n, in, out);
}

template <class X, class Wt, class B, class A, class R>
void quant_dense_scalar(benchmark::State& s) {
  const long n = s.range(0), in = s.range(1), out = s.range(2);
  const auto c = make_data(n, in, out);
  std::vector<X> x(c.x.begin(), c.x.end());
  std::vector<Wt> w(c.w.begin(), c.w.end());  // [out, in]
  std::vector<A> b;
  for (double v : c.b) b.push_back(A(B(v)));
  std::vector<R> y(n * out);
  for (auto _ : s) {
    for (long r = 0; r < n; ++r)
      for (long o = 0; o < out; ++o) {
        A acc = b[o];
        for (long i = 0; i < in; ++i) acc = A(acc + A(x[r * in + i] * w[o * in + i]));
        y[r * out + o] = R(acc);
      }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(s, n, in, out);
}

using F16 = fixed<16, 6>;
using A20 = fixed<20, 8, AP_RND, AP_SAT>;
using R16 = fixed<16, 6, AP_RND, AP_SAT>;

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({256, 16, 64})->Args({256, 64, 64})->Args({1024, 128, 32})->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(quant_dense_kernel<F16, F16, F16, F16, F16>)->Apply(shapes);
BENCHMARK(quant_dense_scalar<F16, F16, F16, F16, F16>)->Apply(shapes);
BENCHMARK(quant_dense_kernel<F16, F16, F16, A20, R16>)->Apply(shapes);
BENCHMARK(quant_dense_scalar<F16, F16, F16, A20, R16>)->Apply(shapes);

BENCHMARK_MAIN();
