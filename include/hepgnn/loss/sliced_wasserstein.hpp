#pragma once
/// @file sliced_wasserstein.hpp
/// @brief Sliced Wasserstein distance: the mean over random unit directions of the 1-D Wasserstein-p distance
/// between the projected weighted point sets (sorted 1-D transport), with gradients; batched over graphs. The
/// shape of loss/loss.hpp.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::sliced_wasserstein.
struct sliced_wasserstein_options {
  int projections = 50;           ///< number of random directions, >= 1
  std::uint64_t seed = 0x5EED;    ///< seed of the hepgnn::rng that draws the directions
  double p = 2;                   ///< order of the 1-D Wasserstein distance (finite, >= 1)
  bool root = true;               ///< return (mean_k W_p^p)^(1/p) (POT's sliced_wasserstein_distance); else the mean
};

/// @brief The directions used for d dimensions: `count` unit rows, from normal draws of hepgnn::rng(seed) in
/// row order (direction k, coordinate c is the (k d + c)-th draw before normalisation).
inline matrix<double> sliced_wasserstein_directions(int d, int count, std::uint64_t seed) {
  HEPGNN_CHECK(d >= 1 && count >= 1, "sliced_wasserstein_directions: need d >= 1 and count >= 1, got ", d, " and ",
               count);
  rng r(seed);
  matrix<double> dirs(count, d);
  for (int k = 0; k < count; ++k) {
    double n2 = 0;
    do {
      for (int c = 0; c < d; ++c) dirs(k, c) = r.normal();
      n2 = dirs.row(k).squaredNorm();
    } while (n2 == 0);
    dirs.row(k) /= std::sqrt(n2);
  }
  return dirs;
}

namespace detail {

/// @brief Per-thread buffers of one sliced pair.
struct sliced_scratch {
  std::vector<double> pa, pb, wa, wb, ga, gb;
  std::vector<int> ia, ib;
};

/// @brief W_p^p between weighted 1-D samples (weights sum to 1 on both sides) by the monotone (quantile)
/// coupling; adds d/dpa, d/dpb scaled by `scale` into ga, gb when given.
inline double wasserstein_1d(const std::vector<double>& pa, const std::vector<double>& wa,
                             const std::vector<double>& pb, const std::vector<double>& wb, double p,
                             std::vector<int>& ia, std::vector<int>& ib, double* ga, double* gb, double scale) {
  const int n = static_cast<int>(pa.size()), m = static_cast<int>(pb.size());
  ia.resize(n);
  ib.resize(m);
  std::iota(ia.begin(), ia.end(), 0);
  std::iota(ib.begin(), ib.end(), 0);
  std::sort(ia.begin(), ia.end(), [&](int x, int y) { return pa[x] < pa[y] || (pa[x] == pa[y] && x < y); });
  std::sort(ib.begin(), ib.end(), [&](int x, int y) { return pb[x] < pb[y] || (pb[x] == pb[y] && x < y); });
  double total = 0, ra = wa[ia[0]], rb = wb[ib[0]];
  int i = 0, j = 0;
  while (i < n && j < m) {
    const double f = std::min(ra, rb);
    const double diff = pa[ia[i]] - pb[ib[j]], ad = std::abs(diff);
    total += f * (p == 2 ? ad * ad : p == 1 ? ad : std::pow(ad, p));
    if (ga && f > 0 && ad > 0) {
      const double dd = scale * f * p * (p == 2 ? diff : p == 1 ? (diff > 0 ? 1.0 : -1.0) : std::pow(ad, p - 1) * (diff > 0 ? 1 : -1));
      ga[ia[i]] += dd;
      gb[ib[j]] -= dd;
    }
    ra -= f;
    rb -= f;
    // advance the side that ran out (both on a tie); the last pieces absorb rounding
    const bool next_a = ra <= rb, next_b = rb <= ra;
    if (next_a && ++i < n) ra += wa[ia[i]];
    if (next_b && ++j < m) rb += wb[ib[j]];
    if (next_a && i < n) ra = std::max(ra, 0.0);
    if (next_b && j < m) rb = std::max(rb, 0.0);
  }
  return total;
}

/// @brief One pair: rows [a0, a0+n) of xa and [b0, b0+m) of xb; returns the value, adds gradients.
template <class T>
double sliced_pair(const matrix<T>& xa, const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb,
                   const vector<T>& wb, Eigen::Index b0, Eigen::Index m, const matrix<double>& dirs,
                   const sliced_wasserstein_options& opt, sliced_scratch& s, set_gradients<T>* gradients) {
  const Eigen::Index d = xa.cols();
  const double Wa = weight_sum(wa, a0, n), Wb = weight_sum(wb, b0, m);
  s.wa.resize(n);
  s.wb.resize(m);
  for (Eigen::Index i = 0; i < n; ++i) s.wa[i] = (wa.size() ? static_cast<double>(wa[a0 + i]) : 1.0) / Wa;
  for (Eigen::Index j = 0; j < m; ++j) s.wb[j] = (wb.size() ? static_cast<double>(wb[b0 + j]) : 1.0) / Wb;
  s.pa.resize(n);
  s.pb.resize(m);
  const int K = static_cast<int>(dirs.rows());
  const bool grad = gradients != nullptr;
  if (grad) {
    s.ga.assign(static_cast<std::size_t>(n) * K, 0.0);
    s.gb.assign(static_cast<std::size_t>(m) * K, 0.0);
  }
  double mean = 0;
  for (int k = 0; k < K; ++k) {
    for (Eigen::Index i = 0; i < n; ++i) {
      double t = 0;
      for (Eigen::Index c = 0; c < d; ++c) t += static_cast<double>(xa(a0 + i, c)) * dirs(k, c);
      s.pa[i] = t;
    }
    for (Eigen::Index j = 0; j < m; ++j) {
      double t = 0;
      for (Eigen::Index c = 0; c < d; ++c) t += static_cast<double>(xb(b0 + j, c)) * dirs(k, c);
      s.pb[j] = t;
    }
    mean += wasserstein_1d(s.pa, s.wa, s.pb, s.wb, opt.p, s.ia, s.ib, grad ? s.ga.data() + n * k : nullptr,
                           grad ? s.gb.data() + m * k : nullptr, 1.0 / K);
  }
  mean /= K;
  const double value = opt.root ? std::pow(mean, 1.0 / opt.p) : mean;
  if (grad) {
    // d value / d mean; zero at mean = 0 (identical sets), where the root is not differentiable
    const double outer = opt.root ? (mean > 0 ? std::pow(mean, 1.0 / opt.p - 1) / opt.p : 0.0) : 1.0;
    for (int k = 0; k < K; ++k) {
      for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index c = 0; c < d; ++c)
          gradients->xa(a0 + i, c) += static_cast<T>(outer * s.ga[n * k + i] * dirs(k, c));
      for (Eigen::Index j = 0; j < m; ++j)
        for (Eigen::Index c = 0; c < d; ++c)
          gradients->xb(b0 + j, c) += static_cast<T>(outer * s.gb[m * k + j] * dirs(k, c));
    }
  }
  return value;
}

