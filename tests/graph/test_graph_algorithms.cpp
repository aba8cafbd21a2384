// Generic pieces of the tracking pipeline: radix_argsort (core/radix_sort.hpp), orient_outward
// (graph/orientation.hpp), select_edges (graph/edge_selection.hpp), label_groups and compact_labels
// (graph/label_groups.hpp), disjoint_sets (graph/connected_components.hpp), hinge_embedding_loss
// (loss/embedding.hpp).
#include "support/doctest.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "hepgnn/core/radix_sort.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/edge_selection.hpp"
#include "hepgnn/graph/label_groups.hpp"
#include "hepgnn/graph/orientation.hpp"
#include "hepgnn/loss/embedding.hpp"

namespace hepgnn_test_graph_algorithms {  // this file's names, apart from the other files of its unity build

using hepgnn::graph;
using hepgnn::index_t;

namespace {
// a random graph with both directions of some pairs and self-loops, no directed edge twice (as a radius graph)
graph messy_graph(index_t n, int per_node, std::uint64_t seed) {
  hepgnn::rng gen(seed);
  std::set<std::pair<index_t, index_t>> edges;
  for (index_t i = 0; i < n; ++i)
    for (int k = 0; k < per_node; ++k) {
      const auto j = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(n)));
      edges.insert({j, i});
      if (k % 3 == 0) edges.insert({i, j});  // the same pair listed from the other end
    }
  std::vector<index_t> src, dst;
  for (const auto& [s, d] : edges) src.push_back(s), dst.push_back(d);
  return graph::from_edges(n, src, dst);
}
}  // namespace

TEST_CASE_TEMPLATE("radix_argsort orders as std::stable_sort", T, float, double) {
  hepgnn::rng gen(3);
  std::vector<T> keys(5000);
  for (auto& k : keys) k = static_cast<T>(gen.uniform(0, 10));
  for (std::size_t i = 100; i < 300; ++i) keys[i] = keys[i % 13];  // ties: lower index first
  keys[7] = 0, keys[8] = std::numeric_limits<T>::infinity(), keys[9] = std::numeric_limits<T>::denorm_min();
  std::vector<index_t> want(keys.size());
  std::iota(want.begin(), want.end(), 0);
  std::stable_sort(want.begin(), want.end(), [&](index_t a, index_t b) { return keys[a] < keys[b]; });
  CHECK(hepgnn::radix_argsort(std::span<const T>(keys)) == want);
  CHECK(hepgnn::radix_argsort(std::span<const T>()).empty());
  const std::vector<T> same(10, T(2));  // one digit value in every pass
  const auto order = hepgnn::radix_argsort(std::span<const T>(same));
  CHECK(std::is_sorted(order.begin(), order.end()));
}

TEST_CASE_TEMPLATE("orient_outward directs every pair once, from the smaller distance", T, float, double) {
  for (const auto& [n, per_node] : {std::pair<index_t, int>{50, 4}, {6000, 12}, {300, 200}}) {  // merge, threads, sort
    const graph g = messy_graph(n, per_node, 11 + static_cast<std::uint64_t>(n));
    hepgnn::rng gen(5);
    std::vector<T> d(static_cast<std::size_t>(n));
    for (auto& x : d) x = static_cast<T>(gen.below(50));  // many ties: broken by the index
    const graph o = hepgnn::orient_outward(g, std::span<const T>(d));
    CHECK_NOTHROW(o.validate());
    std::set<std::pair<index_t, index_t>> want, got;
    for (index_t i = 0; i < n; ++i)
      for (const index_t j : g.incoming(i))
        if (j != i) want.insert({std::min(i, j), std::max(i, j)});
    for (index_t i = 0; i < n; ++i) {
      const auto in = o.incoming(i);
      CHECK(std::is_sorted(in.begin(), in.end()));
      for (const index_t s : in) {
        CHECK((d[s] < d[i] || (d[s] == d[i] && s < i)));
        CHECK(got.insert({std::min(s, i), std::max(s, i)}).second);
      }
    }
    CHECK(got == want);
  }
  CHECK_THROWS_WITH_AS(hepgnn::orient_outward(messy_graph(5, 2, 1), std::span<const T>()),
                       doctest::Contains("distance must have one entry per node of the graph (5), got 0"), hepgnn::error);
}

TEST_CASE("select_edges keeps the edges at or above the cut in CSR order") {
  const std::vector<index_t> src{0, 1, 2, 0, 3}, dst{1, 2, 3, 3, 2};
  const graph g = graph::from_edges(4, src, dst);
  const std::vector<float> scores{0.5f, 0.1f, 0.9f, 0.5f, 0.2f};  // CSR order: by destination
  std::vector<index_t> kept;
  const graph s = hepgnn::select_edges(g, std::span<const float>(scores), 0.5f, &kept);
  CHECK_NOTHROW(s.validate());
  for (std::size_t k = 0; k < kept.size(); ++k) {
    CHECK(scores[kept[k]] >= 0.5f);
    CHECK(s.sources[k] == g.sources[kept[k]]);
  }
  CHECK(kept.size() == 3);
  CHECK(std::is_sorted(kept.begin(), kept.end()));
  CHECK_THROWS_WITH_AS(hepgnn::select_edges(g, std::span<const float>(scores).first(2), 0.5f),
                       doctest::Contains("scores must have one entry per edge (5), got 2"), hepgnn::error);
}

