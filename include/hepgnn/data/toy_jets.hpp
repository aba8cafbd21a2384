#pragma once
/// @file toy_jets.hpp
/// @brief Toy boosted-jet generator in the JetNet layout: QCD-like one-prong jets from a collinear/soft
/// splitting cascade, and two-prong (W-like) and three-prong (top-like) jets from two-body decays with exact
/// relativistic kinematics, each decay product then showering with the same cascade.
///
/// Physics, kept simple on purpose:
///  - Decays: t -> b W, W -> q q' are isotropic in the parent rest frame (massless b and quarks), boosted
///    to a parent of transverse momentum pt at eta = phi = 0. The prong opening angles therefore follow the
///    right distribution for the given pt and mass (Delta R ~ 2 m / pt).
///  - Cascade: each parton emits with the double-log density c dz/z dtheta/theta, angular ordered
///    (theta below the parent's emission angle, or below the colour partner's distance for decay products),
///    with a transverse momentum cutoff z pt theta > kt_min; the angle sequence is sampled with the veto
///    algorithm. Emissions conserve the pt-weighted (eta, phi) centroid of the pair.
///  - Hadronisation: each final parton splits into 1 + Poisson(h ln(1 + pt)) hadrons (uniform spacings in
///    pt, Gaussian angular spread hadron_kt / pt, recentred on the parton) so multiplicities are JetNet-like.
///  - Jet: particles within `radius` of the initial direction; axis and mass from the massless four-vector
///    sum; the `max_particles` highest-pt ones are kept, pt_rel = pt / (sum of kept pt) so it sums to 1.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/data/jet_array.hpp"

