#pragma once
/// @file batch.hpp
/// @brief hepgnn::batch: a disjoint union of graphs, described by node offsets (as in PyTorch Geometric).

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Nodes of graph g are rows [node_offsets[g], node_offsets[g+1]) of the batch's feature matrices.
/// Builders and pooling never connect or mix nodes of different graphs. Nothing is padded.
struct batch {
  std::vector<index_t> node_offsets{0};  ///< size num_graphs + 1, non-decreasing, starts at 0

  /// @brief Number of graphs.
  index_t num_graphs() const { return static_cast<index_t>(node_offsets.size()) - 1; }
  /// @brief Total number of nodes.
  index_t num_nodes() const { return node_offsets.back(); }
  /// @brief First node of graph g.
  index_t begin(index_t g) const { return node_offsets[g]; }
  /// @brief One past the last node of graph g.
  index_t end(index_t g) const { return node_offsets[g + 1]; }
  /// @brief Number of nodes of graph g.
  index_t size(index_t g) const { return node_offsets[g + 1] - node_offsets[g]; }

  /// @brief Graph id of every node.
  std::vector<index_t> graph_of_nodes() const {
    std::vector<index_t> id(static_cast<std::size_t>(num_nodes()));
    for (index_t g = 0; g < num_graphs(); ++g) std::fill(id.begin() + begin(g), id.begin() + end(g), g);
    return id;
  }

  /// @brief One graph holding all n nodes.
  static batch single(index_t n) {
    HEPGNN_CHECK(n >= 0, "batch::single: n must be >= 0, got ", n);
    return batch{{0, n}};
  }
  /// @brief `graphs` graphs of `nodes_per_graph` nodes each.
  static batch uniform(index_t graphs, index_t nodes_per_graph) {
    HEPGNN_CHECK(graphs >= 0 && nodes_per_graph >= 0, "batch::uniform: graphs and nodes_per_graph must be >= 0, got ",
                 graphs, " and ", nodes_per_graph);
    HEPGNN_CHECK(static_cast<std::int64_t>(graphs) * nodes_per_graph <= std::numeric_limits<index_t>::max(),
                 "batch::uniform: ", graphs, " x ", nodes_per_graph, " nodes exceed the 32-bit node index (at most ",
                 std::numeric_limits<index_t>::max(), ")");
    batch b;
    b.node_offsets.resize(static_cast<std::size_t>(graphs) + 1);
    for (std::size_t g = 0; g < b.node_offsets.size(); ++g)
      b.node_offsets[g] = static_cast<index_t>(g) * nodes_per_graph;
    return b;
  }
  /// @brief Graphs of the given sizes, in order.
  static batch from_sizes(const std::vector<index_t>& sizes) {
    batch b;
    b.node_offsets.resize(sizes.size() + 1);
    for (std::size_t g = 0; g < sizes.size(); ++g) {
      HEPGNN_CHECK(sizes[g] >= 0, "batch::from_sizes: sizes[", g, "] must be >= 0, got ", sizes[g]);
      HEPGNN_CHECK(sizes[g] <= std::numeric_limits<index_t>::max() - b.node_offsets[g], "batch::from_sizes: the sizes",
                   " up to sizes[", g, "] sum past the 32-bit node index (at most ", std::numeric_limits<index_t>::max(),
                   ")");
      b.node_offsets[g + 1] = b.node_offsets[g] + sizes[g];
    }
    return b;
  }

  /// @brief Throws unless the offsets are well formed: they start at 0 and do not decrease. `who` (may be null)
  /// prefixes the message.
  void validate_offsets(const char* who = nullptr) const {
    const char* w = who ? who : "batch";
    HEPGNN_CHECK(!node_offsets.empty() && node_offsets.front() == 0, w,
                 ": batch node_offsets must start with 0 (one entry more than graphs)");
    for (std::size_t g = 0; g + 1 < node_offsets.size(); ++g)
      HEPGNN_CHECK(node_offsets[g] <= node_offsets[g + 1], w, ": batch node_offsets must be non-decreasing, node_offsets[",
                   g, "] = ", node_offsets[g], " > node_offsets[", g + 1, "] = ", node_offsets[g + 1]);
  }

  /// @brief Throws unless the offsets are well formed and cover exactly `num_nodes` rows.
  void validate(index_t expected_nodes) const {
    validate_offsets();
    HEPGNN_CHECK(node_offsets.back() == expected_nodes, "batch: node_offsets cover ", node_offsets.back(),
                 " nodes but the features have ", expected_nodes, " rows");
  }
};

}  // namespace hepgnn
