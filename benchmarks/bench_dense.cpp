// Dense layer forward and backward at the sizes hepgnn's models use (kernels of simd/gemm.hpp), with Eigen's GEMM
// of the same shape for comparison. Counters: GFLOP/s (2 N in out per forward; 4 N in out per backward: dW and
// dx) and rows/s.
#include <benchmark/benchmark.h>

#include "hepgnn/nn/dense.hpp"

using namespace hepgnn;
using M = matrix<float>;

namespace {
void set_counters(benchmark::State& s, double flops_per_iter, long rows) {
  s.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
  s.counters["GFLOP/s"].value /= 1e9;
  s.SetItemsProcessed(s.iterations() * rows);
}

void dense_forward(benchmark::State& s) {
  const long n = s.range(0), in = s.range(1), out = s.range(2);
  rng g(1);
  dense<float> d(g, static_cast<int>(in), static_cast<int>(out));
  const M x = M::Random(n, in);
  M y(n, out);
  no_cache c;
  for (auto _ : s) {
    d.infer(x, y, c);
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(s, 2.0 * n * in * out, n);
}

void dense_backward(benchmark::State& s) {
  const long n = s.range(0), in = s.range(1), out = s.range(2);
  rng g(1);
  dense<float> d(g, static_cast<int>(in), static_cast<int>(out));
  const M x = M::Random(n, in), dy = M::Random(n, out);
  M y(n, out), dx(n, in);
  no_cache c;
  for (auto _ : s) {
    d.backward(x, y, dy, c, &dx);
    benchmark::DoNotOptimize(dx.data());
  }
  set_counters(s, 4.0 * n * in * out, n);
}

void eigen_gemm(benchmark::State& s) {  // the same x * W^T product in Eigen
  const long n = s.range(0), in = s.range(1), out = s.range(2);
  const M x = M::Random(n, in), w = M::Random(out, in);
  M y(n, out);
  for (auto _ : s) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(s, 2.0 * n * in * out, n);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({32768, 64, 64})->Args({32768, 128, 64})->Args({32768, 64, 128})->Args({32768, 128, 128});
  b->Args({32768, 128, 1})->Args({20000, 192, 64})->Args({30, 14, 32});
}
}  // namespace

BENCHMARK(dense_forward)->Apply(shapes);
BENCHMARK(dense_backward)->Apply(shapes);
BENCHMARK(eigen_gemm)->Apply(shapes);
BENCHMARK_MAIN();