TEST_CASE("label_groups: members as spans, split, shrink; compact_labels") {
  const std::vector<index_t> labels{2, -1, 0, 2, 0, 2, -1, 4};
  hepgnn::label_groups groups(labels);
  REQUIRE(groups.count() == 5);
  const auto as_vector = [&](index_t t) { return std::vector<index_t>(groups[t].begin(), groups[t].end()); };
  CHECK(as_vector(0) == std::vector<index_t>{2, 4});
  CHECK(as_vector(1).empty());
  CHECK(as_vector(2) == std::vector<index_t>{0, 3, 5});
  CHECK(as_vector(4) == std::vector<index_t>{7});
  groups.split(2, 1);  // hits 3, 5 become group 5
  CHECK(groups.count() == 6);
  CHECK(as_vector(2) == std::vector<index_t>{0});
  CHECK(as_vector(5) == std::vector<index_t>{3, 5});
  groups.shrink(5, 1);
  CHECK(as_vector(5) == std::vector<index_t>{3});
  CHECK_THROWS_WITH_AS(hepgnn::label_groups(std::vector<index_t>{0, -2}, "who"),
                       doctest::Contains("who: labels must be group numbers >= 0 or -1 (none), got -2"), hepgnn::error);
  // groups below 2 members go; the others renumbered by first member
  CHECK(hepgnn::compact_labels(labels, 5, 2) == std::vector<index_t>{0, -1, 1, 0, 1, 0, -1, -1});
  CHECK(hepgnn::compact_labels(labels, 5, 1) == std::vector<index_t>{0, -1, 1, 0, 1, 0, -1, 2});
}

TEST_CASE("disjoint_sets: the lower root wins, labels by lowest member as connected_components") {
  hepgnn::disjoint_sets sets(6);
  sets.unite(4, 2);
  sets.unite(5, 4);
  sets.unite(3, 1);
  CHECK(sets.find(5) == 2);
  CHECK(sets.find(3) == 1);
  CHECK(sets.find(0) == 0);
  const auto c = sets.labels();
  CHECK(c.count == 3);
  CHECK(c.labels == std::vector<index_t>{0, 1, 2, 1, 2, 2});
  const graph g = messy_graph(400, 1, 9);
  hepgnn::disjoint_sets by_hand(g.num_nodes);
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (const index_t j : g.incoming(i)) by_hand.unite(j, i);
  const auto want = hepgnn::connected_components(g);
  const auto got = by_hand.labels();
  CHECK(got.count == want.count);
  CHECK(got.labels == want.labels);
}

TEST_CASE("hinge_embedding_loss: pulls positives, pushes negatives within the margin") {
  hepgnn::matrix<double> emb(3, 2);
  emb << 0, 0, 3, 4, 0.1, 0;
  const std::vector<index_t> a{0}, b{1}, c{2};
  CHECK(hepgnn::hinge_embedding_loss<double>(emb, {a, b}, {}, {.margin = 1.0, .negative_weight = 1.0}) == 25.0);
  hepgnn::matrix<double> grad;
  // the negative pair 0-2 is 0.1 apart: 2 * (1 - 0.01), its gradient pushes 0 and 2 apart
  CHECK(hepgnn::hinge_embedding_loss<double>(emb, {}, {a, c}, {.margin = 1.0, .negative_weight = 2.0}, &grad) == doctest::Approx(1.98));
  CHECK(grad(0, 0) > 0);
  CHECK(grad(2, 0) < 0);
  CHECK(hepgnn::hinge_embedding_loss<double>(emb, {}, {a, b}, {.margin = 1.0, .negative_weight = 1.0}) == 0.0);
  CHECK_THROWS_WITH_AS(hepgnn::hinge_embedding_loss<double>(emb, {a, std::span<const index_t>()}, {}, {.margin = 1.0, .negative_weight = 1.0}),
                       doctest::Contains("a pair list has 1 first and 0 second rows"), hepgnn::error);
  const std::vector<index_t> far{3};
  CHECK_THROWS_WITH_AS(hepgnn::hinge_embedding_loss<double>(emb, {a, far}, {}, {.margin = 1.0, .negative_weight = 1.0}),
                       doctest::Contains("pair 0 (0, 3) is out of range for 3 embedded rows"), hepgnn::error);
}

}  // namespace hepgnn_test_graph_algorithms
