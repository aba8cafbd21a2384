#pragma once
/// @file tracking.hpp
/// @brief Tracking metrics: the truth graph of an event, edge efficiency and purity of a candidate graph, track
/// efficiency / fake rate / duplicate rate with two-way 50% matching (also per bin of pT or eta), and the TrackML
/// score.
///
/// Matching: reconstructed track t (hits with the same label >= 0) and particle p match when more than half of
/// t's hits belong to p and more than half of p's hits are in t. At most one track can match a particle.
/// A track that matches no particle is a duplicate when more than half of its hits come from a particle that
/// another track matches, and a fake otherwise. Only tracks with at least `min_track_hits` hits are counted as tracks.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/data/trackml_event.hpp"
#include "hepgnn/io/trackml.hpp"  // read_event for the callers of this header

namespace hepgnn::tracking {

/// @brief An undirected edge list between hits (row indices of the event).
struct edge_list {
  std::vector<index_t> src, dst;
  std::size_t size() const { return src.size(); }
};

/// @brief Truth graph: for every particle, its hits ordered by distance of the true position from the
/// particle's vertex (origin when there is no particles table), consecutive pairs joined. Noise has no edges.
inline edge_list truth_edges(const trackml::event& ev) {
  HEPGNN_CHECK(ev.has_truth(), "tracking::truth_edges: the event has no truth (", ev.particle_id.size(),
               " truth rows for ", ev.num_hits(), " hits)");
  std::unordered_map<std::int64_t, std::vector<index_t>> by_particle;
  for (std::size_t i = 0; i < ev.num_hits(); ++i)
    if (ev.particle_id[i] != 0) by_particle[ev.particle_id[i]].push_back(static_cast<index_t>(i));
  const auto index = ev.particle_index();
  std::vector<std::int64_t> order;
  order.reserve(by_particle.size());
  for (const auto& kv : by_particle) order.push_back(kv.first);
  std::sort(order.begin(), order.end());  // deterministic edge order
  edge_list out;
  for (auto pid : order) {
    auto& h = by_particle[pid];
    double vx = 0, vy = 0, vz = 0;
    if (auto it = index.find(pid); it != index.end()) {
      const auto& p = ev.particles[it->second];
      vx = p.vx, vy = p.vy, vz = p.vz;
    }
    auto d2 = [&](index_t i) {
      const double dx = ev.tx[i] - vx, dy = ev.ty[i] - vy, dz = ev.tz[i] - vz;
      return dx * dx + dy * dy + dz * dz;
    };
    std::sort(h.begin(), h.end(), [&](index_t a, index_t b) {
      const double da = d2(a), db = d2(b);
      return da != db ? da < db : a < b;
    });
    for (std::size_t k = 0; k + 1 < h.size(); ++k) out.src.push_back(h[k]), out.dst.push_back(h[k + 1]);
  }
  return out;
}

/// @brief Edge efficiency and purity of a candidate edge set.
struct edge_metrics {
  std::size_t truth_edges = 0;      ///< edges of the truth graph
  std::size_t found = 0;            ///< truth edges present in the candidates (either direction)
  std::size_t candidates = 0;       ///< candidate edges
  std::size_t same_particle = 0;    ///< candidate edges joining two hits of the same particle (not noise)
  double efficiency = 0;            ///< found / truth_edges (1 when there are no truth edges)
  double purity = 0;                ///< same_particle / candidates (1 when there are no candidates)
};

namespace detail {
inline std::uint64_t undirected_key(index_t a, index_t b) {
  const auto lo = static_cast<std::uint32_t>(std::min(a, b)), hi = static_cast<std::uint32_t>(std::max(a, b));
  return (static_cast<std::uint64_t>(lo) << 32) | hi;
}
inline void check_hit_index(index_t i, std::size_t n, const char* who, const char* what, std::size_t e) {
  HEPGNN_CHECK(i >= 0 && static_cast<std::size_t>(i) < n, who, ": ", what, "[", e, "] = ", i,
               " is not a hit index in [0, ", n, ")");
}
}  // namespace detail

/// @brief Efficiency (with respect to `truth`) and purity of the candidate edges src[e] -- dst[e], undirected.
inline edge_metrics evaluate_edges(const trackml::event& ev, std::span<const index_t> src, std::span<const index_t> dst,
                                   const edge_list& truth) {
  const char* who = "tracking::evaluate_edges";
  HEPGNN_CHECK(ev.has_truth(), who, ": the event has no truth");
  HEPGNN_CHECK(src.size() == dst.size(), who, ": src and dst must have the same length, got ", src.size(), " and ",
               dst.size());
  const std::size_t n = ev.num_hits();
  edge_metrics m;
  m.candidates = src.size();
  m.truth_edges = truth.size();
  std::unordered_set<std::uint64_t> present;
  present.reserve(src.size() * 2);
  for (std::size_t e = 0; e < src.size(); ++e) {
    detail::check_hit_index(src[e], n, who, "src", e);
    detail::check_hit_index(dst[e], n, who, "dst", e);
    present.insert(detail::undirected_key(src[e], dst[e]));
    const auto p = ev.particle_id[src[e]];
    m.same_particle += p != 0 && p == ev.particle_id[dst[e]];
  }
  for (std::size_t e = 0; e < truth.size(); ++e) {
    detail::check_hit_index(truth.src[e], n, who, "truth.src", e);
    detail::check_hit_index(truth.dst[e], n, who, "truth.dst", e);
    m.found += present.count(detail::undirected_key(truth.src[e], truth.dst[e]));
  }
  m.efficiency = m.truth_edges ? static_cast<double>(m.found) / static_cast<double>(m.truth_edges) : 1.0;
  m.purity = m.candidates ? static_cast<double>(m.same_particle) / static_cast<double>(m.candidates) : 1.0;
  return m;
}

/// @brief evaluate_edges() on the edges of a graph (node i = hit i), optionally only those with score > cut.
template <class T = float>
edge_metrics evaluate_edges(const trackml::event& ev, const graph& g, const edge_list& truth,
                            std::span<const T> scores = {}, T cut = T(0)) {
  HEPGNN_CHECK(static_cast<std::size_t>(g.num_nodes) == ev.num_hits(), "tracking::evaluate_edges: the graph has ",
               g.num_nodes, " nodes, the event ", ev.num_hits(), " hits");
  HEPGNN_CHECK(scores.empty() || scores.size() == g.sources.size(), "tracking::evaluate_edges: scores must have one entry per edge (",
               g.sources.size(), "), got ", scores.size());
  std::vector<index_t> s, d;
  s.reserve(g.sources.size()), d.reserve(g.sources.size());
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
      if (scores.empty() || scores[e] > cut) s.push_back(g.sources[e]), d.push_back(i);
  return evaluate_edges(ev, s, d, truth);
}

/// @brief Which particles count as reconstructable, and which tracks count.
struct track_selection {
  double pt_min = 1.0;       ///< GeV
  double eta_max = 1e9;      ///< |eta| cut (none by default)
  int min_hits = 3;          ///< hits of the particle in the event
  int min_track_hits = 3;    ///< reconstructed tracks with fewer hits are ignored
};

/// @brief Kinematics and matching state of one particle that left hits.
struct particle_info {
  std::int64_t particle_id = 0;
  double pt = 0, eta = 0;
  int nhits = 0;
  bool matched = false;  ///< two-way 50% matched by a track with >= min_track_hits hits
};

/// @brief Track-level results.
struct track_metrics {
  std::size_t reconstructable = 0, matched = 0;  ///< selected particles, and those matched
  std::size_t tracks = 0, fakes = 0, duplicates = 0;  ///< tracks = matched + fakes + duplicates
  double efficiency = 0;      ///< matched / reconstructable (0 when none)
  double fake_rate = 0;       ///< fakes / tracks (0 when no tracks)
  double duplicate_rate = 0;  ///< duplicates / tracks
  std::vector<particle_info> particles;  ///< every particle with hits, with its matching state
};

namespace detail {
/// @brief Per-hit labels checked against the event.
inline void check_labels(const trackml::event& ev, std::span<const index_t> labels, const char* who) {
  HEPGNN_CHECK(ev.has_truth(), who, ": the event has no truth (", ev.particle_id.size(), " truth rows for ",
               ev.num_hits(), " hits)");
  HEPGNN_CHECK(labels.size() == ev.num_hits(), who, ": labels must have one entry per hit (", ev.num_hits(),
               "), got ", labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i)
    HEPGNN_CHECK(labels[i] >= -1, who, ": labels[", i, "] = ", labels[i], " (use -1 for an unassigned hit)");
}

/// @brief For every track (label >= 0): size and its majority particle with count (ties: lower particle id).
struct track_majority {
  index_t label;
  std::int64_t particle;
  int size, count;
};
inline std::vector<track_majority> majorities(const trackml::event& ev, std::span<const index_t> labels) {
  std::vector<std::pair<index_t, std::int64_t>> pairs;
  pairs.reserve(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= 0) pairs.emplace_back(labels[i], ev.particle_id[i]);
  std::sort(pairs.begin(), pairs.end());
  std::vector<track_majority> out;
  for (std::size_t a = 0; a < pairs.size();) {
    std::size_t b = a;
    track_majority t{pairs[a].first, 0, 0, 0};
    while (b < pairs.size() && pairs[b].first == t.label) {
      std::size_t c = b;
      while (c < pairs.size() && pairs[c] == pairs[b]) ++c;
      const int cnt = static_cast<int>(c - b);
      if (cnt > t.count) t.count = cnt, t.particle = pairs[b].second;  // sorted: first max has the lower id
      t.size += cnt;
      b = c;
    }
    out.push_back(t);
    a = b;
  }
  return out;
}
}  // namespace detail

/// @brief Two-way 50% matching of the reconstructed tracks (labels per hit, -1 = unassigned) to the particles.
/// pT and eta come from the particles table, or from the truth momentum of the particle's first hit without one.
inline track_metrics evaluate_tracks(const trackml::event& ev, std::span<const index_t> labels,
                                     const track_selection& sel = {}) {
  const char* who = "tracking::evaluate_tracks";
  detail::check_labels(ev, labels, who);
  std::unordered_map<std::int64_t, int> hits_of;
  std::unordered_map<std::int64_t, std::size_t> first_hit;
  for (std::size_t i = 0; i < ev.num_hits(); ++i) {
    const auto pid = ev.particle_id[i];
    if (pid == 0) continue;
    if (hits_of[pid]++ == 0) first_hit[pid] = i;
  }
  const auto index = ev.particle_index();
  track_metrics m;
  std::unordered_map<std::int64_t, std::size_t> slot;
  std::vector<std::int64_t> ids;
  for (const auto& kv : hits_of) ids.push_back(kv.first);
  std::sort(ids.begin(), ids.end());
  for (auto pid : ids) {
    particle_info p;
    p.particle_id = pid;
    p.nhits = hits_of[pid];
    if (auto it = index.find(pid); it != index.end()) {
      p.pt = ev.particles[it->second].pt(), p.eta = ev.particles[it->second].eta();
    } else {
      const std::size_t h = first_hit[pid];
      trackml::particle q;
      q.px = ev.tpx[h], q.py = ev.tpy[h], q.pz = ev.tpz[h];
      p.pt = q.pt(), p.eta = q.eta();
    }
    slot[pid] = m.particles.size();
    m.particles.push_back(p);
  }
  const auto tracks = detail::majorities(ev, labels);
  std::unordered_map<std::int64_t, index_t> matched_by;
  for (const auto& t : tracks) {
    if (t.size < sel.min_track_hits) continue;
    if (t.particle != 0 && 2 * t.count > t.size && 2 * t.count > hits_of[t.particle]) {
      matched_by[t.particle] = t.label;
      m.particles[slot[t.particle]].matched = true;
    }
  }
  for (const auto& t : tracks) {
    if (t.size < sel.min_track_hits) continue;
    ++m.tracks;
    const auto it = matched_by.find(t.particle);
    const bool majority = t.particle != 0 && 2 * t.count > t.size;
    if (it != matched_by.end() && it->second == t.label) continue;
    if (majority && it != matched_by.end()) ++m.duplicates; else ++m.fakes;
  }
  for (const auto& p : m.particles) {
    if (p.pt <= sel.pt_min || std::abs(p.eta) > sel.eta_max || p.nhits < sel.min_hits) continue;
    ++m.reconstructable;
    m.matched += p.matched;
  }
  m.efficiency = m.reconstructable ? static_cast<double>(m.matched) / static_cast<double>(m.reconstructable) : 0.0;
  m.fake_rate = m.tracks ? static_cast<double>(m.fakes) / static_cast<double>(m.tracks) : 0.0;
  m.duplicate_rate = m.tracks ? static_cast<double>(m.duplicates) / static_cast<double>(m.tracks) : 0.0;
  return m;
}

/// @brief One bin of an efficiency histogram.
struct efficiency_bin {
  double lo = 0, hi = 0;
  std::size_t reconstructable = 0, matched = 0;
  double efficiency() const { return reconstructable ? static_cast<double>(matched) / static_cast<double>(reconstructable) : 0.0; }
};

/// @brief Track efficiency per bin of pT (`by_eta` false) or eta (true) over the particles of `m` that pass
/// `sel` (apart from the binned variable's own cut when binning in pT). `edges` are ascending bin edges.
inline std::vector<efficiency_bin> efficiency_binned(const track_metrics& m, std::span<const double> edges, bool by_eta,
                                                     const track_selection& sel = {}) {
  HEPGNN_CHECK(edges.size() >= 2, "tracking::efficiency_binned: need at least 2 bin edges, got ", edges.size());
  for (std::size_t k = 0; k + 1 < edges.size(); ++k)
    HEPGNN_CHECK(edges[k] < edges[k + 1], "tracking::efficiency_binned: edges must ascend, edges[", k, "] = ", edges[k],
                 " >= edges[", k + 1, "] = ", edges[k + 1]);
  std::vector<efficiency_bin> bins(edges.size() - 1);
  for (std::size_t k = 0; k < bins.size(); ++k) bins[k].lo = edges[k], bins[k].hi = edges[k + 1];
  for (const auto& p : m.particles) {
    if (p.nhits < sel.min_hits) continue;
    if (by_eta && p.pt <= sel.pt_min) continue;
    if (!by_eta && std::abs(p.eta) > sel.eta_max) continue;
    const double v = by_eta ? p.eta : p.pt;
    const auto it = std::upper_bound(edges.begin(), edges.end(), v);
    if (it == edges.begin() || it == edges.end()) continue;
    auto& b = bins[static_cast<std::size_t>(it - edges.begin()) - 1];
    ++b.reconstructable;
    b.matched += p.matched;
  }
  return bins;
}

/// @brief The TrackML score: for every track whose majority particle p holds more than half of the track's hits
/// and has more than half of its own hits in the track, add the truth weights of the track's hits of p. Divided
/// by the event's total weight, so a perfect reconstruction scores 1 (also for sub-sampled events). All tracks
/// count, whatever their size (as in the challenge). Needs truth weights (see trackml::compute_weights).
inline double trackml_score(const trackml::event& ev, std::span<const index_t> labels) {
  const char* who = "tracking::trackml_score";
  detail::check_labels(ev, labels, who);
  HEPGNN_CHECK(ev.has_weights(), who, ": the event has no truth weights (call trackml::compute_weights first)");
  std::unordered_map<std::int64_t, int> hits_of;
  for (auto pid : ev.particle_id)
    if (pid != 0) ++hits_of[pid];
  std::unordered_map<index_t, std::int64_t> good;  // track label -> matched particle
  for (const auto& t : detail::majorities(ev, labels))
    if (t.particle != 0 && 2 * t.count > t.size && 2 * t.count > hits_of[t.particle]) good[t.label] = t.particle;
  double score = 0, total = 0;
  for (std::size_t i = 0; i < ev.num_hits(); ++i) {
    total += ev.weight[i];
    if (labels[i] < 0) continue;
    const auto it = good.find(labels[i]);
    if (it != good.end() && it->second == ev.particle_id[i]) score += ev.weight[i];
  }
  return total > 0 ? score / total : 0.0;
}

}  // namespace hepgnn::tracking