namespace hepgnn {

/// @brief Kind of toy jet (also its label in the generated jet_array).
enum class jet_kind : int { qcd = 0, w = 1, top = 2 };

/// @brief Generator settings (GeV, radians).
struct toy_jet_options {
  double pt_min = 950, pt_max = 1050;     ///< initiating parton / resonance pt, uniform in [pt_min, pt_max]
  double radius = 0.8;                    ///< jet radius (cone around the initial direction)
  index_t max_particles = 30;             ///< JetNet slots per jet
  double w_mass = 80.4, w_width = 2.1;    ///< W-like resonance (Breit-Wigner)
  double top_mass = 173.0, top_width = 1.4;  ///< top-like resonance (Breit-Wigner)
  double coupling = 0.15;                 ///< c in the emission density c dz/z dtheta/theta
  double kt_min = 0.2;                    ///< emission cutoff z * pt * theta > kt_min
  double theta_min = 0.004;               ///< smallest emission angle (below it partons are final)
  double hadrons_per_log = 1.0;           ///< hadronisation: 1 + Poisson(h ln(1 + pt / 1 GeV)) hadrons per parton
  double hadron_kt = 0.3;                 ///< hadronisation: angular spread kt / pt of each hadron
};

namespace detail {

struct toy_p4 {
  double px = 0, py = 0, pz = 0, e = 0;
};

struct toy_parton {
  double pt, eta, phi, theta_max;
};

/// Massless two-body decay of `parent` (mass m) into daughters of masses m1 and 0, isotropic in its rest frame.
inline void toy_decay(const toy_p4& parent, double m, double m1, rng& g, toy_p4& d1, toy_p4& d2) {
  const double p = (m * m - m1 * m1) / (2 * m);  // rest-frame momentum (second daughter massless)
  const double cost = g.uniform(-1, 1), sint = std::sqrt(std::max(0.0, 1 - cost * cost));
  const double ph = g.uniform(0, 2 * std::numbers::pi);
  const double nx = sint * std::cos(ph), ny = sint * std::sin(ph), nz = cost;
  toy_p4 a{p * nx, p * ny, p * nz, std::sqrt(p * p + m1 * m1)}, b{-p * nx, -p * ny, -p * nz, p};
  // boost by beta = parent p / E
  const double bx = parent.px / parent.e, by = parent.py / parent.e, bz = parent.pz / parent.e;
  const double b2 = bx * bx + by * by + bz * bz, gamma = 1 / std::sqrt(1 - b2);
  auto boost = [&](const toy_p4& q) {
    const double bp = bx * q.px + by * q.py + bz * q.pz;
    const double g2 = b2 > 0 ? (gamma - 1) / b2 : 0.0;
    return toy_p4{q.px + g2 * bp * bx + gamma * bx * q.e, q.py + g2 * bp * by + gamma * by * q.e,
                  q.pz + g2 * bp * bz + gamma * bz * q.e, gamma * (q.e + bp)};
  };
  d1 = boost(a);
  d2 = boost(b);
}

inline toy_parton toy_to_parton(const toy_p4& q, double theta_max) {
  const double pt = std::hypot(q.px, q.py);
  return {pt, std::asinh(q.pz / pt), std::atan2(q.py, q.px), theta_max};
}

inline double toy_dr(const toy_parton& a, const toy_parton& b) {
  return std::hypot(a.eta - b.eta, wrap_phi(a.phi - b.phi));
}

/// Breit-Wigner mass, truncated to +-5 widths so decays stay physical.
inline double toy_mass(double m, double w, rng& g) {
  for (;;) {
    const double x = m + 0.5 * w * std::tan(std::numbers::pi * (g.uniform() - 0.5));
    if (std::fabs(x - m) < 5 * w) return x;
  }
}

/// Angular-ordered cascade of one parton; final partons are appended to `out`.
inline void toy_shower(toy_parton start, const toy_jet_options& o, rng& g, std::vector<toy_parton>& out) {
  std::vector<toy_parton> stack{start};
  while (!stack.empty()) {
    toy_parton p = stack.back();
    stack.pop_back();
    // Emission density in ln(theta): c * L(theta), L = ln(0.5 pt theta / kt_min) (the z range); veto algorithm
    // with the overestimate c * L(theta_max).
    double theta = p.theta_max;
    const double lmax = std::log(0.5 * p.pt * p.theta_max / o.kt_min);
    bool emitted = false;
    while (lmax > 0) {
      theta *= std::exp(-g.exponential(1.0) / (o.coupling * lmax));
      if (theta < o.theta_min) break;
      const double l = std::log(0.5 * p.pt * theta / o.kt_min);
      if (l > 0 && g.uniform() * lmax < l) {
        emitted = true;
        break;
      }
    }
    if (!emitted) {
      out.push_back(p);
      continue;
    }
    // z log-uniform in [kt_min / (pt theta), 1/2]
    const double zmin = o.kt_min / (p.pt * theta);
    const double z = zmin * std::exp(g.uniform() * std::log(0.5 / zmin));
    const double a = g.uniform(0, 2 * std::numbers::pi), ce = std::cos(a), se = std::sin(a);
    // hard daughter moves by z theta, soft one by (1 - z) theta in the opposite direction: centroid kept
    stack.push_back({(1 - z) * p.pt, p.eta - z * theta * ce, p.phi - z * theta * se, theta});
    stack.push_back({z * p.pt, p.eta + (1 - z) * theta * ce, p.phi + (1 - z) * theta * se, theta});
  }
}

inline int toy_poisson(double mu, rng& g) {
  const double l = std::exp(-mu);
  int k = 0;
  for (double p = g.uniform(); p > l; p *= g.uniform()) ++k;
  return k;
}

/// Splits a parton into hadrons: pt fractions from uniform spacings, small angular spread, centroid kept.
inline void toy_hadronize(const toy_parton& p, const toy_jet_options& o, rng& g, std::vector<toy_parton>& out) {
  const int n = 1 + toy_poisson(o.hadrons_per_log * std::log1p(p.pt), g);
  if (n == 1) {
    out.push_back(p);
    return;
  }
  std::vector<double> cut(n + 1);
  cut[0] = 0, cut[n] = 1;
  for (int i = 1; i < n; ++i) cut[i] = g.uniform();
  std::sort(cut.begin(), cut.end());
  const std::size_t first = out.size();
  double de = 0, dp = 0, wsum = 0;
  for (int i = 0; i < n; ++i) {
    const double f = cut[i + 1] - cut[i];
    if (!(f > 1e-9)) continue;
    const double pt = f * p.pt, s = std::min(o.hadron_kt / pt, 0.1);
    const double e = g.normal(0, s), ph = g.normal(0, s);
    out.push_back({pt, e, ph, 0});
    de += pt * e, dp += pt * ph, wsum += pt;
  }
  for (std::size_t i = first; i < out.size(); ++i) {
    out[i].eta += p.eta - de / wsum;
    out[i].phi += p.phi - dp / wsum;
  }
}

}  // namespace detail

/// @brief Generates `n` toy jets of one kind into the JetNet layout (labels = int(kind), jet_features =
/// (pt, eta, mass, n_constituents in the cone)). Deterministic for a given state of `gen` (one draw from it);
/// each jet uses its own counter-based stream, so the result does not depend on the thread count.
template <class T>
jet_array<T> make_toy_jets(index_t n, jet_kind kind, rng& gen, const toy_jet_options& o = {}) {
  HEPGNN_CHECK(n >= 0, "make_toy_jets: n must be >= 0, got ", n);
  HEPGNN_CHECK(o.max_particles > 0, "make_toy_jets: options.max_particles must be > 0, got ", o.max_particles);
  HEPGNN_CHECK(o.pt_min > 0 && o.pt_max >= o.pt_min, "make_toy_jets: need 0 < pt_min <= pt_max, got [", o.pt_min,
               ", ", o.pt_max, "]");
  HEPGNN_CHECK(o.radius > 0 && o.radius < 3, "make_toy_jets: options.radius must be in (0, 3), got ", o.radius);
  HEPGNN_CHECK(o.hadrons_per_log >= 0 && o.hadrons_per_log < 10 && o.hadron_kt >= 0,
               "make_toy_jets: need hadrons_per_log in [0, 10) and hadron_kt >= 0, got ", o.hadrons_per_log, ", ",
               o.hadron_kt);
  HEPGNN_CHECK(o.kt_min > 0 && o.theta_min > 0 && o.coupling > 0 && o.coupling < 10,
               "make_toy_jets: kt_min, theta_min must be > 0 and coupling in (0, 10), got kt_min=", o.kt_min,
               ", theta_min=", o.theta_min, ", coupling=", o.coupling);
  HEPGNN_CHECK(o.w_mass > 0 && o.top_mass > o.w_mass + 5 * o.w_width && o.w_width >= 0 && o.top_width >= 0,
               "make_toy_jets: need 0 < w_mass < top_mass (by 5 W widths), got w_mass=", o.w_mass,
               ", top_mass=", o.top_mass);
  const std::uint64_t base = gen();
  jet_array<T> jets = jet_array<T>::zeros(n, o.max_particles);
  jets.labels.assign(static_cast<std::size_t>(n), static_cast<int>(kind));
  jets.jet_features = matrix<T>::Zero(n, 4);
  parallel_for_dynamic(n, true, parallel_limits::toy_jets_chunk, [&](long jl) {
    const auto j = static_cast<index_t>(jl);
    rng g(mix64(base + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(j + 1)));
    const double pt = g.uniform(o.pt_min, o.pt_max);
    std::vector<detail::toy_parton> prongs;
    if (kind == jet_kind::qcd) {
      prongs.push_back({pt, 0.0, 0.0, o.radius});
    } else {
      const bool top = kind == jet_kind::top;
      const double m = top ? detail::toy_mass(o.top_mass, o.top_width, g) : detail::toy_mass(o.w_mass, o.w_width, g);
      const detail::toy_p4 parent{pt, 0, 0, std::sqrt(pt * pt + m * m)};
      detail::toy_p4 w = parent, b, q1, q2;
      double mw = m;
      if (top) {
        mw = detail::toy_mass(o.w_mass, o.w_width, g);
        detail::toy_decay(parent, m, mw, g, w, b);
      }
      detail::toy_decay(w, mw, 0.0, g, q1, q2);
      auto p1 = detail::toy_to_parton(q1, 0), p2 = detail::toy_to_parton(q2, 0);
      // a colour-singlet pair radiates inside its opening angle
      p1.theta_max = p2.theta_max = std::min(o.radius, detail::toy_dr(p1, p2));
      prongs.push_back(p1);
      prongs.push_back(p2);
      if (top) {
        auto pb = detail::toy_to_parton(b, 0), pw = detail::toy_to_parton(w, 0);
        pb.theta_max = std::min(o.radius, detail::toy_dr(pb, pw));
        prongs.push_back(pb);
      }
    }
    std::vector<detail::toy_parton> partons, parts;
    for (const auto& p : prongs) detail::toy_shower(p, o, g, partons);
    for (const auto& p : partons) detail::toy_hadronize(p, o, g, parts);
    // cone around the initial direction, then jet four-vector (massless particles)
    double px = 0, py = 0, pz = 0, e = 0;
    std::vector<detail::toy_parton> in;
    for (const auto& p : parts) {
      if (std::hypot(p.eta, wrap_phi(p.phi)) >= o.radius) continue;
      in.push_back(p);
      px += p.pt * std::cos(p.phi), py += p.pt * std::sin(p.phi), pz += p.pt * std::sinh(p.eta);
      e += p.pt * std::cosh(p.eta);
    }
    const double jpt = std::hypot(px, py), jeta = jpt > 0 ? std::asinh(pz / jpt) : 0.0;
    const double jphi = std::atan2(py, px);
    const double m2 = e * e - px * px - py * py - pz * pz;
    std::sort(in.begin(), in.end(), [](const auto& a, const auto& b) { return a.pt > b.pt; });
    const index_t keep = std::min<index_t>(o.max_particles, static_cast<index_t>(in.size()));
    double sum = 0;
    for (index_t i = 0; i < keep; ++i) sum += in[i].pt;
    for (index_t i = 0; i < keep; ++i) {
      auto r = jets.row(j, i);
      r(jet_col::eta_rel) = static_cast<T>(in[i].eta - jeta);
      r(jet_col::phi_rel) = static_cast<T>(wrap_phi(in[i].phi - jphi));
      r(jet_col::pt_rel) = static_cast<T>(in[i].pt / sum);
      r(jet_col::mask) = T(1);
    }
    jets.jet_features(j, 0) = static_cast<T>(jpt);
    jets.jet_features(j, 1) = static_cast<T>(jeta);
    jets.jet_features(j, 2) = static_cast<T>(std::sqrt(std::max(0.0, m2)));
    jets.jet_features(j, 3) = static_cast<T>(in.size());
  });
  return jets;
}

/// @brief Concatenates jet arrays with the same number of slots (labels and jet features kept when all have them).
template <class T>
jet_array<T> concat_jets(const std::vector<const jet_array<T>*>& parts) {
  HEPGNN_CHECK(!parts.empty(), "concat_jets: need at least one jet_array");
  jet_array<T> out;
  out.max_particles = parts[0]->max_particles;
  bool labels = true, feats = true;
  Eigen::Index rows = 0;
  for (auto* p : parts) {
    HEPGNN_CHECK(p && p->max_particles == out.max_particles, "concat_jets: all parts must have max_particles=",
                 out.max_particles, ", got ", p ? p->max_particles : -1);
    out.num_jets += p->num_jets;
    rows += p->particles.rows();
    labels = labels && p->labels.size() == static_cast<std::size_t>(p->num_jets);
    feats = feats && p->jet_features.rows() == p->num_jets && p->jet_features.cols() == 4;
  }
  out.particles.resize(rows, 4);
  if (feats) out.jet_features.resize(out.num_jets, 4);
  Eigen::Index r = 0, jr = 0;
  for (auto* p : parts) {
    out.particles.middleRows(r, p->particles.rows()) = p->particles;
    r += p->particles.rows();
    if (labels) out.labels.insert(out.labels.end(), p->labels.begin(), p->labels.end());
    if (feats) out.jet_features.middleRows(jr, p->num_jets) = p->jet_features;
    jr += p->num_jets;
  }
  return out;
}

}  // namespace hepgnn