inline void check_sliced_options(const sliced_wasserstein_options& o) {
  HEPGNN_CHECK(o.projections >= 1, "sliced_wasserstein: projections must be >= 1, got ", o.projections);
  HEPGNN_CHECK(std::isfinite(o.p) && o.p >= 1, "sliced_wasserstein: p must be finite and >= 1, got ", o.p);
}

}  // namespace detail

/// @brief Batched sliced Wasserstein: graph g of ba (rows of xa, weights wa) against graph g of bb, with the
/// same options.projections directions (sliced_wasserstein_directions(d, projections, seed)) for every graph.
/// Empty weight vectors mean uniform weights; weights are normalised per set. One value per graph; `grad` gets
/// d(sum_g value_g) / d coordinates (the weights are not differentiated: grad->wa, wb stay empty). Threaded over
/// graphs with OpenMP; results do not depend on the thread count.
template <class T>
vector<T> sliced_wasserstein(const matrix<T>& xa, const vector<T>& wa, const batch& ba, const matrix<T>& xb,
                             const vector<T>& wb, const batch& bb, const sliced_wasserstein_options& options = {},
                             loss_output<set_gradients<T>> grad = nullptr) {
  detail::check_sliced_options(options);
  detail::check_transport_inputs(xa, wa, xb, wb, ground_cost{}, "sliced_wasserstein");
  ba.validate(static_cast<index_t>(xa.rows()));
  bb.validate(static_cast<index_t>(xb.rows()));
  HEPGNN_CHECK(ba.num_graphs() == bb.num_graphs(),
               "sliced_wasserstein: batches must hold the same number of graphs, got ", ba.num_graphs(), " and ",
               bb.num_graphs());
  const index_t G = ba.num_graphs();
  emd_options eo;
  for (index_t g = 0; g < G; ++g)
    detail::check_emd_pair(wa, ba.begin(g), ba.size(g), wb, bb.begin(g), bb.size(g), eo, "sliced_wasserstein", g);
  const matrix<double> dirs =
      sliced_wasserstein_directions(static_cast<int>(xa.cols()), options.projections, options.seed);
  vector<T> value(G);
  if (grad) detail::zero_set_gradients(*grad, xa, wa, xb, wb, /*weights*/ false);
  parallel_for_dynamic(G, true, parallel_limits::transport_chunk, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    thread_local detail::sliced_scratch s;
    value[g] = static_cast<T>(detail::sliced_pair(xa, wa, ba.begin(g), ba.size(g), xb, wb, bb.begin(g), bb.size(g),
                                                  dirs, options, s, grad));
  });
  return value;
}

/// @brief Batched sliced Wasserstein with uniform weights on both sides.
template <class T>
vector<T> sliced_wasserstein(const matrix<T>& xa, const batch& ba, const matrix<T>& xb, const batch& bb,
                             const sliced_wasserstein_options& options = {},
                             loss_output<set_gradients<T>> grad = nullptr) {
  return sliced_wasserstein(xa, vector<T>{}, ba, xb, vector<T>{}, bb, options, grad);
}

/// @brief Sliced Wasserstein between two point sets (the batched call on one graph).
template <class T>
T sliced_wasserstein(const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb, const vector<T>& wb,
                     const sliced_wasserstein_options& options = {},
                     loss_output<set_gradients<T>> grad = nullptr) {
  return sliced_wasserstein(xa, wa, batch::single(static_cast<index_t>(xa.rows())), xb, wb,
                            batch::single(static_cast<index_t>(xb.rows())), options, grad)[0];
}

/// @brief Sliced Wasserstein between two point sets with uniform weights.
template <class T>
T sliced_wasserstein(const matrix<T>& xa, const matrix<T>& xb, const sliced_wasserstein_options& options = {},
                     loss_output<set_gradients<T>> grad = nullptr) {
  return sliced_wasserstein(xa, vector<T>{}, xb, vector<T>{}, options, grad);
}

}  // namespace hepgnn
