#pragma once
/// @file jets.hpp
/// @brief Jet clustering for evaluation: a built-in anti-kT (generalised kT, E-scheme) with nearest-neighbour
/// caching, O(N^2) per event, plus an optional FastJet path (HEPGNN_HAVE_FASTJET) and delta-R jet matching.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"

#ifdef HEPGNN_HAVE_FASTJET
#include <fastjet/ClusterSequence.hh>
#endif

namespace hepgnn::jets {

/// @brief A four-momentum (px, py, pz, E) with the derived quantities used by clustering.
struct pseudojet {
  double px = 0, py = 0, pz = 0, e = 0;

  /// @brief Massless particle from (pt, eta, phi).
  static pseudojet from_pt_eta_phi(double pt, double eta, double phi) {
    return {pt * std::cos(phi), pt * std::sin(phi), pt * std::sinh(eta), pt * std::cosh(eta)};
  }
  /// @brief Particle from (pt, eta, phi, E) (massive when E > |p|).
  static pseudojet from_pt_eta_phi_e(double pt, double eta, double phi, double e) {
    return {pt * std::cos(phi), pt * std::sin(phi), pt * std::sinh(eta), e};
  }
  double pt2() const { return px * px + py * py; }
  double pt() const { return std::sqrt(pt2()); }
  /// @brief phi in [-pi, pi); 0 for pt = 0.
  double phi() const { return pt2() > 0 ? std::atan2(py, px) : 0.0; }
  /// @brief Rapidity; large-magnitude finite value along the beam, FastJet-like.
  double rapidity() const {
    constexpr double max_rap = 1e5;
    if (pt2() == 0 && e == std::abs(pz)) return pz >= 0 ? max_rap : -max_rap;
    const double ep = e + std::abs(pz);
    const double m2pt2 = std::max(e * e - pz * pz, 0.0);  // m^2 + pt^2
    if (m2pt2 <= 0) return pz >= 0 ? max_rap : -max_rap;
    const double y = 0.5 * std::log(ep * ep / m2pt2);
    return pz >= 0 ? y : -y;
  }
  /// @brief Pseudorapidity.
  double eta() const {
    const double pt_ = pt();
    return pt_ > 0 ? std::asinh(pz / pt_) : (pz >= 0 ? 1e5 : -1e5);
  }
  pseudojet& operator+=(const pseudojet& o) {
    px += o.px, py += o.py, pz += o.pz, e += o.e;
    return *this;
  }
};

/// @brief A clustered jet: its momentum and the input indices of its constituents.
struct jet {
  pseudojet p;
  std::vector<int> constituents;
};

namespace detail {
inline double wrapped_dphi(double a, double b) {
  double d = std::abs(a - b);
  return d > std::numbers::pi ? 2 * std::numbers::pi - d : d;
}
}  // namespace detail

/// @brief Anti-kT clustering (d_ij = min(pt_i^-2, pt_j^-2) dR_ij^2 / R^2, d_iB = pt_i^-2, rapidity-phi distance,
/// E-scheme recombination). Returns jets with pt >= ptmin, sorted by decreasing pt.
/// Nearest-neighbour caching makes it O(N^2) time and O(N) memory. Particles with zero pt are ignored.
inline std::vector<jet> cluster_antikt(std::span<const pseudojet> particles, double r = 0.4, double ptmin = 0) {
  HEPGNN_CHECK(r > 0 && std::isfinite(r), "cluster_antikt: radius R must be positive and finite, got ", r);
  for (std::size_t i = 0; i < particles.size(); ++i) {
    const auto& p = particles[i];
    HEPGNN_CHECK(std::isfinite(p.px) && std::isfinite(p.py) && std::isfinite(p.pz) && std::isfinite(p.e),
                 "cluster_antikt: particle ", i, " has a non-finite momentum component");
  }
  struct node {
    pseudojet p;
    double y, phi, inv_pt2;
    int nn;       // nearest neighbour (index into nodes), -1 = beam
    double nn_d;  // geometric distance squared to nn, or R^2
    std::vector<int> members;
  };
  const double r2 = r * r;
  std::vector<node> nodes;
  nodes.reserve(particles.size());
  for (std::size_t i = 0; i < particles.size(); ++i) {
    const auto& p = particles[i];
    if (p.pt2() <= 0) continue;
    nodes.push_back({p, p.rapidity(), p.phi(), 1 / p.pt2(), -1, r2, {static_cast<int>(i)}});
  }
  std::vector<int> active(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) active[i] = static_cast<int>(i);
  auto geo = [&](const node& a, const node& b) {
    const double dy = a.y - b.y, dp = detail::wrapped_dphi(a.phi, b.phi);
    return dy * dy + dp * dp;
  };
  auto update_nn = [&](int i) {
    node& a = nodes[i];
    a.nn = -1;
    a.nn_d = r2;
    for (int j : active)
      if (j != i) {
        const double d = geo(a, nodes[j]);
        if (d < a.nn_d) {
          a.nn_d = d;
          a.nn = j;
        }
      }
  };
  for (int i : active) update_nn(i);
  std::vector<jet> out;
  while (!active.empty()) {
    // smallest of d_iB = 1/pt^2 and d_ij = min(1/pt_i^2, 1/pt_j^2) dR^2/R^2 over the cached neighbours
    std::size_t best_pos = 0;
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < active.size(); ++k) {
      const node& a = nodes[active[k]];
      const double kt = a.nn >= 0 ? std::min(a.inv_pt2, nodes[a.nn].inv_pt2) : a.inv_pt2;
      const double d = kt * a.nn_d / r2;
      if (d < best) {
        best = d;
        best_pos = k;
      }
    }
    const int i = active[best_pos];
    const int j = nodes[i].nn;
    if (j < 0) {  // becomes a jet
      if (nodes[i].p.pt() >= ptmin) out.push_back({nodes[i].p, std::move(nodes[i].members)});
      active.erase(active.begin() + static_cast<std::ptrdiff_t>(best_pos));
    } else {  // merge j into i
      node& a = nodes[i];
      a.p += nodes[j].p;
      a.members.insert(a.members.end(), nodes[j].members.begin(), nodes[j].members.end());
      a.y = a.p.rapidity();
      a.phi = a.p.phi();
      a.inv_pt2 = a.p.pt2() > 0 ? 1 / a.p.pt2() : std::numeric_limits<double>::max();
      active.erase(std::find(active.begin(), active.end(), j));
    }
    // refresh neighbours that pointed at i or j, and let the merged node be a better neighbour of the others
    for (int k : active) {
      node& c = nodes[k];
      if (k == i && j >= 0) update_nn(k);
      else if (c.nn == i || c.nn == j) update_nn(k);
      else if (j >= 0 && k != i) {
        const double d = geo(c, nodes[i]);
        if (d < c.nn_d) {
          c.nn_d = d;
          c.nn = i;
        }
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const jet& a, const jet& b) { return a.p.pt2() > b.p.pt2(); });
  for (auto& jt : out) std::sort(jt.constituents.begin(), jt.constituents.end());
  return out;
}

#ifdef HEPGNN_HAVE_FASTJET
/// @brief The same clustering through FastJet (anti-kT, E-scheme), for cross-checks and large inputs.
inline std::vector<jet> cluster_antikt_fastjet(std::span<const pseudojet> particles, double r = 0.4, double ptmin = 0) {
  HEPGNN_CHECK(r > 0 && std::isfinite(r), "cluster_antikt_fastjet: radius R must be positive and finite, got ", r);
  std::vector<fastjet::PseudoJet> in;
  in.reserve(particles.size());
  for (std::size_t i = 0; i < particles.size(); ++i) {
    if (particles[i].pt2() <= 0) continue;
    in.emplace_back(particles[i].px, particles[i].py, particles[i].pz, particles[i].e);
    in.back().set_user_index(static_cast<int>(i));
  }
  fastjet::ClusterSequence cs(in, fastjet::JetDefinition(fastjet::antikt_algorithm, r));
  std::vector<jet> out;
  for (const auto& j : fastjet::sorted_by_pt(cs.inclusive_jets(ptmin))) {
    jet o{{j.px(), j.py(), j.pz(), j.e()}, {}};
    for (const auto& c : j.constituents()) o.constituents.push_back(c.user_index());
    std::sort(o.constituents.begin(), o.constituents.end());
    out.push_back(std::move(o));
  }
  return out;
}
#endif

/// @brief For every reference jet, the index of the closest other jet within max_dr in (eta, phi), -1 when none.
/// Greedy by reference order (pt-sorted references match first); each jet is used at most once.
inline std::vector<int> match_jets(std::span<const jet> reference, std::span<const jet> other, double max_dr = 0.2) {
  std::vector<int> match(reference.size(), -1);
  std::vector<char> used(other.size(), 0);
  for (std::size_t i = 0; i < reference.size(); ++i) {
    double best = max_dr * max_dr;
    int bj = -1;
    const double eta = reference[i].p.eta(), phi = reference[i].p.phi();
    for (std::size_t j = 0; j < other.size(); ++j) {
      if (used[j]) continue;
      const double de = eta - other[j].p.eta(), dp = detail::wrapped_dphi(phi, other[j].p.phi());
      const double d = de * de + dp * dp;
      if (d < best) {
        best = d;
        bj = static_cast<int>(j);
      }
    }
    if (bj >= 0) {
      used[bj] = 1;
      match[i] = bj;
    }
  }
  return match;
}

}  // namespace hepgnn::jets
