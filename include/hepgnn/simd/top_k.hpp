#pragma once
/// @file top_k.hpp
/// @brief Bounded top-k selection over (distance, index) pairs, and a fused "distances + select" scan.
///
/// Order: (distance, index) lexicographically, so ties go to the lower index and the result does not depend on
/// the order in which candidates are offered (the basis of thread-count-independent graph builders).

#include <cstddef>
#include <algorithm>
#include <limits>
#include <vector>

#include "hepgnn/simd/distance.hpp"

namespace hepgnn::simd {

/// @brief The k smallest (distance, index) pairs seen so far, kept sorted, in storage owned by the caller.
///
/// Requires k >= 0 and dist/idx pointing at k writable entries. Only candidates with distance <= limit are
/// accepted (limit = +inf for plain kNN, r^2 for a radius search with a neighbour cap).
template <class T>
class top_k {
 public:
  /// @brief A view over dist[0..k) and idx[0..k); starts empty.
  top_k(T* dist, index_t* idx, int k, T limit = std::numeric_limits<T>::infinity())
      : dist_(dist), idx_(idx), k_(k), limit_(limit) {}

  /// @brief Takes the first `size` entries of the storage as already held (a sorted list from an earlier pass).
  void resume(int size) { size_ = size < k_ ? size : k_; }

  /// @brief Number of pairs held (<= capacity()).
  int size() const { return size_; }
  /// @brief k.
  int capacity() const { return k_; }
  /// @brief Distances above this can never enter (the k-th distance once full, else the limit).
  T threshold() const { return size_ < k_ ? limit_ : dist_[k_ - 1]; }

  /// @brief Inserts (d, i) if it is among the k smallest so far; returns whether it was kept.
  bool offer(T d, index_t i) {
    int pos;
    if (size_ < k_) {
      if (!(d <= limit_)) return false;
      pos = size_++;
    } else {
      if (k_ == 0 || !(d < dist_[k_ - 1] || (d == dist_[k_ - 1] && i < idx_[k_ - 1]))) return false;
      pos = k_ - 1;
    }
    while (pos > 0 && (d < dist_[pos - 1] || (d == dist_[pos - 1] && i < idx_[pos - 1]))) {
      dist_[pos] = dist_[pos - 1];
      idx_[pos] = idx_[pos - 1];
      --pos;
    }
    dist_[pos] = d;
    idx_[pos] = i;
    return true;
  }

 private:
  T* dist_;
  index_t* idx_;
  int k_;
  int size_ = 0;
  T limit_;
};

/// @brief Offers the points at SoA positions [begin, end) to `sink`, with the distance from query q.
///
/// The candidate id of position j is ids[j] (or j when ids is null); the id `skip` is never offered (pass -1
/// to skip nothing). Distances are computed as in distances_soa(); SIMD lanes whose distance exceeds
/// sink.threshold() are discarded before the scalar offer, which is why this is faster than
/// distances_soa() followed by offers. The result is identical for every Arch. Sink is top_k<T> or any type
/// with `T threshold() const` and `offer(T distance, index_t id)`.
template <distance_kind Kind = distance_kind::euclidean, class Arch = native, int D = dynamic, class T, class Sink>
void scan_nearest(const T* q, int d, const T* xt, std::ptrdiff_t stride, index_t begin, index_t end,
                  const index_t* ids, index_t skip, Sink& top) {
  constexpr int W = lanes<T, Arch>();
  index_t j = begin;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, Arch>;
    alignas(64) T buf[W];
    constexpr int U = 8;  // independent fma chains: enough to cover fma latency x throughput
    for (; j + U * W <= end; j += U * W) {
      B dist[U];
      detail::distance_at_unrolled<Kind, D, U>(q, d, xt, stride, j, dist);
      for (int u = 0; u < U; ++u) {
        if (xsimd::any(dist[u] <= B(top.threshold()))) {
          dist[u].store_aligned(buf);
          for (int l = 0; l < W; ++l) {
            if (!(buf[l] <= top.threshold())) continue;
            const index_t id = ids ? ids[j + u * W + l] : j + u * W + l;
            if (id != skip) top.offer(buf[l], id);
          }
        }
      }
    }
    for (; j + W <= end; j += W) {
      const B dist = detail::distance_at<Kind, D, B>(q, d, xt, stride, j);
      if (xsimd::any(dist <= B(top.threshold()))) {
        dist.store_aligned(buf);
        for (int l = 0; l < W; ++l) {
          if (!(buf[l] <= top.threshold())) continue;
          const index_t id = ids ? ids[j + l] : j + l;
          if (id != skip) top.offer(buf[l], id);
        }
      }
    }
  }
  for (; j < end; ++j) {
    const index_t id = ids ? ids[j] : j;
    if (id != skip) top.offer(detail::distance_at<Kind, D, T>(q, d, xt, stride, j), id);
  }
}

