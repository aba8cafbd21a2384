// Graph builders on the W1 workloads of ../shared/benchmarks/WORKLOADS.md (items/s = points), the LSH
// workload lsh_100k_16d of issue 3 (N = 100000, d = 16, k = 16, bins of 128, seed 105; recall@16 as a counter,
// measured on 1000 sampled queries against an exact brute force; uniform and clustered points) and the exact kNN
// of the same points (exact_100k_16d).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "compare/rb.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/graph/lsh.hpp"
#include "hepgnn/graph/radius.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace {

hepgnn::matrix<float> points(hepgnn::index_t n, int d, std::uint64_t seed) {
  hepgnn::matrix<float> x(n, d);
  for (hepgnn::index_t i = 0; i < n; ++i)
    for (int c = 0; c < d; ++c) x(i, c) = rb::u01(seed, static_cast<std::uint64_t>(i) * d + c);
  return x;
}

void knn_workload(benchmark::State& state, int graphs, int per_graph, int d, std::uint64_t seed) {
  const auto x = points(graphs * per_graph, d, seed);
  const auto b = hepgnn::batch::uniform(graphs, per_graph);
  for (auto _ : state) {
    auto nl = hepgnn::knn(x, 16, b);
    benchmark::DoNotOptimize(nl.indices.data());
  }
  state.SetItemsProcessed(state.iterations() * graphs * per_graph);
}

void W1a_knn_10k_3d(benchmark::State& s) { knn_workload(s, 1, 10000, 3, 101); }
void W1b_knn_100k_3d(benchmark::State& s) { knn_workload(s, 1, 100000, 3, 102); }
void W1c_knn_10k_16d(benchmark::State& s) { knn_workload(s, 1, 10000, 16, 103); }
void W1d_knn_512x64_2d(benchmark::State& s) { knn_workload(s, 512, 64, 2, 104); }
BENCHMARK(W1a_knn_10k_3d)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W1b_knn_100k_3d)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W1c_knn_10k_16d)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W1d_knn_512x64_2d)->Unit(benchmark::kMillisecond)->UseRealTime();

// lsh_100k_16d inputs: uniform (the rb rule, seed 105) or clustered (200 Gaussian blobs of width 0.02 around
// uniform centres, hepgnn::rng seed 105), the MLPF-like case where neighbours are close.
hepgnn::matrix<float> lsh_points(bool clustered) {
  const hepgnn::index_t n = 100000;
  const int d = 16;
  if (!clustered) return points(n, d, 105);
  hepgnn::rng g(105);
  const auto centres = points(200, d, 106);
  hepgnn::matrix<float> x(n, d);
  for (hepgnn::index_t i = 0; i < n; ++i) {
    const auto c = static_cast<hepgnn::index_t>(g.below(200));
    for (int t = 0; t < d; ++t) x(i, t) = centres(c, t) + 0.02f * static_cast<float>(g.normal());
  }
  return x;
}

