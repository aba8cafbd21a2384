#pragma once
/// @file sinkhorn.hpp
/// @brief Entropic optimal transport (Sinkhorn) with the iterates of POT's log-domain `ot.sinkhorn2`
/// (method 'sinkhorn_log'): cost = <plan, M>, marginal error checked every 10 iterations; batched, with gradients;
/// the shape of loss/loss.hpp.

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/emd_cost.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::sinkhorn.
struct sinkhorn_options {
  double reg = 0.1;            ///< entropic regularisation epsilon (POT's reg), > 0 (and cost / reg finite)
  int max_iterations = 1000;   ///< POT's numItermax, >= 1
  double tolerance = 1e-9;     ///< POT's stopThr, on || plan^T 1 - b ||_2, checked when iteration % 10 == 0
  ground_cost cost{};          ///< ground cost of the point-set calls (Euclidean by default)
};

/// @brief What hepgnn::sinkhorn reports besides the value and the gradients, per graph (a single pair or the
/// cost-matrix call: entry 0).
template <class T>
struct sinkhorn_details {
  std::vector<matrix<T>> plan;           ///< n_g x m_g transport plan
  std::vector<vector<T>> log_u, log_v;   ///< log scalings: plan_ij = exp(-M_ij / reg + log_u_i + log_v_j) (POT's)
  std::vector<int> iterations;           ///< iterations run
  std::vector<double> marginal_error;    ///< last checked || plan^T 1 - b ||_2
};

