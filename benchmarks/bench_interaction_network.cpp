// interaction_network on the W3 graph (WORKLOADS.md: 20,000 nodes, 200,000 random edges, hidden 64,
// 4 shared iterations): inference (float, and bf16 products), and training forward + BCE + backward. Items are edges.
#include <benchmark/benchmark.h>

#include <vector>

#include "compare/rb.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/nn/interaction_network.hpp"

namespace {

struct w3 {
  hepgnn::matrix<float> x, labels;
  hepgnn::graph g;
  hepgnn::rng gen{1};
  hepgnn::interaction_network<float, 3, 64> net{gen, {}};
  explicit w3(hepgnn::index_t n = 20000, hepgnn::index_t ne = 200000) {
    x.resize(n, 3);
    for (long i = 0; i < n * 3; ++i) x.data()[i] = rb::u01(301, i);
    std::vector<hepgnn::index_t> src(ne), dst(ne);
    for (long e = 0; e < ne; ++e) {
      src[e] = static_cast<hepgnn::index_t>(rb::randint(302, e, n));
      dst[e] = static_cast<hepgnn::index_t>(rb::randint(303, e, n));
      if (dst[e] == src[e]) dst[e] = (dst[e] + 1) % n;
    }
    g = hepgnn::graph::from_edges(n, src, dst);
    const auto pos = hepgnn::graph::csr_position(n, dst);
    labels.resize(ne, 1);
    for (long e = 0; e < ne; ++e) labels(pos[e], 0) = rb::u01(304, e) < 0.5f ? 1.0f : 0.0f;
  }
};

void infer(benchmark::State& state, hepgnn::inference_precision p) {
  w3 w;
  decltype(w.net)::cache c;
  hepgnn::matrix<float> y;
  w.net.infer(w.x, w.g, y, c, p);  // warm-up: buffers reach their size (first-touch page faults are not the kernel)
  for (auto _ : state) {
    w.net.infer(w.x, w.g, y, c, p);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * w.g.num_edges());
}
void BM_interaction_network_infer(benchmark::State& state) { infer(state, hepgnn::inference_precision::f32); }
BENCHMARK(BM_interaction_network_infer)->Unit(benchmark::kMillisecond)->UseRealTime();
/// The products with bf16 operands (simd/gemm_bf16.hpp; emulated, hence slow, without AVX-512 BF16).
void BM_interaction_network_infer_bf16(benchmark::State& state) { infer(state, hepgnn::inference_precision::bf16); }
BENCHMARK(BM_interaction_network_infer_bf16)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_interaction_network_train(benchmark::State& state) {
  w3 w;
  decltype(w.net)::cache c;
  hepgnn::matrix<float> y, grad;
  w.net.forward(w.x, w.g, y, c);  // warm-up
  hepgnn::bce_with_logits(y, w.labels, {}, &grad);
  w.net.backward(w.x, w.g, y, grad, c, nullptr);
  for (auto _ : state) {
    hepgnn::zero_grad(w.net);
    w.net.forward(w.x, w.g, y, c);
    hepgnn::bce_with_logits(y, w.labels, {}, &grad);
    w.net.backward(w.x, w.g, y, grad, c, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * w.g.num_edges());
}
BENCHMARK(BM_interaction_network_train)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
