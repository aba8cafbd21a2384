#pragma once
/// @file frechet.hpp
/// @brief Distances between two samples of feature vectors (one row per jet): the Frechet distance of their
/// Gaussian fits, JetNet's FPD (Frechet physics distance extrapolated to infinitely many samples) and KPD (kernel
/// physics distance: unbiased MMD^2 with a polynomial kernel), arXiv:2211.10295, as jetnet.evaluation.fpd / kpd.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <Eigen/Eigenvalues>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/metrics/eval_batches.hpp"

namespace hepgnn {

/// @brief Mean and covariance (unbiased, n - 1, as numpy.cov) of a sample.
struct gaussian_fit {
  vector<double> mean;
  matrix<double> cov;
};

/// @brief Mean and covariance of the rows of x listed in `rows` (all rows when empty). Needs two rows or more.
inline gaussian_fit fit_gaussian(const matrix<double>& x, std::span<const index_t> rows = {}) {
  const Eigen::Index n = rows.empty() ? x.rows() : static_cast<Eigen::Index>(rows.size());
  HEPGNN_CHECK(n >= 2, "fit_gaussian: need at least 2 rows for a covariance, got ", n);
  matrix<double> c(n, x.cols());
  for (Eigen::Index i = 0; i < n; ++i) c.row(i) = rows.empty() ? x.row(i) : x.row(rows[static_cast<std::size_t>(i)]);
  gaussian_fit g;
  g.mean = c.colwise().mean().transpose();
  c.rowwise() -= g.mean.transpose();
  g.cov = (c.transpose() * c) / static_cast<double>(n - 1);
  return g;
}

/// @brief tr sqrt(S1 S2) for symmetric positive semi-definite S1, S2: the eigenvalues of S1 S2 are those of the
/// symmetric R S2 R with R = S1^(1/2), so both roots come from Eigen's symmetric eigen-solver. Eigenvalues below
/// d * eps * the largest (round-off: negative ones, and the zeros of a rank-deficient covariance) count as 0, since
/// their square roots would turn round-off into ~sqrt(eps) each. With that the value does not depend on the order
/// of S1 and S2 (to ~1e-13 on JetNet's FPND statistics against 26 jets); scipy's sqrtm, which JetNet uses, keeps
/// those roots and so differs from it by up to ~1e-6 relative when a covariance is singular, and agrees to
/// round-off when both are well conditioned.
inline double trace_sqrt_product(const matrix<double>& s1, const matrix<double>& s2) {
  const double tiny = static_cast<double>(s1.rows()) * std::numeric_limits<double>::epsilon();
  auto clamp = [tiny](const Eigen::VectorXd& e) {
    const double cut = tiny * std::max(e.maxCoeff(), 0.0);
    return Eigen::VectorXd(e.unaryExpr([cut](double v) { return v > cut ? v : 0.0; }));
  };
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> e1(Eigen::MatrixXd(0.5 * (s1 + s1.transpose())));
  HEPGNN_CHECK(e1.info() == Eigen::Success, "frechet_distance: eigen-decomposition of sigma1 failed");
  const Eigen::VectorXd r = clamp(e1.eigenvalues()).cwiseSqrt();
  const Eigen::MatrixXd root = e1.eigenvectors() * r.asDiagonal() * e1.eigenvectors().transpose();
  const Eigen::MatrixXd m = root * Eigen::MatrixXd(s2) * root;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> e2(Eigen::MatrixXd(0.5 * (m + m.transpose())), Eigen::EigenvaluesOnly);
  HEPGNN_CHECK(e2.info() == Eigen::Success, "frechet_distance: eigen-decomposition of sigma1^1/2 sigma2 sigma1^1/2 failed");
  return clamp(e2.eigenvalues()).cwiseSqrt().sum();
}

/// @brief Frechet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)).
inline double frechet_distance(const vector<double>& mu1, const matrix<double>& s1, const vector<double>& mu2,
                               const matrix<double>& s2) {
  const Eigen::Index d = mu1.size();
  HEPGNN_CHECK(d >= 1 && mu2.size() == d, "frechet_distance: mu1 and mu2 must have the same length >= 1, got ", d,
               " and ", mu2.size());
  HEPGNN_CHECK(s1.rows() == d && s1.cols() == d && s2.rows() == d && s2.cols() == d,
               "frechet_distance: sigma1 and sigma2 must be ", d, " x ", d, ", got ", s1.rows(), " x ", s1.cols(),
               " and ", s2.rows(), " x ", s2.cols());
  HEPGNN_CHECK(mu1.allFinite() && mu2.allFinite() && s1.allFinite() && s2.allFinite(),
               "frechet_distance: mu and sigma must be finite");
  return (mu1 - mu2).squaredNorm() + s1.trace() + s2.trace() - 2 * trace_sqrt_product(s1, s2);
}
/// @brief Frechet distance of the Gaussian fits of two samples.
inline double frechet_distance(const gaussian_fit& a, const gaussian_fit& b) {
  return frechet_distance(a.mean, a.cov, b.mean, b.cov);
}

/// @brief Both samples divided column by column by the largest |value| of the real sample's column (1 where that
/// is 0): JetNet's _normalise_features.
inline void normalise_features(matrix<double>& real, matrix<double>& gen) {
  for (Eigen::Index c = 0; c < real.cols(); ++c) {
    double m = real.col(c).cwiseAbs().maxCoeff();
    if (m == 0) m = 1;
    real.col(c) /= m;
    gen.col(c) /= m;
  }
}

/// @brief A value with its error.
struct distance_estimate {
  double value = 0, error = 0;
};

/// @brief Least squares y = a + b x with a, b >= 0 (scipy curve_fit with bounds ([0, 0], [inf, inf]), as JetNet's
/// FPD fit) and the error of a: sqrt of the (0, 0) entry of SSR / (m - 2) (J^T J)^-1, curve_fit's covariance.
inline distance_estimate fit_intercept_nonnegative(std::span<const double> x, std::span<const double> y) {
  const std::size_t m = x.size();
  HEPGNN_CHECK(m >= 3 && y.size() == m, "fit_intercept_nonnegative: need as many y as x and at least 3 points, got ",
               m, " and ", y.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < m; ++i) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
  const double n = static_cast<double>(m), det = n * sxx - sx * sx;
  HEPGNN_CHECK(det > 0, "fit_intercept_nonnegative: the x values must not all be equal");
  auto ssr = [&](double a, double b) {
    double s = 0;
    for (std::size_t i = 0; i < m; ++i) s += (a + b * x[i] - y[i]) * (a + b * x[i] - y[i]);
    return s;
  };
  // the problem is convex: the unconstrained optimum if feasible, else the best of the boundary optima
  double a = (sxx * sy - sx * sxy) / det, b = (n * sxy - sx * sy) / det;
  if (a < 0 || b < 0) {
    const double cand[3][2] = {{0, std::max(0.0, sxx > 0 ? sxy / sxx : 0.0)}, {std::max(0.0, sy / n), 0}, {0, 0}};
    double best = std::numeric_limits<double>::infinity();
    for (const auto& c : cand)
      if (const double s = ssr(c[0], c[1]); s < best) best = s, a = c[0], b = c[1];
  }
  const double s2 = ssr(a, b) / (n - 2);
  return {a, std::sqrt(s2 * sxx / det)};
}

/// @brief Options of fpd (JetNet's defaults).
struct fpd_options {
  index_t min_samples = 20'000;  ///< smallest batch size
  index_t max_samples = 50'000;  ///< largest batch size (<= the rows of each sample)
  int num_batches = 20;          ///< batches averaged per batch size
  int num_points = 10;           ///< batch sizes, evenly spaced in 1/N, >= 3
  bool normalise = true;         ///< divide the features by the real sample's max |value| first
  std::uint64_t seed = 42;       ///< seed of the draws
};

/// @brief FPD's batch sizes: int(1 / linspace(1/min, 1/max, num_points)), computed as numpy does.
inline std::vector<index_t> fpd_batch_sizes(index_t min_samples, index_t max_samples, int num_points) {
  HEPGNN_CHECK(min_samples >= 2 && max_samples >= min_samples, "fpd: need 2 <= min_samples <= max_samples, got ",
               min_samples, " and ", max_samples);
  HEPGNN_CHECK(num_points >= 3, "fpd: num_points must be >= 3 (a line fit with an error), got ", num_points);
  const double start = 1.0 / min_samples, stop = 1.0 / max_samples, step = (stop - start) / (num_points - 1);
  std::vector<index_t> n(static_cast<std::size_t>(num_points));
  for (int i = 0; i < num_points; ++i) {
    const double inv = i == num_points - 1 ? stop : i * step + start;
    n[static_cast<std::size_t>(i)] = static_cast<index_t>(1.0 / inv);
  }
  return n;
}

namespace frechet_detail {
inline void check_features(const char* who, const matrix<double>& real, const matrix<double>& gen) {
  HEPGNN_CHECK(real.cols() >= 1 && real.cols() == gen.cols(), who, ": real and gen must have the same number of ",
               "feature columns (>= 1), got ", real.cols(), " and ", gen.cols());
  HEPGNN_CHECK(real.allFinite() && gen.allFinite(), who, ": features must be finite");
}
inline matrix<double> maybe_normalised(const matrix<double>& x, bool normalise, matrix<double>& other) {
  matrix<double> a = x;
  if (normalise) normalise_features(a, other);
  return a;
}
}  // namespace frechet_detail

namespace frechet_detail {
/// Mean Frechet distance over batches [begin, end) of `draws`, the batches in parallel.
inline double mean_frechet(const matrix<double>& real, const matrix<double>& gen, const eval_batches& draws, int begin,
                           int end) {
  std::vector<double> fd(static_cast<std::size_t>(end - begin));
  parallel_for_dynamic(end - begin, end - begin >= parallel_limits::metric_min_batches, 1, [&](long k) {
    fd[k] = frechet_distance(fit_gaussian(real, draws.first[begin + k]), fit_gaussian(gen, draws.second[begin + k]));
  });
  double s = 0;
  for (double v : fd) s += v;
  return s / static_cast<double>(fd.size());
}
}  // namespace frechet_detail

/// @brief FPD on given batches: `draws` holds num_points groups of equally sized batches, point-major (the batch
/// size of a group is the length of its lists); each group's mean Frechet distance is fitted linearly in 1/N and
/// the intercept (N -> infinity) with its error returned. No normalisation here: pass normalised features.
inline distance_estimate fpd(const matrix<double>& real, const matrix<double>& gen, const eval_batches& draws,
                             int num_points) {
  frechet_detail::check_features("fpd", real, gen);
  draws.validate("fpd", static_cast<index_t>(real.rows()), static_cast<index_t>(gen.rows()));
  const int nb = draws.num_batches();
  HEPGNN_CHECK(num_points >= 3 && nb % num_points == 0, "fpd: ", nb, " batches do not split into num_points = ",
               num_points, " (>= 3) equal groups");
  const int per = nb / num_points;
  std::vector<double> x(num_points), y(num_points);
  for (int p = 0; p < num_points; ++p) {
    x[p] = 1.0 / static_cast<double>(draws.first[p * per].size());
    y[p] = frechet_detail::mean_frechet(real, gen, draws, p * per, (p + 1) * per);
  }
  return fit_intercept_nonnegative(x, y);
}

/// @brief JetNet's fpd: features normalised by the real sample's maxima, opt.num_batches seeded batches drawn with
/// replacement at each of the opt.num_points batch sizes, the mean Frechet distance per size fitted in 1/N. The
/// draws of one batch size are made when it is its turn (JetNet's defaults would hold 80 MB of indices at once).
inline distance_estimate fpd(const matrix<double>& real, const matrix<double>& gen, const fpd_options& opt = {}) {
  frechet_detail::check_features("fpd", real, gen);
  HEPGNN_CHECK(opt.num_batches >= 1, "fpd: num_batches must be >= 1, got ", opt.num_batches);
  const auto sizes = fpd_batch_sizes(opt.min_samples, opt.max_samples, opt.num_points);
  HEPGNN_CHECK(opt.max_samples <= real.rows() && opt.max_samples <= gen.rows(), "fpd: max_samples = ",
               opt.max_samples, " exceeds the rows given (real: ", real.rows(), ", gen: ", gen.rows(), ")");
  matrix<double> g = gen;
  const matrix<double> r = frechet_detail::maybe_normalised(real, opt.normalise, g);
  rng stream(opt.seed);
  std::vector<double> x, y;
  for (index_t n : sizes) {
    const auto d = draw_eval_batches(static_cast<index_t>(r.rows()), static_cast<index_t>(g.rows()), n,
                                     opt.num_batches, stream());
    x.push_back(1.0 / static_cast<double>(n));
    y.push_back(frechet_detail::mean_frechet(r, g, d, 0, opt.num_batches));
  }
  return fit_intercept_nonnegative(x, y);
}

/// @brief Unbiased MMD^2 of rows `ix` of x and rows `iy` of y with the polynomial kernel (u.v / d + 1)^degree
/// (JetNet: degree 4, d = number of features): sum_{i != j} k(x_i, x_j) / (n (n - 1)) + the same for y - 2 mean
/// k(x_i, y_j). O((n + m)^2 d), computed in row blocks, threaded; the blocks' sums add up in a fixed order.
inline double mmd_poly_unbiased(const matrix<double>& x, std::span<const index_t> ix, const matrix<double>& y,
                                std::span<const index_t> iy, int degree = 4) {
  HEPGNN_CHECK(degree >= 1, "mmd_poly_unbiased: degree must be >= 1, got ", degree);
  HEPGNN_CHECK(x.cols() == y.cols() && x.cols() >= 1, "mmd_poly_unbiased: x and y need the same feature count");
  HEPGNN_CHECK(ix.size() >= 2 && iy.size() >= 2, "mmd_poly_unbiased: need at least 2 rows per sample, got ",
               ix.size(), " and ", iy.size());
  auto gather = [](const matrix<double>& m, std::span<const index_t> rows) {
    matrix<double> g(static_cast<Eigen::Index>(rows.size()), m.cols());
    for (std::size_t i = 0; i < rows.size(); ++i) g.row(static_cast<Eigen::Index>(i)) = m.row(rows[i]);
    return g;
  };
  const matrix<double> a = gather(x, ix), b = gather(y, iy);
  const double gamma = 1.0 / static_cast<double>(x.cols());
  auto kernel = [&](double dot) {
    const double base = dot * gamma + 1.0;
    double v = 1;
    for (int k = 0; k < degree; ++k) v *= base;
    return v;
  };
  constexpr Eigen::Index block = 128;
  // (sum of all k, sum of the diagonal) of p against q over row blocks of p
  auto kernel_sum = [&](const matrix<double>& p, const matrix<double>& q, bool diagonal) {
    const Eigen::Index nblocks = (p.rows() + block - 1) / block;
    std::vector<double> part(static_cast<std::size_t>(nblocks)), diag(static_cast<std::size_t>(nblocks));
    parallel_for_dynamic(nblocks, nblocks >= parallel_limits::metric_min_batches, 1, [&](long k) {
      const Eigen::Index r0 = k * block, rn = std::min(block, p.rows() - r0);
      const matrix<double> dots = p.middleRows(r0, rn) * q.transpose();
      double s = 0, d = 0;
      for (Eigen::Index i = 0; i < rn; ++i) {
        for (Eigen::Index j = 0; j < dots.cols(); ++j) s += kernel(dots(i, j));
        if (diagonal) d += kernel(dots(i, r0 + i));
      }
      part[k] = s;
      diag[k] = d;
    });
    double s = 0, d = 0;
    for (Eigen::Index k = 0; k < nblocks; ++k) s += part[k], d += diag[k];
    return std::pair{s, d};
  };
  const double n = static_cast<double>(a.rows()), m = static_cast<double>(b.rows());
  const auto [xx, xd] = kernel_sum(a, a, true);
  const auto [yy, yd] = kernel_sum(b, b, true);
  const auto [xy, unused] = kernel_sum(a, b, false);
  (void)unused;
  return (xx - xd) / (n * (n - 1)) + (yy - yd) / (m * (m - 1)) - 2 * xy / (n * m);
}

/// @brief Percentile q (0..100) of values, numpy's default "linear" method.
inline double percentile_linear(std::vector<double> v, double q) {
  HEPGNN_CHECK(!v.empty(), "percentile_linear: no values");
  std::sort(v.begin(), v.end());
  const double pos = q / 100 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  const double t = pos - static_cast<double>(lo), a = v[lo], b = v[hi], diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;  // numpy's _lerp
}

/// @brief Options of kpd (JetNet's defaults).
struct kpd_options {
  int num_batches = 10;      ///< batches, >= 1
  index_t batch_size = 5000; ///< rows drawn with replacement from each sample per batch (<= the rows of each)
  bool normalise = true;     ///< divide the features by the real sample's max |value| first
  std::uint64_t seed = 42;   ///< batch k draws from a generator seeded with seed + 1000 k (JetNet's seeding)
  int degree = 4;            ///< polynomial kernel degree (JetNet: 4)
};

/// @brief KPD on given batches (no normalisation here): the median of the per-batch unbiased MMD^2 and half the
/// 16.275-83.725 % interpercentile range (JetNet's value and error).
inline distance_estimate kpd(const matrix<double>& real, const matrix<double>& gen, const eval_batches& draws,
                             int degree = 4) {
  frechet_detail::check_features("kpd", real, gen);
  draws.validate("kpd", static_cast<index_t>(real.rows()), static_cast<index_t>(gen.rows()));
  std::vector<double> v(static_cast<std::size_t>(draws.num_batches()));
  for (int k = 0; k < draws.num_batches(); ++k)  // each batch is threaded inside
    v[k] = mmd_poly_unbiased(real, draws.first[k], gen, draws.second[k], degree);
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t h = sorted.size() / 2;
  const double median = sorted.size() % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
  return {median, (percentile_linear(v, 83.725) - percentile_linear(v, 16.275)) / 2};
}

/// @brief JetNet's kpd: normalised features, opt.num_batches seeded batches of opt.batch_size rows.
inline distance_estimate kpd(const matrix<double>& real, const matrix<double>& gen, const kpd_options& opt = {}) {
  frechet_detail::check_features("kpd", real, gen);
  HEPGNN_CHECK(opt.num_batches >= 1, "kpd: num_batches must be >= 1, got ", opt.num_batches);
  HEPGNN_CHECK(opt.batch_size >= 2, "kpd: batch_size must be >= 2, got ", opt.batch_size);
  HEPGNN_CHECK(opt.batch_size <= real.rows() && opt.batch_size <= gen.rows(), "kpd: batch_size = ", opt.batch_size,
               " exceeds the rows given (real: ", real.rows(), ", gen: ", gen.rows(), ")");
  matrix<double> g = gen;
  const matrix<double> r = frechet_detail::maybe_normalised(real, opt.normalise, g);
  eval_batches draws;
  for (int k = 0; k < opt.num_batches; ++k) {
    const auto d = draw_eval_batches(static_cast<index_t>(r.rows()), static_cast<index_t>(g.rows()), opt.batch_size,
                                     1, opt.seed + 1000 * static_cast<std::uint64_t>(k));
    draws.first.push_back(d.first[0]);
    draws.second.push_back(d.second[0]);
  }
  return kpd(r, g, draws, opt.degree);
}

}  // namespace hepgnn