namespace detail {

/// @brief Per-thread buffers of one Sinkhorn solve (double precision throughout).
struct sinkhorn_scratch {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> M, K, dM;
  Eigen::VectorXd a, b, f, g, u, v, kt, kv, alpha, beta;
};

/// @brief log-sum-exp of x_k for k in [0, n) with stride.
inline double log_sum_exp(const double* x, long n, long stride) {
  double mx = -std::numeric_limits<double>::infinity();
  for (long k = 0; k < n; ++k) mx = std::max(mx, x[k * stride]);
  if (!std::isfinite(mx)) return mx;
  double s = 0;
  for (long k = 0; k < n; ++k) s += std::exp(x[k * stride] - mx);
  return mx + std::log(s);
}

/// @brief Runs the Sinkhorn iterations on s.M with marginals s.a, s.b. On return the plan is
/// diag(u) K diag(v) with K = exp(-M/reg + f + g) (absorbed log potentials f, g). Returns the iteration count.
///
/// POT's log-domain iterates, v = log b - LSE_i(-M/reg + u), u = log a - LSE_j(-M/reg + v), are run as scaled
/// multiplicative updates on a kernel with the log potentials absorbed (identical in exact arithmetic);
/// scalings are re-absorbed into the kernel before they leave [1e-50, 1e50], and a step whose kernel sums
/// underflow is redone in the log domain, so small reg never divides by zero.
inline int sinkhorn_solve(sinkhorn_scratch& s, double reg, int max_iter, double tol, double& err) {
  const long n = s.M.rows(), m = s.M.cols();
  s.f.setZero(n);
  s.g.setZero(m);
  std::vector<double> col(static_cast<std::size_t>(n)), row(static_cast<std::size_t>(m));
  auto log_step_v = [&] {  // g_j = log b_j - LSE_i(-M_ij/reg + f_i)
    for (long j = 0; j < m; ++j) {
      for (long i = 0; i < n; ++i) col[i] = -s.M(i, j) / reg + s.f[i];
      s.g[j] = std::log(s.b[j]) - log_sum_exp(col.data(), n, 1);
    }
  };
  auto log_step_u = [&] {
    for (long i = 0; i < n; ++i) {
      for (long j = 0; j < m; ++j) row[j] = -s.M(i, j) / reg + s.g[j];
      s.f[i] = std::log(s.a[i]) - log_sum_exp(row.data(), m, 1);
    }
  };
  auto rebuild_kernel = [&] {
    s.K.resize(n, m);
    for (long i = 0; i < n; ++i)
      for (long j = 0; j < m; ++j) s.K(i, j) = std::exp(-s.M(i, j) / reg + s.f[i] + s.g[j]);
    s.u.setOnes(n);
    s.v.setOnes(m);
  };
  auto absorb = [&] {
    s.f.array() += s.u.array().log();
    s.g.array() += s.v.array().log();
    rebuild_kernel();
  };
  // kernel sums must stay in range where the target marginal is positive (zero-weight points keep scaling 0)
  auto healthy = [](const Eigen::VectorXd& x, const Eigen::VectorXd& target) {
    for (long k = 0; k < x.size(); ++k)
      if (target[k] > 0 && !(x[k] > 1e-280 && x[k] < 1e280)) return false;
    return true;
  };
  auto scale = [](const Eigen::VectorXd& target, const Eigen::VectorXd& sums, Eigen::VectorXd& out) {
    out.resize(target.size());
    for (long k = 0; k < target.size(); ++k) out[k] = target[k] > 0 ? target[k] / sums[k] : 0.0;
  };
  auto extreme = [](const Eigen::VectorXd& x) {
    for (long k = 0; k < x.size(); ++k)
      if (x[k] > 1e50 || (x[k] > 0 && x[k] < 1e-50)) return true;
    return false;
  };
  auto check = [&] {
    s.kt.noalias() = s.K.transpose() * s.u;
    err = (s.v.cwiseProduct(s.kt) - s.b).norm();
    return err < tol;
  };

  // iteration 0 in the log domain from u = v = 0, exactly as POT starts
  log_step_v();
  log_step_u();
  rebuild_kernel();
  int it = 1;
  if (check() || max_iter <= 1) return it;
  for (; it < max_iter; ++it) {
    s.kt.noalias() = s.K.transpose() * s.u;
    if (!healthy(s.kt, s.b)) {
      absorb();
      log_step_v();
      rebuild_kernel();
    } else {
      scale(s.b, s.kt, s.v);
    }
    s.kv.noalias() = s.K * s.v;
    if (!healthy(s.kv, s.a)) {
      absorb();
      log_step_u();
      rebuild_kernel();
    } else {
      scale(s.a, s.kv, s.u);
    }
    if (extreme(s.u) || extreme(s.v)) absorb();
    if (it % 10 == 0 && check()) return it + 1;
  }
  return it;
}

/// @brief Implicit gradient of <P, M> at the Sinkhorn fixed point: fills s.dM (d cost / d M) and s.alpha, s.beta
/// (d cost / d a, d cost / d b, up to a common shift).
inline void sinkhorn_gradient(sinkhorn_scratch& s, double reg) {
  const long m = s.M.cols();
  // P = diag(u) K diag(v), row / column sums r, c; p = (P o M) 1, q = (P o M)^T 1
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> P =
      s.u.asDiagonal() * s.K * s.v.asDiagonal();
  const Eigen::VectorXd r = P.rowwise().sum(), c = P.colwise().sum().transpose();
  const Eigen::VectorXd p = P.cwiseProduct(s.M).rowwise().sum(), q = P.cwiseProduct(s.M).colwise().sum().transpose();
  // [diag r, P; P^T, diag c] [alpha; beta] = [p; q]; eliminate alpha, fix beta_{m-1} = 0 (the null direction)
  const Eigen::VectorXd rinv = r.unaryExpr([](double x) { return x > 0 ? 1 / x : 0.0; });
  Eigen::MatrixXd S = -(P.transpose() * rinv.asDiagonal() * P);
  S.diagonal() += c;
  const Eigen::VectorXd rhs = q - P.transpose() * rinv.cwiseProduct(p);
  s.beta.setZero(m);
  if (m > 1) {
    const Eigen::MatrixXd Sr = S.topLeftCorner(m - 1, m - 1);
    s.beta.head(m - 1) = Sr.ldlt().solve(rhs.head(m - 1));
  }
  s.alpha = rinv.cwiseProduct(p - P * s.beta);
  s.dM = P.array() * (1.0 + ((s.alpha.replicate(1, m).array().rowwise() + s.beta.transpose().array()) - s.M.array()) / reg);
}

/// @brief Weight checks and normalisation shared by the Sinkhorn calls; fills s.a, s.b and returns the totals.
template <class T>
void sinkhorn_marginals(const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const vector<T>& wb, Eigen::Index b0,
                        Eigen::Index m, sinkhorn_scratch& s, double& Wa, double& Wb) {
  Wa = weight_sum(wa, a0, n);
  Wb = weight_sum(wb, b0, m);
  s.a.resize(n);
  s.b.resize(m);
  for (Eigen::Index i = 0; i < n; ++i) s.a[i] = (wa.size() ? static_cast<double>(wa[a0 + i]) : 1.0) / Wa;
  for (Eigen::Index j = 0; j < m; ++j) s.b[j] = (wb.size() ? static_cast<double>(wb[b0 + j]) : 1.0) / Wb;
}

/// @brief Weight gradient through the normalisation w -> w / W, from the raw duals (shift-invariant).
template <class T>
void normalised_weight_gradient(const Eigen::VectorXd& dual, const Eigen::VectorXd& a, double W, vector<T>& out,
                                Eigen::Index o0) {
  const double mean = a.dot(dual);
  for (Eigen::Index i = 0; i < dual.size(); ++i) out[o0 + i] += static_cast<T>((dual[i] - mean) / W);
}

inline void check_sinkhorn_options(const sinkhorn_options& o) {
  HEPGNN_CHECK(std::isfinite(o.reg) && o.reg > 0, "sinkhorn: reg must be finite and > 0, got ", o.reg);
  HEPGNN_CHECK(o.max_iterations >= 1, "sinkhorn: max_iterations must be >= 1, got ", o.max_iterations);
  HEPGNN_CHECK(o.tolerance >= 0, "sinkhorn: tolerance must be >= 0, got ", o.tolerance);
}

/// @brief Throws when reg is too small for costs up to max_cost: beyond cost / reg = 1 / epsilon the log-domain
/// iterates keep no digit of the plan, and the gradient (which divides by reg) overflows to inf or NaN.
inline void check_sinkhorn_reg(double reg, double max_cost) {
  constexpr double limit = 1 / std::numeric_limits<double>::epsilon();
  HEPGNN_CHECK(max_cost <= reg * limit, "sinkhorn: reg = ", reg, " is too small for costs up to ", max_cost,
               ": cost / reg must stay below 1 / epsilon = ", limit, " (reg >= ", max_cost / limit, ")");
}

/// @brief An upper bound of the ground cost between any row of xa and any row of xb: the cost of the diagonal of
/// their common bounding box (pi in the periodic column).
template <class T>
double max_ground_cost(const matrix<T>& xa, const matrix<T>& xb, const ground_cost& g) {
  if (xa.rows() == 0 || xb.rows() == 0) return 0;
  double s = 0;
  for (Eigen::Index c = 0; c < xa.cols(); ++c) {
    const double lo = std::min(static_cast<double>(xa.col(c).minCoeff()), static_cast<double>(xb.col(c).minCoeff()));
    const double hi = std::max(static_cast<double>(xa.col(c).maxCoeff()), static_cast<double>(xb.col(c).maxCoeff()));
    const double d = c == g.periodic_column ? std::min(hi - lo, std::numbers::pi) : hi - lo;
    s += d * d;
  }
  return g.from_squared(s);
}

/// @brief One point-set pair; adds the gradients to grad unless it is null. Returns the cost.
template <class T>
double sinkhorn_pair(const matrix<T>& xa, const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb,
                     const vector<T>& wb, Eigen::Index b0, Eigen::Index m, const sinkhorn_options& opt,
                     sinkhorn_scratch& s, int& iterations, double& err, set_gradients<T>* grad) {
  double Wa, Wb;
  sinkhorn_marginals(wa, a0, n, wb, b0, m, s, Wa, Wb);
  s.M.resize(n, m);
  fill_ground_cost(xa, a0, n, xb, b0, m, opt.cost, s.M.data());
  iterations = sinkhorn_solve(s, opt.reg, opt.max_iterations, opt.tolerance, err);
  const double cost = (s.u.asDiagonal() * s.K * s.v.asDiagonal()).cwiseProduct(s.M).sum();
  if (grad) {
    sinkhorn_gradient(s, opt.reg);
    accumulate_ground_gradient(xa, a0, n, xb, b0, m, opt.cost, s.dM.data(), 1.0, grad->xa, grad->xb);
    if (wa.size()) normalised_weight_gradient(s.alpha, s.a, Wa, grad->wa, a0);
    if (wb.size()) normalised_weight_gradient(s.beta, s.b, Wb, grad->wb, b0);
  }
  return cost;
}

/// @brief Writes the plan and log scalings of the solve in `s` into entry k of details.
template <class T>
void sinkhorn_fill_details(const sinkhorn_scratch& s, int iterations, double err, sinkhorn_details<T>& d,
                           std::size_t k) {
  d.plan[k] = (s.u.asDiagonal() * s.K * s.v.asDiagonal()).template cast<T>();
  d.log_u[k] = (s.f.array() + s.u.array().log()).matrix().template cast<T>();
  d.log_v[k] = (s.g.array() + s.v.array().log()).matrix().template cast<T>();
  d.iterations[k] = iterations;
  d.marginal_error[k] = err;
}

/// @brief Sizes details for `count` entries.
template <class T>
void sinkhorn_size_details(sinkhorn_details<T>& d, std::size_t count) {
  d.plan.assign(count, matrix<T>());
  d.log_u.assign(count, vector<T>());
  d.log_v.assign(count, vector<T>());
  d.iterations.assign(count, 0);
  d.marginal_error.assign(count, 0.0);
}

}  // namespace detail

