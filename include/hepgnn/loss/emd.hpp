#pragma once
/// @file emd.hpp
/// @brief Exact earth mover's distance (optimal transport) between weighted point sets, with the optimal flow,
/// dual potentials and gradients; balanced and energyflow forms; a batched call threaded with OpenMP. The shape
/// of loss/loss.hpp.

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
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::emd.
struct emd_options {
  /// @brief true: balanced form, both weight sets normalised to sum 1 (energyflow norm=True, POT ot.emd2 on
  /// normalised histograms); false: energyflow form EMD = min sum f_ij c_ij + |sum w_a - sum w_b|, the
  /// difference carried by an extra particle at cost 1 from everything (energyflow's construction).
  bool normalize = true;
  ground_cost cost{};           ///< c_ij = (theta_ij / R)^beta, optional periodic phi column
  bool assignment_fast_path = true;  ///< equal sizes and uniform weights: solve an assignment problem instead
  long max_pivots = 0;          ///< simplex pivot limit, >= 0 (0: automatic); hitting it sets converged = false
};

/// @brief What hepgnn::emd reports besides the value and the gradients, per graph (a single pair: entry 0).
template <class T>
struct emd_details {
  std::vector<matrix<T>> flow;  ///< optimal flow, n_g x m_g (the extra particle of the energyflow form left out)
  std::vector<vector<T>> u, v;  ///< dual potentials of the solved problem (u_i + v_j <= c_ij; equality where flow > 0)
  bool converged = true;        ///< false if a simplex hit its pivot limit (that cost is then an upper bound)
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
/// Returns the cost; fills the dense flow (scratch.flow, row stride scratch.b.size()) when `dense_flow` or `grad`,
/// and adds the gradients to grad unless it is null.
template <class T>
double emd_pair(const matrix<T>& xa, const vector<T>& wa, Eigen::Index a0, Eigen::Index n, const matrix<T>& xb,
                const vector<T>& wb, Eigen::Index b0, Eigen::Index m, const emd_options& opt, emd_scratch& s,
                bool& converged, set_gradients<T>* grad, bool dense_flow, vector<T>* du = nullptr,
                vector<T>* dv = nullptr) {
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

  dense_flow = dense_flow || grad;  // W4a-style cost-only calls skip the N x M fill
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

  if (grad) {
    // coordinates: envelope theorem, the optimal flow is held fixed
    if (extra_col == 0) {
      accumulate_ground_gradient(xa, a0, n, xb, b0, m, opt.cost, s.flow.data(), 1.0, grad->xa, grad->xb);
    } else {
      std::vector<double> f(static_cast<std::size_t>(n) * m);
      for (Eigen::Index i = 0; i < n; ++i)
        std::copy(s.flow.begin() + i * M, s.flow.begin() + i * M + m, f.begin() + i * m);
      accumulate_ground_gradient(xa, a0, n, xb, b0, m, opt.cost, f.data(), 1.0, grad->xa, grad->xb);
    }
    // weights: dual potentials, made shift-invariant by the constraint that ties the weights together
    if (wa.size()) {
      if (opt.normalize) {
        double mean_u = 0;
        for (Eigen::Index i = 0; i < n; ++i) mean_u += s.a[i] * u[i];
        for (Eigen::Index i = 0; i < n; ++i) grad->wa[a0 + i] += static_cast<T>((u[i] - mean_u) / Wa);
      } else {
        const double shift = extra_row ? -u[n] : extra_col ? v[m] : 0.0;
        for (Eigen::Index i = 0; i < n; ++i) grad->wa[a0 + i] += static_cast<T>(u[i] + shift);
      }
    }
    if (wb.size()) {
      if (opt.normalize) {
        double mean_v = 0;
        for (Eigen::Index j = 0; j < m; ++j) mean_v += s.b[j] * v[j];
        for (Eigen::Index j = 0; j < m; ++j) grad->wb[b0 + j] += static_cast<T>((v[j] - mean_v) / Wb);
      } else {
        const double shift = extra_row ? u[n] : extra_col ? -v[m] : 0.0;
        for (Eigen::Index j = 0; j < m; ++j) grad->wb[b0 + j] += static_cast<T>(v[j] + shift);
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

/// @brief Throws on a bad option (the ground cost is checked with the inputs).
inline void check_emd_options(const emd_options& o) {
  HEPGNN_CHECK(o.max_pivots >= 0, "emd: max_pivots must be >= 0 (0: automatic), got ", o.max_pivots);
}

/// @brief Copies the dense flow of scratch `s` (row stride s.b.size(), the extra particle left out) as n x m.
template <class T>
void copy_flow(const emd_scratch& s, Eigen::Index n, Eigen::Index m, matrix<T>& flow) {
  const Eigen::Index cols = static_cast<Eigen::Index>(s.b.size());
  flow.resize(n, m);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < m; ++j) flow(i, j) = static_cast<T>(s.flow[i * cols + j]);
}

}  // namespace detail

/// @brief Batched exact EMD: graph g of batch ba (rows of xa, weights wa) against graph g of bb; one value per graph.
///
/// Empty weight vectors mean uniform weights (1/n each). Balanced form (options.normalize) by default; cost is
/// options.cost (Euclidean by default). General weights go through a network simplex; equal sizes with uniform
/// weights through an assignment solver. `grad` gets d(sum_g value_g) / d inputs: the optimal flow held fixed for
/// the coordinates, the dual potentials for the weights (both exact where the optimal flow is unique); `details`
/// the flows, duals and the converged flag. Pairs run in parallel with OpenMP (dynamic schedule); every pair's
/// result is independent of the thread count. Throws hepgnn::error on empty sets, mismatched dimensions or graph
/// counts, non-finite coordinates, negative or non-finite weights, a zero total weight in the balanced form, or a
/// bad option.
template <class T>
vector<T> emd(const matrix<T>& xa, const vector<T>& wa, const batch& ba, const matrix<T>& xb, const vector<T>& wb,
              const batch& bb, const emd_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
              loss_output<emd_details<T>> details = nullptr) {
  detail::check_emd_options(options);
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "emd");
  ba.validate(static_cast<index_t>(xa.rows()));
  bb.validate(static_cast<index_t>(xb.rows()));
  HEPGNN_CHECK(ba.num_graphs() == bb.num_graphs(), "emd: batches must hold the same number of graphs, got ",
               ba.num_graphs(), " and ", bb.num_graphs());
  const index_t G = ba.num_graphs();
  for (index_t g = 0; g < G; ++g)
    detail::check_emd_pair(wa, ba.begin(g), ba.size(g), wb, bb.begin(g), bb.size(g), options, "emd", g);
  vector<T> cost(G);
  if (grad) detail::zero_set_gradients(*grad, xa, wa, xb, wb);
  if (details) {
    details->flow.assign(G, matrix<T>());
    details->u.assign(G, vector<T>());
    details->v.assign(G, vector<T>());
  }
  std::atomic<bool> all_converged{true};  // only ever cleared, so the result does not depend on the order
  parallel_for_dynamic(G, true, parallel_limits::transport_chunk, [&](long gl) {
    const auto g = static_cast<index_t>(gl);
    thread_local detail::emd_scratch s;
    bool conv = true;
    const Eigen::Index n = ba.size(g), m = bb.size(g);
    cost[g] = static_cast<T>(detail::emd_pair(xa, wa, ba.begin(g), n, xb, wb, bb.begin(g), m, options, s, conv, grad,
                                              details != nullptr, details ? &details->u[g] : nullptr,
                                              details ? &details->v[g] : nullptr));
    if (!conv) all_converged.store(false, std::memory_order_relaxed);
    if (details) detail::copy_flow(s, n, m, details->flow[g]);
  });
  if (details) details->converged = all_converged.load();
  return cost;
}

/// @brief Batched exact EMD with uniform weights on both sides.
template <class T>
vector<T> emd(const matrix<T>& xa, const batch& ba, const matrix<T>& xb, const batch& bb,
              const emd_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
              loss_output<emd_details<T>> details = nullptr) {
  return emd(xa, vector<T>{}, ba, xb, vector<T>{}, bb, options, grad, details);
}

/// @brief Exact EMD between the point sets xa (n x d, weights wa) and xb (m x d, weights wb); as the batched call
/// on one graph (details in entry 0).
template <class T>
T emd(const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb, const vector<T>& wb,
      const emd_options& options = {}, loss_output<set_gradients<T>> grad = nullptr,
      loss_output<emd_details<T>> details = nullptr) {
  detail::check_emd_options(options);
  detail::check_transport_inputs(xa, wa, xb, wb, options.cost, "emd");
  detail::check_emd_pair(wa, 0, xa.rows(), wb, 0, xb.rows(), options, "emd", -1);
  thread_local detail::emd_scratch s;
  const Eigen::Index n = xa.rows(), m = xb.rows();
  if (grad) detail::zero_set_gradients(*grad, xa, wa, xb, wb);
  if (details) {
    details->flow.resize(1);
    details->u.resize(1);
    details->v.resize(1);
  }
  bool converged = true;
  const T cost = static_cast<T>(detail::emd_pair(xa, wa, 0, n, xb, wb, 0, m, options, s, converged, grad,
                                                 details != nullptr, details ? &details->u[0] : nullptr,
                                                 details ? &details->v[0] : nullptr));
  if (details) {
    detail::copy_flow(s, n, m, details->flow[0]);
    details->converged = converged;
  }
  return cost;
}

/// @brief Exact EMD with uniform weights on both sides.
template <class T>
T emd(const matrix<T>& xa, const matrix<T>& xb, const emd_options& options = {},
      loss_output<set_gradients<T>> grad = nullptr, loss_output<emd_details<T>> details = nullptr) {
  return emd(xa, vector<T>{}, xb, vector<T>{}, options, grad, details);
}

}  // namespace hepgnn
