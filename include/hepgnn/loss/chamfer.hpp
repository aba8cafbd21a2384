#pragma once
/// @file chamfer.hpp
/// @brief Chamfer distance between the point sets of two batches (graph g of A against graph g of B), with
/// gradients w.r.t. both sets; the shape of loss/loss.hpp.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/loss.hpp"
#include "hepgnn/simd/distance.hpp"
#include "hepgnn/simd/reduce.hpp"

namespace hepgnn {

/// @brief How the nearest distances of one direction are combined.
enum class chamfer_reduction {
  mean,  ///< mean_i min_j d(a_i, b_j) + mean_j min_i d(a_i, b_j)
  sum    ///< sum_i min_j d(a_i, b_j) + sum_j min_i d(a_i, b_j)
};

/// @brief Point distance used by the Chamfer distance.
enum class chamfer_metric {
  squared_euclidean,  ///< |a - b|^2 (the usual Chamfer loss)
  euclidean           ///< |a - b| (gradient 0 at coincident points)
};

/// @brief Options of hepgnn::chamfer.
struct chamfer_options {
  chamfer_reduction reduction = chamfer_reduction::mean;  ///< mean or sum over each direction
  chamfer_metric metric = chamfer_metric::squared_euclidean;  ///< point distance
};

/// @brief What hepgnn::chamfer reports besides the value: the nearest neighbour of every point in the other set
/// (global row indices, in the same graph).
struct chamfer_details {
  std::vector<index_t> nearest_in_b;  ///< for each row of xa, its nearest row of xb
  std::vector<index_t> nearest_in_a;  ///< for each row of xb, its nearest row of xa
};

namespace detail {

/// @brief Checks two batched point sets for the set losses (same dims, same graph count, non-empty graphs).
template <class T>
void check_set_pair(const matrix<T>& a, const batch& ba, const matrix<T>& b, const batch& bb, const char* who) {
  HEPGNN_CHECK(a.cols() == b.cols(), who, ": a and b must have the same number of columns (dimensions), got ",
               a.cols(), " and ", b.cols());
  HEPGNN_CHECK(a.cols() >= 1, who, ": points need at least one coordinate column, got ", a.cols());
  ba.validate(static_cast<index_t>(a.rows()));
  bb.validate(static_cast<index_t>(b.rows()));
  HEPGNN_CHECK(ba.num_graphs() == bb.num_graphs(), who, ": batches must hold the same number of graphs, got ",
               ba.num_graphs(), " and ", bb.num_graphs());
  for (index_t g = 0; g < ba.num_graphs(); ++g)
    HEPGNN_CHECK(ba.size(g) > 0 && bb.size(g) > 0, who, ": point sets must not be empty, graph ", g, " has ",
                 ba.size(g), " points in a and ", bb.size(g), " in b");
  if (!a.allFinite()) check_finite(a, std::string(who) + ": a");  // the detailed scan only names the culprit
  if (!b.allFinite()) check_finite(b, std::string(who) + ": b");
}

/// @brief Per-thread buffers of the Chamfer kernel.
template <class T>
struct chamfer_scratch {
  std::vector<T> soa, dist, col_min;
  std::vector<T> col_arg;  ///< row of the column minimum, held as T so the update is one same-width blend
  std::vector<index_t> near_b, near_a;  ///< nearest neighbours of one pair when the caller keeps none
};

/// @brief For every point of X (rows [x0, x0+nx)), updates the running minima over Y's points (SoA block yt,
/// ny points) column-wise: ymin[j] = min_i d(x_i, y_j), yarg[j] = its i. Only vertical (lane-wise) SIMD work:
/// horizontal arg-reductions per row are the slow part of a Chamfer kernel.
template <class T>
void nearest_from(const matrix<T>& x, index_t x0, index_t nx, const T* yt, int ny, chamfer_scratch<T>& s,
                  bool with_arg) {
  const int d = static_cast<int>(x.cols());
  s.dist.resize(static_cast<std::size_t>(ny));
  s.col_min.assign(static_cast<std::size_t>(ny), std::numeric_limits<T>::infinity());
  if (with_arg) s.col_arg.assign(static_cast<std::size_t>(ny), T(0));
  T* dist = s.dist.data();
  T* cmin = s.col_min.data();
  for (index_t i = 0; i < nx; ++i) {
    simd::squared_distances_soa(x.data() + static_cast<std::ptrdiff_t>(x0 + i) * d, d, yt, ny, ny, dist);
    if (with_arg)
      simd::update_column_minima(dist, ny, static_cast<T>(i), cmin, s.col_arg.data());
    else
      for (int k = 0; k < ny; ++k) cmin[k] = dist[k] < cmin[k] ? dist[k] : cmin[k];
  }
}

/// @brief Chamfer of one pair: A rows [a0, a0+n), B rows [b0, b0+m). With near_b (n entries) and near_a (m
/// entries), records the nearest neighbours (global rows). Both directions then run as column-wise minima
/// (distances from each a_i to B, then from each b_j to A); the squared distances are bit-identical either way.
template <class T>
double chamfer_pair(const matrix<T>& a, index_t a0, index_t n, const matrix<T>& b, index_t b0, index_t m,
                    const chamfer_options& opt, index_t* near_b, index_t* near_a, chamfer_scratch<T>& s) {
  const int d = static_cast<int>(a.cols());
  const bool root = opt.metric == chamfer_metric::euclidean;
  auto total = [&](int k) {
    double t = 0;
    for (int j = 0; j < k; ++j) t += root ? std::sqrt(static_cast<double>(s.col_min[j])) : static_cast<double>(s.col_min[j]);
    return t;
  };
  if (!near_b) {  // value only: one pass, row minima horizontally, column minima vertically
    s.soa.resize(static_cast<std::size_t>(m) * d);
    simd::transpose_to_soa(b.data() + static_cast<std::ptrdiff_t>(b0) * d, m, d, s.soa.data(), m);
    s.dist.resize(static_cast<std::size_t>(m));
    s.col_min.assign(static_cast<std::size_t>(m), std::numeric_limits<T>::infinity());
    T* dist = s.dist.data();
    T* cmin = s.col_min.data();
    double row_total = 0;
    for (index_t i = 0; i < n; ++i) {
      simd::squared_distances_soa(a.data() + static_cast<std::ptrdiff_t>(a0 + i) * d, d, s.soa.data(), m, m, dist);
      const T best = simd::minimum(dist, m);
      row_total += root ? std::sqrt(static_cast<double>(best)) : static_cast<double>(best);
      for (int k = 0; k < m; ++k) cmin[k] = dist[k] < cmin[k] ? dist[k] : cmin[k];
    }
    const double col_total = total(m);
    if (opt.reduction == chamfer_reduction::mean) return row_total / n + col_total / m;
    return row_total + col_total;
  }
  // with nearest neighbours: b_j -> nearest a, then a_i -> nearest b
  s.soa.resize(static_cast<std::size_t>(m) * d);
  simd::transpose_to_soa(b.data() + static_cast<std::ptrdiff_t>(b0) * d, m, d, s.soa.data(), m);
  nearest_from(a, a0, n, s.soa.data(), m, s, true);
  const double col_total = total(m);
  for (index_t k = 0; k < m; ++k) near_a[k] = a0 + static_cast<index_t>(s.col_arg[k]);
  // a_i -> nearest b
  s.soa.resize(static_cast<std::size_t>(n) * d);
  simd::transpose_to_soa(a.data() + static_cast<std::ptrdiff_t>(a0) * d, n, d, s.soa.data(), n);
  nearest_from(b, b0, m, s.soa.data(), n, s, true);
  const double row_total = total(n);
  for (index_t k = 0; k < n; ++k) near_b[k] = b0 + static_cast<index_t>(s.col_arg[k]);
  if (opt.reduction == chamfer_reduction::mean) return row_total / n + col_total / m;
  return row_total + col_total;
}

/// @brief Adds dvalue * d chamfer / d inputs of one pair (A rows [a0, a0+n), B rows [b0, b0+m)) to ga, gb, from
/// the nearest neighbours chamfer_pair recorded.
template <class T>
void chamfer_pair_gradient(const matrix<T>& a, index_t a0, index_t n, const matrix<T>& b, index_t b0, index_t m,
                           const index_t* near_b, const index_t* near_a, const chamfer_options& opt, T dvalue,
                           matrix<T>& ga, matrix<T>& gb) {
  const bool mean = opt.reduction == chamfer_reduction::mean;
  const Eigen::Index d = a.cols();
  const T wa = mean ? dvalue / static_cast<T>(n) : dvalue;
  const T wb = mean ? dvalue / static_cast<T>(m) : dvalue;
  // one loop per metric, so the per-pair work has no branch on it
  auto pairs = [&]<bool Root>() {
    auto pair_grad = [&](index_t i, index_t j, T w) {  // adds w * d dist(a_i, b_j) to a_i, the opposite to b_j
      const T* ai = a.data() + static_cast<std::ptrdiff_t>(i) * d;
      const T* bj = b.data() + static_cast<std::ptrdiff_t>(j) * d;
      T* gai = ga.data() + static_cast<std::ptrdiff_t>(i) * d;
      T* gbj = gb.data() + static_cast<std::ptrdiff_t>(j) * d;
      T scale = 2 * w;
      if constexpr (Root) {
        T r2 = 0;
        for (Eigen::Index c = 0; c < d; ++c) r2 += (ai[c] - bj[c]) * (ai[c] - bj[c]);
        scale = r2 > 0 ? w / std::sqrt(r2) : T(0);
      }
      for (Eigen::Index c = 0; c < d; ++c) {
        const T t = scale * (ai[c] - bj[c]);
        gai[c] += t;
        gbj[c] -= t;
      }
    };
    for (index_t k = 0; k < n; ++k) pair_grad(a0 + k, near_b[k], wa);
    for (index_t k = 0; k < m; ++k) pair_grad(near_a[k], b0 + k, wb);
  };
  if (opt.metric == chamfer_metric::euclidean)
    pairs.template operator()<true>();
  else
    pairs.template operator()<false>();
}

/// @brief hepgnn::chamfer with the gradient of sum_g dvalue * chamfer_g (dvalue: the caller's d loss / d value_g,
/// the same for every graph; reconstruction_loss passes 1 / G).
template <class T>
vector<T> chamfer_batched(const matrix<T>& xa, const batch& ba, const matrix<T>& xb, const batch& bb,
                          const chamfer_options& options, set_gradients<T>* grad, chamfer_details* details, T dvalue) {
  check_set_pair(xa, ba, xb, bb, "chamfer");
  const index_t G = ba.num_graphs();
  vector<T> out(G);
  if (grad) zero_set_gradients(*grad, xa, vector<T>{}, xb, vector<T>{});
  if (details) {
    details->nearest_in_b.resize(static_cast<std::size_t>(xa.rows()));
    details->nearest_in_a.resize(static_cast<std::size_t>(xb.rows()));
  }
  const bool nearest = grad || details;
  // Each graph touches only its own rows (values, neighbours, gradients), so graphs run in parallel without races.
  parallel_for(G, G > parallel_limits::chamfer_min_graphs, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    thread_local chamfer_scratch<T> s;
    const index_t a0 = ba.begin(g), n = ba.size(g), b0 = bb.begin(g), m = bb.size(g);
    index_t* near_b = nullptr;
    index_t* near_a = nullptr;
    if (details) {
      near_b = details->nearest_in_b.data() + a0;
      near_a = details->nearest_in_a.data() + b0;
    } else if (nearest) {
      s.near_b.resize(static_cast<std::size_t>(n));
      s.near_a.resize(static_cast<std::size_t>(m));
      near_b = s.near_b.data();
      near_a = s.near_a.data();
    }
    out[g] = static_cast<T>(chamfer_pair(xa, a0, n, xb, b0, m, options, near_b, near_a, s));
    if (grad) chamfer_pair_gradient(xa, a0, n, xb, b0, m, near_b, near_a, options, dvalue, grad->xa, grad->xb);
  });
  return out;
}

}  // namespace detail