/// @brief The k nearest of a small block by ranking: out_d/out_i[0..count) = the k smallest (dist[j], first + j),
/// j in [0, m), position `skip` (relative, or -1) left out; returns count = min(k, candidates).
///
/// rank(j) = #{l : (dist[l], l) < (dist[j], j)} is computed for all j at once with SIMD compares (O(m^2 / W),
/// no data-dependent branches), then every j with rank < k is stored at its rank. For m up to ~100 this beats
/// inserting candidates one by one. Identical results for every Arch. Requires m < 2^24.
template <class Arch = native, class T>
int select_k_by_rank(const T* dist, int m, index_t first, int skip, int k, T* out_d, index_t* out_i) {
  thread_local std::vector<T> slot_d;
  thread_local std::vector<index_t> slot_i;
  if (m <= 0) return 0;
  // rank of the skipped position: everything ranked after it moves up by one
  int skip_rank = m;
  if (skip >= 0) {
    skip_rank = 0;
    for (int l = 0; l < m; ++l) skip_rank += (dist[l] < dist[skip]) | ((dist[l] == dist[skip]) & (l < skip));
  }
  const int count = std::min(k, m - (skip >= 0 ? 1 : 0));
  slot_d.resize(static_cast<std::size_t>(count) + 1);  // slot `count` collects the rejected (branch-free)
  slot_i.resize(static_cast<std::size_t>(count) + 1);
  constexpr int W = lanes<T, Arch>();
  int j = 0;
  if constexpr (W > 1) {
    using B = xsimd::batch<T, Arch>;
    alignas(64) T lane[W];
    for (int l = 0; l < W; ++l) lane[l] = static_cast<T>(l);
    const B lane_pos = B::load_aligned(lane), one(T(1));
    for (; j + W <= m; j += W) {
      const B dj = B::load_unaligned(dist + j);
      B r0(T(0)), r1(T(0));
      // l before the block: (dist[l], l) < (dist[j'], j') iff dist[l] <= dist[j']; after the block: iff <.
      int l = 0;
      for (; l + 1 < j; l += 2) {
        r0 = xsimd::select(B(dist[l]) <= dj, r0 + one, r0);
        r1 = xsimd::select(B(dist[l + 1]) <= dj, r1 + one, r1);
      }
      for (; l < j; ++l) r0 = xsimd::select(B(dist[l]) <= dj, r0 + one, r0);
      for (int t = 0; t < W; ++t) {
        const B dl(dist[j + t]);
        r0 = xsimd::select((dl < dj) | ((dl == dj) & (B(static_cast<T>(t)) < lane_pos)), r0 + one, r0);
      }
      for (l = j + W; l + 1 < m; l += 2) {
        r0 = xsimd::select(B(dist[l]) < dj, r0 + one, r0);
        r1 = xsimd::select(B(dist[l + 1]) < dj, r1 + one, r1);
      }
      for (; l < m; ++l) r0 = xsimd::select(B(dist[l]) < dj, r0 + one, r0);
      B r = r0 + r1;
      r = xsimd::select(r > B(static_cast<T>(skip_rank)), r - one, r);
      const B pos = lane_pos + B(static_cast<T>(j));
      const B slot = xsimd::select((r < B(static_cast<T>(count))) & (pos != B(static_cast<T>(skip))), r,
                                   B(static_cast<T>(count)));
      if constexpr (std::is_same_v<T, float> && sizeof(index_t) == sizeof(float)) {
        using I = xsimd::batch<index_t, Arch>;
        const I where = xsimd::to_int(slot);
        dj.scatter(slot_d.data(), where);
        (xsimd::to_int(pos) + I(first)).scatter(slot_i.data(), where);
      } else {
        alignas(64) T sl[W];
        slot.store_aligned(sl);
        for (int t = 0; t < W; ++t) {
          slot_d[static_cast<std::size_t>(sl[t])] = dist[j + t];
          slot_i[static_cast<std::size_t>(sl[t])] = first + j + t;
        }
      }
    }
  }
  for (; j < m; ++j) {
    int r = 0;
    for (int l = 0; l < m; ++l) r += (dist[l] < dist[j]) | ((dist[l] == dist[j]) & (l < j));
    r -= r > skip_rank;
    const int s = (j != skip && r < count) ? r : count;
    slot_d[s] = dist[j];
    slot_i[s] = first + j;
  }
  std::copy_n(slot_d.begin(), count, out_d);
  std::copy_n(slot_i.begin(), count, out_i);
  return count;
}

}  // namespace hepgnn::simd
