// Particle flow: toy simulation, rule-based baseline and MLPF inference versus event size (1000..50000
// elements). Items are elements; `heap_bytes_per_element` is the heap the inference workspace holds after a
// warm-up call, divided by the element count (flat when memory is linear in the event size).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <map>

#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/models/pf_baseline.hpp"

using namespace hepgnn;
using namespace hepgnn::pf;
using T = float;

namespace {

using model_type = mlpf<T>;

// An event of exactly n elements: simulate enough soft activity, then keep a random subset of n rows.
const matrix<double>& event_of(int n) {
  static std::map<int, matrix<double>> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  toy_pf_config cfg;
  cfg.soft_particles = std::max(100, 2 * n);
  cfg.max_jets = 4 + n / 5000;
  rng gen(static_cast<std::uint64_t>(n));
  event ev = toy_pf_detector(cfg).simulate(gen);
  std::vector<index_t> rows(static_cast<std::size_t>(ev.num_elements()));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<index_t>(i);
  for (std::size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[gen.below(i)]);
  rows.resize(static_cast<std::size_t>(std::min<index_t>(n, ev.num_elements())));
  std::sort(rows.begin(), rows.end());
  matrix<double> f(static_cast<Eigen::Index>(rows.size()), feature::count);
  for (std::size_t i = 0; i < rows.size(); ++i) f.row(static_cast<Eigen::Index>(i)) = ev.features.row(rows[i]);
  return cache.emplace(n, std::move(f)).first->second;
}

const model_type& model() {
  static const model_type m{mlpf_config{}};
  return m;
}

void BM_pf_simulate(benchmark::State& state) {
  toy_pf_config cfg;
  cfg.soft_particles = static_cast<int>(state.range(0));
  const toy_pf_detector det(cfg);
  rng gen(3);
  double elements = 0;
  for (auto _ : state) {
    auto ev = det.simulate(gen);
    elements += ev.num_elements();
    benchmark::DoNotOptimize(ev.features.data());
  }
  state.counters["elements"] = elements / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(elements));
}
BENCHMARK(BM_pf_simulate)->Arg(1000)->Arg(10000)->Arg(40000)->Unit(benchmark::kMillisecond);

void BM_pf_baseline(benchmark::State& state) {
  const matrix<double>& f = event_of(static_cast<int>(state.range(0)));
  const pf_baseline base;
  for (auto _ : state) {
    auto c = base.reconstruct(f);
    benchmark::DoNotOptimize(c.p4.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * f.rows());
}
BENCHMARK(BM_pf_baseline)->Arg(1000)->Arg(5000)->Arg(20000)->Arg(50000)->Unit(benchmark::kMillisecond);

void BM_mlpf_infer(benchmark::State& state) {
  const matrix<double>& f = event_of(static_cast<int>(state.range(0)));
  const matrix<T> x = mlpf_inputs<T>(f);
  const batch b = batch::single(static_cast<index_t>(x.rows()));
  model_type::workspace ws;
  auto heap = [] {  // in-use heap: small blocks plus mmap-ed large blocks
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  const auto before = heap();
  model().infer(x, b, ws);  // warm-up: sizes the workspace
  const auto after = heap();
  for (auto _ : state) {
    model().infer(x, b, ws);
    benchmark::DoNotOptimize(ws.out[0].data());
  }
  state.counters["heap_bytes_per_element"] =
      static_cast<double>(after > before ? after - before : 0) / static_cast<double>(x.rows());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * x.rows());
}
BENCHMARK(BM_mlpf_infer)->Arg(1000)->Arg(5000)->Arg(20000)->Arg(50000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
