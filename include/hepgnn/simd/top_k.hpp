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
/// Appends the lanes of `a` flagged in `bits` (and their positions p0 + lane) at val/where + cnt; `capacity` is the
/// buffers' size.
template <class Arch, class B, class T>
void append_lanes(const B& a, std::uint64_t bits, index_t p0, T* val, index_t* where, int& cnt,
                  std::size_t capacity) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && !is_scalar_v<Arch> && sizeof(index_t) == 4) {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      const auto m = static_cast<__mmask16>(bits);
      const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32(p0),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
      if (static_cast<std::size_t>(cnt) + 16 <= capacity) {
        // Compress in registers and store whole registers: the memory form of compress is microcoded on AMD Zen 4
        // (about a hundred cycles each), the register form is fast on every AVX-512 CPU.
        _mm512_storeu_ps(val + cnt, _mm512_maskz_compress_ps(m, a));
        _mm512_storeu_si512(where + cnt, _mm512_maskz_compress_epi32(m, pos));
      } else {
        _mm512_mask_compressstoreu_ps(val + cnt, m, a);
        _mm512_mask_compressstoreu_epi32(where + cnt, m, pos);
      }
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
                                   cnt[u], cand[u].value.size());
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

}  // namespace hepgnn::simd

// The selection kernels (argmax_argmin, smallest_distinct, select_k_by_rank) live in select.hpp; included here so
// that this header keeps offering them.
#include "hepgnn/simd/select.hpp"
