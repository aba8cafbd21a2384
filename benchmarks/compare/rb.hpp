#pragma once
// The deterministic input generator of ../shared/benchmarks/WORKLOADS.md ("rb" PRNG), bit-identical to
// rb_common.py, so hepgnn and the other tools run on exactly the same inputs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"

namespace rb {

/// z_i = mix64(seed + (i + 1) * golden)
inline std::uint64_t u64(std::uint64_t seed, std::uint64_t i) { return hepgnn::mix64(seed + (i + 1) * 0x9E3779B97F4A7C15ULL); }
/// u_i in [0, 1), exact float
inline float u01(std::uint64_t seed, std::uint64_t i) { return static_cast<float>(u64(seed, i) >> 40) * 0x1.0p-24f; }
/// s_i in [-1, 1)
inline float upm1(std::uint64_t seed, std::uint64_t i) { return 2.0f * u01(seed, i) - 1.0f; }
/// int_i in [0, n)
inline std::uint32_t randint(std::uint64_t seed, std::uint64_t i, std::uint32_t n) {
  return static_cast<std::uint32_t>(((u64(seed, i) >> 32) * n) >> 32);
}

/// Fills a Linear layer (PyTorch layout W[out][in]) the WORKLOADS.md way from seed S.
template <class Dense>
void init_linear(Dense& d, std::uint64_t seed) {
  const int in = d.in_features(), out = d.out_features();
  const float b = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in)));
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) d.weight()(o, i) = static_cast<typename Dense::scalar>(b * upm1(seed, std::uint64_t(o) * in + i));
  if (d.has_bias())
    for (int o = 0; o < out; ++o) d.bias()(0, o) = static_cast<typename Dense::scalar>(b * upm1(seed + 1, o));
}

/// Every Linear of a model, in for_each_param order (weight, then its bias if it has one): the k-th one from seeds
/// base + 2k (weight) and base + 2k + 1 (bias), uniform in +-1/sqrt(fan_in), as rb_common.py's linear().
template <class Model>
void init_linears(Model& m, std::uint64_t base) {
  std::uint64_t seed = base;
  float bound = 0;
  bool open = false;  // a weight whose Linear has not been closed by a bias yet
  m.for_each_param("", [&](const std::string& name, auto p) {
    if (name.ends_with("weight")) {
      if (open) seed += 2;  // the previous Linear had no bias
      const long in = p.shape.back(), out = p.size() / in;  // weights: out x in
      bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in)));
      for (long k = 0; k < out * in; ++k) p.value[k] = bound * upm1(seed, std::uint64_t(k));
      open = true;
    } else {
      for (long k = 0; k < p.size(); ++k) p.value[k] = bound * upm1(seed + 1, std::uint64_t(k));
      seed += 2;
      open = false;
    }
  });
}

/// Times fn() per the measurement rules: one warm-up, then at least `min_reps` repetitions and about
/// `min_seconds` of timed work; returns the median seconds. With REFBENCH_CPU_TIME=1 the same rule runs on process
/// CPU time (for a loaded machine; not the MEASURING.md rule, compare only with a reference run the same way).
template <class F>
double median_seconds(F&& fn, int min_reps = 7, double min_seconds = 1.0) {
  const char* cpu = std::getenv("REFBENCH_CPU_TIME");
  const bool cpu_time = cpu && std::string(cpu) == "1";
  auto now = [cpu_time] {
    if (cpu_time) {
      timespec ts;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  fn();
  std::vector<double> t;
  double total = 0;
  while (static_cast<int>(t.size()) < min_reps || total < min_seconds) {
    const double a = now();
    fn();
    const double s = now() - a;
    t.push_back(s);
    total += s;
    if (t.size() >= 1000) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Prints the harness's result line: `<workload> <implementation> <threads> <median_seconds>`.
inline void report(const std::string& workload, const std::string& impl, int threads, double seconds) {
  std::printf("%s %s %d %.6g\n", workload.c_str(), impl.c_str(), threads, seconds);
  std::fflush(stdout);
}

}  // namespace rb
