#pragma once
/// @file toy_pf_detector.hpp
/// @brief A seeded toy particle-flow detector (tracker, ECAL, HCAL) producing MLPF-style element features and
/// per-element targets: jets and soft particles in, tracks and (merged) calorimeter clusters out.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn::pf {

/// @brief Target / candidate classes, as in MLPF.
enum particle_class : index_t { none = 0, charged_hadron = 1, neutral_hadron = 2, photon = 3, electron = 4, muon = 5 };
/// @brief Number of classes including `none`.
inline constexpr index_t num_classes = 6;

/// @brief Short name of a class id (for tables and plots).
inline const char* class_name(index_t c) {
  static constexpr const char* names[] = {"none", "ch.had", "n.had", "photon", "electron", "muon"};
  return c >= 0 && c < num_classes ? names[c] : "?";
}

/// @brief Element type ids as stored in feature column 0 (plain ints, so they compare with feature values).
inline constexpr int track = 1, ecal_cluster = 2, hcal_cluster = 3;

/// @brief Columns of an element feature row (one row per track or cluster; unused columns are 0).
namespace feature {
enum : int {
  type = 0,          ///< element_type (1 track, 2 ECAL, 3 HCAL)
  pt = 1,            ///< track pT, or cluster ET = E / cosh(eta)  [GeV]
  eta = 2,           ///< track eta at the vertex, or cluster eta
  sin_phi = 3,       ///< sin of phi
  cos_phi = 4,       ///< cos of phi
  energy = 5,        ///< track momentum |p|, or cluster energy [GeV]
  charge = 6,        ///< track charge (+-1)
  eta_calo = 7,      ///< track: eta at the calorimeter surface
  sin_phi_calo = 8,  ///< track: sin phi at the calorimeter (bent in the field)
  cos_phi_calo = 9,  ///< track: cos phi at the calorimeter
  muon_hits = 10,    ///< track: hits in the muon stations
  sigma_eta = 11,    ///< cluster: energy-weighted eta width
  sigma_phi = 12,    ///< cluster: energy-weighted phi width
  num_deposits = 13, ///< cluster: number of merged shower deposits
  track_hits = 14,   ///< track: number of tracker hits
  count = 15
};
}  // namespace feature

/// @brief Columns of a target (or predicted candidate) row.
namespace target {
enum : int { pt = 0, eta = 1, sin_phi = 2, cos_phi = 3, energy = 4, count = 5 };
}

/// @brief phi wrapped into [-pi, pi).
inline double wrap_phi(double phi) {
  constexpr double two_pi = 2 * std::numbers::pi;
  phi = std::fmod(phi + std::numbers::pi, two_pi);
  if (phi < 0) phi += two_pi;
  return phi - std::numbers::pi;
}
/// @brief Signed phi difference a - b in [-pi, pi).
inline double delta_phi(double a, double b) { return wrap_phi(a - b); }
/// @brief Angular distance in (eta, phi).
inline double delta_r(double eta1, double phi1, double eta2, double phi2) {
  const double de = eta1 - eta2, dp = delta_phi(phi1, phi2);
  return std::sqrt(de * de + dp * dp);
}

/// @brief A generator-level particle (massless).
struct particle {
  index_t cls = none;  ///< true class (charged_hadron ... muon)
  double pt = 0, eta = 0, phi = 0;
  int charge = 0;
  index_t jet = -1;  ///< index of the generated jet it belongs to, -1 for soft / prompt particles
  double energy() const { return pt * std::cosh(eta); }
};

/// @brief One simulated event: generator particles, element features and per-element targets.
struct event {
  std::vector<particle> particles;        ///< all generated particles
  matrix<double> features;                ///< N x feature::count
  std::vector<index_t> target_class;      ///< N: class of the particle(s) assigned to the element, or none
  matrix<double> target;                  ///< N x target::count: (pt, eta, sin phi, cos phi, E) of the target
  std::vector<index_t> element_particle;  ///< N: leading assigned particle, -1 when none
  std::vector<index_t> particle_element;  ///< per particle: element it is assigned to, -1 when unassigned
  double calo_deposited = 0;              ///< total measured calorimeter energy before cluster thresholds
  double calo_below_threshold = 0;        ///< measured energy of the clusters dropped by the thresholds

