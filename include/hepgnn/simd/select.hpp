#pragma once
/// @file select.hpp
/// @brief Selection kernels without a heap: arg max / arg min, the smallest of a list of distinct keys, and the k
/// nearest of a small block, by SIMD ranks (part of top_k.hpp, which includes this header).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/simd/top_k.hpp"

namespace hepgnn::simd {

/// @brief Positions of the largest and of the smallest of v[0..n), the first one on ties; n in [1, 2^24).
/// Identical for every Arch.
template <class Arch = native, class T>
std::pair<index_t, index_t> argmax_argmin(const T* v, index_t n) {
  constexpr int W = lanes<T, Arch>();
  T hi = v[0], lo = v[0];
  index_t at_hi = 0, at_lo = 0, j = 0;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, Arch>;
    if (n >= W) {
      alignas(64) T lane[W];
      for (int l = 0; l < W; ++l) lane[l] = static_cast<T>(l);
      // two independent sets of running extremes (even and odd blocks) halve the dependency chains
      B pos = B::load_aligned(lane), bh = B::load_unaligned(v), bl = bh, ph = pos, pl = pos;
      B bh2 = bh, bl2 = bh, ph2 = pos, pl2 = pos;
      auto step = [](const B& x, const B& p, B& h, B& l, B& at_h, B& at_l) {
        const auto up = x > h, down = x < l;  // strict: each lane keeps its first occurrence
        h = xsimd::select(up, x, h);
        at_h = xsimd::select(up, p, at_h);
        l = xsimd::select(down, x, l);
        at_l = xsimd::select(down, p, at_l);
      };
      for (j = W; j + 2 * W <= n; j += 2 * W) {
        const B p1 = pos + B(static_cast<T>(j)), p2 = p1 + B(static_cast<T>(W));
        step(B::load_unaligned(v + j), p1, bh, bl, ph, pl);
        step(B::load_unaligned(v + j + W), p2, bh2, bl2, ph2, pl2);
      }
      for (; j + W <= n; j += W) step(B::load_unaligned(v + j), pos + B(static_cast<T>(j)), bh, bl, ph, pl);
      // merge: the lower position wins ties
      const auto take_h = (bh2 > bh) | ((bh2 == bh) & (ph2 < ph)), take_l = (bl2 < bl) | ((bl2 == bl) & (pl2 < pl));
      bh = xsimd::select(take_h, bh2, bh);
      ph = xsimd::select(take_h, ph2, ph);
      bl = xsimd::select(take_l, bl2, bl);
      pl = xsimd::select(take_l, pl2, pl);
      alignas(64) T vh[W], vl[W], ih[W], il[W];
      bh.store_aligned(vh);
      bl.store_aligned(vl);
      ph.store_aligned(ih);
      pl.store_aligned(il);
      hi = vh[0], lo = vl[0], at_hi = static_cast<index_t>(ih[0]), at_lo = static_cast<index_t>(il[0]);
      for (int l = 1; l < W; ++l) {
        const auto a = static_cast<index_t>(ih[l]), b = static_cast<index_t>(il[l]);
        if (vh[l] > hi || (vh[l] == hi && a < at_hi)) hi = vh[l], at_hi = a;
        if (vl[l] < lo || (vl[l] == lo && b < at_lo)) lo = vl[l], at_lo = b;
      }
    }
  }
  for (; j < n; ++j) {
    if (v[j] > hi) hi = v[j], at_hi = j;
    if (v[j] < lo) lo = v[j], at_lo = j;
  }
  return {at_hi, at_lo};
}

namespace detail {
/// xsimd::select on integer batches. xsimd 8's avx512bw select names _mm512_mask_blend_epi8/16 for every key
/// width, and GCC's unoptimized (-O0) macro forms of those intrinsics reject an xsimd batch; for 4- and 8-byte
/// lanes it forwards to the avx512f blend, called here directly (the same code once optimized).
template <class Arch, class K>
xsimd::batch<K, Arch> select_int(const xsimd::batch_bool<K, Arch>& m, const xsimd::batch<K, Arch>& a,
                                 const xsimd::batch<K, Arch>& b) {
#if defined(__AVX512BW__)
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch> && sizeof(K) >= 4)
    return xsimd::kernel::select<Arch>(m, a, b, xsimd::avx512f{});
  else
#endif
    return xsimd::select(m, a, b);
}
}  // namespace detail

