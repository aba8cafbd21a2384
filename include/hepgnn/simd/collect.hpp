#pragma once
/// @file collect.hpp
/// @brief Range collection: every point of a transposed block within a distance of a query, as packed
/// (distance, id) keys (simd::candidate_key), for cell_grid's exact kNN and radius searches (graph/grid.hpp).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "hepgnn/simd/distance.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace hepgnn::simd {

/// @brief A (distance, id) candidate as one sortable value. For float, the distance's bits above the id:
/// non-negative floats order like their bit patterns, so one integer comparison orders by distance, then id (as
/// top_k), and sorting ~60 candidates per query is about twice as fast as sorting pairs. (The tracking pipeline's
/// orient_outward() orders hits by the same key of their r^2 + z^2.) Other types: a std::pair.
template <class T>
struct candidate_key {
  using type = std::pair<T, index_t>;
  static type make(T d, index_t i) { return {d, i}; }
  static T distance(const type& c) { return c.first; }
  static index_t id(const type& c) { return c.second; }
};
template <>
struct candidate_key<float> {
  using type = std::uint64_t;
  static type make(float d, index_t i) {
    return (type{std::bit_cast<std::uint32_t>(d)} << 32) | static_cast<std::uint32_t>(i);
  }
  static float distance(type c) { return std::bit_cast<float>(static_cast<std::uint32_t>(c >> 32)); }
  static index_t id(type c) { return static_cast<index_t>(static_cast<std::uint32_t>(c)); }
};

/// @brief Slack that collect_within() needs past the last candidate it writes and past the end of `ids`, in
/// entries: at least the widest SIMD block.
inline constexpr index_t collect_slack = 64;

/// @brief Appends at out + count every point j in [a, b) of the transposed block xt (coordinate c of point j at
/// xt[c * stride + j], d coordinates) whose distance from q is <= tau, except the one whose id (ids[j]) is `skip`,
/// as candidate_key<T> (distance, ids[j]); returns the new count. Points are visited in order, so the candidates
/// come out in position order.
///
/// Requires: out has room for count + (b - a) + collect_slack entries (whole registers are stored past the last
/// candidate); ids and xt readable up to b rounded up to a whole register (lanes past b are dropped, whatever
/// they hold).
template <distance_kind Kind, class Arch, int D, class T>
std::size_t collect_within(const T* q, int d, const T* xt, std::ptrdiff_t stride, index_t a, index_t b,
                           const index_t* ids, index_t skip, T tau, typename candidate_key<T>::type* out,
                           std::size_t count) {
  using packing = candidate_key<T>;
  constexpr int W = lanes<T, Arch>();
  if constexpr (W > 1) {
    using B = xsimd::batch<T, Arch>;
    alignas(64) T buf[W];
    for (index_t j = a; j < b; j += W) {  // lanes past b: the next cells' points (or the +inf padding), dropped
      const B dist = detail::distance_at<Kind, D, B>(q, d, xt, stride, j);
      auto bits = detail::lane_bits<Arch>(dist <= B(tau));
      if (b - j < W) bits &= (std::uint64_t(1) << (b - j)) - 1;
      if (!bits) continue;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float> && sizeof(index_t) == 4 && std::is_base_of_v<xsimd::avx512f, Arch>) {
        // the keys of all 16 lanes (distance bits above the id), the chosen ones compressed to the front: no
        // branch per lane (ids is padded, so the load stays inside it)
        const __m512i id = _mm512_loadu_si512(ids + j);
        bits &= ~static_cast<std::uint64_t>(_mm512_cmpeq_epi32_mask(id, _mm512_set1_epi32(skip)));
        const __m512i bits_d = _mm512_castps_si512(dist);
        for (int h = 0; h < 2; ++h) {
          const __m256i id_h = h ? _mm512_extracti64x4_epi64(id, 1) : _mm512_castsi512_si256(id);
          const __m256i d_h = h ? _mm512_extracti64x4_epi64(bits_d, 1) : _mm512_castsi512_si256(bits_d);
          const __m512i key = _mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(d_h), 32),
                                              _mm512_cvtepu32_epi64(id_h));
          const auto m = static_cast<__mmask8>(bits >> (8 * h));
          _mm512_storeu_si512(out + count, _mm512_maskz_compress_epi64(m, key));
          count += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(m)));
        }
        continue;
      }
#endif
      dist.store_aligned(buf);
      for (; bits; bits &= bits - 1) {
        const int l = std::countr_zero(bits);
        if (const index_t id = ids[j + l]; id != skip) out[count++] = packing::make(buf[l], id);
      }
    }
  } else {
    for (index_t j = a; j < b; ++j) {
      const T dist = detail::distance_at<Kind, D, T>(q, d, xt, stride, j);
      if (dist <= tau && ids[j] != skip) out[count++] = packing::make(dist, ids[j]);
    }
  }
  return count;
}

}  // namespace hepgnn::simd
