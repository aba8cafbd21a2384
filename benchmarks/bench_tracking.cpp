// Tracking: toy simulation, TrackML reading and pipeline inference per event, versus the number of particles.
// Inference uses the weights in $HEPGNN_TRACKING_WEIGHTS (a file written by example_tracking) when set, otherwise
// an untrained pipeline (its graph sizes, hence timings, differ from a trained one's).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>

#include "hepgnn/data/toy_tracker.hpp"
#include "hepgnn/io/trackml.hpp"
#include "hepgnn/models/tracking.hpp"

using namespace hepgnn;

namespace {

const trackml::event& event_with(int particles) {
  static std::map<int, trackml::event> cache;
  auto it = cache.find(particles);
  if (it == cache.end()) {
    toy::tracker_config c;
    c.num_particles = particles;
    c.num_vertices = 20;
    c.noise_fraction = 0.15;
    it = cache.emplace(particles, toy::simulate_event(c, 4242)).first;
  }
  return it->second;
}

tracking::pipeline<float>& model() {
  static std::unique_ptr<tracking::pipeline<float>> p;
  if (!p) {
    const char* w = std::getenv("HEPGNN_TRACKING_WEIGHTS");
    p = std::make_unique<tracking::pipeline<float>>(w && *w ? tracking::pipeline<float>::load(w)
                                                            : tracking::pipeline<float>());
  }
  return *p;
}

void BM_simulate(benchmark::State& state) {
  toy::tracker_config c;
  c.num_particles = static_cast<int>(state.range(0));
  std::size_t hits = 0;
  std::uint64_t seed = 1;
  for (auto _ : state) {
    auto ev = toy::simulate_event(c, seed++);
    hits += ev.num_hits();
    benchmark::DoNotOptimize(ev.x.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(hits));
  state.counters["particles"] = static_cast<double>(c.num_particles);
}
BENCHMARK(BM_simulate)->Arg(500)->Arg(2000)->Arg(10000)->Unit(benchmark::kMillisecond);

void pipeline_infer(benchmark::State& state, bool bf16) {
  const auto& ev = event_with(static_cast<int>(state.range(0)));
  auto& p = model();
  p.config().gnn_bf16 = bf16;
  std::size_t edges = 0;
  tracking::pipeline<float>::workspace w;  // the networks' buffers, reused from event to event as a user would
  // steady state: the first run on a fresh workspace faults in its pages (more than twice the time of later runs),
  // and with only a few iterations per repetition it would dominate the mean
  benchmark::DoNotOptimize(p.run(ev, tracking::track_builder::walkthrough, w).labels.data());
  for (auto _ : state) {
    const auto out = p.run(ev, tracking::track_builder::walkthrough, w);
    edges = static_cast<std::size_t>(out.filtered_graph.num_edges());
    benchmark::DoNotOptimize(out.labels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(ev.num_hits()));
  state.counters["hits"] = static_cast<double>(ev.num_hits());
  state.counters["gnn_edges"] = static_cast<double>(edges);
}
void BM_pipeline_infer(benchmark::State& state) { pipeline_infer(state, false); }
BENCHMARK(BM_pipeline_infer)->Arg(500)->Arg(1000)->Arg(2000)->Arg(5000)->Arg(10000)->Unit(benchmark::kMillisecond);
/// The GNN's products with bf16 operands (pipeline_config::gnn_bf16), everything else as above.
void BM_pipeline_infer_bf16(benchmark::State& state) { pipeline_infer(state, true); }
BENCHMARK(BM_pipeline_infer_bf16)->Arg(500)->Arg(1000)->Arg(2000)->Arg(5000)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_read_trackml_sample(benchmark::State& state) {
  const std::string prefix = std::string(HEPGNN_SOURCE_DIR) + "/tests/data/trackml/event000000001";
  std::size_t hits = 0;
  for (auto _ : state) {
    auto ev = trackml::read_event(prefix);
    hits += ev.num_hits();
    benchmark::DoNotOptimize(ev.x.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(hits));
}
BENCHMARK(BM_read_trackml_sample)->Unit(benchmark::kMillisecond);

}  // namespace
BENCHMARK_MAIN();