  /// @brief Number of elements (tracks plus clusters).
  index_t num_elements() const { return static_cast<index_t>(features.rows()); }
};

/// @brief Knobs of the toy detector. Defaults give ~1000-2000 elements per event (mean ~1300).
struct toy_pf_config {
  // --- generator
  int min_jets = 2, max_jets = 6;        ///< jets per event, uniform in [min, max]
  double jet_pt_min = 20, jet_pt_mean = 40;  ///< jet pT = min + exponential(mean)
  double jet_eta_max = 2.2;
  int soft_particles = 1000;             ///< soft (underlying-event-like) particles per event
  double soft_pt_mean = 0.8;             ///< soft pT = 0.3 + exponential(mean)
  double prompt_lepton_probability = 0.3;  ///< chance of one isolated electron or muon per event
  /// @brief Class fractions of produced particles (charged hadron, neutral hadron, photon, electron, muon).
  std::array<double, 5> fractions{0.58, 0.11, 0.28, 0.02, 0.01};
  // --- tracker
  double track_pt_min = 0.5, track_eta_max = 2.5;
  double track_efficiency = 0.9;     ///< hadrons (electrons 0.95, muons 0.99 of this relative to 1)
  double track_pt_stochastic = 0.01, track_pt_slope = 2e-4;  ///< sigma(pT)/pT = a (+) b pT
  double track_angle_sigma = 0.002;
  double bend = 0.735;               ///< phi shift at the calorimeter = -charge * bend / pT (0.3 B R / 2, CMS-like)
  // --- calorimeters
  double calo_eta_max = 3.0;
  double ecal_stochastic = 0.03, ecal_constant = 0.005;  ///< sigma(E)/E = a / sqrt(E) (+) c
  double hcal_stochastic = 1.0, hcal_constant = 0.05;
  double hadron_ecal_response = 0.8;  ///< hadronic energy seen by the EM-calibrated ECAL
  double hcal_response = 0.9;         ///< asymptotic HCAL response to hadrons (non-linear at low E)
  double hadron_ecal_interaction = 0.5;  ///< chance that a hadron starts showering in the ECAL
  double ecal_merge_radius = 0.04, hcal_merge_radius = 0.15;  ///< deposits closer than this to a seed merge
  double ecal_threshold = 0.25, hcal_threshold = 1.0;         ///< cluster energy thresholds
  int ecal_noise = 100, hcal_noise = 30;                      ///< noise deposits per event
  double ecal_noise_mean = 0.08, hcal_noise_mean = 0.3;
};

/// @brief The toy detector: `simulate(gen)` produces one event. Deterministic for a given rng state.
class toy_pf_detector {
 public:
  /// @brief Validates the configuration.
  explicit toy_pf_detector(toy_pf_config cfg = {}) : cfg_(cfg) {
    HEPGNN_CHECK(cfg_.min_jets >= 0 && cfg_.max_jets >= cfg_.min_jets,
                 "toy_pf_detector: need 0 <= min_jets <= max_jets, got ", cfg_.min_jets, " and ", cfg_.max_jets);
    HEPGNN_CHECK(cfg_.soft_particles >= 0, "toy_pf_detector: soft_particles must be >= 0, got ", cfg_.soft_particles);
    double sum = 0;
    for (double f : cfg_.fractions) {
      HEPGNN_CHECK(f >= 0, "toy_pf_detector: class fractions must be >= 0, got ", f);
      sum += f;
    }
    HEPGNN_CHECK(sum > 0, "toy_pf_detector: class fractions must not all be zero");
    HEPGNN_CHECK(cfg_.track_efficiency >= 0 && cfg_.track_efficiency <= 1,
                 "toy_pf_detector: track_efficiency must be in [0, 1], got ", cfg_.track_efficiency);
    HEPGNN_CHECK(cfg_.ecal_merge_radius > 0 && cfg_.hcal_merge_radius > 0,
                 "toy_pf_detector: merge radii must be positive, got ", cfg_.ecal_merge_radius, " and ",
                 cfg_.hcal_merge_radius);
  }

