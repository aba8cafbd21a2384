#pragma once
/// @file grid.hpp
/// @brief hepgnn::cell_grid: a uniform cell list over the points of one graph in 1 to 3 dimensions, so kNN and
/// radius searches on large low-dimensional clouds visit only nearby cells instead of every point.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/simd/collect.hpp"
#include "hepgnn/simd/top_k.hpp"

namespace hepgnn {


/// @brief Cell list over points [begin, end) of a row-major point array with D (1..3) coordinates.
///
/// Points are counting-sorted by cell (x fastest), their coordinates stored transposed in that order, so each
/// row of cells along x is one contiguous SIMD block. Searches are exact: the cube of visited cells grows ring
/// by ring until the current threshold lies (with a rounding margin) inside it.
template <class T, int D>
class cell_grid {
  static_assert(D >= 1 && D <= 3, "hepgnn::cell_grid: D must be 1, 2 or 3");

 public:
  /// @brief Scratch entry of nearest(): a (distance, id) pair, packed (simd::candidate_key).
  using candidate = typename simd::candidate_key<T>::type;

  /// @brief Builds the list; `points_per_cell` sets the mean occupancy of the occupied bounding box.
  cell_grid(const T* x, index_t begin, index_t end, double points_per_cell) : m_(end - begin) {
    T lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int c = 0; c < D; ++c) {
      lo[c] = std::numeric_limits<T>::max();
      hi[c] = std::numeric_limits<T>::lowest();
    }
    for (index_t i = begin; i < end; ++i)
      for (int c = 0; c < D; ++c) {
        lo[c] = std::min(lo[c], x[static_cast<std::ptrdiff_t>(i) * D + c]);
        hi[c] = std::max(hi[c], x[static_cast<std::ptrdiff_t>(i) * D + c]);
      }
    double volume = 1, scale = 0;
    int spread = 0;
    for (int c = 0; c < D; ++c) {
      const double ext = static_cast<double>(hi[c]) - static_cast<double>(lo[c]);
      if (ext > 0) volume *= ext, ++spread;
      scale = std::max({scale, std::abs(static_cast<double>(lo[c])), std::abs(static_cast<double>(hi[c]))});
    }
    double h = spread ? std::pow(volume * points_per_cell / std::max<index_t>(m_, 1), 1.0 / spread) : 1.0;
    for (;;) {  // cap the cell count for very uneven extents
      double cells = 1;
      for (int c = 0; c < D; ++c)
        cells *= std::min(1e9, std::floor((static_cast<double>(hi[c]) - static_cast<double>(lo[c])) / h) + 1);
      if (cells <= 4.0 * m_ + 64) break;
      h *= 1.5;
    }
    h_ = h;
    inv_h_ = 1.0 / h;
    for (int c = 0; c < 3; ++c) {
      lo_[c] = lo[c];
      n_[c] = c < D ? static_cast<int>(std::floor((static_cast<double>(hi[c]) - static_cast<double>(lo[c])) / h) + 1) : 1;
    }
    constexpr double eps = std::numeric_limits<T>::epsilon();
    slack_ = 8 * eps * (scale + h);
    rel_ = 16 * eps * D;

    const std::size_t cells = static_cast<std::size_t>(n_[0]) * n_[1] * n_[2];
    cell_start_.assign(cells + 1, 0);
    std::vector<index_t> cell_of(static_cast<std::size_t>(m_));
    for (index_t i = 0; i < m_; ++i) {
      const T* p = x + static_cast<std::ptrdiff_t>(begin + i) * D;
      int cc[3] = {0, 0, 0};
      for (int c = 0; c < D; ++c) cc[c] = coord(p[c], c);
      cell_of[i] = flat(cc[0], cc[1], cc[2]);
      ++cell_start_[cell_of[i] + 1];
    }
    for (std::size_t c = 0; c < cells; ++c) cell_start_[c + 1] += cell_start_[c];
    // each coordinate row is padded with +inf, so SIMD blocks may run past the end of a cell run (distance +inf);
    // ids_ is padded as far, so a register of ids can be loaded wherever one of distances can
    stride_ = m_ + pad;
    ids_.assign(static_cast<std::size_t>(stride_), -1);
    xt_.assign(static_cast<std::size_t>(stride_) * D, std::numeric_limits<T>::infinity());
    std::vector<index_t> next(cell_start_.begin(), cell_start_.end() - 1);
    for (index_t i = 0; i < m_; ++i) {
      const index_t pos = next[cell_of[i]]++;
      ids_[pos] = begin + i;
      for (int c = 0; c < D; ++c) xt_[static_cast<std::size_t>(c) * stride_ + pos] = x[static_cast<std::ptrdiff_t>(begin + i) * D + c];
    }
  }

  /// @brief Number of points.
  index_t size() const { return m_; }
  /// @brief Global id of the point at sorted position p (queries in this order touch memory in order).
  index_t id_at(index_t p) const { return ids_[p]; }

