#pragma once
/// @file top_k.hpp
/// @brief Bounded top-k selection over (distance, index) pairs, and a fused "distances + select" scan.
///
/// Order: (distance, index) lexicographically, so ties go to the lower index and the result does not depend on
/// the order in which candidates are offered (the basis of thread-count-independent graph builders).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
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

  /// @brief Appends (d, i) when not full; the caller guarantees it does not precede the pairs held (a list
  /// selected and sorted elsewhere, as cell_grid::nearest() does).
  void push_sorted(T d, index_t i) {
    if (size_ < k_) dist_[size_] = d, idx_[size_++] = i;
  }
  /// @brief Only distances <= this were ever accepted.
  T limit() const { return limit_; }
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

namespace detail {
template <class T, class Arch, bool Scalar = is_scalar_v<Arch>>
struct vec {
  using type = xsimd::batch<T, Arch>;
};
template <class T, class Arch>
struct vec<T, Arch, true> {
  using type = T;
};
/// Bit l set when lane l of the comparison holds.
template <class Arch, class M>
std::uint64_t lane_bits(const M& m) {
  if constexpr (std::is_same_v<M, bool>) {
    return m ? 1u : 0u;
  } else {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
      return static_cast<std::uint64_t>(static_cast<typename M::register_type>(m));
#endif
    alignas(64) bool b[M::size];
    m.store_aligned(b);
    std::uint64_t bits = 0;
    for (std::size_t l = 0; l < M::size; ++l) bits |= std::uint64_t(b[l]) << l;
    return bits;
  }
}
template <class M, class V>
V select_of(const M& m, const V& a, const V& b) {
  if constexpr (std::is_floating_point_v<V>)
    return m ? a : b;
  else
    return xsimd::select(m, a, b);
}
template <class V>
V min_of(const V& a, const V& b) {
  if constexpr (std::is_floating_point_v<V>)
    return a < b ? a : b;
  else
    return xsimd::min(a, b);
}
}  // namespace detail

/// @brief Queries per call of knn_tile (one register tile holds tile_queries x tile_unroll blocks).
inline constexpr int tile_queries = 8;
/// @brief SIMD blocks of points per step of knn_tile.
inline constexpr int tile_unroll = 2;
/// @brief Points per step of knn_tile: tile_block::padded must be a multiple of this.
template <class T, class Arch = native>
constexpr int tile_step() {
  return tile_unroll * lanes<T, Arch>();
}

/// @brief Points of one graph prepared for knn_tile (views into storage the caller owns).
///
/// Position p in [0, padded) of every array; positions >= size are padding (bias +inf). The filter works on
/// coordinates relative to `centre`, so its rounding margin scales with the spread of the graph, not with its
/// distance from the origin. Requirements: every |x - centre|^2 finite and well below the largest T.
template <class T>
struct tile_block {
  const T* centred = nullptr;  ///< SoA of fl(x - centre): coordinate c of position p at centred[c*stride + p]
  const T* bias = nullptr;     ///< |fl(x_p - centre)|^2 per position (fused, in coordinate order), +inf in padding
  const T* centre = nullptr;   ///< d coordinates
  std::ptrdiff_t stride = 0;   ///< distance between coordinate rows, >= padded
  index_t size = 0;            ///< valid positions
  index_t padded = 0;          ///< multiple of tile_step<T, Arch>()
  index_t first = 0;           ///< id of position 0 (ids are first + p)
  T margin = 0;                ///< relative rounding margin of the filter (tile_margin)
  T max_norm = 0;              ///< largest |fl(x_p - centre)|^2
};

/// @brief Relative margin that makes the norm-expansion filter of knn_tile conservative in d dimensions
/// (a few times the worst-case rounding of |a|^2 + |b|^2 - 2 a.b against the fused difference form).
template <class T>
T tile_margin(int d) {
  return static_cast<T>(8 * (d + 4)) * std::numeric_limits<T>::epsilon();
}

/// @brief Candidate buffer of one query in knn_tile (caller-owned so the kernel does not allocate).
template <class T>
struct tile_candidates {
  std::vector<T> value;        ///< filter values
  std::vector<index_t> where;  ///< positions in the block
};

/// @brief Entries a tile_candidates buffer needs for k neighbours (knn_tile grows it only when ties crowd it).
template <class T, class Arch = native>
std::size_t tile_capacity(int k) {
  return static_cast<std::size_t>(2 * (k + 1) + 16 + (tile_unroll + 1) * lanes<T, Arch>());
}