  /// @brief The configuration in use.
  const toy_pf_config& config() const { return cfg_; }

  /// @brief Simulates one event.
  event simulate(rng& gen) const {
    event ev;
    generate(gen, ev.particles);
    reconstruct(gen, ev);
    return ev;
  }

  /// @brief Detector response to the given particles (for single-particle studies and tests).
  event simulate_particles(rng& gen, std::vector<particle> particles) const {
    for (std::size_t i = 0; i < particles.size(); ++i) {
      const particle& p = particles[i];
      HEPGNN_CHECK(p.cls >= charged_hadron && p.cls <= muon, "toy_pf_detector::simulate_particles: particle ", i,
                   " has class ", p.cls, ", expected 1..5");
      HEPGNN_CHECK(std::isfinite(p.pt) && p.pt > 0 && std::isfinite(p.eta) && std::isfinite(p.phi),
                   "toy_pf_detector::simulate_particles: particle ", i, " needs finite pt > 0, eta and phi, got pt = ",
                   p.pt, ", eta = ", p.eta, ", phi = ", p.phi);
    }
    event ev;
    ev.particles = std::move(particles);
    reconstruct(gen, ev);
    return ev;
  }

  /// @brief Simulates `n` events; event i uses its own stream derived from (seed, i), so subsets are reproducible.
  std::vector<event> simulate(std::uint64_t seed, int n) const {
    HEPGNN_CHECK(n >= 0, "toy_pf_detector::simulate: event count must be >= 0, got ", n);
    std::vector<event> out(static_cast<std::size_t>(n));
    parallel_for_dynamic(n, true, 1, [&](long i) {
      rng gen(mix64(seed ^ mix64(static_cast<std::uint64_t>(i) + 1)));
      out[static_cast<std::size_t>(i)] = simulate(gen);
    });
    return out;
  }

  /// @brief Generator only: the particles of one event (no detector response).
  std::vector<particle> generate(rng& gen) const {
    std::vector<particle> p;
    generate(gen, p);
    return p;
  }

 private:
  struct deposit {
    double eta, phi, e;
    index_t particle;  // -1 for noise
  };
  struct cluster {
    double seed_eta, seed_phi;
    double e = 0, se = 0, see = 0, sp = 0, spp = 0;  // sums of E, E*deta, E*deta^2, E*dphi, E*dphi^2 around the seed
    int n = 0;
    std::vector<std::pair<index_t, double>> contrib;  // particle -> energy
  };

  index_t draw_class(rng& gen, bool soft) const {
    auto f = cfg_.fractions;
    if (soft) f[4] *= 0.3;  // fewer muons among soft particles
    double sum = 0;
    for (double v : f) sum += v;
    double u = gen.uniform() * sum;
    for (index_t c = 0; c < 5; ++c) {
      if (u < f[c]) return c + 1;
      u -= f[c];
    }
    return charged_hadron;
  }
  static int charge_of(index_t cls, rng& gen) {
    if (cls == charged_hadron || cls == electron || cls == muon) return gen.bernoulli(0.5) ? 1 : -1;
    return 0;
  }

