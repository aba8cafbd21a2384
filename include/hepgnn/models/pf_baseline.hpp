#pragma once
/// @file pf_baseline.hpp
/// @brief A rule-based particle-flow reconstruction for the toy detector: tracks and clusters are linked by
/// distance, tracks give charged candidates, calorimeter energy in excess of the linked tracks gives photons
/// and neutral hadrons, electrons and muons come from simple identification cuts.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "hepgnn/data/pf_candidates.hpp"
#include "hepgnn/data/toy_pf_detector.hpp"

namespace hepgnn::pf {

/// @brief Throws unless `features` is an N x feature::count matrix of finite values with known element types.
template <class Derived>
void check_elements(const Eigen::MatrixBase<Derived>& features, const char* who) {
  HEPGNN_CHECK(features.cols() == feature::count, who, ": element features must have ", int(feature::count),
               " columns, got ", features.rows(), " x ", features.cols());
  for (Eigen::Index i = 0; i < features.rows(); ++i) {
    for (Eigen::Index c = 0; c < features.cols(); ++c)
      HEPGNN_CHECK(std::isfinite(static_cast<double>(features(i, c))), who, ": element ", i, " has a non-finite feature ",
                   static_cast<double>(features(i, c)), " in column ", c);
    const double t = static_cast<double>(features(i, feature::type));
    HEPGNN_CHECK(t == double(track) || t == double(ecal_cluster) || t == double(hcal_cluster), who, ": element ", i,
                 " has unknown element type ", t, " (expected 1 = track, 2 = ECAL cluster, 3 = HCAL cluster)");
  }
}

/// @brief Tunable constants of the rule-based reconstruction.
struct pf_baseline_config {
  double ecal_link_radius = 0.05;   ///< track (at the calorimeter) to ECAL cluster
  double hcal_link_radius = 0.15;   ///< track to HCAL cluster
  double ecal_hcal_link_radius = 0.12;  ///< wide, untracked ECAL cluster to HCAL cluster (one hadron shower)
  double hcal_calibration = 1 / 0.9;    ///< HCAL energy scale for hadrons
  double ecal_hadron_calibration = 1 / 0.8;  ///< ECAL (EM scale) to hadronic energy
  int muon_hits_min = 2;                ///< muon identification
  double electron_ep_min = 0.75, electron_ep_max = 1.3, electron_p_min = 2;  ///< electron identification
  double hadron_ecal_width = 0.02;      ///< sigma_eta + sigma_phi above this marks a hadronic ECAL cluster
  double photon_min_energy = 0.4;       ///< unlinked ECAL clusters below this are dropped
  double photon_excess_min = 1.0;       ///< track-linked ECAL excess below this is dropped
  double neutral_min_energy = 1.0;      ///< neutral hadron threshold
  double neutral_sigma = 1.0;           ///< HCAL excess must exceed this many sigma of the linked track momenta
  double hcal_stochastic = 1.0;         ///< expected HCAL resolution, sigma = a sqrt(p)
};

/// @brief The rule-based particle-flow algorithm. Linear in the number of elements (grid-based linking).
class pf_baseline {
 public:
  explicit pf_baseline(pf_baseline_config cfg = {}) : cfg_(cfg) {}
  const pf_baseline_config& config() const { return cfg_; }