  /// @brief The same k nearest points as search() with `top` as the sink (exact, sorted, ties to the lower id),
  /// found by box queries: every point within sqrt(tau) of q lies in the cells that the ball touches, so once at
  /// least k points of those cells are within tau, the k nearest are among them. tau starts at `guess` (the
  /// previous query's k-th distance with a margin: neighbouring queries have similar ones; 0: from the mean
  /// density) and grows until k are in or it reaches top's limit. Distances are SIMD over contiguous cell runs and
  /// the k nearest of the candidates are chosen once, instead of a sorted insertion per candidate, which made
  /// search() 2-3x slower for k = 32: by SIMD ranks of the packed keys (simd::smallest_distinct; float), else
  /// nth_element and a sort. `cand` is scratch; `guess` is updated for the next query.
  template <class Arch = simd::native>
  void nearest(const T* q, index_t skip, simd::top_k<T>& top, T& guess,
               std::vector<candidate>& cand) const {
    const int k = top.capacity();
    const T limit = top.limit();
    if (k == 0 || m_ == 0) return;
    T tau = guess > 0 ? guess : density_guess(k);
    if (!(tau < limit)) tau = limit;
    // beyond this every point of the grid is within tau (fewer than k points in all: stop growing)
    double far2 = 0;
    for (int c = 0; c < D; ++c) {
      const double v = q[c], a = std::abs(v - lo_[c]), b = std::abs(lo_[c] + n_[c] * h_ - v);
      far2 += std::max(a, b) * std::max(a, b);
    }
    far2 = far2 * (1 + rel_) + slack_;
    std::size_t found = 0;  // cand[0, found): the candidates (cand is kept longer, as scratch)
    for (;;) {
      found = collect<Arch>(q, skip, tau, cand);
      if (found >= static_cast<std::size_t>(k) || !(tau < limit) || static_cast<double>(tau) >= far2) break;
      tau = tau < limit / 4 ? tau * 4 : limit;  // twice the radius
    }
    const int n = std::min(k, static_cast<int>(found));
    const candidate* best = cand.data();
    if constexpr (std::is_integral_v<candidate>) {  // packed keys (float): ranked by SIMD compares, after the list
      if (cand.size() < found + n + 1) cand.resize(found + n + 1);
      simd::smallest_distinct<Arch>(cand.data(), static_cast<int>(found), n, cand.data() + found);
      best = cand.data() + found;
    } else {
      const auto end = cand.begin() + static_cast<std::ptrdiff_t>(found);
      if (n < static_cast<int>(found)) std::nth_element(cand.begin(), cand.begin() + (k - 1), end);
      std::sort(cand.begin(), cand.begin() + n);
    }
    for (int j = 0; j < n; ++j) top.push_sorted(packing::distance(best[j]), packing::id(best[j]));
    guess = n == k ? packing::distance(best[k - 1]) * T(1.3) : T(0);
  }

  /// @brief Offers to `sink` every point that can be within its threshold of q (all the exact answers, plus
  /// some that the sink rejects); the id `skip` is never offered. Sink as in simd::scan_nearest().
  template <class Arch = simd::native, class Sink>
  void search(const T* q, index_t skip, Sink& sink) const {
    int qc[3] = {0, 0, 0};
    for (int c = 0; c < D; ++c) qc[c] = coord(q[c], c);
    int max_r = 0;
    for (int c = 0; c < D; ++c) max_r = std::max({max_r, qc[c], n_[c] - 1 - qc[c]});
    for (int r = 0; r <= max_r; ++r) {
      const int z0 = std::max(0, qc[2] - r), z1 = std::min(n_[2] - 1, qc[2] + r);
      const int y0 = std::max(0, qc[1] - r), y1 = std::min(n_[1] - 1, qc[1] + r);
      for (int z = z0; z <= z1; ++z) {
        const double gz = gap2(q, 2, z);
        for (int y = y0; y <= y1; ++y) {
          const double gyz = gz + gap2(q, 1, y);
          if (gyz > limit(sink)) continue;
          const bool shell = (D >= 3 && std::abs(z - qc[2]) == r) || (D >= 2 && std::abs(y - qc[1]) == r);
          if (shell) {
            int xa = std::max(0, qc[0] - r), xb = std::min(n_[0] - 1, qc[0] + r);
            while (xa <= xb && gyz + gap2(q, 0, xa) > limit(sink)) ++xa;
            while (xb >= xa && gyz + gap2(q, 0, xb) > limit(sink)) --xb;
            if (xa <= xb) scan<Arch>(q, cell_start_[flat(xa, y, z)], cell_start_[flat(xb, y, z) + 1], skip, sink);
          } else {
            for (const int xx : {qc[0] - r, qc[0] + r}) {
              if (xx < 0 || xx >= n_[0] || (r == 0 && xx != qc[0])) continue;
              if (gyz + gap2(q, 0, xx) > limit(sink)) continue;
              scan<Arch>(q, cell_start_[flat(xx, y, z)], cell_start_[flat(xx, y, z) + 1], skip, sink);
              if (r == 0) break;
            }
          }
        }
      }
      // Everything outside the visited cube is at least `bound` away from q.
      double bound = std::numeric_limits<double>::infinity();
      for (int c = 0; c < D; ++c) {
        if (qc[c] - r > 0) bound = std::min(bound, static_cast<double>(q[c]) - (lo_[c] + (qc[c] - r) * h_));
        if (qc[c] + r < n_[c] - 1) bound = std::min(bound, lo_[c] + (qc[c] + r + 1) * h_ - static_cast<double>(q[c]));
      }
      if (bound == std::numeric_limits<double>::infinity()) break;
      bound -= slack_;
      if (bound > 0 && limit(sink) < bound * bound) break;
    }
  }

