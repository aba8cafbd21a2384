#pragma once
/// @file fingerprint.hpp
/// @brief hepgnn::fingerprint: a 64-bit summary of a graph, a batch or a matrix, so a layer's backward can check
/// that its cache was recorded by a forward over the same input.
///
/// A backward sizes and indexes its buffers by what the forward saw (in-degrees, arg-max rows, segment sizes);
/// given another graph with the same edge count it would write past them. Forward records the fingerprint of what
/// it read, backward compares. It guards against mistakes, not adversaries: two position-weighted 32-bit sums per
/// array, which vectorise (about 0.05 ns per index here), so the check costs far less than the layer's products.

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

namespace fingerprint_detail {
/// A plain sum and a sum weighted by an odd multiple of the position (so order matters), over 32-bit words; a
/// 64-bit value contributes its two halves folded into one word.
template <class W>
std::uint64_t words(const W* p, std::size_t n) {
  static_assert(sizeof(W) == 4 || sizeof(W) == 8, "fingerprint: 32- or 64-bit values");
  std::uint32_t sum = 0, weighted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t w;
    if constexpr (sizeof(W) == 4) {
      w = std::bit_cast<std::uint32_t>(p[i]);
    } else {
      const auto b = std::bit_cast<std::uint64_t>(p[i]);
      w = static_cast<std::uint32_t>(b) ^ (static_cast<std::uint32_t>(b >> 32) * 0x85EBCA6Bu);
    }
    sum += w;
    weighted += w * (static_cast<std::uint32_t>(i) * 0x9E3779B1u + 1u);
  }
  return mix64((static_cast<std::uint64_t>(sum) << 32 | weighted) ^ mix64(n));
}
}  // namespace fingerprint_detail

/// @brief Fingerprint of an index array (its length and every entry in order).
inline std::uint64_t fingerprint(std::span<const index_t> v) { return fingerprint_detail::words(v.data(), v.size()); }

/// @brief Fingerprint of a graph: node count, offsets (the in-degrees) and sources.
inline std::uint64_t fingerprint(const graph& g) {
  return mix64(static_cast<std::uint64_t>(g.num_nodes) ^ fingerprint(std::span<const index_t>(g.offsets))) ^
         fingerprint(std::span<const index_t>(g.sources));
}

/// @brief Fingerprint of a batch (its node offsets).
inline std::uint64_t fingerprint(const batch& b) {
  return mix64(0xB47C4ULL ^ fingerprint(std::span<const index_t>(b.node_offsets)));
}

/// @brief Fingerprint of a matrix: its shape and the bits of every value.
template <class T>
std::uint64_t fingerprint(const matrix<T>& x) {
  const std::uint64_t h = fingerprint_detail::words(x.data(), static_cast<std::size_t>(x.size()));
  return mix64(h ^ (static_cast<std::uint64_t>(x.rows()) << 32 | static_cast<std::uint32_t>(x.cols())));
}

/// @brief Throws unless a backward's input has the fingerprint its forward recorded.
inline void check_same_forward(std::uint64_t recorded, std::uint64_t given, std::string_view who,
                               std::string_view what) {
  HEPGNN_CHECK(recorded != 0, who, ": call forward first: no training forward is recorded in this cache (or an "
               "infer has reused it since)");
  HEPGNN_CHECK(recorded == given, who, ": the ", what,
               " differs from the one the cache's forward saw (pass backward the forward's ", what, ")");
}

}  // namespace hepgnn
