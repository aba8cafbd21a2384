#pragma once
/// @file jet_substructure.hpp
/// @brief N-subjettiness tau_N (Thaler, Van Tilburg) of jets in the JetNet layout, and the ratios tau2/tau1,
/// tau3/tau2 used as classical prong-counting taggers.
///
/// tau_N = sum_i pt_i min_k dR(i, axis_k)^beta / sum_i pt_i R0^beta, with dR in (eta_rel, phi_rel) (phi
/// wrapped). Axes: exclusive kt clustering to N subjets with winner-take-all recombination (the hardest
/// particle gives the direction), then a few Lloyd-style refinements (each axis moved to the pt-weighted
/// centroid of its particles) kept only when they lower tau_N. The result is therefore an upper bound of the
/// minimum over all axes and equals FastJet contrib's WTA_KT_Axes value when no refinement helps.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/data/jet_array.hpp"

namespace hepgnn {

/// @brief N-subjettiness settings.
struct nsubjettiness_options {
  double beta = 1.0;          ///< angular exponent
  double r0 = 0.8;            ///< characteristic radius in the normalisation
  int refine_iterations = 5;  ///< Lloyd refinements of the axes (0: WTA kt axes only)
};

namespace detail {
inline double nsub_value(const std::vector<double>& eta, const std::vector<double>& phi,
                         const std::vector<double>& pt, const std::vector<double>& ae,
                         const std::vector<double>& ap, double beta, std::vector<int>* owner) {
  double s = 0;
  for (std::size_t i = 0; i < pt.size(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    int bk = 0;
    for (std::size_t k = 0; k < ae.size(); ++k) {
      const double d2 = (eta[i] - ae[k]) * (eta[i] - ae[k]) + wrap_phi(phi[i] - ap[k]) * wrap_phi(phi[i] - ap[k]);
      if (d2 < best) best = d2, bk = static_cast<int>(k);
    }
    if (owner) (*owner)[i] = bk;
    s += pt[i] * (beta == 2.0 ? best : std::pow(std::sqrt(best), beta));
  }
  return s;
}
}  // namespace detail

/// @brief tau_N of jet j (its real constituents); 0 when the jet has at most N constituents.
template <class T>
double nsubjettiness(const jet_array<T>& jets, index_t j, int n_axes, const nsubjettiness_options& o = {}) {
  HEPGNN_CHECK(j >= 0 && j < jets.num_jets, "nsubjettiness: jet index ", j, " out of range [0, ", jets.num_jets, ")");
  HEPGNN_CHECK(n_axes >= 1, "nsubjettiness: n_axes must be >= 1, got ", n_axes);
  HEPGNN_CHECK(o.beta > 0 && o.r0 > 0, "nsubjettiness: beta and r0 must be > 0, got beta=", o.beta, ", r0=", o.r0);
  const index_t n = jets.count(j);
  if (n <= n_axes) return 0.0;
  std::vector<double> eta(n), phi(n), pt(n);
  double norm = 0;
  for (index_t i = 0; i < n; ++i) {
    auto r = jets.row(j, i);
    eta[i] = static_cast<double>(r(jet_col::eta_rel));
    phi[i] = static_cast<double>(r(jet_col::phi_rel));
    pt[i] = static_cast<double>(r(jet_col::pt_rel));
    norm += pt[i];
  }
  norm *= std::pow(o.r0, o.beta);
  if (!(norm > 0)) return 0.0;
  // exclusive kt with WTA recombination: merge the pair of smallest min(pt_a, pt_b)^2 dR^2 until N are left
  std::vector<double> ce = eta, cp = phi, cpt = pt;
  std::vector<char> alive(n, 1);
  for (index_t left = n; left > n_axes; --left) {
    double best = std::numeric_limits<double>::infinity();
    index_t ba = -1, bb = -1;
    for (index_t a = 0; a < n; ++a) {
      if (!alive[a]) continue;
      for (index_t b = a + 1; b < n; ++b) {
        if (!alive[b]) continue;
        const double dp = wrap_phi(cp[a] - cp[b]), m = std::min(cpt[a], cpt[b]);
        const double d = m * m * ((ce[a] - ce[b]) * (ce[a] - ce[b]) + dp * dp);
        if (d < best) best = d, ba = a, bb = b;
      }
    }
    if (cpt[bb] > cpt[ba]) ce[ba] = ce[bb], cp[ba] = cp[bb];  // winner takes the direction
    cpt[ba] += cpt[bb];
    alive[bb] = 0;
  }
  std::vector<double> ae, ap;
  for (index_t a = 0; a < n; ++a)
    if (alive[a]) ae.push_back(ce[a]), ap.push_back(cp[a]);
  std::vector<int> owner(n);
  double tau = detail::nsub_value(eta, phi, pt, ae, ap, o.beta, &owner);
  for (int it = 0; it < o.refine_iterations; ++it) {
    std::vector<double> se(ae.size(), 0), sp(ae.size(), 0), sw(ae.size(), 0);
    for (index_t i = 0; i < n; ++i) {
      const int k = owner[i];
      se[k] += pt[i] * eta[i];
      sp[k] += pt[i] * (ap[k] + wrap_phi(phi[i] - ap[k]));  // unwrap around the axis
      sw[k] += pt[i];
    }
    std::vector<double> ne = ae, np = ap;
    for (std::size_t k = 0; k < ae.size(); ++k)
      if (sw[k] > 0) ne[k] = se[k] / sw[k], np[k] = sp[k] / sw[k];
    std::vector<int> nown(n);
    const double t = detail::nsub_value(eta, phi, pt, ne, np, o.beta, &nown);
    if (!(t < tau)) break;
    tau = t, ae = ne, ap = np, owner = nown;
  }
  return tau / norm;
}

/// @brief tau_num / tau_den for every jet (e.g. 3, 2 for tau32); 0 where tau_den is 0.
template <class T>
std::vector<double> nsubjettiness_ratio(const jet_array<T>& jets, int num, int den,
                                        const nsubjettiness_options& o = {}) {
  HEPGNN_CHECK(num >= 1 && den >= 1, "nsubjettiness_ratio: num and den must be >= 1, got ", num, ", ", den);
  HEPGNN_CHECK(o.beta > 0 && o.r0 > 0, "nsubjettiness_ratio: beta and r0 must be > 0, got beta=", o.beta,
               ", r0=", o.r0);  // checked here: nothing may throw inside the parallel loop
  std::vector<double> r(static_cast<std::size_t>(jets.num_jets));
  parallel_for_dynamic(jets.num_jets, true, parallel_limits::nsubjettiness_chunk, [&](long jl) {
    const auto j = static_cast<index_t>(jl);
    const double d = nsubjettiness(jets, j, den, o);
    r[j] = d > 0 ? nsubjettiness(jets, j, num, o) / d : 0.0;
  });
  return r;
}

}  // namespace hepgnn
