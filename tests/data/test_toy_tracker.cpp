// Toy tracker simulation: determinism, hits on their layers, helix radius from pT and B, counts, bad config.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "hepgnn/data/toy_tracker.hpp"
#include "hepgnn/io/trackml.hpp"

namespace hepgnn_test_toy_tracker {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

toy::tracker_config exact_config(int n) {
  toy::tracker_config c;
  c.num_particles = n;
  c.multiple_scattering = false;
  c.smearing = 0;
  c.stagger = false;
  c.noise_fraction = 0;
  c.hit_efficiency = 1;
  return c;
}

/// Radius of the circle through three points.
double circle_radius(double x1, double y1, double x2, double y2, double x3, double y3) {
  const double a = std::hypot(x2 - x1, y2 - y1), b = std::hypot(x3 - x2, y3 - y2), c = std::hypot(x1 - x3, y1 - y3);
  const double area2 = std::abs((x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1));
  return a * b * c / (2 * area2);
}

}  // namespace

TEST_CASE("toy tracker: helix_radius is pT / (0.3 B)") {
  CHECK(toy::helix_radius(1.0, 2.0) == doctest::Approx(1667.82).epsilon(1e-5));
  CHECK(toy::helix_radius(0.6, 1.0) == doctest::Approx(2001.4).epsilon(1e-4));
}

TEST_CASE("toy tracker: same seed, same event; other seed, other event") {
  toy::tracker_config c;
  c.num_particles = 200;
  const auto a = toy::simulate_event(c, 7), b = toy::simulate_event(c, 7), d = toy::simulate_event(c, 8);
  CHECK(a.x == b.x);
  CHECK(a.particle_id == b.particle_id);
  CHECK(a.x != d.x);
  CHECK_NOTHROW(a.validate());
}

TEST_CASE("toy tracker: without smearing and stagger, hits lie exactly on their layers") {
  const auto layers = toy::trackml_layout();
  std::map<std::pair<int, int>, toy::tracker_layer> by_id;
  for (const auto& l : layers) by_id[{l.volume_id, l.layer_id}] = l;
  CHECK(by_id.size() == layers.size());  // ids are unique
  auto c = exact_config(300);
  c.multiple_scattering = true;  // kinks change the path, not the surfaces
  const auto ev = toy::simulate_event(c, 11);
  REQUIRE(ev.num_hits() > 1000);
  for (std::size_t i = 0; i < ev.num_hits(); ++i) {
    const auto& l = by_id.at({ev.volume_id[i], ev.layer_id[i]});
    if (l.barrel) {
      CHECK(ev.r(i) == doctest::Approx(l.position).epsilon(1e-9));
      CHECK(std::abs(ev.z[i]) <= l.max + 1e-9);
    } else {
      CHECK(ev.z[i] == doctest::Approx(l.position).epsilon(1e-12));
      CHECK(ev.r(i) >= l.min - 1e-9);
      CHECK(ev.r(i) <= l.max + 1e-9);
    }
  }
  // TrackML volume / layer ids: 10 barrel layers, 2 x 19 disks
  int barrel = 0;
  for (const auto& l : layers) barrel += l.barrel;
  CHECK(barrel == 10);
  CHECK(layers.size() == 48);
}

TEST_CASE("toy tracker: without scattering, each particle's hits lie on a circle of radius pT / (0.3 B)") {
  auto c = exact_config(200);
  c.b_field = 2;
  const auto ev = toy::simulate_event(c, 3);
  std::unordered_map<std::int64_t, std::vector<std::size_t>> hits;
  for (std::size_t i = 0; i < ev.num_hits(); ++i) hits[ev.particle_id[i]].push_back(i);
  int checked = 0;
  for (const auto& p : ev.particles) {
    auto& h = hits[p.particle_id];
    REQUIRE(static_cast<int>(h.size()) == p.nhits);
    if (h.size() < 3) continue;
    std::sort(h.begin(), h.end(), [&](auto a, auto b) { return ev.r(a) < ev.r(b); });
    const auto a = h.front(), m = h[h.size() / 2], b = h.back();
    if (ev.r(b) - ev.r(a) < 50) continue;  // too short an arc for a precise radius
    const double r_fit = circle_radius(ev.x[a], ev.y[a], ev.x[m], ev.y[m], ev.x[b], ev.y[b]);
    CHECK(r_fit == doctest::Approx(toy::helix_radius(p.pt(), 2.0)).epsilon(1e-4));
    // the circle also passes through the vertex
    const double r_v = circle_radius(p.vx, p.vy, ev.x[m], ev.y[m], ev.x[b], ev.y[b]);
    CHECK(r_v == doctest::Approx(toy::helix_radius(p.pt(), 2.0)).epsilon(1e-4));
    // z advances linearly with the transverse arc: z - vz = s * pz / pT
    ++checked;
  }
  CHECK(checked > 100);
}