  /// @brief Reconstructs the candidates of one event from its element features (N x feature::count).
  candidates reconstruct(const matrix<double>& features) const {
    check_elements(features, "pf_baseline::reconstruct");
    const index_t n = static_cast<index_t>(features.rows());
    candidates out;
    out.cls.assign(static_cast<std::size_t>(n), none);
    out.p4 = matrix<double>::Zero(n, target::count);
    std::vector<index_t> tracks, ecal, hcal;
    for (index_t i = 0; i < n; ++i) {
      const int t = static_cast<int>(features(i, feature::type));
      (t == track ? tracks : t == ecal_cluster ? ecal : hcal).push_back(i);
    }
    auto phi_of = [&](index_t i, int s, int c) { return std::atan2(features(i, s), features(i, c)); };
    const grid ecal_grid(features, ecal, cfg_.ecal_link_radius, phi_of);
    const grid hcal_grid(features, hcal, std::max(cfg_.hcal_link_radius, cfg_.ecal_hcal_link_radius), phi_of);

    // remaining energy per element (ECAL at EM scale, HCAL calibrated to hadrons)
    std::vector<double> left(static_cast<std::size_t>(n), 0.0), linked_p(static_cast<std::size_t>(n), 0.0);
    std::vector<char> track_linked(static_cast<std::size_t>(n), 0);
    for (index_t i : ecal) left[i] = features(i, feature::energy);
    for (index_t i : hcal) left[i] = features(i, feature::energy) * cfg_.hcal_calibration;

    struct link { index_t t, e, h; double p; };
    std::vector<link> links;
    links.reserve(tracks.size());
    for (index_t t : tracks) {
      const double eta = features(t, feature::eta_calo);
      const double phi = phi_of(t, feature::sin_phi_calo, feature::cos_phi_calo);
      const index_t e = ecal_grid.nearest(eta, phi, cfg_.ecal_link_radius);
      const index_t h = hcal_grid.nearest(eta, phi, cfg_.hcal_link_radius);
      links.push_back({t, e, h, features(t, feature::energy)});
      if (e >= 0) track_linked[e] = 1;
      if (h >= 0) {
        track_linked[h] = 1;
        linked_p[h] += features(t, feature::energy);
      }
    }
    // identification first (muons, electrons), then charged hadrons by decreasing momentum
    std::stable_sort(links.begin(), links.end(), [](const link& a, const link& b) { return a.p > b.p; });
    for (const link& l : links) {
      index_t cls = charged_hadron;
      if (features(l.t, feature::muon_hits) >= cfg_.muon_hits_min) {
        cls = muon;
      } else if (l.e >= 0 && l.p >= cfg_.electron_p_min) {
        const double ep = features(l.e, feature::energy) / l.p;
        const double width = features(l.e, feature::sigma_eta) + features(l.e, feature::sigma_phi);
        if (ep >= cfg_.electron_ep_min && ep <= cfg_.electron_ep_max && width < cfg_.hadron_ecal_width) cls = electron;
      }
      out.cls[l.t] = cls;
      out.p4(l.t, target::pt) = features(l.t, feature::pt);
      out.p4(l.t, target::eta) = features(l.t, feature::eta);
      out.p4(l.t, target::sin_phi) = features(l.t, feature::sin_phi);
      out.p4(l.t, target::cos_phi) = features(l.t, feature::cos_phi);
      out.p4(l.t, target::energy) = l.p;
      if (cls == muon) {  // minimum-ionising deposits
        if (l.e >= 0) left[l.e] = std::max(0.0, left[l.e] - 0.4);
        if (l.h >= 0) left[l.h] = std::max(0.0, left[l.h] - 2.5);
      } else if (cls == electron) {
        left[l.e] = std::max(0.0, left[l.e] - l.p);
      } else {  // hadron: HCAL first, then ECAL at the hadronic scale
        double need = l.p;
        if (l.h >= 0) {
          const double take = std::min(need, left[l.h]);
          left[l.h] -= take;
          need -= take;
        }
        if (l.e >= 0 && need > 0) {
          const double take = std::min(need, left[l.e] * cfg_.ecal_hadron_calibration);
          left[l.e] -= take / cfg_.ecal_hadron_calibration;
        }
      }
    }
    // untracked, wide ECAL clusters next to an untracked HCAL cluster are the early part of a hadron shower
    std::vector<double> extra(static_cast<std::size_t>(n), 0.0);
    for (index_t e : ecal) {
      if (track_linked[e]) continue;
      const double width = features(e, feature::sigma_eta) + features(e, feature::sigma_phi);
      if (width < cfg_.hadron_ecal_width) continue;
      const index_t h = hcal_grid.nearest(features(e, feature::eta), phi_of(e, feature::sin_phi, feature::cos_phi),
                                          cfg_.ecal_hcal_link_radius);
      if (h < 0 || track_linked[h]) continue;
      extra[h] += left[e] * cfg_.ecal_hadron_calibration;
      left[e] = 0;
    }
    auto emit = [&](index_t i, index_t cls, double e) {
      const double eta = features(i, feature::eta);
      out.cls[i] = cls;
      out.p4(i, target::pt) = e / std::cosh(eta);
      out.p4(i, target::eta) = eta;
      out.p4(i, target::sin_phi) = features(i, feature::sin_phi);
      out.p4(i, target::cos_phi) = features(i, feature::cos_phi);
      out.p4(i, target::energy) = e;
    };
    for (index_t e : ecal) {
      const double min_e = track_linked[e] ? cfg_.photon_excess_min : cfg_.photon_min_energy;
      if (left[e] >= min_e) emit(e, photon, left[e]);
    }
    for (index_t h : hcal) {
      const double excess = left[h] + extra[h];
      const double sigma = cfg_.neutral_sigma * cfg_.hcal_stochastic * std::sqrt(linked_p[h]);
      if (excess >= std::max(cfg_.neutral_min_energy, sigma)) emit(h, neutral_hadron, excess);
    }
    return out;
  }

 private:
  // Uniform (eta, phi) cell list of one element type, for nearest-within-radius lookups.
  struct grid {
    template <class PhiOf>
    grid(const matrix<double>& f, const std::vector<index_t>& ids, double cell, PhiOf phi_of) : f_(f), cell_(cell) {
      nphi_ = std::max(3, static_cast<int>(2 * std::numbers::pi / cell));
      cphi_ = 2 * std::numbers::pi / nphi_;
      cells_.reserve(ids.size());
      phi_.assign(static_cast<std::size_t>(f.rows()), 0.0);
      for (index_t i : ids) {
        phi_[i] = phi_of(i, feature::sin_phi, feature::cos_phi);
        cells_[key(ieta(f(i, feature::eta)), iphi(phi_[i]))].push_back(i);
      }
    }
    int ieta(double eta) const { return static_cast<int>(std::floor(eta / cell_)); }
    int iphi(double phi) const { return static_cast<int>(std::floor((phi + std::numbers::pi) / cphi_)) % nphi_; }
    static std::int64_t key(int a, int b) { return (static_cast<std::int64_t>(a) << 32) ^ static_cast<std::uint32_t>(b); }
    /// Nearest element within `radius` (<= cell) of (eta, phi), -1 when none; ties go to the lower index.
    index_t nearest(double eta, double phi, double radius) const {
      index_t best = -1;
      double best_dr = radius;
      const int ie = ieta(eta), ip = iphi(phi);
      for (int a = -1; a <= 1; ++a)
        for (int b = -1; b <= 1; ++b) {
          auto it = cells_.find(key(ie + a, ((ip + b) % nphi_ + nphi_) % nphi_));
          if (it == cells_.end()) continue;
          for (index_t j : it->second) {
            const double dr = delta_r(eta, phi, f_(j, feature::eta), phi_[j]);
            if (dr < best_dr || (dr == best_dr && j < best)) {
              best_dr = dr;
              best = j;
            }
          }
        }
      return best;
    }
    const matrix<double>& f_;
    double cell_, cphi_;
    int nphi_;
    std::vector<double> phi_;
    std::unordered_map<std::int64_t, std::vector<index_t>> cells_;
  };

  pf_baseline_config cfg_;
};

}  // namespace hepgnn::pf