/// @brief The `count` smallest of the n distinct integer keys (0 <= count <= n), ascending, into out[0..count);
/// out needs room for count + 1 entries (the last collects the keys not kept, so the stores do not branch).
///
/// For short lists (the ~50 candidates of a cell-list kNN query, the ~12 nearer hits of a tracking graph's node):
/// every key's rank #{j : key_j < key_i} is counted with SIMD compares, O(n^2 / W) with no data-dependent branch,
/// and each key is stored at its rank. std::nth_element + std::sort branch on every comparison, and on these
/// lists the branches are coin flips: ranking is several times faster. Lists longer than `rank_max` are first
/// cut to `count` by std::nth_element. Keys must be distinct (two equal keys would share a slot); the scalar tag
/// sorts with the standard library. Identical results for every Arch.
template <class Arch = native, class K>
void smallest_distinct(const K* keys, int n, int count, K* out) {
  static_assert(std::is_integral_v<K>, "hepgnn::simd::smallest_distinct: keys must be integers");
  constexpr int W = lanes<K, Arch>(), rank_max = 96;
  if (count <= 0) return;
  if (is_scalar_v<Arch> || n > rank_max) {
    thread_local std::vector<K> copy;
    copy.assign(keys, keys + n);
    if (count < n) std::nth_element(copy.begin(), copy.begin() + (count - 1), copy.end());
    if (!is_scalar_v<Arch> && count <= rank_max) return smallest_distinct<Arch>(copy.data(), count, count, out);
    std::sort(copy.begin(), copy.begin() + count);
    std::copy_n(copy.begin(), count, out);
    return;
  }
  if constexpr (W > 1) {
    using B = xsimd::batch<K, Arch>;
    const B one(K(1));
    alignas(64) K lane[W], rank[W];
    for (int i = 0; i < n; i += W) {
      const int m = std::min(W, n - i);  // a short last block is padded; its padding lanes are not stored
      std::copy_n(keys + i, m, lane);
      std::fill(lane + m, lane + W, std::numeric_limits<K>::max());
      const B ki = B::load_aligned(lane);
      B r0(K(0)), r1(K(0));  // two chains: the adds do not wait on each other
      int j = 0;
      for (; j + 1 < n; j += 2) {
        r0 = detail::select_int(B(keys[j]) < ki, r0 + one, r0);
        r1 = detail::select_int(B(keys[j + 1]) < ki, r1 + one, r1);
      }
      if (j < n) r0 = detail::select_int(B(keys[j]) < ki, r0 + one, r0);
      (r0 + r1).store_aligned(rank);
      for (int t = 0; t < m; ++t) out[std::min<K>(rank[t], static_cast<K>(count))] = lane[t];
    }
  }
}