void lsh_100k_16d(benchmark::State& state) {
  const hepgnn::index_t n = 100000;
  const int d = 16, k = 16;
  const auto x = lsh_points(state.range(2) != 0);
  const auto b = hepgnn::batch::single(n);
  hepgnn::lsh_options opt;
  opt.bin_size = 128;
  opt.seed = 105;
  opt.rounds = static_cast<int>(state.range(0));
  opt.center = state.range(1) != 0;
  hepgnn::neighbour_list<float> nl;
  for (auto _ : state) {
    nl = hepgnn::lsh_knn(x, k, b, opt);
    benchmark::DoNotOptimize(nl.indices.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  // recall@16 on 1000 sampled queries (exact by brute force over all points)
  long hit = 0, total = 0;
  for (int q = 0; q < 1000; ++q) {
    const auto i = static_cast<hepgnn::index_t>(rb::randint(7, q, n));
    std::vector<std::pair<float, hepgnn::index_t>> c;
    c.reserve(n);
    for (hepgnn::index_t j = 0; j < n; ++j)
      if (j != i) c.emplace_back(hepgnn::metric::euclidean::squared(x.row(i).data(), x.row(j).data(), d), j);
    std::partial_sort(c.begin(), c.begin() + k, c.end());
    const auto row = nl.of(i);
    for (int r = 0; r < k; ++r, ++total) hit += std::find(row.begin(), row.end(), c[r].second) != row.end();
  }
  state.counters["recall@16"] = static_cast<double>(hit) / static_cast<double>(total);
}
BENCHMARK(lsh_100k_16d)
    ->ArgNames({"rounds", "center", "clustered"})
    ->Args({1, 0, 0})
    ->Args({3, 0, 0})
    ->Args({1, 1, 0})
    ->Args({1, 0, 1})
    ->Args({3, 0, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The exact kNN at the same N (the reference of the ">= 10x faster than exact" target of lsh_100k_16d).
void exact_100k_16d(benchmark::State& state) {
  const auto x = lsh_points(state.range(0) != 0);
  for (auto _ : state) {
    auto nl = hepgnn::knn(x, 16);
    benchmark::DoNotOptimize(nl.indices.data());
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(exact_100k_16d)->ArgName("clustered")->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void radius_100k_3d(benchmark::State& state) {  // W1b points, r giving ~16 neighbours on average, capped at 32
  const auto x = points(100000, 3, 102);
  hepgnn::radius_options opt;
  opt.max_neighbors = 32;
  for (auto _ : state) {
    auto g = hepgnn::radius_graph(x, 0.0337f, opt);
    benchmark::DoNotOptimize(g.sources.data());
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(radius_100k_3d)->Unit(benchmark::kMillisecond)->UseRealTime();

// The tracking pipeline's size: 23000 uniform points, r = 0.059 (about 18.5 neighbours on average); args: OpenMP
// threads, max_neighbors (0 = no cap), into (1: radius_graph_into with a reused workspace and graph, 0: radius_graph).
// Counter "degree": mean neighbours per point.
void radius_23k_3d(benchmark::State& state) {
  const auto x = points(23000, 3, 106);
  const auto b = hepgnn::batch::single(23000);
  hepgnn::radius_options opt;
  opt.max_neighbors = static_cast<hepgnn::index_t>(state.range(1));
  const bool into = state.range(2) != 0;
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(state.range(0)));
  hepgnn::graph g;
  hepgnn::radius_workspace<float> ws;
  for (auto _ : state) {
    if (into)
      hepgnn::radius_graph_into(x.data(), 23000, 3, 3, 0.059f, b, opt, g, ws);
    else
      g = hepgnn::radius_graph(x, 0.059f, b, opt);
    benchmark::DoNotOptimize(g.sources.data());
  }
  omp_set_num_threads(threads_before);
  state.counters["degree"] = static_cast<double>(g.num_edges()) / 23000;
  state.SetItemsProcessed(state.iterations() * 23000);
}
BENCHMARK(radius_23k_3d)->ArgNames({"threads", "cap", "into"})->ArgsProduct({{1, 2}, {32, 0}, {0, 1}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// As the trained tracking pipeline's learned space is: hundreds of points within r (here r = 0.2, about 770), so
// the cap of 32 decides every list (the cell list's k-nearest box queries). Arg: OpenMP threads.
void radius_23k_3d_capped_dense(benchmark::State& state) {
  const auto x = points(23000, 3, 106);
  const auto b = hepgnn::batch::single(23000);
  hepgnn::radius_options opt;
  opt.max_neighbors = 32;
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(state.range(0)));
  hepgnn::graph g;
  hepgnn::radius_workspace<float> ws;
  for (auto _ : state) {
    hepgnn::radius_graph_into(x.data(), 23000, 3, 3, 0.2f, b, opt, g, ws);
    benchmark::DoNotOptimize(g.sources.data());
  }
  omp_set_num_threads(threads_before);
  state.counters["degree"] = static_cast<double>(g.num_edges()) / 23000;
  state.SetItemsProcessed(state.iterations() * 23000);
}
BENCHMARK(radius_23k_3d_capped_dense)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void fully_connected_512x30(benchmark::State& state) {
  const auto b = hepgnn::batch::uniform(512, 30);
  for (auto _ : state) {
    auto g = hepgnn::fully_connected(b);
    benchmark::DoNotOptimize(g.sources.data());
  }
  state.SetItemsProcessed(state.iterations() * 512 * 30);
}
BENCHMARK(fully_connected_512x30)->Unit(benchmark::kMicrosecond)->UseRealTime();

void components_100k(benchmark::State& state) {  // kNN graph of W1b, half of the edges cut
  const auto x = points(100000, 3, 102);
  const auto g = hepgnn::knn(x, 4).to_graph();
  std::vector<float> score(static_cast<std::size_t>(g.num_edges()));
  for (std::size_t e = 0; e < score.size(); ++e) score[e] = rb::u01(9, e);
  for (auto _ : state) {
    auto cc = hepgnn::connected_components(g, score, 0.5f);
    benchmark::DoNotOptimize(cc.labels.data());
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(components_100k)->Unit(benchmark::kMillisecond)->UseRealTime();

/// The selection of a box query (cell_grid::nearest): the 24 smallest of n distinct packed (distance, id) keys,
/// sorted, by SIMD ranks (simd::smallest_distinct, arg 1) or by std::nth_element and std::sort (arg 0); 4096
/// lists per iteration, items/s = lists.
void select_smallest_24(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), k = 24, lists = 4096;
  const bool ranks = state.range(1) != 0;
  hepgnn::rng g(7);
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(lists) * n), work(n + k + 1);
  for (std::size_t i = 0; i < keys.size(); ++i)  // distance bits above a distinct id, as the cell list packs them
    keys[i] = (static_cast<std::uint64_t>(g.below(1u << 30)) << 32) | static_cast<std::uint32_t>(i % n);
  for (auto _ : state) {
    for (int l = 0; l < lists; ++l) {
      const std::uint64_t* list = keys.data() + static_cast<std::size_t>(l) * n;
      if (ranks) {
        hepgnn::simd::smallest_distinct(list, n, k, work.data());
      } else {
        std::copy_n(list, n, work.begin());
        std::nth_element(work.begin(), work.begin() + (k - 1), work.begin() + n);
        std::sort(work.begin(), work.begin() + k);
      }
      benchmark::DoNotOptimize(work.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * lists);
}
BENCHMARK(select_smallest_24)->ArgNames({"n", "ranks"})->ArgsProduct({{32, 48, 96}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
