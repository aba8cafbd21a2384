#pragma once
/// @file trackml_event.hpp
/// @brief The in-memory TrackML event (hits, truth, particles, optional cells) and its truth weights: the type
/// that io/trackml.hpp reads and writes, data/toy_tracker.hpp simulates and metrics/tracking.hpp scores.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn::trackml {

/// @brief One row of a particles file (units mm, GeV; q in units of e).
struct particle {
  std::int64_t particle_id = 0;
  std::int32_t particle_type = 0;  ///< PDG code (0 when the file has none)
  double vx = 0, vy = 0, vz = 0;
  double px = 0, py = 0, pz = 0;
  std::int32_t q = 0;
  std::int32_t nhits = 0;  ///< hits in the event (recomputed from truth when the file has no column)
  /// @brief Transverse momentum.
  double pt() const { return std::hypot(px, py); }
  /// @brief Pseudorapidity of the momentum (+-20 for a momentum along the beam).
  double eta() const {
    const double t = pt();
    if (t <= 0) return pz >= 0 ? 20.0 : -20.0;
    return std::asinh(pz / t);
  }
};

/// @brief One row of a cells file (pixel channels of a hit).
struct cell {
  std::int64_t hit_id = 0;
  std::int32_t ch0 = 0, ch1 = 0;
  double value = 0;
};

/// @brief A TrackML event, struct-of-arrays: one entry per hit in every hit and truth column.
///
/// Truth columns are aligned with the hits (matched by hit_id on reading) and empty when no truth was read;
/// `weight` may be empty when the truth file has no weights (see compute_weights). particle_id 0 marks noise.
struct event {
  std::vector<std::int64_t> hit_id;
  std::vector<double> x, y, z;
  std::vector<std::int32_t> volume_id, layer_id, module_id;

  std::vector<std::int64_t> particle_id;
  std::vector<double> tx, ty, tz, tpx, tpy, tpz;
  std::vector<double> weight;

  std::vector<particle> particles;
  std::vector<cell> cells;

  /// @brief Number of hits.
  std::size_t num_hits() const { return hit_id.size(); }
  /// @brief True when every hit has a truth row.
  bool has_truth() const { return particle_id.size() == hit_id.size() && tx.size() == hit_id.size(); }
  /// @brief True when truth weights are present for every hit.
  bool has_weights() const { return has_truth() && weight.size() == hit_id.size(); }
  /// @brief Cylindrical radius of hit i.
  double r(std::size_t i) const { return std::hypot(x[i], y[i]); }
  /// @brief Azimuth of hit i in (-pi, pi].
  double phi(std::size_t i) const { return std::atan2(y[i], x[i]); }

  /// @brief Map particle_id -> index into `particles`.
  std::unordered_map<std::int64_t, std::size_t> particle_index() const {
    std::unordered_map<std::int64_t, std::size_t> m;
    m.reserve(particles.size() * 2);
    for (std::size_t i = 0; i < particles.size(); ++i) m.emplace(particles[i].particle_id, i);
    return m;
  }

  /// @brief Resizes every hit column (and the truth columns when `truth`) to n hits.
  void resize(std::size_t n, bool truth) {
    hit_id.resize(n), x.resize(n), y.resize(n), z.resize(n);
    volume_id.resize(n), layer_id.resize(n), module_id.resize(n);
    const std::size_t m = truth ? n : 0;
    particle_id.resize(m), tx.resize(m), ty.resize(m), tz.resize(m), tpx.resize(m), tpy.resize(m), tpz.resize(m);
    weight.resize(m);
  }