 private:
  /// Squared radius holding about k points at the mean density of the box, with a margin.
  T density_guess(int k) const {
    const double unit_ball = D == 1 ? 2.0 : D == 2 ? 3.14159265358979 : 4.18879020478639;
    const double rho = static_cast<double>(m_) / (static_cast<double>(n_[0]) * n_[1] * n_[2] * std::pow(h_, D));
    const double r = 1.2 * std::pow(k / (unit_ball * rho), 1.0 / D);
    return static_cast<T>(std::min(r * r, static_cast<double>(std::numeric_limits<T>::max())));
  }
  int coord(double v, int c) const {
    const double t = (v - lo_[c]) * inv_h_;
    return t <= 0 ? 0 : t >= n_[c] - 1 ? n_[c] - 1 : static_cast<int>(t);
  }
  index_t flat(int xx, int y, int z) const { return (static_cast<index_t>(z) * n_[1] + y) * n_[0] + xx; }
  /// Squared gap between q and the slab of cell `cell` along dimension c, shrunk by the rounding slack.
  double gap2(const T* q, int c, int cell) const {
    if (c >= D) return 0;
    const double v = q[c], a = lo_[c] + cell * h_ - v, b = v - (lo_[c] + (cell + 1) * h_);
    const double g = std::max({0.0, a - slack_, b - slack_});
    return g * g;
  }
  template <class Sink>
  double limit(const Sink& sink) const {
    return static_cast<double>(sink.threshold()) * (1 + rel_);
  }
  template <class Arch, class Sink>
  void scan(const T* q, index_t a, index_t b, index_t skip, Sink& sink) const {
    simd::scan_nearest<simd::distance_kind::euclidean, Arch, D>(q, D, xt_.data(), stride_, a, b, ids_.data(), skip,
                                                                 sink);
  }
  /// Writes to cand[0, count) every point of the cells that the ball of squared radius tau around q touches whose
  /// distance is <= tau (the id `skip` excepted), as (distance, id); returns count. cand grows as needed and may
  /// be longer than count (the SIMD path stores whole registers past the last candidate).
  template <class Arch>
  std::size_t collect(const T* q, index_t skip, T tau, std::vector<candidate>& cand) const {
    const double lim = static_cast<double>(tau) * (1 + rel_), half = std::sqrt(lim) + slack_;
    int lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int c = 0; c < D; ++c) lo[c] = coord(q[c] - half, c), hi[c] = coord(q[c] + half, c);
    std::size_t count = 0;
    for (int z = lo[2]; z <= hi[2]; ++z) {
      const double gz = gap2(q, 2, z);
      for (int y = lo[1]; y <= hi[1]; ++y) {
        const double gyz = gz + gap2(q, 1, y);
        if (gyz > lim) continue;
        int xa = lo[0], xb = hi[0];
        while (xa <= xb && gyz + gap2(q, 0, xa) > lim) ++xa;
        while (xb >= xa && gyz + gap2(q, 0, xb) > lim) --xb;
        if (xa > xb) continue;
        const index_t a = cell_start_[flat(xa, y, z)], b = cell_start_[flat(xb, y, z) + 1];
        // room for every point of the run and a whole register past it
        if (const std::size_t need = count + static_cast<std::size_t>(b - a) + pad; cand.size() < need)
          cand.resize(2 * need);
        count = collect_run<Arch>(q, a, b, skip, tau, cand.data(), count);
      }
    }
    return count;
  }
  /// collect() over the sorted positions [a, b): appends at out + count, returns the new count.
  template <class Arch>
  std::size_t collect_run(const T* q, index_t a, index_t b, index_t skip, T tau, candidate* out, std::size_t count) const {
    return simd::collect_within<simd::distance_kind::euclidean, Arch, D>(q, D, xt_.data(), stride_, a, b,
                                                                        ids_.data(), skip, tau, out, count);
  }

  using packing = simd::candidate_key<T>;
  static constexpr index_t pad = simd::collect_slack;  // >= the widest SIMD block
  index_t m_, stride_ = 0;
  double lo_[3] = {0, 0, 0}, h_ = 1, inv_h_ = 1, slack_ = 0, rel_ = 0;
  int n_[3] = {1, 1, 1};
  std::vector<index_t> cell_start_, ids_;
  std::vector<T> xt_;
};

}  // namespace hepgnn
