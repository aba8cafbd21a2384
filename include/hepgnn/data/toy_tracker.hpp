#pragma once
/// @file toy_tracker.hpp
/// @brief A fast toy simulation of charged particles in the TrackML detector: helices in a solenoid field
/// through barrel cylinders and endcap disks, with per-layer hit smearing, multiple scattering (Highland),
/// hit inefficiency and noise hits. Produces a trackml::event (hits, truth, particles, weights), so it can be
/// written as TrackML CSV and fed to the same code as real events.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/data/trackml_event.hpp"

namespace hepgnn::toy {

/// @brief One sensitive surface: a barrel cylinder (r = `position`, |z| <= `max`) or an endcap disk
/// (z = `position`, `min` <= r <= `max`).
struct tracker_layer {
  std::int32_t volume_id = 0, layer_id = 0;
  bool barrel = true;
  double position = 0;        ///< radius (barrel) or z (disk), mm
  double min = 0, max = 0;    ///< barrel: 0 and half-length in z; disk: inner and outer radius, mm
  double sigma_u = 0.015;     ///< resolution along r*phi, mm
  double sigma_v = 0.015;     ///< resolution along z (barrel) or r (disk), mm
  double thickness_x0 = 0.02; ///< material per crossing at normal incidence, in radiation lengths
  double stagger = 0;         ///< alternate modules sit +-stagger (mm) off the nominal surface
  double module_size = 16.8;  ///< module width along phi (mm), for module ids and the stagger pattern
};

/// @brief The TrackML detector layout: barrel layers at r = 32, 72, 116, 172 (pixel, volume 8), 260, 360, 500,
/// 660 (short strips, 13), 820, 1020 mm (long strips, 17); endcap disks at the z of the TrackML detectors.csv
/// (volumes 7/9 pixel, 12/14 short strip, 16/18 long strip), layer ids 2, 4, ... increasing with z as in TrackML.
/// Extents, stagger and resolutions (pitch / sqrt(12)) were read from detectors.csv (module centres +- half sizes).
inline std::vector<tracker_layer> trackml_layout() {
  std::vector<tracker_layer> L;
  auto barrel = [&](int vol, std::initializer_list<double> radii, double half_z, double su, double sv, double x0,
                    double stagger, double module) {
    int layer = 2;
    for (double r : radii) L.push_back({vol, layer, true, r, 0, half_z, su, sv, x0, stagger, module}), layer += 2;
  };
  auto disks = [&](int vol_neg, int vol_pos, std::initializer_list<double> abs_z, double rmin, double rmax, double su,
                   double sv, double x0, double stagger, double module) {
    std::vector<double> z(abs_z);  // ascending |z|
    const int n = static_cast<int>(z.size());
    for (int k = 0; k < n; ++k)  // negative side: layer 2 is the farthest disk
      L.push_back({vol_neg, 2 + 2 * k, false, -z[n - 1 - k], rmin, rmax, su, sv, x0, stagger, module});
    for (int k = 0; k < n; ++k) L.push_back({vol_pos, 2 + 2 * k, false, z[k], rmin, rmax, su, sv, x0, stagger, module});
  };
  barrel(8, {32, 72, 116, 172}, 491, 0.0144, 0.0162, 0.02, 0.25, 16.8);
  barrel(13, {260, 360, 500, 660}, 1084, 0.023, 0.35, 0.025, 1.5, 48);
  barrel(17, {820, 1020}, 1084, 0.035, 3.1, 0.03, 1.5, 48);
  disks(7, 9, {600, 700, 820, 960, 1100, 1300, 1500}, 30, 176, 0.0144, 0.0162, 0.02, 2.5, 16.8);
  disks(12, 14, {1220, 1500, 1800, 2150, 2550, 2950}, 240, 700, 0.023, 0.35, 0.025, 4.5, 80);
  disks(16, 18, {1220, 1500, 1800, 2150, 2550, 2950}, 750, 1020, 0.035, 3.0, 0.03, 5.5, 144);
  return L;
}

/// @brief Settings of the toy simulation. Units: mm, GeV, tesla.
struct tracker_config {
  int num_particles = 1000;     ///< charged particles per event
  double pt_min = 0.5;          ///< lower end of the falling pT spectrum, GeV
  double pt_max = 100;          ///< upper cut of the spectrum, GeV
  double pt_power = 3;          ///< dN/dpT proportional to pT^-pt_power above pt_min
  double eta_max = 3;           ///< |eta| uniform up to this
  double b_field = 2;           ///< solenoid field along +z, T
  int num_vertices = 1;         ///< particles are shared among this many vertices (pile-up-like when > 1)
  double vertex_sigma_xy = 0.015, vertex_sigma_z = 55;  ///< vertex spread, mm
  double hit_efficiency = 0.98;       ///< probability that a crossing gives a hit
  double noise_fraction = 0.1;        ///< noise hits added, as a fraction of the particle hits
  bool multiple_scattering = true;    ///< Highland-formula kinks at every crossed layer
  double smearing = 1;                ///< scale of the per-layer resolutions (0: exact positions)
  bool stagger = true;                ///< staggered modules (layer radius / disk z alternates per module)
  double module_overlap = 0.3;        ///< fraction of a staggered module's width shared with its phi neighbours;
                                      ///< a crossing there also hits the neighbour (a second hit on the layer, as
                                      ///< in 28% of the particle-layer crossings of the real TrackML sample event)
  int max_hits_per_particle = 40;
  double particle_mass = 0.13957;     ///< charged pions
};

/// @brief Helix radius (mm) in the transverse plane of a particle with transverse momentum pt (GeV) and unit
/// charge in a field of b tesla: R = pT / (0.299792458 B).
inline double helix_radius(double pt, double b) { return pt / (0.299792458e-3 * b); }

namespace detail {

/// @brief Transverse-plane helix state: position, direction angle, momentum, charge.
struct helix_state {
  double x, y, z, phi, pt, pz;
  int q;
};

/// @brief Path length in the transverse plane to the first crossing with a layer (beyond eps), or +inf.
inline double crossing_length(const helix_state& s, double radius, const tracker_layer& layer, double offset) {
  constexpr double eps = 1e-4, inf = HUGE_VAL, two_pi = 2 * std::numbers::pi;
  const double q = s.q, cs = std::cos(s.phi), sn = std::sin(s.phi);
  const double cx = s.x + q * radius * sn, cy = s.y - q * radius * cs;
  if (layer.barrel) {
    const double rho = layer.position + offset;
    const double d = std::hypot(cx, cy);
    if (d <= 0) return inf;
    const double k = (rho * rho - d * d - radius * radius) / (2 * q * radius);
    const double c = k / d;
    if (c < -1 || c > 1) return inf;
    const double alpha = std::atan2(-cx, cy), delta = std::acos(c);
    double best = inf;
    for (double psi : {alpha + delta, alpha - delta}) {
      double turn = std::fmod(q * (s.phi - psi), two_pi);
      if (turn < 0) turn += two_pi;
      const double len = turn * radius;
      if (len <= eps || len >= best) continue;
      if (std::abs(s.z + len * s.pz / s.pt) > layer.max) continue;
      best = len;
    }
    return best;
  }
  if (s.pz == 0) return inf;
  const double len = (layer.position + offset - s.z) * s.pt / s.pz;
  if (len <= eps) return inf;
  const double psi = s.phi - q * len / radius;
  const double x = cx - q * radius * std::sin(psi), y = cy + q * radius * std::cos(psi);
  const double r = std::hypot(x, y);
  return r >= layer.min && r <= layer.max ? len : inf;
}

/// @brief Moves the state along the helix by transverse length len.
inline void advance(helix_state& s, double radius, double len) {
  const double q = s.q;
  const double cx = s.x + q * radius * std::sin(s.phi), cy = s.y - q * radius * std::cos(s.phi);
  s.phi -= q * len / radius;
  s.x = cx - q * radius * std::sin(s.phi);
  s.y = cy + q * radius * std::cos(s.phi);
  s.z += len * s.pz / s.pt;
}

/// @brief Where a point sits in a layer's module grid: module index along phi (of nphi) and along z or r, and
/// the fractional position u in [0, 1) across the module's width along phi.
struct module_position {
  int iphi, nphi, ialong;
  double u;
  /// @brief Module id, 1-based: 1 + iphi + nphi * ialong (iphi wrapped around the ring).
  std::int32_t id(int dphi = 0) const { return 1 + (iphi + dphi + nphi) % nphi + nphi * ialong; }
};
inline module_position locate_module(const tracker_layer& l, double x, double y, double z) {
  const double circumference = 2 * std::numbers::pi * (l.barrel ? l.position : 0.5 * (l.min + l.max));
  const int nphi = std::max(4, static_cast<int>(circumference / l.module_size));
  const double t = (std::atan2(y, x) + std::numbers::pi) / (2 * std::numbers::pi) * nphi;
  const int iphi = std::clamp(static_cast<int>(t), 0, nphi - 1);
  const double along = l.barrel ? z + l.max : std::hypot(x, y) - l.min;
  const int ialong = std::max(0, static_cast<int>(along / (2 * l.module_size)));
  return {iphi, nphi, ialong, std::clamp(t - iphi, 0.0, 1.0)};
}
inline std::int32_t module_of(const tracker_layer& l, double x, double y, double z) {
  return locate_module(l, x, y, z).id();
}

}  // namespace detail

/// @brief Simulates one event. Deterministic for a given (config, seed); particle_id encodes
/// (vertex + 1) << 32 | (particle + 1). Hits are ordered by volume, layer and module (ties in random order) and
/// numbered from 1; truth weights follow trackml::compute_weights.
inline trackml::event simulate_event(const tracker_config& cfg, std::uint64_t seed,
                                     const std::vector<tracker_layer>& layers = trackml_layout()) {
  HEPGNN_CHECK(cfg.num_particles >= 0, "toy::simulate_event: num_particles must be >= 0, got ", cfg.num_particles);
  HEPGNN_CHECK(cfg.pt_min > 0 && cfg.pt_max > cfg.pt_min, "toy::simulate_event: need 0 < pt_min < pt_max, got ",
               cfg.pt_min, " and ", cfg.pt_max);
  HEPGNN_CHECK(cfg.pt_power > 1, "toy::simulate_event: pt_power must be > 1, got ", cfg.pt_power);
  HEPGNN_CHECK(cfg.b_field > 0, "toy::simulate_event: b_field must be > 0 T, got ", cfg.b_field);
  HEPGNN_CHECK(cfg.eta_max > 0 && cfg.eta_max < 10, "toy::simulate_event: eta_max must be in (0, 10), got ",
               cfg.eta_max);
  HEPGNN_CHECK(cfg.num_vertices >= 1, "toy::simulate_event: num_vertices must be >= 1, got ", cfg.num_vertices);
  HEPGNN_CHECK(cfg.hit_efficiency >= 0 && cfg.hit_efficiency <= 1 && cfg.noise_fraction >= 0 && cfg.smearing >= 0,
               "toy::simulate_event: need hit_efficiency in [0, 1], noise_fraction >= 0, smearing >= 0, got ",
               cfg.hit_efficiency, ", ", cfg.noise_fraction, ", ", cfg.smearing);
  HEPGNN_CHECK(cfg.module_overlap >= 0 && cfg.module_overlap <= 1,
               "toy::simulate_event: module_overlap must be in [0, 1] (a fraction of the module width), got ",
               cfg.module_overlap);
  HEPGNN_CHECK(!layers.empty(), "toy::simulate_event: the layer list is empty");

  struct raw_hit {
    double x, y, z, tx, ty, tz, px, py, pz;
    std::int64_t pid;
    std::int32_t layer_index, module;
    std::uint64_t key;
  };
  std::vector<raw_hit> hits;
  hits.reserve(static_cast<std::size_t>(cfg.num_particles) * 12);
  rng gen(mix64(seed ^ 0x7EACC0DEULL));
  trackml::event ev;
  ev.particles.reserve(cfg.num_particles);

  std::vector<double> vz(cfg.num_vertices), vx(cfg.num_vertices), vy(cfg.num_vertices);
  for (int v = 0; v < cfg.num_vertices; ++v)
    vx[v] = gen.normal(0, cfg.vertex_sigma_xy), vy[v] = gen.normal(0, cfg.vertex_sigma_xy),
    vz[v] = gen.normal(0, cfg.vertex_sigma_z);

  const double pmin = std::pow(cfg.pt_min, 1 - cfg.pt_power), pmax = std::pow(cfg.pt_max, 1 - cfg.pt_power);
  std::vector<std::int32_t> layer_hits(layers.size(), 0);
  for (int ip = 0; ip < cfg.num_particles; ++ip) {
    const int v = static_cast<int>(gen.below(static_cast<std::uint64_t>(cfg.num_vertices)));
    // inverse CDF of the power law between pt_min and pt_max
    const double pt = std::pow(pmin + gen.uniform() * (pmax - pmin), 1 / (1 - cfg.pt_power));
    const double eta = gen.uniform(-cfg.eta_max, cfg.eta_max), phi = gen.uniform(-std::numbers::pi, std::numbers::pi);
    const int q = gen.bernoulli(0.5) ? 1 : -1;
    trackml::particle p;
    p.particle_id = (static_cast<std::int64_t>(v + 1) << 32) | (ip + 1);
    p.particle_type = 211 * q;
    p.vx = vx[v], p.vy = vy[v], p.vz = vz[v];
    p.px = pt * std::cos(phi), p.py = pt * std::sin(phi), p.pz = pt * std::sinh(eta);
    p.q = q;
    detail::helix_state s{p.vx, p.vy, p.vz, phi, pt, p.pz, q};
    const double p_tot = std::hypot(pt, p.pz);
    double turned = 0;
    int nh = 0;
    std::size_t last = layers.size();  // the layer just crossed is skipped once (its staggered twin is close)
    for (int step = 0; step < cfg.max_hits_per_particle; ++step) {
      const double radius = helix_radius(s.pt, cfg.b_field);
      double best = HUGE_VAL;
      std::size_t which = 0;
      for (std::size_t l = 0; l < layers.size(); ++l) {
        if (l == last) continue;
        const double len = detail::crossing_length(s, radius, layers[l], 0.0);
        if (len < best) best = len, which = l;
      }
      if (!(best < HUGE_VAL) || turned + best / radius > std::numbers::pi) break;  // left the detector or looping
      const tracker_layer& layer = layers[which];
      last = which;
      detail::helix_state at = s;
      detail::advance(at, radius, best);
      double len = best;
      // the hits of this layer: one per module crossed, nearest first
      struct crossing {
        detail::helix_state at;
        double len;
        std::int32_t module;
      };
      crossing cross[2];
      int ncross = 0;
      if (cfg.stagger && layer.stagger > 0) {  // alternate modules sit in front of / behind the nominal surface
        const detail::module_position mp = detail::locate_module(layer, at.x, at.y, at.z);
        const double off = (mp.id() % 2 ? 1.0 : -1.0) * layer.stagger;
        auto cross_at = [&](double offset, std::int32_t module) {
          const double l2 = detail::crossing_length(s, radius, layer, offset);
          if (!(l2 < HUGE_VAL) || std::abs(l2 - best) >= 50 * layer.stagger + 50) return;
          detail::helix_state a2 = s;
          detail::advance(a2, radius, l2);
          cross[ncross++] = {a2, l2, module};
        };
        cross_at(off, mp.id());
        // in the overlap band at either edge, the neighbour module (other stagger side) is crossed as well
        const double band = 0.5 * cfg.module_overlap;
        if (band > 0 && (mp.u < band || mp.u > 1 - band)) cross_at(-off, mp.id(mp.u < band ? -1 : 1));
        if (ncross == 2 && cross[1].len < cross[0].len) std::swap(cross[0], cross[1]);
      }
      if (ncross == 0) cross[ncross++] = {at, len, detail::module_of(layer, at.x, at.y, at.z)};
      s = cross[ncross - 1].at;
      len = cross[ncross - 1].len;
      turned += len / radius;
      for (int k = 0; k < ncross; ++k) {
        const detail::helix_state& h = cross[k].at;
        if (!(gen.uniform() < cfg.hit_efficiency)) continue;
        double hx = h.x, hy = h.y, hz = h.z;
        if (cfg.smearing > 0) {
          const double r = std::hypot(hx, hy), hphi = std::atan2(hy, hx);
          const double du = gen.normal(0, layer.sigma_u * cfg.smearing), dv = gen.normal(0, layer.sigma_v * cfg.smearing);
          if (layer.barrel) {
            const double np = hphi + du / r;
            hx = r * std::cos(np), hy = r * std::sin(np), hz += dv;
          } else {
            const double nr = std::max(0.0, r + dv), np = hphi + du / std::max(r, 1.0);
            hx = nr * std::cos(np), hy = nr * std::sin(np);
          }
        }
        hits.push_back({hx, hy, hz, h.x, h.y, h.z, std::cos(h.phi) * h.pt, std::sin(h.phi) * h.pt, h.pz,
                        p.particle_id, static_cast<std::int32_t>(which), cross[k].module, gen()});
        ++layer_hits[which];
        ++nh;
      }
      // direction at the (last) crossing
      const double dx = std::cos(s.phi) * s.pt / p_tot, dy = std::sin(s.phi) * s.pt / p_tot, dz = s.pz / p_tot;
      if (cfg.multiple_scattering && layer.thickness_x0 > 0) {
        const double cos_inc = layer.barrel ? std::abs(dx * std::cos(std::atan2(s.y, s.x)) + dy * std::sin(std::atan2(s.y, s.x)))
                                            : std::abs(dz);
        const double t = layer.thickness_x0 / std::max(cos_inc, 0.05);
        const double energy = std::hypot(p_tot, cfg.particle_mass), beta = p_tot / energy;
        const double theta0 = 0.0136 / (beta * p_tot) * std::sqrt(t) * (1 + 0.038 * std::log(t / (beta * beta)));
        // two orthonormal vectors perpendicular to the direction d
        double ux = -dy, uy = dx, uz = 0;
        double un = std::hypot(ux, uy);
        if (un < 1e-9) ux = 1, uy = 0, un = 1;
        ux /= un, uy /= un;
        const double wx = dy * uz - dz * uy, wy = dz * ux - dx * uz, wz = dx * uy - dy * ux;
        const double a = gen.normal(0, theta0), b = gen.normal(0, theta0);
        double nx = dx + a * ux + b * wx, ny = dy + a * uy + b * wy, nz = dz + a * uz + b * wz;
        const double nn = std::sqrt(nx * nx + ny * ny + nz * nz);
        nx /= nn, ny /= nn, nz /= nn;
        const double tpt = std::hypot(nx, ny) * p_tot;
        if (tpt < 1e-3) break;
        s.phi = std::atan2(ny, nx), s.pt = tpt, s.pz = nz * p_tot;
      }
    }
    p.nhits = nh;
    ev.particles.push_back(p);
  }

  // noise: uniform on layers chosen in proportion to their particle hits
  const std::size_t n_signal = hits.size();
  const auto n_noise = static_cast<std::size_t>(std::llround(cfg.noise_fraction * static_cast<double>(n_signal)));
  if (n_noise > 0 && n_signal > 0) {
    std::vector<double> cdf(layers.size());
    double acc = 0;
    for (std::size_t l = 0; l < layers.size(); ++l) cdf[l] = acc += layer_hits[l];
    for (std::size_t k = 0; k < n_noise; ++k) {
      const double u = gen.uniform() * acc;
      const std::size_t l = std::min<std::size_t>(
          static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()), layers.size() - 1);
      const tracker_layer& layer = layers[l];
      const double ph = gen.uniform(-std::numbers::pi, std::numbers::pi);
      double r, z;
      if (layer.barrel) {
        r = layer.position, z = gen.uniform(-layer.max, layer.max);
      } else {
        r = std::sqrt(gen.uniform(layer.min * layer.min, layer.max * layer.max)), z = layer.position;
      }
      const double x = r * std::cos(ph), y = r * std::sin(ph);
      hits.push_back({x, y, z, x, y, z, 0, 0, 0, 0, static_cast<std::int32_t>(l), detail::module_of(layer, x, y, z),
                      gen()});
    }
  }