  /// @brief Throws hepgnn::error unless the columns are consistent: equal lengths, unique hit ids, finite hit
  /// coordinates, and (when particles are present) every non-zero truth particle_id listed in `particles`.
  void validate(const char* who = "trackml::event::validate") const {
    const std::size_t n = hit_id.size();
    HEPGNN_CHECK(x.size() == n && y.size() == n && z.size() == n && volume_id.size() == n && layer_id.size() == n &&
                     module_id.size() == n,
                 who, ": hit columns must all have ", n, " entries (hit_id), got x ", x.size(), ", y ", y.size(),
                 ", z ", z.size(), ", volume_id ", volume_id.size(), ", layer_id ", layer_id.size(), ", module_id ",
                 module_id.size());
    for (std::size_t i = 0; i < n; ++i)
      HEPGNN_CHECK(std::isfinite(x[i]) && std::isfinite(y[i]) && std::isfinite(z[i]), who, ": hit ", hit_id[i],
                   " (row ", i, ") has a non-finite position (", x[i], ", ", y[i], ", ", z[i], ")");
    std::vector<std::int64_t> ids(hit_id);
    std::sort(ids.begin(), ids.end());
    const auto dup = std::adjacent_find(ids.begin(), ids.end());
    HEPGNN_CHECK(dup == ids.end(), who, ": hit_id ", dup == ids.end() ? 0 : *dup, " appears more than once");
    if (particle_id.empty()) return;
    HEPGNN_CHECK(particle_id.size() == n && tx.size() == n && ty.size() == n && tz.size() == n && tpx.size() == n &&
                     tpy.size() == n && tpz.size() == n && (weight.empty() || weight.size() == n),
                 who, ": truth columns must have one entry per hit (", n, "), got particle_id ", particle_id.size(),
                 ", weight ", weight.size());
    if (particles.empty()) return;
    const auto index = particle_index();
    for (std::size_t i = 0; i < n; ++i)
      HEPGNN_CHECK(particle_id[i] == 0 || index.count(particle_id[i]), who, ": hit ", hit_id[i],
                   " has truth particle_id ", particle_id[i], " that is not in the particles table (",
                   particles.size(), " particles)");
  }
};

/// @brief Fills `weight` with TrackML-like hit weights, normalised to sum 1 over the event: noise hits and
/// hits of particles with fewer than 4 hits weigh 0; along a particle's hits ordered by distance of the true
/// position from the origin, the first and last hits weigh most (the challenge's "order" weight), and the weight rises with
/// pT from 0.2 at 0.5 GeV to 1 at 3 GeV and above. Needs truth; uses particles for pT when present, otherwise
/// the truth momenta (tpx, tpy).
inline void compute_weights(event& ev) {
  HEPGNN_CHECK(ev.has_truth(), "trackml::compute_weights: the event has no truth (", ev.particle_id.size(),
               " truth rows for ", ev.num_hits(), " hits)");
  const std::size_t n = ev.num_hits();
  ev.weight.assign(n, 0.0);
  std::unordered_map<std::int64_t, std::vector<std::size_t>> by_particle;
  for (std::size_t i = 0; i < n; ++i)
    if (ev.particle_id[i] != 0) by_particle[ev.particle_id[i]].push_back(i);
  const auto index = ev.particle_index();
  double total = 0;
  for (auto& [pid, hits] : by_particle) {
    const std::size_t m = hits.size();
    if (m < 4) continue;
    double pt;
    if (auto it = index.find(pid); it != index.end()) {
      pt = ev.particles[it->second].pt();
    } else {
      pt = std::hypot(ev.tpx[hits[0]], ev.tpy[hits[0]]);
    }
    const double w_pt = pt <= 0.5 ? 0.2 : pt >= 3.0 ? 1.0 : 0.2 + 0.8 * (pt - 0.5) / 2.5;
    std::sort(hits.begin(), hits.end(), [&](std::size_t a, std::size_t b) {
      const double ra = ev.tx[a] * ev.tx[a] + ev.ty[a] * ev.ty[a] + ev.tz[a] * ev.tz[a];
      const double rb = ev.tx[b] * ev.tx[b] + ev.ty[b] * ev.ty[b] + ev.tz[b] * ev.tz[b];
      return ra != rb ? ra < rb : a < b;
    });
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t from_end = std::min(k, m - 1 - k);
      const double w_order = from_end == 0 ? 10.0 : from_end == 1 ? 8.0 : from_end == 2 ? 6.0 : from_end == 3 ? 5.0 : 3.0;
      ev.weight[hits[k]] = w_order * w_pt;
      total += w_order * w_pt;
    }
  }
  if (total > 0)
    for (auto& w : ev.weight) w /= total;
}

}  // namespace hepgnn::trackml
