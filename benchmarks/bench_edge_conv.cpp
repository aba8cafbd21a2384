// Google Benchmark of the message-passing kernels: segment reductions, gather-reduce, EdgeConv inference and
// training step, GATv2 inference and training step, kNN graph rebuild (dynamic_edge_conv), global pooling. Sizes:
// the W2 graph shape (graphs of 64 nodes, k = 16) with a variable number of graphs; items = edges (nodes for
// pooling; GATv2 counts the self loop it adds to every node).
#include <benchmark/benchmark.h>

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/gatv2_conv.hpp"
#include "hepgnn/nn/pooling.hpp"

using namespace hepgnn;

namespace {

struct setup {
  batch b;
  graph g;
  matrix<float> x;
  explicit setup(index_t graphs, int features = 64) : b(batch::uniform(graphs, 64)) {
    rng gen(42);
    matrix<float> pts(b.num_nodes(), 2);
    for (long i = 0; i < pts.size(); ++i) pts.data()[i] = static_cast<float>(gen.uniform());
    knn_workspace<float> ws;
    build_knn_graph(pts, b, 16, false, g, ws);
    x.resize(b.num_nodes(), features);
    for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(gen.uniform(-1, 1));
  }
};

using net = sequential<float, dense<float, 128, 64>, relu<float>, dense<float, 64, 64>, relu<float>>;
net make_net() { return net{dense<float, 128, 64>(), relu<float>(), dense<float, 64, 64>(), relu<float>()}; }

void segment_reduce_max(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  matrix<float> m(s.g.num_edges(), 64), y;
  m.setRandom();
  std::vector<index_t> arg;
  for (auto _ : st) {
    segment_reduce(s.g, m, aggregation::max, y, &arg);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * s.g.num_edges());
}
BENCHMARK(segment_reduce_max)->Arg(64)->Arg(512)->Unit(benchmark::kMicrosecond);

void gather_reduce_mean(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  matrix<float> y;
  for (auto _ : st) {
    gather_reduce(s.g, s.x, aggregation::mean, y);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * s.g.num_edges());
}
BENCHMARK(gather_reduce_mean)->Arg(64)->Arg(512)->Unit(benchmark::kMicrosecond);

void edge_conv_infer(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  edge_conv<float, net> conv(make_net(), st.range(1) ? aggregation::max : aggregation::mean);
  edge_conv<float, net>::cache c;
  matrix<float> y;
  for (auto _ : st) {
    conv.infer(s.x, s.g, y, c);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * s.g.num_edges());
}
BENCHMARK(edge_conv_infer)->Args({64, 0})->Args({64, 1})->Args({512, 1})->Unit(benchmark::kMillisecond);

void edge_conv_train(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  edge_conv<float, net> conv(make_net(), aggregation::max);
  edge_conv<float, net>::cache c;
  matrix<float> y, dx;
  const matrix<float> dy = matrix<float>::Ones(s.x.rows(), 64);
  for (auto _ : st) {
    conv.forward(s.x, s.g, y, c);
    conv.backward(s.x, s.g, y, dy, c, &dx);
    benchmark::DoNotOptimize(dx.data());
  }
  st.SetItemsProcessed(st.iterations() * s.g.num_edges());
}
BENCHMARK(edge_conv_train)->Arg(64)->Unit(benchmark::kMillisecond);

using gat = gatv2_conv<float, 64, 16, 4>;  // 4 heads of 16 channels, concatenated: 64 -> 64 features

void gatv2_infer(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  rng gen(7);
  const gat conv(gen);
  gat::cache c;
  matrix<float> y;
  for (auto _ : st) {
    conv.infer(s.x, s.g, y, c);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * (s.g.num_edges() + s.g.num_nodes));
}
BENCHMARK(gatv2_infer)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);

void gatv2_train(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  rng gen(7);
  gat conv(gen);
  gat::cache c;
  matrix<float> y, dx;
  const matrix<float> dy = matrix<float>::Ones(s.x.rows(), 64);
  for (auto _ : st) {
    conv.forward(s.x, s.g, y, c);
    conv.backward(s.x, s.g, y, dy, c, &dx);
    benchmark::DoNotOptimize(dx.data());
  }
  st.SetItemsProcessed(st.iterations() * (s.g.num_edges() + s.g.num_nodes));
}
BENCHMARK(gatv2_train)->Arg(64)->Unit(benchmark::kMillisecond);

void knn_rebuild(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)), static_cast<int>(st.range(1)));
  graph g;
  knn_workspace<float> ws;
  for (auto _ : st) {
    build_knn_graph(s.x, s.b, 16, true, g, ws);
    benchmark::DoNotOptimize(g.sources.data());
  }
  st.SetItemsProcessed(st.iterations() * s.g.num_edges());
}
BENCHMARK(knn_rebuild)->Args({64, 2})->Args({64, 64})->Unit(benchmark::kMicrosecond);

void global_mean_pool(benchmark::State& st) {
  setup s(static_cast<index_t>(st.range(0)));
  matrix<float> y;
  for (auto _ : st) {
    global_pool(s.x, s.b, aggregation::mean, y);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * s.x.rows());
}
BENCHMARK(global_mean_pool)->Arg(512)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
