#pragma once
/// @file config.hpp
/// @brief The tracking pipeline's settings, saved as string metadata of its weight file.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "hepgnn/core/error.hpp"

namespace hepgnn::tracking {

/// @brief Configuration of all stages (saved in the weight file's metadata).
struct pipeline_config {
  int embedding_dim = 3;          ///< width of the learned space (<= 3 lets the radius graph use a cell list)
  int embedding_hidden = 64;      ///< hidden width of the embedding MLP
  int embedding_layers = 3;       ///< linear layers of the embedding MLP
  double margin = 0.3;            ///< hinge margin, and the radius of the graph in the embedding
  int max_neighbors = 24;         ///< radius graph cap per hit (the trained space holds ~1000 hits within the
                                  ///< margin of each, so the cap decides; 20 / 24 / 32 keep 92.6 / 94.1 / 95.6 %
                                  ///< of the toy truth edges, docs/tracking.md)
  bool use_filter = true;         ///< run the filter MLP
  int filter_hidden = 32;         ///< hidden width of the filter MLP (two hidden layers)
  double filter_cut = 0.3;        ///< edges with filter score below this are dropped
  int gnn_hidden = 32;            ///< interaction network hidden width (48 and 64 measured in docs/tracking.md)
  int gnn_iterations = 8;         ///< message-passing iterations (residual)
  bool gnn_shared_weights = true; ///< one edge and node network for all iterations (false: one per iteration)
  bool gnn_bf16 = false;          ///< GNN inference with bf16 operands (float sums; float pipelines only)
  bool gnn_source_aggregation = true;  ///< GNN node update also sums each hit's outward edges (see
                                       ///< interaction_network::options::source_aggregation); files without
                                       ///< the key load as false (trained before it existed)
  double edge_cut = 0.3;          ///< track building keeps edges with GNN score above this
  double extend_cut = 0.01;       ///< walkthrough: a track with no edge above edge_cut onward follows its best edge
                                  ///< above this instead of ending (>= edge_cut: tracks end there)
  double helix_xy_mm = 0;         ///< split_and_merge_tracks(): largest RMS x-y residual (mm) of a helix (0: off)
  double helix_z_mm = 20;         ///< split_and_merge_tracks(): largest RMS z residual (mm) of a helix
  int min_track_hits = 3;         ///< tracks with fewer hits are dropped
  double min_track_pt = 0;        ///< tracks whose fitted pT (GeV) is below this are dropped (0: keep all)
  double b_field = 2;             ///< solenoid field (T) for the pT of a track's fitted circle
  std::uint64_t seed = 1;         ///< weight initialisation