/// @brief Sinkhorn on a given cost matrix M (n x m) between histograms a and b (normalised to sum 1 here).
/// Returns cost = <plan, M>; `grad` gets d cost / d a, d cost / d b and d cost / d M, `details` the plan, the log
/// scalings, the iteration count and the marginal error. The gradient differentiates the fixed point (implicit
/// function theorem), so it is exact only when the iterations converged (tolerance reached). Throws hepgnn::error
/// on empty or mismatched inputs, negative or non-finite weights, a zero total weight, non-finite M, or a bad option.
template <class T>
T sinkhorn(const vector<T>& a, const vector<T>& b, const matrix<T>& M, const sinkhorn_options& options = {},
           loss_output<cost_matrix_gradients<T>> grad = nullptr, loss_output<sinkhorn_details<T>> details = nullptr) {
  detail::check_sinkhorn_options(options);
  HEPGNN_CHECK(M.rows() > 0 && M.cols() > 0, "sinkhorn: M must not be empty, got ", M.rows(), " x ", M.cols());
  HEPGNN_CHECK(a.size() == M.rows() && b.size() == M.cols(), "sinkhorn: a and b must have M.rows() = ", M.rows(),
               " and M.cols() = ", M.cols(), " entries, got ", a.size(), " and ", b.size());
  detail::check_weights(a, M.rows(), "sinkhorn", "a");
  detail::check_weights(b, M.cols(), "sinkhorn", "b");
  check_finite(M, "sinkhorn: M");
  detail::check_sinkhorn_reg(options.reg, static_cast<double>(M.cwiseAbs().maxCoeff()));
  thread_local detail::sinkhorn_scratch s;
  double Wa, Wb;
  detail::sinkhorn_marginals(a, 0, M.rows(), b, 0, M.cols(), s, Wa, Wb);
  HEPGNN_CHECK(Wa > 0 && Wb > 0, "sinkhorn: a and b need a positive total weight, got ", Wa, " and ", Wb);
  s.M = M.template cast<double>();
  double err = 0;
  const int iterations = detail::sinkhorn_solve(s, options.reg, options.max_iterations, options.tolerance, err);
  const auto P = (s.u.asDiagonal() * s.K * s.v.asDiagonal()).eval();
  const T cost = static_cast<T>(P.cwiseProduct(s.M).sum());
  if (details) {
    detail::sinkhorn_size_details(*details, 1);
    detail::sinkhorn_fill_details(s, iterations, err, *details, 0);
  }
  if (grad) {
    detail::sinkhorn_gradient(s, options.reg);
    grad->M = s.dM.template cast<T>();
    grad->a = vector<T>::Zero(a.size());
    grad->b = vector<T>::Zero(b.size());
    detail::normalised_weight_gradient(s.alpha, s.a, Wa, grad->a, 0);
    detail::normalised_weight_gradient(s.beta, s.b, Wb, grad->b, 0);
  }
  return cost;
}

