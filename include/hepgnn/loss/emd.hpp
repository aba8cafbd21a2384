#pragma once
/// @file emd.hpp
/// @brief Exact earth mover's distance (optimal transport) between weighted point sets, with the optimal flow,
/// dual potentials and gradients; balanced and energyflow forms; a batched call threaded with OpenMP.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/emd_cost.hpp"
#include "hepgnn/loss/emd_simplex.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::emd.
struct emd_options {
  /// @brief true: balanced form, both weight sets normalised to sum 1 (energyflow norm=True, POT ot.emd2 on
  /// normalised histograms); false: energyflow form EMD = min sum f_ij c_ij + |sum w_a - sum w_b|, the
  /// difference carried by an extra particle at cost 1 from everything (energyflow's construction).
  bool normalize = true;
  ground_cost cost{};           ///< c_ij = (theta_ij / R)^beta, optional periodic phi column
  bool gradient = false;        ///< fill the gradients w.r.t. coordinates and weights
  bool keep_flow = true;        ///< return the optimal flow (batched call: one matrix per pair)
  bool assignment_fast_path = true;  ///< equal sizes and uniform weights: solve an assignment problem instead
  long max_pivots = 0;          ///< simplex pivot limit (0: automatic); hitting it sets converged = false
};

/// @brief Result of one EMD.
template <class T>
struct emd_result {
  T cost = 0;             ///< the EMD
  matrix<T> flow;         ///< optimal flow, n_a x n_b (the extra particle of the energyflow form is left out)
  vector<T> u, v;         ///< dual potentials of the solved problem (u_i + v_j <= c_ij; equality where flow > 0)
  matrix<T> grad_xa, grad_xb;  ///< d cost / d coordinates (when options.gradient)
  vector<T> grad_wa, grad_wb;  ///< d cost / d weights as given (when options.gradient and weights were given)
  bool converged = true;  ///< false if the simplex hit its pivot limit (cost is then an upper bound)
};

/// @brief Result of a batched EMD over the graph pairs of two batches.
template <class T>
struct emd_batch_result {
  vector<T> cost;              ///< one EMD per graph
  matrix<T> grad_xa, grad_xb;  ///< d (sum_g cost_g) / d coordinates, laid out like the inputs
  vector<T> grad_wa, grad_wb;  ///< d (sum_g cost_g) / d weights (empty when no weights were given)
  std::vector<matrix<T>> flow; ///< per-graph optimal flows (when options.keep_flow)
  bool converged = true;       ///< false if any pair hit the pivot limit
};