namespace detail {
/// Appends the lanes of `a` flagged in `bits` (and their positions p0 + lane) at val/where + cnt.
template <class Arch, class B, class T>
void append_lanes(const B& a, std::uint64_t bits, index_t p0, T* val, index_t* where, int& cnt) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && !is_scalar_v<Arch> && sizeof(index_t) == 4) {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      const auto m = static_cast<__mmask16>(bits);
      _mm512_mask_compressstoreu_ps(val + cnt, m, a);
      const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32(p0),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
      _mm512_mask_compressstoreu_epi32(where + cnt, m, pos);
      cnt += std::popcount(bits);
      return;
    }
  }
#endif
  if constexpr (is_scalar_v<Arch>) {
    val[cnt] = a;
    where[cnt] = p0;
    cnt += static_cast<int>(bits);
  } else {
    alignas(64) T lane[B::size];
    a.store_aligned(lane);
    for (; bits; bits &= bits - 1) {
      const int l = std::countr_zero(bits);
      val[cnt] = lane[l];
      where[cnt++] = p0 + l;
    }
  }
}
}  // namespace detail

namespace detail {
/// The r-th smallest (0-based) of v[0..n), r < n: the least v_i with #{j : v_j <= v_i} > r. Branch-free
/// O(n^2 / W); reads (and pads with +inf) v up to the next multiple of the SIMD width.
template <class Arch, class T>
T kth_smallest(T* v, int n, int r) {
  using B = typename vec<T, Arch>::type;
  constexpr int W = lanes<T, Arch>();
  const int n_pad = (n + W - 1) / W * W;
  std::fill(v + n, v + n_pad, std::numeric_limits<T>::infinity());
  B best(std::numeric_limits<T>::infinity());
  for (int i = 0; i < n_pad; i += W) {
    const B vi = load<B>(v + i);
    B le(T(0));
    for (int j = 0; j < n; ++j) le = le + select_of(B(v[j]) <= vi, B(T(1)), B(T(0)));
    best = min_of(best, select_of(le > B(static_cast<T>(r)), vi, B(std::numeric_limits<T>::infinity())));
  }
  if constexpr (W > 1) {
    alignas(64) T lane[W];
    best.store_aligned(lane);
    return *std::min_element(lane, lane + W);
  } else {
    return best;
  }
}
}  // namespace detail