  void generate(rng& gen, std::vector<particle>& out) const {
    const int n_jets = cfg_.min_jets + static_cast<int>(gen.below(static_cast<std::uint64_t>(cfg_.max_jets - cfg_.min_jets + 1)));
    for (int j = 0; j < n_jets; ++j) {
      const double jpt = std::min(cfg_.jet_pt_min + gen.exponential(cfg_.jet_pt_mean), 600.0);
      const double jeta = gen.uniform(-cfg_.jet_eta_max, cfg_.jet_eta_max);
      const double jphi = gen.uniform(-std::numbers::pi, std::numbers::pi);
      const int n = 3 + static_cast<int>(gen.below(static_cast<std::uint64_t>(2 + jpt / 5)));
      std::vector<double> z(static_cast<std::size_t>(n));
      double zs = 0;
      for (auto& v : z) zs += (v = gen.exponential(1.0) * gen.exponential(1.0) + 1e-3);  // harder than Dirichlet(1)
      for (int k = 0; k < n; ++k) {
        particle p;
        p.pt = jpt * z[static_cast<std::size_t>(k)] / zs;
        const double sigma = 0.15 / std::sqrt(1 + p.pt / 4);  // harder constituents sit closer to the axis
        p.eta = jeta + gen.normal(0, sigma);
        p.phi = wrap_phi(jphi + gen.normal(0, sigma));
        p.cls = draw_class(gen, false);
        p.charge = charge_of(p.cls, gen);
        p.jet = j;
        out.push_back(p);
      }
    }
    for (int k = 0; k < cfg_.soft_particles; ++k) {
      particle p;
      p.pt = 0.3 + gen.exponential(cfg_.soft_pt_mean);
      p.eta = gen.uniform(-2.8, 2.8);
      p.phi = gen.uniform(-std::numbers::pi, std::numbers::pi);
      p.cls = draw_class(gen, true);
      p.charge = charge_of(p.cls, gen);
      out.push_back(p);
    }
    if (gen.bernoulli(cfg_.prompt_lepton_probability)) {
      particle p;
      p.cls = gen.bernoulli(0.5) ? electron : muon;
      p.pt = 15 + gen.exponential(25);
      p.eta = gen.uniform(-2.4, 2.4);
      p.phi = gen.uniform(-std::numbers::pi, std::numbers::pi);
      p.charge = charge_of(p.cls, gen);
      out.push_back(p);
    }
  }

  static double smear(rng& gen, double e, double stochastic, double constant) {
    const double rel = std::sqrt(stochastic * stochastic / std::max(e, 1e-3) + constant * constant);
    return std::max(0.0, e * (1 + gen.normal() * rel));
  }

  // HCAL response to hadrons: lower at low energy (non-compensating calorimeter), so a constant calibration is biased.
  double hcal_response(double e) const { return cfg_.hcal_response * (1 - 0.3 * std::exp(-e / 8)); }

