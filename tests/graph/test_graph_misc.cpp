// Fully connected graphs (graph/fully_connected.hpp) and connected components (graph/connected_components.hpp).
#include "support/doctest.hpp"

#include <limits>
#include <vector>

#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/graph/knn.hpp"

namespace hepgnn_test_graph_misc {  // this file's names, apart from the other files of its unity build

using hepgnn::batch;
using hepgnn::index_t;

TEST_CASE("fully_connected connects every pair within each graph only") {
  const auto b = batch::from_sizes({3, 0, 1, 2});
  const auto g = hepgnn::fully_connected(b);
  g.validate();
  CHECK(g.num_nodes == 6);
  CHECK(g.num_edges() == 3 * 2 + 0 + 0 + 2 * 1);
  CHECK(g.offsets == std::vector<index_t>{0, 2, 4, 6, 6, 7, 8});
  CHECK(g.sources == std::vector<index_t>{1, 2, 0, 2, 0, 1, 5, 4});
  const auto s = hepgnn::fully_connected(b, true);
  s.validate();
  CHECK(s.num_edges() == 9 + 1 + 4);
  CHECK(s.offsets == std::vector<index_t>{0, 3, 6, 9, 10, 12, 14});
  CHECK(s.sources == std::vector<index_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5, 4, 5});
  CHECK(hepgnn::fully_connected(0).num_edges() == 0);
  CHECK(hepgnn::fully_connected(30).num_edges() == 870);
  CHECK(hepgnn::fully_connected(batch::uniform(100, 30)).num_edges() == 87000);
  CHECK_THROWS_WITH_AS(hepgnn::fully_connected(batch::single(50000)), doctest::Contains("more than index_t can count"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::fully_connected(batch{{0, 5, 3}}),
                       doctest::Contains("node_offsets must be non-decreasing"), hepgnn::error);
}

TEST_CASE("connected_components on known graphs") {
  // two triangles joined by a weak edge, one isolated node, one pair
  const std::vector<index_t> src{0, 1, 2, 3, 4, 5, 2, 7};
  const std::vector<index_t> dst{1, 2, 0, 4, 5, 3, 3, 8};
  const std::vector<double> score_by_input{0.9, 0.8, 0.95, 0.7, 0.99, 0.6, 0.1, 0.51};
  const auto g = hepgnn::graph::from_edges(9, src, dst);
  const auto pos = hepgnn::graph::csr_position(9, dst);
  std::vector<double> scores(score_by_input.size());
  for (std::size_t e = 0; e < pos.size(); ++e) scores[pos[e]] = score_by_input[e];

  const auto all = hepgnn::connected_components(g);
  CHECK(all.count == 3);  // {0..5}, {6}, {7, 8}
  CHECK(all.labels == std::vector<index_t>{0, 0, 0, 0, 0, 0, 1, 2, 2});

  const auto cut = hepgnn::connected_components(g, scores, 0.5);
  CHECK(cut.count == 4);  // the 0.1 edge fails the cut
  CHECK(cut.labels == std::vector<index_t>{0, 0, 0, 1, 1, 1, 2, 3, 3});

  const auto strict = hepgnn::connected_components(g, scores, 0.9);
  // kept edges: 0->1 (0.9 is not > 0.9: dropped), 2->0 (0.95), 4->5 (0.99)
  CHECK(strict.labels == std::vector<index_t>{0, 1, 0, 2, 3, 3, 4, 5, 6});
  CHECK(strict.count == 7);

  const auto none = hepgnn::connected_components(g, scores, 1.0);
  CHECK(none.count == 9);
  CHECK(hepgnn::connected_components(hepgnn::graph{}).count == 0);
}

TEST_CASE("connected_components matches a BFS oracle on random graphs") {
  hepgnn::rng r(5);
  for (int trial = 0; trial < 20; ++trial) {
    const index_t n = 1 + static_cast<index_t>(r.below(300));
    const std::size_t m = r.below(400);
    std::vector<index_t> src(m), dst(m);
    std::vector<float> s(m);
    for (std::size_t e = 0; e < m; ++e) {
      src[e] = static_cast<index_t>(r.below(n));
      dst[e] = static_cast<index_t>(r.below(n));
    }
    const auto g = hepgnn::graph::from_edges(n, src, dst);
    for (auto& v : s) v = static_cast<float>(r.uniform());
    const auto cc = hepgnn::connected_components(g, s, 0.3f);
    // oracle: BFS over kept edges, labels in order of lowest node
    std::vector<std::vector<index_t>> adj(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i)
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
        if (s[e] > 0.3f) {
          adj[i].push_back(g.sources[e]);
          adj[g.sources[e]].push_back(i);
        }
    std::vector<index_t> lab(static_cast<std::size_t>(n), -1);
    index_t next = 0;
    for (index_t v = 0; v < n; ++v) {
      if (lab[v] >= 0) continue;
      std::vector<index_t> stack{v};
      lab[v] = next;
      while (!stack.empty()) {
        const index_t u = stack.back();
        stack.pop_back();
        for (index_t w : adj[u])
          if (lab[w] < 0) lab[w] = next, stack.push_back(w);
      }
      ++next;
    }
    CHECK(cc.labels == lab);
    CHECK(cc.count == next);
  }
}

TEST_CASE("connected_components rejects bad input") {
  const auto g = hepgnn::graph::from_edges(3, std::vector<index_t>{0, 1}, std::vector<index_t>{1, 2});
  CHECK_THROWS_WITH_AS(hepgnn::connected_components(g, std::vector<double>{0.5}, 0.1),
                       doctest::Contains("scores must have one entry per edge (2), got 1"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::connected_components(g, std::vector<double>{0.5, std::nan("")}, 0.1),
                       doctest::Contains("scores[1] is NaN"), hepgnn::error);
  hepgnn::graph broken = g;
  broken.sources[0] = 7;
  CHECK_THROWS_WITH_AS(hepgnn::connected_components(broken), doctest::Contains("out of range"), hepgnn::error);
}

TEST_CASE("batch sizes past the 32-bit node index and out-of-range CSR destinations are errors, not wraps") {
  CHECK_THROWS_WITH_AS(batch::uniform(65536, 65536), doctest::Contains("exceed the 32-bit node index"), hepgnn::error);
  CHECK(batch::uniform(2, 3).node_offsets == std::vector<index_t>{0, 3, 6});
  const index_t big = std::numeric_limits<index_t>::max() / 2 + 1;
  CHECK_THROWS_WITH_AS(batch::from_sizes({big, big}), doctest::Contains("sum past the 32-bit node index"),
                       hepgnn::error);
  CHECK(batch::from_sizes({big, 5}).num_nodes() == big + 5);
  const std::vector<index_t> dst{0, 2, 3};
  CHECK_THROWS_WITH_AS(hepgnn::graph::csr_position(3, dst), doctest::Contains("dst[2] = 3 is not a node index in [0, 3)"),
                       hepgnn::error);
  const std::vector<index_t> ok{2, 0, 2};
  CHECK(hepgnn::graph::csr_position(3, ok) == std::vector<index_t>{1, 0, 2});
}

TEST_CASE("CSR offsets from in-degrees: more than 2^31 - 1 edges is an error before anything is sized") {
  // 40,000 nodes of in-degree 60,000 (a kNN with k = 60,000 or a dense radius graph): 2.4e9 edges.
  const std::vector<index_t> huge(40000, 60000);
  std::vector<index_t> offsets;
  CHECK_THROWS_WITH_AS(hepgnn::offsets_from_degrees(huge, offsets, "radius_graph", "lower r"),
                       doctest::Contains("radius_graph: 2400000000 edges exceed the 32-bit edge index of a graph "
                                         "(at most 2147483647); lower r"),
                       hepgnn::error);
  CHECK(offsets.empty());
  // the kNN graph conversion goes through it (its neighbour rows are never read before the check)
  hepgnn::neighbour_list<float> knn;
  knn.k = 60000;
  knn.counts = huge;
  hepgnn::graph g;
  CHECK_THROWS_WITH_AS(knn.to_graph(g), doctest::Contains("knn: 2400000000 edges exceed the 32-bit edge index"),
                       hepgnn::error);
  const std::vector<index_t> negative{1, -2};
  CHECK_THROWS_WITH_AS(hepgnn::offsets_from_degrees(negative, offsets, "builder", ""),
                       doctest::Contains("builder: node 1 has a negative in-degree -2"), hepgnn::error);
  const std::vector<index_t> degrees{2, 0, 3};
  hepgnn::offsets_from_degrees(degrees, offsets, "builder", "");
  CHECK(offsets == std::vector<index_t>{0, 2, 2, 5});
  const std::vector<index_t> at_limit{std::numeric_limits<index_t>::max() - 1, 1};
  hepgnn::offsets_from_degrees(at_limit, offsets, "builder", "");
  CHECK(offsets.back() == std::numeric_limits<index_t>::max());
}

}  // namespace hepgnn_test_graph_misc
