#pragma once
/// @file config.hpp
/// @brief The tracking pipeline's settings, saved as string metadata of its weight file (io/model_file.hpp).

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "hepgnn/core/error.hpp"
#include "hepgnn/io/model_file.hpp"

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

  /// @brief Visits every setting as f(name, member, lo, hi) (io/model_file.hpp): the weight file keeps it as
  /// "tracking.<name>" and a file may ask for values in [lo, hi] only, so sizes read from a file are bounded before
  /// anything is built. The size bounds are well above the pipelines measured in docs/tracking.md (hidden widths
  /// 32-64, 8 GNN iterations); the largest networks they allow hold about 10^8 parameters.
  template <class F>
  void for_each_field(F&& f) {
    fields(*this, f);
  }
  template <class F>
  void for_each_field(F&& f) const {
    fields(*this, f);
  }

  /// @brief Throws unless every setting is in range (the rules below, then the bounds of for_each_field).
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
    check_config(*this, "tracking::pipeline_config");
  }

 private:
  template <class Self, class F>
  static void fields(Self& c, F& f) {
    f("embedding_dim", c.embedding_dim, 1, 64);
    f("embedding_hidden", c.embedding_hidden, 1, 2048);
    f("embedding_layers", c.embedding_layers, 1, 8);
    f("margin", c.margin, 0, 1e6);
    f("max_neighbors", c.max_neighbors, 0, 4096);
    f("use_filter", c.use_filter, 0, 1);
    f("filter_hidden", c.filter_hidden, 1, 2048);
    f("filter_cut", c.filter_cut, 0, 1);
    f("gnn_hidden", c.gnn_hidden, 1, 512);
    f("gnn_iterations", c.gnn_iterations, 1, 32);
    f("gnn_shared_weights", c.gnn_shared_weights, 0, 1);
    f("gnn_bf16", c.gnn_bf16, 0, 1);
    f("gnn_source_aggregation", c.gnn_source_aggregation, 0, 1);
    f("edge_cut", c.edge_cut, 0, 1);
    f("extend_cut", c.extend_cut, 0, 1);
    f("helix_xy_mm", c.helix_xy_mm, 0, 1e6);
    f("helix_z_mm", c.helix_z_mm, 0, 1e6);
    f("min_track_hits", c.min_track_hits, 1, 1000);
    f("min_track_pt", c.min_track_pt, 0, 1e6);
    f("b_field", c.b_field, 0, 100);
    f("seed", c.seed, 0, 9007199254740992.0);  // 2^53: saved as a number, read back exactly
  }
};

/// @brief The configuration in the metadata of a format-version-1 file (pipeline::save before io/model_file.hpp:
/// "tracking.*" keys, no family): the keys of the first files are required, those added later optional (files
/// without gnn_source_aggregation were trained before it existed: false); every value checked against the bounds
/// of for_each_field.
inline pipeline_config config_from_version1(const std::map<std::string, std::string>& m) {
  for (const char* k : {"embedding_dim", "embedding_hidden", "embedding_layers", "margin", "max_neighbors",
                        "use_filter", "filter_hidden", "filter_cut", "gnn_hidden", "gnn_iterations", "edge_cut"})
    HEPGNN_CHECK(m.count(std::string("tracking.") + k), "tracking::pipeline_config: the weight file's metadata lacks ",
                 "'tracking.", k, "' (not a tracking pipeline file?)");
  pipeline_config c = config_from_metadata<pipeline_config>(m, "tracking", /*missing_ok=*/true);
  if (!m.count("tracking.gnn_source_aggregation")) c.gnn_source_aggregation = false;
  return c;
}

}  // namespace hepgnn::tracking
