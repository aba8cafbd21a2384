// Jet generation: EPiC-GAN's O(N) generator (models/epic_generator.hpp, EPiC-GAN's widths: hid_d 128, latent 10,
// 6 layers) against MPGAN's O(N^2) generator (models/mpgan.hpp, the published widths), inference in float on
// full jets (every jet at its num_particles: the worst case, and a FLOP count that does not depend on a sample).
// Counters: us_per_jet (wall clock), jets/s (items), FLOP_per_jet (2 x the multiply-adds of the EPiC forward,
// biases and activations not counted) and GFLOP/s (FLOP_per_jet / us_per_jet).
// MPGAN at 150 particles runs a smaller batch (its 22,500 edges per jet make batch 256 take seconds).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "hepgnn/models/epic_generator.hpp"
#include "hepgnn/models/mpgan.hpp"

using namespace hepgnn;

namespace {

using clock_type = std::chrono::steady_clock;

/// jets/s (items) and wall-clock microseconds per jet over the timed loop (started at t0).
void per_jet_counters(benchmark::State& s, long jets, clock_type::time_point t0) {
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  s.SetItemsProcessed(s.iterations() * jets);
  s.counters["us_per_jet"] = 1e6 * seconds / static_cast<double>(s.iterations() * jets);
}

void epic_generate(benchmark::State& s) {
  const long N = s.range(0), B = s.range(1);
  epic_generator_config cfg;
  cfg.num_particles = static_cast<int>(N);
  const epic_generator<float> g(cfg);
  rng gen(1);
  epic_noise<float> z;
  g.draw_noise(B, 1.0, gen, z);
  const std::vector<std::int64_t> n(static_cast<std::size_t>(B), N);
  epic_generator<float>::workspace ws;
  g.infer(z, n, ws);  // warm-up: buffers sized
  const auto t0 = clock_type::now();
  for (auto _ : s) {
    benchmark::DoNotOptimize(g.infer(z, n, ws).data());
  }
  per_jet_counters(s, B, t0);
  const double flop = 2 * g.multiply_adds(N);
  s.counters["FLOP_per_jet"] = flop;
  s.counters["GFLOP/s"] = flop / (s.counters["us_per_jet"].value * 1e3);
}

void mpgan_generate(benchmark::State& s) {
  const long N = s.range(0), B = s.range(1);
  mpgan_generator_config cfg;
  cfg.num_particles = static_cast<int>(N);
  const mpgan_generator<float> g(cfg);
  rng gen(1);
  matrix<float> z;
  g.draw_noise(B, 0.2, gen, z);
  const std::vector<std::int64_t> n(static_cast<std::size_t>(B), N);
  mpgan_generator<float>::workspace ws;
  g.infer(z, n, ws);
  const auto t0 = clock_type::now();
  for (auto _ : s) {
    benchmark::DoNotOptimize(g.infer(z, n, ws).data());
  }
  per_jet_counters(s, B, t0);
}

}  // namespace

BENCHMARK(epic_generate)->Args({30, 256})->Args({150, 256})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(mpgan_generate)->Args({30, 256})->Args({150, 8})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
