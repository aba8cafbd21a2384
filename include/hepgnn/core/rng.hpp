#pragma once
/// @file rng.hpp
/// @brief hepgnn::rng: a small seedable deterministic generator (xoshiro256**), same stream on every platform.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <numbers>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief splitmix64 finaliser: a good 64-bit mixer, used for seeding and for counter-based streams.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// @brief Deterministic pseudo-random generator. Unlike std distributions, its outputs do not depend on the
/// standard library, so a seed gives the same numbers everywhere (tests and simulations rely on that).
class rng {
 public:
  using result_type = std::uint64_t;
  explicit rng(std::uint64_t seed = 0x5EED) {
    for (int i = 0; i < 4; ++i) s_[i] = mix64(seed + (static_cast<std::uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ULL);
  }
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }

  /// @brief Next 64 random bits.
  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// @brief Uniform double in [0, 1).
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// @brief Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// @brief Uniform integer in [0, n) (n > 0), without modulo bias worth noticing (Lemire's multiply-shift).
  std::uint64_t below(std::uint64_t n) {
    __extension__ using u128 = unsigned __int128;  // a GCC/Clang extension; __extension__ keeps -Wpedantic quiet
    return static_cast<std::uint64_t>((static_cast<u128>((*this)()) * n) >> 64);
  }
  /// @brief Standard normal (Box-Muller; no cached second value so the stream is simple to reason about).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  /// @brief Normal with mean and standard deviation.
  double normal(double mean, double sigma) { return mean + sigma * normal(); }
  /// @brief Exponential with the given mean.
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }
  /// @brief Bernoulli trial.
  bool bernoulli(double p) { return uniform() < p; }
  /// @brief Shuffles a range in place (Fisher-Yates; the same permutation for the same seed on every platform,
  /// unlike std::shuffle whose algorithm the standard leaves open).
  template <class Range>
  void shuffle(Range& r) {
    using std::swap;
    for (std::size_t i = std::size(r); i > 1; --i) swap(r[i - 1], r[below(i)]);
  }
  /// @brief An independent generator derived from this one (for per-thread or per-event streams).
  rng split() { return rng((*this)()); }
  /// @brief The generator's whole state (what a checkpoint saves; set_state continues the same stream).
  std::array<std::uint64_t, 4> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::array<std::uint64_t, 4>& s) {
    // all-zero is xoshiro's one fixed point: it would return 0 forever
    HEPGNN_CHECK((s[0] | s[1] | s[2] | s[3]) != 0, "rng::set_state: the state must not be all zero (xoshiro's fixed point)");
    for (int i = 0; i < 4; ++i) s_[i] = s[static_cast<std::size_t>(i)];
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace hepgnn