namespace detail {

/// @brief Checks a weight vector: matching length, finite, non-negative.
template <class T>
void check_weights(const vector<T>& w, Eigen::Index rows, const char* who, const char* name) {
  if (w.size() == 0) return;
  HEPGNN_CHECK(w.size() == rows, who, ": ", name, " must have one weight per point (", rows, "), got ", w.size());
  for (Eigen::Index i = 0; i < w.size(); ++i)
    HEPGNN_CHECK(std::isfinite(static_cast<double>(w[i])) && w[i] >= 0, who, ": ", name,
                 " must be finite and >= 0, got ", w[i], " at index ", i);
}

/// @brief Shared argument checks of the point-set transport losses.
template <class T>
void check_transport_inputs(const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb, const vector<T>& wb,
                            const ground_cost& g, const char* who) {
  HEPGNN_CHECK(xa.cols() == xb.cols(), who, ": xa and xb must have the same number of columns (dimensions), got ",
               xa.cols(), " and ", xb.cols());
  HEPGNN_CHECK(xa.cols() >= 1, who, ": points need at least one coordinate column, got ", xa.cols());
  check_finite(xa, std::string(who) + ": xa");
  check_finite(xb, std::string(who) + ": xb");
  check_weights(wa, xa.rows(), who, "wa");
  check_weights(wb, xb.rows(), who, "wb");
  g.validate(xa.cols(), who);
}

/// @brief Sum of weights [b0, b0+n) (n when unweighted).
template <class T>
double weight_sum(const vector<T>& w, Eigen::Index b0, Eigen::Index n) {
  if (w.size() == 0) return static_cast<double>(n);
  double s = 0;
  for (Eigen::Index i = 0; i < n; ++i) s += static_cast<double>(w[b0 + i]);
  return s;
}

/// @brief Per-thread scratch of one EMD pair.
struct emd_scratch {
  std::vector<double> cost, a, b, flow;
  std::vector<int> match;
  transport_solution sol;
  transport_workspace ws;
};

/// @brief True when all n weights from b0 are equal (or there are none).
template <class T>
bool uniform_weights(const vector<T>& w, Eigen::Index b0, Eigen::Index n) {
  if (w.size() == 0) return true;
  for (Eigen::Index i = 1; i < n; ++i)
    if (w[b0 + i] != w[b0]) return false;
  return true;
}

/// @brief One EMD pair: rows [a0, a0+n) of xa against [b0, b0+m) of xb. Inputs are already validated.
/// Writes the cost, the dense flow (scratch.flow, n x m) and, when requested, adds the gradients.
template <class T>
double emd_pair(const matrix<T>& xa, const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb,
                const vector<T>& wb, Eigen::Index b0, Eigen::Index m, const emd_options& opt, emd_scratch& s,
                bool& converged, matrix<T>* gxa, matrix<T>* gxb, vector<T>* gwa, vector<T>* gwb,
                vector<T>* du = nullptr, vector<T>* dv = nullptr) {
  const double Wa = weight_sum(wa, a0, n), Wb = weight_sum(wb, b0, m);
  // problem size with the energyflow extra particle (row n or column m)
  int extra_row = 0, extra_col = 0;
  if (!opt.normalize) {
    if (Wa < Wb) extra_row = 1;
    if (Wa > Wb) extra_col = 1;
  }
  const int N = static_cast<int>(n) + extra_row, M = static_cast<int>(m) + extra_col;
  s.cost.resize(static_cast<std::size_t>(N) * M);
  if (extra_col == 0) {
    fill_ground_cost(xa, a0, n, xb, b0, m, opt.cost, s.cost.data());
  } else {
    std::vector<double>& tmp = s.flow;
    tmp.resize(static_cast<std::size_t>(n) * m);
    fill_ground_cost(xa, a0, n, xb, b0, m, opt.cost, tmp.data());
    for (Eigen::Index i = 0; i < n; ++i) {
      std::copy(tmp.begin() + i * m, tmp.begin() + (i + 1) * m, s.cost.begin() + i * M);
      s.cost[i * M + m] = 1.0;
    }
  }
  if (extra_row) std::fill(s.cost.begin() + n * M, s.cost.end(), 1.0);
  s.a.resize(N);
  s.b.resize(M);
  const double sa = opt.normalize ? 1.0 / Wa : 1.0, sb = opt.normalize ? 1.0 / Wb : 1.0;
  for (Eigen::Index i = 0; i < n; ++i) s.a[i] = (wa.size() ? static_cast<double>(wa[a0 + i]) : 1.0) * sa;
  for (Eigen::Index j = 0; j < m; ++j) s.b[j] = (wb.size() ? static_cast<double>(wb[b0 + j]) : 1.0) * sb;
  if (!opt.normalize && wa.size() == 0) std::fill(s.a.begin(), s.a.begin() + n, 1.0 / n);
  if (!opt.normalize && wb.size() == 0) std::fill(s.b.begin(), s.b.begin() + m, 1.0 / m);
  double ta = 0, tb = 0;
  for (Eigen::Index i = 0; i < n; ++i) ta += s.a[i];
  for (Eigen::Index j = 0; j < m; ++j) tb += s.b[j];
  if (extra_row) s.a[n] = tb - ta;
  if (extra_col) s.b[m] = ta - tb;

  const bool dense_flow = opt.gradient || opt.keep_flow;  // W4a-style cost-only calls skip the N x M fill
  if (dense_flow) s.flow.assign(static_cast<std::size_t>(N) * M, 0.0);
  double cost = 0;
  std::vector<double>& u = s.sol.u;
  std::vector<double>& v = s.sol.v;
  const bool fast = opt.assignment_fast_path && N == M && extra_row == 0 && extra_col == 0 &&
                    uniform_weights(wa, a0, n) && uniform_weights(wb, b0, m) && std::abs(ta - tb) <= 1e-12 * ta;
  if (fast) {
    const double w = ta / N;
    assignment(N, s.cost.data(), s.match, u, v, s.ws);
    for (int i = 0; i < N; ++i) {
      if (dense_flow) s.flow[static_cast<std::size_t>(i) * M + s.match[i]] = w;
      cost += w * s.cost[static_cast<std::size_t>(i) * M + s.match[i]];
    }
    converged = true;
  } else {
    transport_simplex(N, M, s.cost.data(), s.a.data(), s.b.data(), s.sol, s.ws, opt.max_pivots);
    for (std::size_t k = 0; dense_flow && k < s.sol.arc_row.size(); ++k)
      s.flow[static_cast<std::size_t>(s.sol.arc_row[k]) * M + s.sol.arc_col[k]] = s.sol.arc_flow[k];
    cost = s.sol.cost;
    converged = s.sol.converged;
  }
  if (du) *du = Eigen::Map<const vector<double>>(u.data(), N).cast<T>();
  if (dv) *dv = Eigen::Map<const vector<double>>(v.data(), M).cast<T>();

  if (opt.gradient) {
    // coordinates: envelope theorem, the optimal flow is held fixed
    if (extra_col == 0) {
      accumulate_ground_gradient(xa, a0, n, xb, b0, m, opt.cost, s.flow.data(), 1.0, *gxa, *gxb);
    } else {
      std::vector<double> f(static_cast<std::size_t>(n) * m);
      for (Eigen::Index i = 0; i < n; ++i)
        std::copy(s.flow.begin() + i * M, s.flow.begin() + i * M + m, f.begin() + i * m);
      accumulate_ground_gradient(xa, a0, n, xb, b0, m, opt.cost, f.data(), 1.0, *gxa, *gxb);
    }
    // weights: dual potentials, made shift-invariant by the constraint that ties the weights together
    if (gwa && wa.size()) {
      if (opt.normalize) {
        double mean_u = 0;
        for (Eigen::Index i = 0; i < n; ++i) mean_u += s.a[i] * u[i];
        for (Eigen::Index i = 0; i < n; ++i) (*gwa)[a0 + i] += static_cast<T>((u[i] - mean_u) / Wa);
      } else {
        const double shift = extra_row ? -u[n] : extra_col ? v[m] : 0.0;
        for (Eigen::Index i = 0; i < n; ++i) (*gwa)[a0 + i] += static_cast<T>(u[i] + shift);
      }
    }
    if (gwb && wb.size()) {
      if (opt.normalize) {
        double mean_v = 0;
        for (Eigen::Index j = 0; j < m; ++j) mean_v += s.b[j] * v[j];
        for (Eigen::Index j = 0; j < m; ++j) (*gwb)[b0 + j] += static_cast<T>((v[j] - mean_v) / Wb);
      } else {
        const double shift = extra_row ? u[n] : extra_col ? -v[m] : 0.0;
        for (Eigen::Index j = 0; j < m; ++j) (*gwb)[b0 + j] += static_cast<T>(v[j] + shift);
      }
    }
  }
  return cost;
}

/// @brief Per-graph checks shared by the single and batched calls.
template <class T>
void check_emd_pair(const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const vector<T>& wb, Eigen::Index b0,
                    Eigen::Index m, const emd_options& opt, const char* who, long g) {
  HEPGNN_CHECK(n > 0 && m > 0, who, ": point sets must not be empty, got ", n, " and ", m, " points",
               g >= 0 ? " in graph " : "", g >= 0 ? std::to_string(g) : std::string());
  if (opt.normalize) {
    const double Wa = weight_sum(wa, a0, n), Wb = weight_sum(wb, b0, m);
    HEPGNN_CHECK(Wa > 0 && Wb > 0, who, ": the balanced form (normalize) needs a positive total weight on both sides, got ",
                 Wa, " and ", Wb, g >= 0 ? " in graph " : "", g >= 0 ? std::to_string(g) : std::string());
  }
}

}  // namespace detail

