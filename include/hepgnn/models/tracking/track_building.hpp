#pragma once
/// @file track_building.hpp
/// @brief Stage 5 of the tracking pipeline: tracks from the scored edges (connected components or the
/// walkthrough), and the selection of tracks by hits and fitted pT.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/label_groups.hpp"
#include "hepgnn/models/tracking/features.hpp"
#include "hepgnn/models/tracking/helix.hpp"

namespace hepgnn::tracking {

/// @brief Track building method.
enum class track_builder { connected_components, walkthrough };

namespace detail {
/// Throws unless labels has one entry per row of features, each a track number >= 0 or -1 (no track).
template <class T>
void check_track_labels(const matrix<T>& features, const std::vector<index_t>& labels, const char* who) {
  HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == features.rows(), "tracking::", who, ": labels must have ",
               "one entry per hit (", features.rows(), "), got ", labels.size());
  for (const index_t l : labels)
    HEPGNN_CHECK(l >= -1, "tracking::", who, ": labels must be track numbers >= 0 or -1 (no track), got ", l);
}
}  // namespace detail

/// @brief Stage 5a: connected components over the edges with score > cut; components of fewer than
/// `min_hits` hits are labelled -1.
template <class T>
std::vector<index_t> build_tracks_cc(const graph& g, const vector<T>& scores, T cut, int min_hits = 3) {
  const auto comp = connected_components(g, scores, cut);
  return compact_labels(comp.labels, comp.count, min_hits);
}

/// @brief Stage 5b: walkthrough. Hits without an incoming edge above the cut start tracks (nearest the origin
/// first); each track follows the best-scored outgoing edge above the cut to an unused hit, layer by layer
/// outward. Where none is above the cut, the track follows its best edge above `extend_cut` (when lower than
/// the cut) instead of ending: a particle whose next edge scored just below the cut would otherwise become two
/// tracks of half its hits each, both fakes under 50 % matching. Hits left over start tracks of their own.
/// Tracks of fewer than `min_hits` hits are labelled -1.
template <class T>
std::vector<index_t> build_tracks_walkthrough(const matrix<T>& features, const graph& g, const vector<T>& scores,
                                              T cut, int min_hits = 3,
                                              T extend_cut = std::numeric_limits<T>::infinity()) {
  g.validate("tracking::build_tracks_walkthrough");
  HEPGNN_CHECK(scores.size() == g.num_edges(), "tracking::build_tracks_walkthrough: scores must have one entry per ",
               "edge (", g.num_edges(), "), got ", scores.size());
  for (index_t e = 0; e < scores.size(); ++e)  // as build_tracks_cc: a NaN score is refused, not read as below the cut
    HEPGNN_CHECK(!std::isnan(static_cast<double>(scores[e])), "tracking::build_tracks_walkthrough: scores[", e,
                 "] is NaN");
  const index_t n = g.num_nodes;
  HEPGNN_CHECK(features.rows() == n, "tracking::build_tracks_walkthrough: features must have one row per node of ",
               "the graph (", n, "), got ", features.rows());
  const T low = std::min(cut, extend_cut);
  // outgoing adjacency (CSR by source) of the edges above the lower of the two cuts: those edges in CSR order
  // (each hit's row counted, then written, over threads), then grouped by source with a stable counting sort,
  // so each hit's outgoing edges keep ascending destinations (the walk takes the first of equal scores)
  const bool par = g.num_edges() >= 16384;
  std::vector<index_t> row_start(static_cast<std::size_t>(n) + 1, 0);
  std::vector<char> has_in(static_cast<std::size_t>(n));
  parallel_for(n, par, [&](long i) {
    index_t k = 0;
    bool in = false;
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) k += scores[e] > low, in |= scores[e] > cut;
    row_start[i + 1] = k;
    has_in[i] = in;
  });
  std::partial_sum(row_start.begin(), row_start.end(), row_start.begin());
  const auto kept = static_cast<std::size_t>(row_start.back());
  std::vector<index_t> kept_src(kept), kept_dst(kept);
  std::vector<T> kept_score(kept);
  parallel_for(n, par, [&](long i) {
    index_t k = row_start[i];
    for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
      if (scores[e] > low) kept_src[k] = g.sources[e], kept_dst[k] = static_cast<index_t>(i), kept_score[k++] = scores[e];
  });
  std::vector<index_t> out_off(static_cast<std::size_t>(n) + 1, 0);
  for (const index_t src : kept_src) ++out_off[src + 1];
  std::partial_sum(out_off.begin(), out_off.end(), out_off.begin());
  std::vector<index_t> out_dst(kept), next(out_off.begin(), out_off.end() - 1);
  std::vector<T> out_score(kept);
  for (std::size_t k = 0; k < kept; ++k) {
    const index_t at = next[kept_src[k]]++;
    out_dst[at] = kept_dst[k], out_score[at] = kept_score[k];
  }
  const std::vector<index_t> order = order_by_distance(features);
  std::vector<index_t> track(n, -1);
  index_t count = 0;
  for (int pass = 0; pass < 2; ++pass)
    for (index_t s : order) {
      if (track[s] >= 0 || (pass == 0 && has_in[s])) continue;
      index_t cur = s;
      track[cur] = count;
      for (;;) {
        // the best edge above `low`: above the cut whenever any edge to an unused hit is
        index_t best = -1;
        T best_score = low;
        for (index_t k = out_off[cur]; k < out_off[cur + 1]; ++k)
          if (track[out_dst[k]] < 0 && out_score[k] > best_score) best_score = out_score[k], best = out_dst[k];
        if (best < 0) break;
        track[best] = count;
        cur = best;
      }
      ++count;
    }
  return compact_labels(track, count, min_hits);
}

/// @brief Track selection: labels -1 for the hits of tracks with fewer than min_hits hits or a fitted_pt()
/// below min_pt (0: no pT cut); the kept tracks are renumbered 0, 1, ... in order of first hit.
template <class T>
std::vector<index_t> select_tracks(const matrix<T>& features, const std::vector<index_t>& labels, int min_hits,
                                   double min_pt, double b_field) {
  detail::check_track_labels(features, labels, "select_tracks");
  const label_groups members(labels, "tracking::select_tracks");
  const index_t count = members.count();
  std::vector<char> keep(static_cast<std::size_t>(count));
  parallel_for(count, count >= 256 && min_pt > 0, [&](long t) {  // a helix fit per track
    const auto hits = members[static_cast<index_t>(t)];
    keep[t] = static_cast<int>(hits.size()) >= min_hits && (min_pt <= 0 || fitted_pt(features, hits, b_field) >= min_pt);
  });
  std::vector<index_t> kept = labels;
  for (auto& l : kept)
    if (l >= 0 && !keep[l]) l = -1;
  return compact_labels(kept, count, 1);
}

}  // namespace hepgnn::tracking