/// @brief Chamfer distance of every graph pair: set a_g = rows of `xa` in graph g of `ba`, b_g = rows of `xb` in
/// graph g of `bb`. Returns one value per graph (see chamfer_reduction); `grad` gets d(sum_g value_g) / d(xa, xb)
/// (no weights: grad->wa, wb stay empty), `details` the nearest neighbours. Threaded over graphs with OpenMP;
/// results do not depend on the thread count. Throws hepgnn::error on mismatched dimensions or graph counts,
/// empty sets, non-finite points.
template <class T>
vector<T> chamfer(const matrix<T>& xa, const batch& ba, const matrix<T>& xb, const batch& bb,
                  const chamfer_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
                  chamfer_details* details = nullptr) {
  return detail::chamfer_batched(xa, ba, xb, bb, options, grad, details, T(1));
}

/// @brief Chamfer distance between two point sets (the batched call on one graph).
template <class T>
T chamfer(const matrix<T>& xa, const matrix<T>& xb, const chamfer_options& options = {},
          loss_output<set_gradients<T>> grad = nullptr, chamfer_details* details = nullptr) {
  const batch ba = batch::single(static_cast<index_t>(xa.rows())), bb = batch::single(static_cast<index_t>(xb.rows()));
  return chamfer(xa, ba, xb, bb, options, grad, details)[0];
}

}  // namespace hepgnn