/// @brief Exact EMD between the point sets xa (n x d, weights wa) and xb (m x d, weights wb).
///
/// Empty weight vectors mean uniform weights (1/n each). Balanced form (options.normalize) by default; cost is
/// options.cost (Euclidean by default). General weights go through a network simplex; equal sizes with uniform
/// weights through an assignment solver. The gradients (options.gradient) hold the optimal flow fixed
/// (coordinates) and use the dual potentials (weights); both are exact where the optimal flow is unique.
/// Throws hepgnn::error on empty sets, mismatched dimensions, non-finite coordinates, negative or non-finite
/// weights, or a zero total weight in the balanced form.
template <class T>
emd_result<T> emd(const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb, const vector<T>& wb,
                  const emd_options& options = {}) {
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "emd");
  detail::check_emd_pair(wa, 0, xa.rows(), wb, 0, xb.rows(), options, "emd", -1);
  thread_local detail::emd_scratch s;
  emd_result<T> r;
  const Eigen::Index n = xa.rows(), m = xb.rows();
  if (options.gradient) {
    r.grad_xa = matrix<T>::Zero(n, xa.cols());
    r.grad_xb = matrix<T>::Zero(m, xb.cols());
    if (wa.size()) r.grad_wa = vector<T>::Zero(n);
    if (wb.size()) r.grad_wb = vector<T>::Zero(m);
  }
  r.cost = static_cast<T>(detail::emd_pair(xa, wa, 0, n, xb, wb, 0, m, options, s, r.converged, &r.grad_xa,
                                           &r.grad_xb, &r.grad_wa, &r.grad_wb, &r.u, &r.v));
  if (options.keep_flow) {
    const Eigen::Index cols = static_cast<Eigen::Index>(s.b.size());
    r.flow.resize(n, m);
    for (Eigen::Index i = 0; i < n; ++i)
      for (Eigen::Index j = 0; j < m; ++j) r.flow(i, j) = static_cast<T>(s.flow[i * cols + j]);
  }
  return r;
}