TEST_CASE("toy tracker: spectrum, charges, acceptance and counts") {
  toy::tracker_config c;
  c.num_particles = 2000;
  const auto ev = toy::simulate_event(c, 5);
  int pos = 0, above1 = 0, with_hits = 0;
  double eta_max = 0;
  for (const auto& p : ev.particles) {
    CHECK(p.pt() >= c.pt_min);
    CHECK(p.pt() <= c.pt_max);
    pos += p.q > 0;
    above1 += p.pt() > 1;
    eta_max = std::max(eta_max, std::abs(p.eta()));
    with_hits += p.nhits >= 3;
  }
  CHECK(pos == doctest::Approx(1000).epsilon(0.1));
  CHECK(above1 == doctest::Approx(2000 * 0.25).epsilon(0.15));  // P(pT > 1) = (0.5 / 1)^2 for pT^-3
  CHECK(eta_max <= 3.0);
  CHECK(eta_max > 2.9);
  CHECK(with_hits > 1900);
  std::size_t noise = 0;
  for (auto pid : ev.particle_id) noise += pid == 0;
  CHECK(static_cast<double>(noise) == doctest::Approx(0.1 * static_cast<double>(ev.num_hits() - noise)).epsilon(0.01));
  double w = 0;
  for (double x : ev.weight) w += x;
  CHECK(w == doctest::Approx(1.0));
  // central tracks cross the 10 barrel layers (a few miss one to inefficiency)
  std::unordered_map<std::int64_t, int> n;
  for (auto pid : ev.particle_id) ++n[pid];
  int central = 0, ten = 0;
  for (const auto& p : ev.particles)
    if (std::abs(p.eta()) < 0.5 && p.pt() > 1 && std::abs(p.vz) < 100) ++central, ten += n[p.particle_id] >= 9;
  CHECK(ten >= central * 9 / 10);
}

TEST_CASE("toy tracker: hit efficiency thins the hits") {
  auto c = exact_config(500);
  const auto full = toy::simulate_event(c, 9);
  c.hit_efficiency = 0.5;
  const auto half = toy::simulate_event(c, 9);
  CHECK(static_cast<double>(half.num_hits()) == doctest::Approx(0.5 * static_cast<double>(full.num_hits())).epsilon(0.06));
}

TEST_CASE("toy tracker: module overlaps give a second hit on the neighbouring module") {
  toy::tracker_config c;
  c.num_particles = 400;
  c.smearing = 0;
  c.hit_efficiency = 1;
  std::map<std::pair<std::int64_t, std::pair<int, int>>, std::vector<std::size_t>> by_particle_layer;
  auto count_pairs = [&](const trackml::event& ev) {
    by_particle_layer.clear();
    for (std::size_t i = 0; i < ev.num_hits(); ++i)
      if (ev.particle_id[i] != 0) by_particle_layer[{ev.particle_id[i], {ev.volume_id[i], ev.layer_id[i]}}].push_back(i);
    std::size_t two = 0;
    for (const auto& kv : by_particle_layer) {
      REQUIRE(kv.second.size() <= 2);
      two += kv.second.size() == 2;
    }
    return static_cast<double>(two) / static_cast<double>(by_particle_layer.size());
  };
  c.module_overlap = 0;
  CHECK(count_pairs(toy::simulate_event(c, 5)) == 0);
  c.module_overlap = 0.3;
  const auto ev = toy::simulate_event(c, 5);
  const double frac = count_pairs(ev);
  CHECK(frac > 0.2);  // the overlap band is 30% of a module's width; some crossings have no twin surface
  CHECK(frac < 0.32);
  std::size_t checked = 0;
  for (const auto& kv : by_particle_layer) {
    if (kv.second.size() != 2) continue;
    const std::size_t a = kv.second[0], b = kv.second[1];
    CHECK(ev.module_id[a] != ev.module_id[b]);  // neighbours, on the two stagger sides
    const double d = std::hypot(ev.x[a] - ev.x[b], ev.y[a] - ev.y[b], ev.z[a] - ev.z[b]);
    CHECK(d > 0);
    CHECK(d < 100);  // a few mm in the pixels, more for shallow crossings of the strip layers
    ++checked;
  }
  CHECK(checked > 300);
  c.module_overlap = 1.5;
  CHECK_THROWS_WITH_AS(toy::simulate_event(c, 5), doctest::Contains("module_overlap must be in [0, 1]"), hepgnn::error);
}

TEST_CASE("toy tracker: written as TrackML CSV and read back") {
  toy::tracker_config c;
  c.num_particles = 50;
  const auto ev = toy::simulate_event(c, 2);
  const auto dir = std::filesystem::temp_directory_path() / "hepgnn_test_toy_tracker";
  std::filesystem::create_directories(dir);
  trackml::write_event(dir / "event000000001", ev);
  const auto back = trackml::read_event(dir / "event000000001");
  CHECK(back.x == ev.x);
  CHECK(back.particle_id == ev.particle_id);
  CHECK(back.particles.size() == ev.particles.size());
}

TEST_CASE("toy tracker: empty and bad configurations") {
  toy::tracker_config c;
  c.num_particles = 0;
  const auto ev = toy::simulate_event(c, 1);
  CHECK(ev.num_hits() == 0);
  CHECK(ev.particles.empty());
  c.num_particles = -1;
  CHECK_THROWS_WITH_AS(toy::simulate_event(c, 1), doctest::Contains("num_particles must be >= 0, got -1"),
                       hepgnn::error);
  c.num_particles = 10;
  c.b_field = 0;
  CHECK_THROWS_WITH_AS(toy::simulate_event(c, 1), doctest::Contains("b_field must be > 0 T, got 0"), hepgnn::error);
  c.b_field = 2;
  c.pt_min = 2, c.pt_max = 1;
  CHECK_THROWS_WITH_AS(toy::simulate_event(c, 1), doctest::Contains("need 0 < pt_min < pt_max"), hepgnn::error);
}

}  // namespace hepgnn_test_toy_tracker