  void reconstruct(rng& gen, event& ev) const {
    const auto& ps = ev.particles;
    const index_t np = static_cast<index_t>(ps.size());
    std::vector<deposit> ecal, hcal;
    ecal.reserve(ps.size() * 2);
    hcal.reserve(ps.size() * 2);
    std::vector<std::array<double, feature::count>> tracks;
    std::vector<index_t> track_particle;

    for (index_t i = 0; i < np; ++i) {
      const particle& p = ps[i];
      const double e = p.energy();
      double phi_calo = p.phi;
      bool reaches_calo = std::abs(p.eta) < cfg_.calo_eta_max;
      if (p.charge != 0) {
        const double shift = cfg_.bend / p.pt;
        if (shift > 1.0) reaches_calo = false;  // loops inside the tracker
        phi_calo = wrap_phi(p.phi - p.charge * shift);
        const double eff = p.cls == muon ? 0.99 : p.cls == electron ? 0.95 : 1.0;
        if (p.pt > cfg_.track_pt_min && std::abs(p.eta) < cfg_.track_eta_max &&
            gen.bernoulli(cfg_.track_efficiency * eff)) {
          std::array<double, feature::count> f{};
          const double rel = std::hypot(cfg_.track_pt_stochastic, cfg_.track_pt_slope * p.pt);
          const double pt = p.pt / std::max(0.2, 1 + gen.normal() * rel);  // curvature is smeared
          const double eta = p.eta + gen.normal(0, cfg_.track_angle_sigma);
          const double phi = wrap_phi(p.phi + gen.normal(0, cfg_.track_angle_sigma));
          const double pc = wrap_phi(phi - p.charge * std::min(cfg_.bend / pt, 1.5));
          f[feature::type] = track;
          f[feature::pt] = pt;
          f[feature::eta] = eta;
          f[feature::sin_phi] = std::sin(phi);
          f[feature::cos_phi] = std::cos(phi);
          f[feature::energy] = pt * std::cosh(eta);
          f[feature::charge] = p.charge;
          f[feature::eta_calo] = eta;
          f[feature::sin_phi_calo] = std::sin(pc);
          f[feature::cos_phi_calo] = std::cos(pc);
          int mu_hits = 0;
          if (p.cls == muon && e > 3) mu_hits = 2 + static_cast<int>(gen.below(3));
          else if (p.cls == charged_hadron && e > 5 && gen.bernoulli(0.005)) mu_hits = 1 + static_cast<int>(gen.below(2));
          f[feature::muon_hits] = mu_hits;
          f[feature::track_hits] = 8 + static_cast<double>(gen.below(7));
          tracks.push_back(f);
          track_particle.push_back(i);
        }
      }
      if (!reaches_calo) continue;
      const double eta_c = p.eta;
      if (p.cls == photon || p.cls == electron) {
        const double em = smear(gen, e, cfg_.ecal_stochastic, cfg_.ecal_constant);
        ecal.push_back({eta_c + gen.normal(0, 0.003), wrap_phi(phi_calo + gen.normal(0, 0.003)), 0.85 * em, i});
        ecal.push_back({eta_c + gen.normal(0, 0.012), wrap_phi(phi_calo + gen.normal(0, 0.012)), 0.15 * em, i});
      } else if (p.cls == muon) {
        ecal.push_back({eta_c, phi_calo, 0.3 + gen.exponential(0.05), i});
        if (e > 2) hcal.push_back({eta_c, phi_calo, 1.5 + gen.exponential(0.4), i});
      } else {  // hadrons
        double f_ecal = 0;
        if (gen.bernoulli(cfg_.hadron_ecal_interaction)) f_ecal = gen.uniform(0.1, 0.7);
        const double e_ecal = f_ecal * e, e_hcal = e - e_ecal;
        if (e_ecal > 0) {
          const double m = smear(gen, e_ecal * cfg_.hadron_ecal_response, 0.1, 0.02);
          ecal.push_back({eta_c + gen.normal(0, 0.01), wrap_phi(phi_calo + gen.normal(0, 0.01)), 0.6 * m, i});
          ecal.push_back({eta_c + gen.normal(0, 0.025), wrap_phi(phi_calo + gen.normal(0, 0.025)), 0.4 * m, i});
        } else {
          ecal.push_back({eta_c, phi_calo, 0.25 + gen.exponential(0.05), i});  // MIP-like trace
        }
        const double h = smear(gen, e_hcal * hcal_response(e_hcal), cfg_.hcal_stochastic, cfg_.hcal_constant);
        // three lobes: showers are wide, so neighbouring hadrons merge and single showers may split
        double w[3], ws = 0;
        for (double& v : w) ws += (v = gen.exponential(1.0) + 0.2);
        for (int k = 0; k < 3; ++k)
          hcal.push_back({eta_c + gen.normal(0, 0.06), wrap_phi(phi_calo + gen.normal(0, 0.06)), h * w[k] / ws, i});
      }
    }
    for (int k = 0; k < cfg_.ecal_noise; ++k)
      ecal.push_back({gen.uniform(-cfg_.calo_eta_max, cfg_.calo_eta_max), gen.uniform(-std::numbers::pi, std::numbers::pi),
                      gen.exponential(cfg_.ecal_noise_mean), -1});
    for (int k = 0; k < cfg_.hcal_noise; ++k)
      hcal.push_back({gen.uniform(-cfg_.calo_eta_max, cfg_.calo_eta_max), gen.uniform(-std::numbers::pi, std::numbers::pi),
                      gen.exponential(cfg_.hcal_noise_mean), -1});

    for (const auto& d : ecal) ev.calo_deposited += d.e;
    for (const auto& d : hcal) ev.calo_deposited += d.e;
    std::vector<cluster> ec = merge(ecal, cfg_.ecal_merge_radius), hc = merge(hcal, cfg_.hcal_merge_radius);
    std::vector<std::pair<int, const cluster*>> kept;  // (type, cluster)
    for (const auto& c : ec) {
      if (c.e >= cfg_.ecal_threshold) kept.push_back({ecal_cluster, &c}); else ev.calo_below_threshold += c.e;
    }
    for (const auto& c : hc) {
      if (c.e >= cfg_.hcal_threshold) kept.push_back({hcal_cluster, &c}); else ev.calo_below_threshold += c.e;
    }

    const index_t nt = static_cast<index_t>(tracks.size());
    const index_t n = nt + static_cast<index_t>(kept.size());
    ev.features = matrix<double>::Zero(n, feature::count);
    ev.target = matrix<double>::Zero(n, target::count);
    ev.target_class.assign(static_cast<std::size_t>(n), none);
    ev.element_particle.assign(static_cast<std::size_t>(n), -1);
    ev.particle_element.assign(ps.size(), -1);
    for (index_t t = 0; t < nt; ++t) {
      for (int c = 0; c < feature::count; ++c) ev.features(t, c) = tracks[t][c];
      ev.particle_element[track_particle[t]] = t;
    }
    // Each particle without a track goes to the cluster that holds most of its energy.
    std::vector<double> best_e(ps.size(), 0.0);
    for (index_t k = 0; k < static_cast<index_t>(kept.size()); ++k) {
      const cluster& c = *kept[k].second;
      const index_t row = nt + k;
      const double eta = c.se / c.e + c.seed_eta, phi = wrap_phi(c.sp / c.e + c.seed_phi);
      auto f = ev.features.row(row);
      f[feature::type] = kept[k].first;
      f[feature::pt] = c.e / std::cosh(eta);
      f[feature::eta] = eta;
      f[feature::sin_phi] = std::sin(phi);
      f[feature::cos_phi] = std::cos(phi);
      f[feature::energy] = c.e;
      f[feature::sigma_eta] = std::sqrt(std::max(0.0, c.see / c.e - (c.se / c.e) * (c.se / c.e)));
      f[feature::sigma_phi] = std::sqrt(std::max(0.0, c.spp / c.e - (c.sp / c.e) * (c.sp / c.e)));
      f[feature::num_deposits] = c.n;
      for (const auto& [pi, pe] : c.contrib) {
        if (pi < 0 || (ev.particle_element[pi] >= 0 && ev.particle_element[pi] < nt)) continue;
        if (ps[pi].cls == muon) continue;  // an untracked muon is a MIP nobody can reconstruct
        if (pe > best_e[pi]) {
          best_e[pi] = pe;
          ev.particle_element[pi] = row;
        }
      }
    }
    // Targets: tracks take their particle; clusters take the sum of their particles, labelled by the leading one.
    std::vector<std::array<double, 4>> sum(static_cast<std::size_t>(n), {0, 0, 0, 0});  // px, py, pz, E
    std::vector<double> lead(static_cast<std::size_t>(n), -1);
    for (index_t i = 0; i < np; ++i) {
      const index_t el = ev.particle_element[i];
      if (el < 0) continue;
      const particle& p = ps[i];
      auto& s = sum[el];
      s[0] += p.pt * std::cos(p.phi);
      s[1] += p.pt * std::sin(p.phi);
      s[2] += p.pt * std::sinh(p.eta);
      s[3] += p.energy();
      if (p.energy() > lead[el]) {
        lead[el] = p.energy();
        ev.element_particle[el] = i;
        index_t cls = p.cls;
        if (el >= nt) {  // calorimeter-only view of an untracked charged particle
          if (cls == charged_hadron) cls = neutral_hadron;
          if (cls == electron) cls = photon;
        }
        ev.target_class[el] = cls;
      }
    }
    for (index_t el = 0; el < n; ++el) {
      if (ev.target_class[el] == none) continue;
      const auto& s = sum[el];
      const double pt = std::hypot(s[0], s[1]);
      ev.target(el, target::pt) = pt;
      ev.target(el, target::eta) = pt > 0 ? std::asinh(s[2] / pt) : 0.0;
      ev.target(el, target::sin_phi) = pt > 0 ? s[1] / pt : 0.0;
      ev.target(el, target::cos_phi) = pt > 0 ? s[0] / pt : 1.0;
      ev.target(el, target::energy) = s[3];
    }
  }