  std::sort(hits.begin(), hits.end(), [&](const raw_hit& a, const raw_hit& b) {
    const auto& la = layers[a.layer_index];
    const auto& lb = layers[b.layer_index];
    if (la.volume_id != lb.volume_id) return la.volume_id < lb.volume_id;
    if (la.layer_id != lb.layer_id) return la.layer_id < lb.layer_id;
    if (a.module != b.module) return a.module < b.module;
    return a.key < b.key;
  });
  ev.resize(hits.size(), true);
  for (std::size_t i = 0; i < hits.size(); ++i) {
    const raw_hit& h = hits[i];
    ev.hit_id[i] = static_cast<std::int64_t>(i + 1);
    ev.x[i] = h.x, ev.y[i] = h.y, ev.z[i] = h.z;
    ev.volume_id[i] = layers[h.layer_index].volume_id;
    ev.layer_id[i] = layers[h.layer_index].layer_id;
    ev.module_id[i] = h.module;
    ev.particle_id[i] = h.pid;
    ev.tx[i] = h.tx, ev.ty[i] = h.ty, ev.tz[i] = h.tz;
    ev.tpx[i] = h.px, ev.tpy[i] = h.py, ev.tpz[i] = h.pz;
  }
  trackml::compute_weights(ev);
  return ev;
}

}  // namespace hepgnn::toy