/// @brief Exact EMD with uniform weights on both sides.
template <class T>
emd_result<T> emd(const matrix<T>& xa, const matrix<T>& xb, const emd_options& options = {}) {
  return emd(xa, vector<T>{}, xb, vector<T>{}, options);
}

/// @brief Batched exact EMD: graph g of batch ba (rows of xa, weights wa) against graph g of bb.
/// Pairs run in parallel with OpenMP (dynamic schedule); every pair's result is independent of the thread
/// count. Gradients are those of sum_g cost_g. Empty weight vectors mean uniform weights.
template <class T>
emd_batch_result<T> emd(const matrix<T>& xa, const vector<T>& wa, const batch& ba, const matrix<T>& xb,
                        const vector<T>& wb, const batch& bb, const emd_options& options = {}) {
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "emd");
  ba.validate(static_cast<index_t>(xa.rows()));
  bb.validate(static_cast<index_t>(xb.rows()));
  HEPGNN_CHECK(ba.num_graphs() == bb.num_graphs(), "emd: batches must hold the same number of graphs, got ",
               ba.num_graphs(), " and ", bb.num_graphs());
  const index_t G = ba.num_graphs();
  for (index_t g = 0; g < G; ++g)
    detail::check_emd_pair(wa, ba.begin(g), ba.size(g), wb, bb.begin(g), bb.size(g), options, "emd", g);
  emd_batch_result<T> r;
  r.cost.resize(G);
  if (options.gradient) {
    r.grad_xa = matrix<T>::Zero(xa.rows(), xa.cols());
    r.grad_xb = matrix<T>::Zero(xb.rows(), xb.cols());
    if (wa.size()) r.grad_wa = vector<T>::Zero(wa.size());
    if (wb.size()) r.grad_wb = vector<T>::Zero(wb.size());
  }
  if (options.keep_flow) r.flow.resize(G);
  std::atomic<bool> all_converged{true};  // only ever cleared, so the result does not depend on the order
  parallel_for_dynamic(G, true, parallel_limits::transport_chunk, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    thread_local detail::emd_scratch s;
    bool conv = true;
    const Eigen::Index n = ba.size(g), m = bb.size(g);
    r.cost[g] = static_cast<T>(detail::emd_pair(xa, wa, ba.begin(g), n, xb, wb, bb.begin(g), m, options, s, conv,
                                                &r.grad_xa, &r.grad_xb, &r.grad_wa, &r.grad_wb));
    if (!conv) all_converged.store(false, std::memory_order_relaxed);
    if (options.keep_flow) {
      const Eigen::Index cols = static_cast<Eigen::Index>(s.b.size());
      r.flow[g].resize(n, m);
      for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < m; ++j) r.flow[g](i, j) = static_cast<T>(s.flow[i * cols + j]);
    }
  });
  r.converged = all_converged.load();
  return r;
}

}  // namespace hepgnn