  // Seeded merging: deposits in decreasing energy join the nearest seed within `radius`, else seed a new cluster.
  // A uniform (eta, phi) grid of cell size >= radius keeps it O(N).
  static std::vector<cluster> merge(std::vector<deposit>& deps, double radius) {
    std::sort(deps.begin(), deps.end(), [](const deposit& a, const deposit& b) {
      return a.e != b.e ? a.e > b.e : (a.eta != b.eta ? a.eta < b.eta : a.phi < b.phi);
    });
    const int nphi = std::max(3, static_cast<int>(2 * std::numbers::pi / radius));
    const double cphi = 2 * std::numbers::pi / nphi;
    auto key = [&](int ie, int ip) { return (static_cast<std::int64_t>(ie) << 32) ^ static_cast<std::uint32_t>(ip); };
    std::unordered_map<std::int64_t, std::vector<index_t>> grid;
    grid.reserve(deps.size());
    std::vector<cluster> out;
    for (const deposit& d : deps) {
      if (d.e <= 0) continue;
      const int ie = static_cast<int>(std::floor(d.eta / radius));
      const int ip = static_cast<int>(std::floor((d.phi + std::numbers::pi) / cphi));
      index_t best = -1;
      double best_dr = radius;
      for (int a = -1; a <= 1; ++a)
        for (int b = -1; b <= 1; ++b) {
          auto it = grid.find(key(ie + a, ((ip + b) % nphi + nphi) % nphi));
          if (it == grid.end()) continue;
          for (index_t c : it->second) {
            const double dr = delta_r(d.eta, d.phi, out[c].seed_eta, out[c].seed_phi);
            if (dr < best_dr || (dr == best_dr && best >= 0 && c < best)) {
              best_dr = dr;
              best = c;
            }
          }
        }
      if (best < 0) {
        best = static_cast<index_t>(out.size());
        out.push_back(cluster{d.eta, d.phi, 0, 0, 0, 0, 0, 0, {}});
        grid[key(ie, ((ip % nphi) + nphi) % nphi)].push_back(best);
      }
      cluster& c = out[best];
      const double de = d.eta - c.seed_eta, dp = delta_phi(d.phi, c.seed_phi);
      c.e += d.e;
      c.se += d.e * de;
      c.see += d.e * de * de;
      c.sp += d.e * dp;
      c.spp += d.e * dp * dp;
      ++c.n;
      auto it = std::find_if(c.contrib.begin(), c.contrib.end(), [&](const auto& q) { return q.first == d.particle; });
      if (it == c.contrib.end()) c.contrib.push_back({d.particle, d.e}); else it->second += d.e;
    }
    return out;
  }

  toy_pf_config cfg_;
};

}  // namespace hepgnn::pf