/// @brief The k nearest of a small block by ranking: out_d/out_i[0..count) = the k smallest (dist[j], first + j),
/// j in [0, m), position `skip` (relative, or -1) left out; returns count = min(k, candidates).
///
/// Prefilter: the SIMD blocks of dist are taken in groups (as large as leaves more than k lane-wise group minima),
/// and the k-th smallest of those minima bounds the k-th smallest distance (each minimum is a distinct
/// candidate), so only candidates at or below it (about 1.3 k to 2 k on uniform clouds) are compressed, in index
/// order, into a short list. Then
/// rank(j) = #{l : (dist[l], l) < (dist[j], j)} is computed for all kept j at once with SIMD compares (O(c^2 / W),
/// no data-dependent branches), and every j with rank < k is stored at its rank. Identical results for every
/// Arch. Requires m < 2^24.
template <class Arch = native, class T>
int select_k_by_rank(const T* dist, int m, index_t first, int skip, int k, T* out_d, index_t* out_i) {
  thread_local std::vector<T> cd, mins, slot_d;
  thread_local std::vector<index_t> ci, slot_i;
  const int count = std::min(k, m - (skip >= 0 ? 1 : 0));
  if (count <= 0) return 0;
  constexpr int W = lanes<T, Arch>();
  constexpr T inf = std::numeric_limits<T>::infinity();
  using B = typename detail::vec<T, Arch>::type;
  cd.resize(static_cast<std::size_t>(m) + W);
  ci.resize(static_cast<std::size_t>(m) + W);
  slot_d.resize(static_cast<std::size_t>(count) + 1);  // slot `count` collects the rejected (branch-free)
  slot_i.resize(static_cast<std::size_t>(count) + 1);
  int c = 0, j = 0;
  if constexpr (W > 1) {
    alignas(64) T lane[W];
    for (int l = 0; l < W; ++l) lane[l] = static_cast<T>(l);
    const B lane_pos = B::load_aligned(lane), skip_pos(static_cast<T>(skip));
    auto block = [&](int at) {  // dist[at .. at + W) with the skipped position at +inf
      return xsimd::select(lane_pos + B(static_cast<T>(at)) == skip_pos, B(inf), B::load_unaligned(dist + at));
    };
    // groups of G blocks, G as large as keeps more than k group minima (each a distinct candidate)
    const int nv = m / W;
    int group = 1;
    while (2 * group <= nv && (nv + 2 * group - 1) / (2 * group) * W > k) group *= 2;
    const int groups = (nv + group - 1) / group;
    T bound = inf;
    if (group > 1) {
      mins.resize(static_cast<std::size_t>(groups + 1) * W);
      for (int g = 0; g < groups; ++g) {
        B a = block(g * group * W);
        for (int v = g * group + 1; v < std::min(nv, (g + 1) * group); ++v) a = xsimd::min(a, block(v * W));
        a.store_unaligned(mins.data() + g * W);
      }
      bound = detail::kth_smallest<Arch>(mins.data(), groups * W, k - 1);
    }
    for (; j + W <= m; j += W) {
      const B dj = block(j);
      detail::append_lanes<Arch>(dj, detail::lane_bits<Arch>(dj <= B(bound)), first + j, cd.data(), ci.data(), c,
                                 cd.size());
    }
    for (; j < m; ++j)
      if (j != skip && dist[j] <= bound) cd[c] = dist[j], ci[c++] = first + j;
    // Without a prefilter (jets of 17-47 points) the list, longer than a register, is padded to whole registers
    // with +inf, so no scalar tail remains: padding never ranks before a kept candidate (it comes later in the list
    // and is not smaller) and lands in the rejected slot. Prefiltered lists are short and rank faster unpadded
    // (measured: W1d 20% slower padded, W5 10% faster).
    if (group == 1 && c > W)
      while (c % W != 0) cd[c] = inf, ci[c++] = first;
  } else {
    for (; j < m; ++j)
      if (j != skip) cd[c] = dist[j], ci[c++] = first + j;
  }
  // Rank the c kept candidates; their ids ascend, so ties by position are ties by id.
  j = 0;
  if constexpr (W > 1) {
    alignas(64) T lane[W];
    for (int l = 0; l < W; ++l) lane[l] = static_cast<T>(l);
    const B lane_pos = B::load_aligned(lane), one(T(1));
    for (; j + W <= c; j += W) {
      const B dj = B::load_unaligned(cd.data() + j);
      B r0(T(0)), r1(T(0));
      // l before the block: (d_l, l) < (d_j', j') iff d_l <= d_j'; after the block: iff <.
      int l = 0;
      for (; l + 1 < j; l += 2) {
        r0 = xsimd::select(B(cd[l]) <= dj, r0 + one, r0);
        r1 = xsimd::select(B(cd[l + 1]) <= dj, r1 + one, r1);
      }
      for (; l < j; ++l) r0 = xsimd::select(B(cd[l]) <= dj, r0 + one, r0);
      for (int t = 0; t < W; ++t) {
        const B dl(cd[j + t]);
        r0 = xsimd::select((dl < dj) | ((dl == dj) & (B(static_cast<T>(t)) < lane_pos)), r0 + one, r0);
      }
      for (l = j + W; l + 1 < c; l += 2) {
        r0 = xsimd::select(B(cd[l]) < dj, r0 + one, r0);
        r1 = xsimd::select(B(cd[l + 1]) < dj, r1 + one, r1);
      }
      for (; l < c; ++l) r0 = xsimd::select(B(cd[l]) < dj, r0 + one, r0);
      const B r = r0 + r1;
      const B slot = xsimd::select(r < B(static_cast<T>(count)), r, B(static_cast<T>(count)));
      if constexpr (std::is_same_v<T, float> && sizeof(index_t) == sizeof(float)) {
        using I = xsimd::batch<index_t, Arch>;
        const I where = xsimd::to_int(slot);
        dj.scatter(slot_d.data(), where);
        I::load_unaligned(ci.data() + j).scatter(slot_i.data(), where);
      } else {
        alignas(64) T sl[W];
        slot.store_aligned(sl);
        for (int t = 0; t < W; ++t) {
          slot_d[static_cast<std::size_t>(sl[t])] = cd[j + t];
          slot_i[static_cast<std::size_t>(sl[t])] = ci[j + t];
        }
      }
    }
  }
  for (; j < c; ++j) {
    int r = 0;
    for (int l = 0; l < c; ++l) r += int(cd[l] < cd[j]) | (int(cd[l] == cd[j]) & int(l < j));
    const int sl = r < count ? r : count;
    slot_d[sl] = cd[j];
    slot_i[sl] = ci[j];
  }
  std::copy_n(slot_d.begin(), count, out_d);
  std::copy_n(slot_i.begin(), count, out_i);
  return count;
}

}  // namespace hepgnn::simd