  /// @brief As string metadata.
  std::map<std::string, std::string> to_metadata() const {
    return {{"tracking.embedding_dim", std::to_string(embedding_dim)},
            {"tracking.embedding_hidden", std::to_string(embedding_hidden)},
            {"tracking.embedding_layers", std::to_string(embedding_layers)},
            {"tracking.margin", fmt(margin)},
            {"tracking.max_neighbors", std::to_string(max_neighbors)},
            {"tracking.use_filter", use_filter ? "1" : "0"},
            {"tracking.filter_hidden", std::to_string(filter_hidden)},
            {"tracking.filter_cut", fmt(filter_cut)},
            {"tracking.gnn_hidden", std::to_string(gnn_hidden)},
            {"tracking.gnn_iterations", std::to_string(gnn_iterations)},
            {"tracking.gnn_shared_weights", gnn_shared_weights ? "1" : "0"},
            {"tracking.gnn_bf16", gnn_bf16 ? "1" : "0"},
            {"tracking.gnn_source_aggregation", gnn_source_aggregation ? "1" : "0"},
            {"tracking.edge_cut", fmt(edge_cut)},
            {"tracking.extend_cut", fmt(extend_cut)},
            {"tracking.helix_xy_mm", fmt(helix_xy_mm)},
            {"tracking.helix_z_mm", fmt(helix_z_mm)},
            {"tracking.min_track_hits", std::to_string(min_track_hits)},
            {"tracking.min_track_pt", fmt(min_track_pt)},
            {"tracking.b_field", fmt(b_field)}};
  }
  /// @brief From string metadata; throws naming a missing or unparsable key.
  static pipeline_config from_metadata(const std::map<std::string, std::string>& m) {
    auto get = [&](const char* k) -> const std::string& {
      const auto it = m.find(k);
      HEPGNN_CHECK(it != m.end(), "tracking::pipeline_config: the weight file's metadata lacks '", k,
                   "' (not a tracking pipeline file?)");
      return it->second;
    };
    auto num = [&](const char* k) {
      const std::string& s = get(k);
      double v = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      HEPGNN_CHECK(ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v),
                   "tracking::pipeline_config: metadata '", k, "' = '", s, "' is not a number");
      return v;
    };
    pipeline_config c;
    c.embedding_dim = static_cast<int>(num("tracking.embedding_dim"));
    c.embedding_hidden = static_cast<int>(num("tracking.embedding_hidden"));
    c.embedding_layers = static_cast<int>(num("tracking.embedding_layers"));
    c.margin = num("tracking.margin");
    c.max_neighbors = static_cast<int>(num("tracking.max_neighbors"));
    c.use_filter = num("tracking.use_filter") != 0;
    c.filter_hidden = static_cast<int>(num("tracking.filter_hidden"));
    c.filter_cut = num("tracking.filter_cut");
    c.gnn_hidden = static_cast<int>(num("tracking.gnn_hidden"));
    c.gnn_iterations = static_cast<int>(num("tracking.gnn_iterations"));
    c.edge_cut = num("tracking.edge_cut");
    // keys added later are optional (files from before they existed get the defaults)
    if (m.count("tracking.gnn_shared_weights")) c.gnn_shared_weights = num("tracking.gnn_shared_weights") != 0;
    if (m.count("tracking.extend_cut")) c.extend_cut = num("tracking.extend_cut");
    if (m.count("tracking.gnn_bf16")) c.gnn_bf16 = num("tracking.gnn_bf16") != 0;
    c.gnn_source_aggregation = m.count("tracking.gnn_source_aggregation") && num("tracking.gnn_source_aggregation") != 0;
    if (m.count("tracking.helix_xy_mm")) c.helix_xy_mm = num("tracking.helix_xy_mm");
    if (m.count("tracking.helix_z_mm")) c.helix_z_mm = num("tracking.helix_z_mm");
    if (m.count("tracking.min_track_hits")) c.min_track_hits = static_cast<int>(num("tracking.min_track_hits"));
    if (m.count("tracking.min_track_pt")) c.min_track_pt = num("tracking.min_track_pt");
    if (m.count("tracking.b_field")) c.b_field = num("tracking.b_field");
    return c;
  }
  /// @brief Throws unless every setting is in range.
  void validate() const {
    HEPGNN_CHECK(embedding_dim > 0 && embedding_hidden > 0 && embedding_layers >= 1, "tracking::pipeline_config: ",
                 "embedding_dim, embedding_hidden must be > 0 and embedding_layers >= 1, got ", embedding_dim, ", ",
                 embedding_hidden, ", ", embedding_layers);
    HEPGNN_CHECK(margin > 0 && std::isfinite(margin), "tracking::pipeline_config: margin must be > 0, got ", margin);
    HEPGNN_CHECK(max_neighbors >= 0, "tracking::pipeline_config: max_neighbors must be >= 0, got ", max_neighbors);
    HEPGNN_CHECK(filter_hidden > 0 && gnn_hidden > 0 && gnn_iterations >= 1, "tracking::pipeline_config: filter_hidden",
                 " and gnn_hidden must be > 0 and gnn_iterations >= 1, got ", filter_hidden, ", ", gnn_hidden, ", ",
                 gnn_iterations);
    HEPGNN_CHECK(filter_cut >= 0 && filter_cut < 1 && edge_cut >= 0 && edge_cut < 1 && extend_cut >= 0 &&
                     extend_cut < 1,
                 "tracking::pipeline_config: filter_cut, edge_cut and extend_cut must be in [0, 1), got ", filter_cut,
                 ", ", edge_cut, ", ", extend_cut);
    HEPGNN_CHECK(helix_xy_mm >= 0 && std::isfinite(helix_xy_mm) && helix_z_mm >= 0 && std::isfinite(helix_z_mm),
                 "tracking::pipeline_config: helix_xy_mm and helix_z_mm must be finite and >= 0, got ", helix_xy_mm,
                 ", ", helix_z_mm);
    HEPGNN_CHECK(min_track_hits >= 1 && min_track_pt >= 0 && std::isfinite(min_track_pt) && b_field > 0 &&
                     std::isfinite(b_field),
                 "tracking::pipeline_config: need min_track_hits >= 1, min_track_pt >= 0 and b_field > 0, got ",
                 min_track_hits, ", ", min_track_pt, ", ", b_field);
  }

 private:
  static std::string fmt(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
  }
};

}  // namespace hepgnn::tracking
