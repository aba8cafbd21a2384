// Dense layer forward and backward at the sizes hepgnn's models use (kernels of simd/gemm.hpp), with Eigen's GEMM
// of the same shape for comparison. Counters: GFLOP/s (2 N in out per forward; 4 N in out per backward: dW and
// dx) and rows/s.
#include <benchmark/benchmark.h>

#include <omp.h>

#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/mlp.hpp"

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

// The tracking embedding: mlp 6 -> 64 -> 64 -> 3 with tanh on 23000 hits; arg: OpenMP threads. Dominated by the
// activations, not the products (0.2 GFLOP).
void mlp_tanh_embedding(benchmark::State& s) {
  const long n = 23000;
  rng g(1);
  const mlp<float> net(g, {6, 64, 64, 3}, {activation_kind::tanh});
  const M x = M::Random(n, 6);
  M y;
  mlp<float>::cache c;
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(s.range(0)));
  for (auto _ : s) {
    net.infer(x, y, c);
    benchmark::DoNotOptimize(y.data());
  }
  omp_set_num_threads(threads_before);
  s.SetItemsProcessed(s.iterations() * n);
}

// One activation layer, forward or backward, on 23000 x 64 inputs in [-4, 4].
template <class P>
void activation_pass(benchmark::State& s, bool backward) {
  const M x = M::Random(23000, 64) * 4.0f, dy = M::Random(23000, 64);
  M y, dx;
  activation<float, P> layer;
  no_cache c;
  layer.infer(x, y, c);
  for (auto _ : s) {
    if (backward)
      layer.backward(x, y, dy, c, &dx);
    else
      layer.infer(x, y, c);
    benchmark::DoNotOptimize(backward ? dx.data() : y.data());
  }
  s.SetItemsProcessed(s.iterations() * x.size());
}
void activation_forward(benchmark::State& s) {
  detail::with_activation<float>(static_cast<activation_kind>(s.range(0)), [&](auto p) {
    activation_pass<decltype(p)>(s, false);
  });
}
void activation_backward(benchmark::State& s) {
  detail::with_activation<float>(static_cast<activation_kind>(s.range(0)), [&](auto p) {
    activation_pass<decltype(p)>(s, true);
  });
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({32768, 64, 64})->Args({32768, 128, 64})->Args({32768, 64, 128})->Args({32768, 128, 128});
  b->Args({32768, 128, 1})->Args({20000, 192, 64})->Args({30, 14, 32});
}
}  // namespace

BENCHMARK(dense_forward)->Apply(shapes);
BENCHMARK(dense_backward)->Apply(shapes);
BENCHMARK(eigen_gemm)->Apply(shapes);
BENCHMARK(mlp_tanh_embedding)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
// activation_kind: 3 elu, 4 gelu, 5 silu, 6 tanh, 7 sigmoid
BENCHMARK(activation_forward)->ArgName("kind")->DenseRange(3, 7)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(activation_backward)->ArgName("kind")->DenseRange(3, 7)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