/// @brief Batched Sinkhorn: graph g of ba (rows of xa, weights wa) against graph g of bb, with ground cost
/// options.cost; empty weight vectors mean uniform weights. One value per graph; `grad` gets d(sum_g value_g) /
/// d inputs (implicit differentiation at the fixed point), `details` the per-graph plans, scalings and iteration
/// counts. Pairs run in parallel with OpenMP; results do not depend on the thread count.
template <class T>
vector<T> sinkhorn(const matrix<T>& xa, const vector<T>& wa, const batch& ba, const matrix<T>& xb,
                   const vector<T>& wb, const batch& bb, const sinkhorn_options& options = {},
                   loss_output<set_gradients<T>> grad = nullptr, loss_output<sinkhorn_details<T>> details = nullptr) {
  detail::check_sinkhorn_options(options);
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "sinkhorn");
  detail::check_sinkhorn_reg(options.reg, detail::max_ground_cost(xa, xb, options.cost));
  ba.validate(static_cast<index_t>(xa.rows()));
  bb.validate(static_cast<index_t>(xb.rows()));
  HEPGNN_CHECK(ba.num_graphs() == bb.num_graphs(), "sinkhorn: batches must hold the same number of graphs, got ",
               ba.num_graphs(), " and ", bb.num_graphs());
  const index_t G = ba.num_graphs();
  emd_options eo;
  for (index_t g = 0; g < G; ++g)
    detail::check_emd_pair(wa, ba.begin(g), ba.size(g), wb, bb.begin(g), bb.size(g), eo, "sinkhorn", g);
  vector<T> cost(G);
  if (grad) detail::zero_set_gradients(*grad, xa, wa, xb, wb);
  if (details) detail::sinkhorn_size_details(*details, static_cast<std::size_t>(G));
  parallel_for_dynamic(G, true, 1, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    thread_local detail::sinkhorn_scratch s;
    int iterations = 0;
    double err = 0;
    cost[g] = static_cast<T>(detail::sinkhorn_pair(xa, wa, ba.begin(g), ba.size(g), xb, wb, bb.begin(g), bb.size(g),
                                                   options, s, iterations, err, grad));
    if (details) detail::sinkhorn_fill_details(s, iterations, err, *details, static_cast<std::size_t>(g));
  });
  return cost;
}