/// @brief Exact kNN of up to tile_queries queries against a prepared block: for query u, the k smallest
/// (distance, id) pairs, distance as distances_soa() rounds it (fused differences), written sorted to
/// out_d[u*k ..] / out_i[u*k ..]; count[u] = number found (min(k, candidates)).
///
/// How. A register tile of tile_queries x tile_unroll SIMD blocks accumulates the filter value
/// a = |y - c|^2 - 2 (q - c).(y - c) (one FMA per pair and coordinate; loads shared across queries), which
/// differs from the exact distance minus |q - c|^2 by at most E = margin (|q - c|^2 + max |y - c|^2). Points with
/// a <= (k-th smallest a so far) + 2E are appended to a per-query buffer (compress-stores, no branch per lane)
/// that is pruned to the new bound whenever it holds 2k + 16 of them. At the end only the kept points get their
/// exact distance, and the k smallest are selected. Every true neighbour is kept (its a is within 2E of the
/// k-th), so the result is exact and the same for every Arch, scalar included.
/// @param x     row-major points holding the query rows (query u is row qids[u]) and the block's points
///              (position p is row blk.first + p), d coordinates each
/// @param qf    scratch of tile_queries * d values
/// @param cand  tile_queries candidate buffers
template <class Arch = native, int D = dynamic, class T>
void knn_tile(const T* x, int d, const index_t* qids, int nq, bool skip_self, const tile_block<T>& blk, int k,
              T* qf, tile_candidates<T>* cand, T* out_d, index_t* out_i, index_t* count) {
  constexpr int W = lanes<T, Arch>(), U = tile_unroll, Q = tile_queries;
  constexpr T inf = std::numeric_limits<T>::infinity(), eps = std::numeric_limits<T>::epsilon();
  using B = typename detail::vec<T, Arch>::type;
  const int dd = D == dynamic ? d : D;
  const std::ptrdiff_t stride = blk.stride;
  // The bound uses the (k+1)-th value when the query itself may sit in the buffer (it always passes).
  const int rank = k - 1 + (skip_self ? 1 : 0);
  int limit = 2 * (rank + 1) + 16;
  T err[Q], tq[Q];
  int cnt[Q];
  for (int u = 0; u < Q; ++u) {
    const T* row = x + static_cast<std::ptrdiff_t>(qids[u < nq ? u : 0]) * dd;
    T s(0);
    for (int c = 0; c < dd; ++c) {
      const T v = row[c] - blk.centre[c];
      qf[u * dd + c] = T(-2) * v;
      s = std::fma(v, v, s);
    }
    err[u] = T(2) * blk.margin * (s + blk.max_norm);
    tq[u] = u < nq ? inf : -inf;
    cnt[u] = 0;
  }
  auto reserve = [&] {
    const auto cap = std::max(tile_capacity<T, Arch>(k), static_cast<std::size_t>(limit + (U + 1) * W));
    for (int u = 0; u < Q; ++u)
      if (cand[u].value.size() < cap) {
        cand[u].value.resize(cap);
        cand[u].where.resize(cap);
      }
  };
  reserve();
  // Keeps the buffered candidates with a <= (k-th smallest a) + 2E and makes that the new bound.
  auto prune = [&](int u) {
    if (cnt[u] <= rank) return;
    T* val = cand[u].value.data();
    index_t* at = cand[u].where.data();
    const T kth = detail::kth_smallest<Arch>(val, cnt[u], rank);
    const T bound = kth + err[u] + T(4) * eps * (std::abs(kth) + err[u]);
    int kept = 0;
    for (int r = 0; r < cnt[u]; ++r) {
      val[kept] = val[r];
      at[kept] = at[r];
      kept += val[r] <= bound;
    }
    cnt[u] = kept;
    tq[u] = bound;
  };
  for (index_t j = 0; j < blk.padded; j += U * W) {
    B acc[Q][U];
    for (int v = 0; v < U; ++v) {
      const B b = detail::load<B>(blk.bias + j + v * W);
      for (int u = 0; u < Q; ++u) acc[u][v] = b;
    }
    for (int c = 0; c < dd; ++c) {
      B y[U];
      for (int v = 0; v < U; ++v) y[v] = detail::load<B>(blk.centred + c * stride + j + v * W);
      for (int u = 0; u < Q; ++u) {
        const B qc(qf[u * dd + c]);
        for (int v = 0; v < U; ++v) acc[u][v] = detail::fmadd(qc, y[v], acc[u][v]);
      }
    }
    std::uint64_t bits[Q][U], any = 0;
    for (int u = 0; u < Q; ++u) {
      const B t(tq[u]);
      for (int v = 0; v < U; ++v) any |= bits[u][v] = detail::lane_bits<Arch>(acc[u][v] <= t);
    }
    if (!any) continue;
    for (int u = 0; u < Q; ++u) {
      for (int v = 0; v < U; ++v)
        detail::append_lanes<Arch>(acc[u][v], bits[u][v], j + v * W, cand[u].value.data(), cand[u].where.data(),
                                   cnt[u]);
      if (cnt[u] >= limit) {
        prune(u);
        if (2 * cnt[u] > limit) {  // many ties within the bound: make room instead of pruning every step
          limit *= 2;
          reserve();
        }
      }
    }
  }
  // Exact distances of the kept candidates, then the k smallest by (distance, id).
  for (int u = 0; u < nq; ++u) {
    prune(u);
    const T* q = x + static_cast<std::ptrdiff_t>(qids[u]) * dd;
    T* val = cand[u].value.data();  // reused for the exact distances: independent chains, then the selection
    const index_t* at = cand[u].where.data();
    for (int r = 0; r < cnt[u]; ++r) {
      const T* y = x + static_cast<std::ptrdiff_t>(blk.first + std::min(at[r], blk.size - 1)) * dd;
      T e(0);
      for (int c = 0; c < dd; ++c) e = std::fma(q[c] - y[c], q[c] - y[c], e);
      val[r] = e;
    }
    top_k<T> top(out_d + static_cast<std::ptrdiff_t>(u) * k, out_i + static_cast<std::ptrdiff_t>(u) * k, k);
    for (int r = 0; r < cnt[u]; ++r) {
      const index_t id = blk.first + at[r];
      if (at[r] < blk.size && !(skip_self && id == qids[u])) top.offer(val[r], id);
    }
    count[u] = top.size();
  }
}

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
      detail::append_lanes<Arch>(dj, detail::lane_bits<Arch>(dj <= B(bound)), first + j, cd.data(), ci.data(), c);
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
