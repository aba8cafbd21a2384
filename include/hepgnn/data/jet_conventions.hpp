#pragma once
/// @file jet_conventions.hpp
/// @brief hepgnn::apply_jet_conventions: puts generated jets into the conventions that real JetNet-layout jets
/// hold by construction, and that a generator only learns approximately:
///   - pt_rel of every real particle is at least `min_pt_rel` (EPiC-GAN's set_min_pt: a generated particle with
///     pt <= 0 is raised to the data's smallest positive pt_rel instead of becoming a massless ghost);
///   - pt_rel sums to `pt_rel_sum` per jet (pt_rel is pt over the jet's pt; the toy jets of data/toy_jets.hpp
///     divide by the sum of the kept particles, so their sum is exactly 1);
///   - eta_rel and phi_rel are relative to the jet's own axis, the direction of the massless four-vector sum of
///     its particles (EPiC-GAN's center_jets; the toy jets and JetNet measure them from the jet axis).
/// Why: the unnormalised EFPs of JetNet's w1efp and FPD scale as (sum pt_rel)^d, and the relative jet mass as
/// sum pt_rel, so a spread of a few per cent in a generated jet's pt sum, which real toy jets do not have at
/// all, dominates those metrics (tests/data/test_jet_conventions.cpp). Jet mass and EFPs do not change under the
/// centring (a longitudinal boost and a rotation in phi); particle order: descending pt_rel, as the data.

#include <algorithm>
#include <cmath>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/data/jet_array.hpp"

namespace hepgnn {

/// @brief What apply_jet_conventions enforces (each step can be switched off).
struct jet_convention_options {
  double min_pt_rel = 0;     ///< lower bound of a real particle's pt_rel, >= 0 (0: only pt_rel >= 0 is kept)
  double pt_rel_sum = 1;     ///< pt_rel per jet sums to this, > 0; 0: the sums are left as they are
  bool center = true;        ///< measure eta_rel and phi_rel from the jet's four-vector axis
};

/// @brief The smallest positive pt_rel of the real particles of `jets` (EPiC-GAN's min_pt; 0 for no particle).
template <class T>
double min_positive_pt_rel(const jet_array<T>& jets) {
  double m = 0;
  for (long r = 0; r < jets.particles.rows(); ++r) {
    const double pt = static_cast<double>(jets.particles(r, jet_col::pt_rel));
    if (jets.particles(r, jet_col::mask) > T(0.5) && pt > 0 && (m == 0 || pt < m)) m = pt;
  }
  return m;
}

/// @brief Applies the conventions of jet_convention_options to every jet with at least one particle, in
/// place (see the file comment); padded rows stay zero, real particles end in descending pt_rel.
template <class T>
void apply_jet_conventions(jet_array<T>& jets, const jet_convention_options& o = {}) {
  jets.validate("apply_jet_conventions: jets");
  HEPGNN_CHECK(std::isfinite(o.min_pt_rel) && o.min_pt_rel >= 0,
               "apply_jet_conventions: options.min_pt_rel must be finite and >= 0, got ", o.min_pt_rel);
  HEPGNN_CHECK(std::isfinite(o.pt_rel_sum) && o.pt_rel_sum >= 0,
               "apply_jet_conventions: options.pt_rel_sum must be finite and >= 0 (0: off), got ", o.pt_rel_sum);
  std::vector<long> order;
  matrix<T> sorted;
  for (index_t j = 0; j < jets.num_jets; ++j) {
    const index_t n = jets.count(j);
    if (n == 0) continue;
    double sum = 0;
    for (index_t i = 0; i < n; ++i) {
      auto r = jets.row(j, i);
      r(jet_col::pt_rel) = std::max(r(jet_col::pt_rel), static_cast<T>(o.min_pt_rel));
      sum += static_cast<double>(r(jet_col::pt_rel));
    }
    if (o.pt_rel_sum > 0 && sum > 0)
      for (index_t i = 0; i < n; ++i)
        jets.row(j, i)(jet_col::pt_rel) = static_cast<T>(static_cast<double>(jets.row(j, i)(jet_col::pt_rel)) *
                                                         (o.pt_rel_sum / sum));
    if (o.center) {
      double px = 0, py = 0, pz = 0;
      for (index_t i = 0; i < n; ++i) {
        const auto r = jets.row(j, i);
        const double pt = static_cast<double>(r(jet_col::pt_rel)), eta = static_cast<double>(r(jet_col::eta_rel)),
                     phi = static_cast<double>(r(jet_col::phi_rel));
        px += pt * std::cos(phi), py += pt * std::sin(phi), pz += pt * std::sinh(eta);
      }
      const double jpt = std::hypot(px, py);
      if (jpt > 0) {  // a jet of zero transverse momentum has no axis
        const double jeta = std::asinh(pz / jpt), jphi = std::atan2(py, px);
        for (index_t i = 0; i < n; ++i) {
          auto r = jets.row(j, i);
          r(jet_col::eta_rel) = static_cast<T>(static_cast<double>(r(jet_col::eta_rel)) - jeta);
          r(jet_col::phi_rel) = static_cast<T>(wrap_phi(static_cast<double>(r(jet_col::phi_rel)) - jphi));
        }
      }
    }
    order.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](long a, long b) {
      return jets.row(j, static_cast<index_t>(a))(jet_col::pt_rel) > jets.row(j, static_cast<index_t>(b))(jet_col::pt_rel);
    });
    sorted.resize(n, 4);
    for (index_t i = 0; i < n; ++i) sorted.row(i) = jets.row(j, static_cast<index_t>(order[static_cast<std::size_t>(i)]));
    for (index_t i = 0; i < n; ++i) jets.row(j, i) = sorted.row(i);
  }
}

}  // namespace hepgnn