/// @brief Batched Sinkhorn with uniform weights on both sides.
template <class T>
vector<T> sinkhorn(const matrix<T>& xa, const batch& ba, const matrix<T>& xb, const batch& bb,
                   const sinkhorn_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
                   loss_output<sinkhorn_details<T>> details = nullptr) {
  return sinkhorn(xa, vector<T>{}, ba, xb, vector<T>{}, bb, options, grad, details);
}

/// @brief Sinkhorn between point sets xa (weights wa) and xb (weights wb); as the batched call on one graph
/// (details in entry 0).
template <class T>
T sinkhorn(const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb, const vector<T>& wb,
           const sinkhorn_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
           loss_output<sinkhorn_details<T>> details = nullptr) {
  detail::check_sinkhorn_options(options);
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "sinkhorn");
  emd_options eo;
  detail::check_emd_pair(wa, 0, xa.rows(), wb, 0, xb.rows(), eo, "sinkhorn", -1);
  detail::check_sinkhorn_reg(options.reg, detail::max_ground_cost(xa, xb, options.cost));
  thread_local detail::sinkhorn_scratch s;
  const Eigen::Index n = xa.rows(), m = xb.rows();
  if (grad) detail::zero_set_gradients(*grad, xa, wa, xb, wb);
  int iterations = 0;
  double err = 0;
  const T cost =
      static_cast<T>(detail::sinkhorn_pair(xa, wa, 0, n, xb, wb, 0, m, options, s, iterations, err, grad));
  if (details) {
    detail::sinkhorn_size_details(*details, 1);
    detail::sinkhorn_fill_details(s, iterations, err, *details, 0);
  }
  return cost;
}

/// @brief Sinkhorn with uniform weights on both sides.
template <class T>
T sinkhorn(const matrix<T>& xa, const matrix<T>& xb, const sinkhorn_options& options = {},
           loss_output<set_gradients<T>> grad = nullptr, loss_output<sinkhorn_details<T>> details = nullptr) {
  return sinkhorn(xa, vector<T>{}, xb, vector<T>{}, options, grad, details);
}

}  // namespace hepgnn
