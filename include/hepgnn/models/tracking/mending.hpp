#pragma once
/// @file mending.hpp
/// @brief Track mending by helix fits: tracks that no helix fits lose an outlier or are split, and pieces of one
/// particle are merged.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/label_groups.hpp"
#include "hepgnn/models/tracking/helix.hpp"
#include "hepgnn/models/tracking/track_building.hpp"

namespace hepgnn::tracking {

namespace detail {
/// Helix-fit cost of a set of hits: the larger RMS residual as a fraction of its limit (<= 1: a helix). Above 1 in
/// x-y alone the z fit is skipped: the cost is then a lower bound, which decides the same.
template <class T>
struct helix_cost {
  const matrix<T>& features;
  double lim_xy, lim_z;
  double operator()(std::span<const index_t> hits) const {
    const auto r = fit_helix_within(features, hits, lim_xy);
    return std::max(r.xy * 1e3 / lim_xy, r.z * 1e3 / lim_z);
  }
};

/// split_and_merge_tracks() step 1: each track's outlier or best cut in parallel, then the outer parts become
/// tracks of their own.
template <class T>
void split_tracks(const matrix<T>& features, label_groups& members, const helix_cost<T>& cost) {
  const index_t count = members.count();
  const auto dist2 = [&](index_t h) {
    const double r = features(h, 0), z = features(h, 3);
    return r * r + z * z;
  };
  constexpr int min_part = 3;
  std::vector<int> cut_at(static_cast<std::size_t>(count), -1);
  parallel_for<loop_schedule::dynamic_single>(count, count >= 256, [&](long t) {
    const std::span<index_t> hits = members[static_cast<index_t>(t)];
    const int n = static_cast<int>(hits.size());
    if (n < 2 * min_part || cost(hits) <= 1) return;
    std::sort(hits.begin(), hits.end(),
              [&](index_t a, index_t b) { return dist2(a) < dist2(b) || (dist2(a) == dist2(b) && a < b); });
    // an outlier first: the hit whose removal leaves the best fit leaves the track when the rest then fits
    // one (a neighbour's hit taken in passing; removing up to two or three hits did no better)
    std::vector<index_t> rest;
    double least = HUGE_VAL;
    int worst = 0;
    for (int k = 0; k < n; ++k) {
      rest.assign(hits.begin(), hits.end());
      rest.erase(rest.begin() + k);
      if (const double c = cost(rest); c < least) least = c, worst = k;
    }
    if (least <= 1) {  // the outlier leaves the track: to the end of its span, which drops it
      std::rotate(hits.begin() + worst, hits.begin() + worst + 1, hits.end());
      members.shrink(static_cast<index_t>(t), 1);
      return;
    }
    double best = HUGE_VAL;
    const std::span<const index_t> all(hits);
    for (int m = min_part; m + min_part <= n; ++m) {
      const auto split = static_cast<std::size_t>(m);
      const double c = std::max(cost(all.first(split)), cost(all.subspan(split)));
      if (c < best) best = c, cut_at[t] = m;
    }
    if (best > 1) cut_at[t] = -1;
  });
  for (index_t t = 0, n_before = count; t < n_before; ++t)
    if (cut_at[t] >= 0) members.split(t, cut_at[t]);
}

/// A merge candidate: track b continues track a, one helix fitting both at this cost.
struct merge_candidate {
  double cost;
  index_t a, b;
};

/// split_and_merge_tracks() step 2: the pairs of tracks that one helix fits, best first.
template <class T>
std::vector<merge_candidate> merge_candidates(const matrix<T>& features, const label_groups& members,
                                              const helix_cost<T>& cost, double max_xy_mm, double max_z_mm) {
  const index_t count = members.count();
  // each track's ends: nearest and farthest hit from the origin
  struct ends {
    double d_in = 0, d_out = 0, phi_in = 0, phi_out = 0, eta_in = 0, eta_out = 0;
    index_t first = -1;  // the inner hit
  };
  std::vector<ends> e(static_cast<std::size_t>(count));
  const double pi = std::numbers::pi;
  parallel_for(count, count >= 256, [&](long t) {
    if (members[static_cast<index_t>(t)].size() < 2) return;
    double lo = HUGE_VAL, hi = -1;
    for (index_t h : members[static_cast<index_t>(t)]) {
      const double r = features(h, 0), zz = features(h, 3), d = std::sqrt(r * r + zz * zz);
      const double phi = pi * static_cast<double>(features(h, 5)), eta = 3 * static_cast<double>(features(h, 4));
      if (d < lo) lo = d, e[t].d_in = d, e[t].phi_in = phi, e[t].eta_in = eta, e[t].first = h;
      if (d > hi) hi = d, e[t].d_out = d, e[t].phi_out = phi, e[t].eta_out = eta;
    }
  });
  // candidate pairs (inner a, outer b): the inner ends binned in (phi, eta) by the window's size, so a track
  // looks at the 3 x 3 bins around its outer end (the work per track grows with the density of tracks in the
  // window, not with the event); tracks in parallel
  // eta is of hit positions seen from the origin: with the vertex off the origin in z it drifts along a track,
  // most at small radii (0.2-0.4 between a particle's pieces), so its window is wide and the helix decides
  constexpr double dphi_max = 0.2, deta_max = 0.5, slack = 0.01, gap_max = 1.0, eta_lim = 5;
  const int nphi = static_cast<int>(2 * pi / dphi_max), neta = static_cast<int>(2 * eta_lim / deta_max);
  const auto phi_bin = [&](double phi) { return std::clamp(static_cast<int>((phi + pi) / (2 * pi) * nphi), 0, nphi - 1); };
  const auto eta_bin = [&](double eta) {
    return std::clamp(static_cast<int>((eta + eta_lim) / (2 * eta_lim) * neta), 0, neta - 1);
  };
  // each bin's tracks sorted by the distance of their inner end, so a track looks only at those that start
  // within [d_out - slack, d_out + gap_max] (a binary search): in dense events most tracks of the window start
  // inside the outer end of the track looking (10000 particles: 57k tracks, the scan took 125 of 150 ms)
  const auto bin_of = [&](index_t t) { return static_cast<std::size_t>(eta_bin(e[t].eta_in)) * nphi + phi_bin(e[t].phi_in); };
  std::vector<index_t> bin_start(static_cast<std::size_t>(nphi) * neta + 1, 0), binned;
  for (index_t t = 0; t < count; ++t)
    if (members[t].size() >= 2) ++bin_start[bin_of(t) + 1];
  std::partial_sum(bin_start.begin(), bin_start.end(), bin_start.begin());
  binned.resize(static_cast<std::size_t>(bin_start.back()));
  {
    std::vector<index_t> next(bin_start.begin(), bin_start.end() - 1);
    for (index_t t = 0; t < count; ++t)
      if (members[t].size() >= 2) binned[next[bin_of(t)]++] = t;
  }
  parallel_for(nphi * neta, count >= 256, [&](long k) {
    std::sort(binned.begin() + bin_start[k], binned.begin() + bin_start[k + 1],
              [&](index_t u, index_t v) { return e[u].d_in < e[v].d_in || (e[u].d_in == e[v].d_in && u < v); });
  });
  // each track's own helix: a candidate's inner hit more than 10 limits off it is not fitted with it (dense
  // events offer many candidates in the window; most fail this one-hit test, which costs far less than a fit)
  std::vector<helix_fit> own(static_cast<std::size_t>(count));
  parallel_for(count, count >= 256, [&](long t) {
    if (members[t].size() >= 2) own[t] = fit_helix(features, members[t]);
  });
  std::vector<std::vector<merge_candidate>> found(static_cast<std::size_t>(count));
  parallel_for<loop_schedule::dynamic_single>(count, count >= 256, [&](long a) {
    if (members[a].size() < 2) return;
    std::vector<index_t> both;
    const int pb = phi_bin(e[a].phi_out), eb = eta_bin(e[a].eta_out);
    for (int de = -1; de <= 1; ++de)
      for (int dp = -1; dp <= 1; ++dp) {
        const int ee = eb + de;
        if (ee < 0 || ee >= neta) continue;
        const std::size_t bin = static_cast<std::size_t>(ee) * nphi + (pb + dp + nphi) % nphi;
        const auto last = binned.begin() + bin_start[bin + 1];
        for (auto it = std::partition_point(binned.begin() + bin_start[bin], last,
                                            [&](index_t b) { return e[b].d_in + slack < e[a].d_out; });
             it != last && !(e[*it].d_in - e[a].d_out > gap_max); ++it) {
          const index_t b = *it;
          double dphi = std::abs(e[b].phi_in - e[a].phi_out);
          dphi = std::min(dphi, 2 * pi - dphi);
          if (b == a || dphi > dphi_max || std::abs(e[b].eta_in - e[a].eta_out) > deta_max) continue;
          const index_t h = e[b].first;
          const double rho = features(h, 0);
          if (std::abs(own[a].xy_residual(rho * static_cast<double>(features(h, 1)),
                                          rho * static_cast<double>(features(h, 2)))) * 1e3 > 10 * max_xy_mm ||
              std::abs(own[a].residual(0, 0, features(h, 3), rho).second) * 1e3 > 10 * max_z_mm)
            continue;
          both.assign(members[a].begin(), members[a].end());
          both.insert(both.end(), members[b].begin(), members[b].end());
          if (const double c = cost(both); c <= 1) found[a].push_back({c, static_cast<index_t>(a), b});
        }
      }
  });
  std::vector<merge_candidate> cands;
  for (const auto& f : found) cands.insert(cands.end(), f.begin(), f.end());
  // sorted in parts over threads, then merged (a total order: (a, b) pairs are unique); 150k candidates at
  // 10000 particles
  const auto before = [](const merge_candidate& u, const merge_candidate& v) {
    return u.cost < v.cost || (u.cost == v.cost && (u.a < v.a || (u.a == v.a && u.b < v.b)));
  };
  const long parts = cands.size() >= 8192 ? max_threads() : 1;
  const auto part = [&](long k) { return cands.begin() + static_cast<std::ptrdiff_t>(k * cands.size() / parts); };
  parallel_for(parts, parts > 1, [&](long k) { std::sort(part(k), part(k + 1), before); });
  for (long width = 1; width < parts; width *= 2)
    for (long k = 0; k + width < parts; k += 2 * width)
      std::inplace_merge(part(k), part(k + width), part(std::min(parts, k + 2 * width)), before);
  return cands;
}
}  // namespace detail

/// @brief Track splitting and merging by helix fits (fit_helix: RMS residuals of at most max_xy_mm in x-y and
/// max_z_mm in z make a helix). A particle whose walkthrough broke (an edge scored below the cut, a neighbour's
/// hit taken first, or a turn onto a neighbour's hits) leaves pieces with less than half its hits each: none
/// matches it and all count as fakes.
/// 1. Outliers and splits: a track of >= 6 hits that no helix fits loses one hit (label -1) when the others then
///    fit one, the hit whose removal leaves the best fit (a neighbour's hit taken in passing: its wrong
///    curvature would also fail the track's pT selection). Otherwise it is cut in two (hits ordered by distance
///    from the origin) at the point where both parts, of >= 3 hits each, fit one; where none does, it stays whole.
/// 2. Merge: a track is joined to one that continues it outward when one helix fits both. Candidates: the outer
///    piece starts beyond the inner one's end (in distance from the origin, 1 cm of slack for overlapping
///    modules), within 0.2 rad in phi and 0.5 in eta of it and at most 1 m further out. Best fits first; each
///    track continues at most one and is continued by at most one, so chains of pieces join.
/// Tracks are renumbered 0, 1, ... in order of first hit; -1 stays -1.
template <class T>
std::vector<index_t> split_and_merge_tracks(const matrix<T>& features, const std::vector<index_t>& labels,
                                            double max_xy_mm, double max_z_mm) {
  detail::check_track_labels(features, labels, "split_and_merge_tracks");
  HEPGNN_CHECK(max_xy_mm >= 0 && max_z_mm >= 0 && std::isfinite(max_xy_mm) && std::isfinite(max_z_mm),
               "tracking::split_and_merge_tracks: max_xy_mm and max_z_mm must be finite and >= 0, got ", max_xy_mm,
               ", ", max_z_mm);
  label_groups members(labels, "tracking::split_and_merge_tracks");
  const detail::helix_cost<T> cost{features, std::max(max_xy_mm, 1e-12), std::max(max_z_mm, 1e-12)};
  detail::split_tracks(features, members, cost);
  const index_t count = members.count();
  const auto cands = detail::merge_candidates(features, members, cost, max_xy_mm, max_z_mm);
  // the chains: the final labels are numbered by first hit, so which piece roots a chain does not matter
  disjoint_sets chains(count);
  std::vector<char> has_next(static_cast<std::size_t>(count), 0), has_prev(static_cast<std::size_t>(count), 0);
  for (const auto& c : cands) {
    if (has_next[c.a] || has_prev[c.b] || chains.find(c.a) == chains.find(c.b)) continue;
    has_next[c.a] = has_prev[c.b] = 1;
    chains.unite(c.a, c.b);
  }
  std::vector<index_t> merged(labels.size(), -1);
  for (index_t t = 0; t < count; ++t)
    for (index_t h : members[t]) merged[h] = chains.find(t);
  return compact_labels(merged, count, 1);
}

}  // namespace hepgnn::tracking
