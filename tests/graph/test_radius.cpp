// Radius graph (graph/radius.hpp) against a brute-force oracle.
#include "support/doctest.hpp"

#include <limits>

#include <algorithm>
#include <numbers>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "support/count_allocations.hpp"

#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/radius.hpp"

namespace hepgnn_test_radius {  // this file's names, apart from the other files of its unity build

using hepgnn::batch;
using hepgnn::index_t;
using hepgnn::matrix;

namespace {

template <class Metric, class T>
std::vector<std::vector<index_t>> oracle(const matrix<T>& x, T r, const batch& b, index_t cap, bool self) {
  std::vector<std::vector<index_t>> out(static_cast<std::size_t>(x.rows()));
  for (index_t g = 0; g < b.num_graphs(); ++g)
    for (index_t i = b.begin(g); i < b.end(g); ++i) {
      std::vector<std::pair<T, index_t>> c;
      for (index_t j = b.begin(g); j < b.end(g); ++j) {
        const T d2 = Metric::squared(x.row(i).data(), x.row(j).data(), static_cast<int>(x.cols()));
        if ((self || j != i) && d2 <= r * r) c.emplace_back(d2, j);
      }
      std::sort(c.begin(), c.end());
      if (cap > 0 && static_cast<index_t>(c.size()) > cap) c.resize(static_cast<std::size_t>(cap));
      for (auto& p : c) out[i].push_back(p.second);
    }
  return out;
}

template <class Metric = hepgnn::metric::euclidean, class T>
void check(const matrix<T>& x, T r, const batch& b, hepgnn::radius_options opt = {}) {
  const auto g = hepgnn::radius_graph<Metric>(x, r, b, opt);
  g.validate();
  const auto ref = oracle<Metric>(x, r, b, opt.max_neighbors, opt.include_self);
  int bad = 0;
  for (index_t i = 0; i < g.num_nodes; ++i) {
    const auto in = g.incoming(i);
    if (std::vector<index_t>(in.begin(), in.end()) != ref[i]) ++bad;
  }
  CHECK(bad == 0);
  hepgnn::radius_options grid = opt;
  grid.grid_min_points = 1;
  const auto gg = hepgnn::radius_graph<Metric>(x, r, b, grid);
  CHECK(gg.offsets == g.offsets);
  CHECK(gg.sources == g.sources);
}

template <class T>
matrix<T> cloud(index_t n, int d, std::uint64_t seed, bool clustered) {
  hepgnn::rng rg(seed);
  matrix<T> x(n, d);
  for (index_t i = 0; i < n; ++i) {
    const double centre = clustered ? static_cast<double>(rg.below(4)) : 0.0;
    for (int c = 0; c < d; ++c) x(i, c) = static_cast<T>(clustered ? centre + 0.1 * rg.normal() : rg.uniform());
  }
  return x;
}

}  // namespace

TEST_CASE_TEMPLATE("radius_graph matches brute force, with and without a cap", T, float, double) {
  for (int d : {1, 2, 3, 6}) {
    CAPTURE(d);
    for (bool clustered : {false, true}) {
      const auto x = cloud<T>(400, d, 100 + d, clustered);
      const auto b = batch::from_sizes({150, 0, 1, 249});
      check(x, T(0.2), b);
      hepgnn::radius_options capped;
      capped.max_neighbors = 5;
      check(x, T(0.3), b, capped);
      capped.include_self = true;
      check(x, T(0.3), b, capped);
    }
  }
  // lattice: distances exactly equal to r count (inclusive), ties in the cap go to lower indices
  matrix<T> lat(100, 2);
  for (index_t i = 0; i < 100; ++i) lat.row(i) << T(i % 10), T(i / 10);
  hepgnn::radius_options cap3;
  cap3.max_neighbors = 3;
  check(lat, T(1), batch::single(100));
  check(lat, T(1), batch::single(100), cap3);
  const auto g = hepgnn::radius_graph(lat, T(1));
  CHECK(g.degree(0) == 2);
  CHECK(g.degree(55) == 4);
}

TEST_CASE("radius_graph keeps the closest neighbours, nearest first") {
  matrix<double> x(5, 1);
  x << 0.0, 0.9, 0.1, 0.5, 0.3;
  hepgnn::radius_options opt;
  opt.max_neighbors = 2;
  const auto g = hepgnn::radius_graph(x, 1.0, opt);
  const auto in = g.incoming(0);
  REQUIRE(in.size() == 2);
  CHECK(in[0] == 2);
  CHECK(in[1] == 4);
  CHECK(hepgnn::radius_graph(x, 0.0).num_edges() == 0);
}

TEST_CASE("radius_graph large cloud (cell list), delta_r and thread-count independence") {
  const auto x = cloud<float>(8000, 3, 7, true);
  const auto b = batch::single(8000);
  hepgnn::radius_options opt;
  opt.max_neighbors = 16;
  check(x, 0.05f, b, opt);
  // as in the tracking pipeline: hundreds of points within r, so the cap decides (cell_grid::nearest() grows its
  // box from the previous query's k-th distance, never to r)
  hepgnn::radius_options dense;
  dense.max_neighbors = 32;
  check(cloud<float>(3000, 3, 8, false), 0.3f, batch::single(3000), dense);
#ifdef _OPENMP
  omp_set_num_threads(1);
  const auto a = hepgnn::radius_graph(x, 0.05f, b);
  omp_set_num_threads(2);
  const auto c = hepgnn::radius_graph(x, 0.05f, b);
  CHECK(a.sources == c.sources);
#endif
  hepgnn::rng r(9);
  matrix<double> ep(300, 2);
  for (index_t i = 0; i < 300; ++i) ep.row(i) << r.uniform(-1, 1), r.uniform(-std::numbers::pi, std::numbers::pi);
  check<hepgnn::metric::delta_r>(ep, 0.4, batch::uniform(3, 100));
  matrix<double> seam(2, 2);
  seam << 0.0, 3.1, 0.0, -3.1;
  CHECK(hepgnn::radius_graph<hepgnn::metric::delta_r>(seam, 0.1).num_edges() == 2);
}

TEST_CASE("radius_graph_into equals radius_graph as sizes change and reuses its storage once warm") {
  hepgnn::radius_workspace<float> ws;
  hepgnn::graph out;
  for (const index_t n : {700, 150, 3000, 700}) {  // shrinking then growing must not leave stale entries
    CAPTURE(n);
    const auto wide = cloud<float>(n, 5, static_cast<std::uint64_t>(n), true);
    const matrix<float> x = wide.leftCols(3);
    const auto b = batch::from_sizes({n / 3, 0, n - n / 3});
    for (const index_t cap : {0, 6}) {
      CAPTURE(cap);
      hepgnn::radius_options opt;
      opt.max_neighbors = cap;
      opt.grid_min_points = 1000;  // the 3000-point case takes the cell list
      const auto ref = hepgnn::radius_graph(x, 0.05f, b, opt);
      hepgnn::radius_graph_into(wide.data(), n, 3, 5, 0.05f, b, opt, out, ws);  // rows strided by 5
      CHECK(out.num_nodes == ref.num_nodes);
      CHECK(out.offsets == ref.offsets);
      CHECK(out.sources == ref.sources);
    }
  }
  if (!hepgnn_test::count_allocations_enabled) {
    MESSAGE("skipped: malloc is replaced by the sanitizer in this build");
    return;
  }
  const auto x = cloud<double>(900, 3, 4, true);
  const auto b = batch::from_sizes({500, 400});  // below grid_min_points: the scan path
  for (const index_t cap : {0, 8}) {
    CAPTURE(cap);
    hepgnn::radius_options opt;
    opt.max_neighbors = cap;
    hepgnn::radius_workspace<double> w;
    hepgnn::graph g;
    hepgnn::radius_graph_into(x.data(), 900, 3, 3, 0.1, b, opt, g, w);
    const long before = hepgnn_test::allocation_count.load();
    for (int rep = 0; rep < 5; ++rep) hepgnn::radius_graph_into(x.data(), 900, 3, 3, 0.1, b, opt, g, w);
    // before the workspace: n x cap slots, or a list per node, on every call
    CHECK(hepgnn_test::allocation_count.load() - before == 0);
    CHECK(g.num_edges() > 900);
  }
}

TEST_CASE("radius_graph rejects bad input") {
  const auto x = cloud<double>(10, 3, 1, false);
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph(x, -0.1), doctest::Contains("radius_graph: r must be finite and >= 0, got -0.1"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph(x, std::numeric_limits<double>::infinity()),
                       doctest::Contains("r must be finite"), hepgnn::error);
  hepgnn::radius_options opt;
  opt.max_neighbors = -1;
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph(x, 0.5, opt), doctest::Contains("max_neighbors must be >= 0"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph(x, 0.5, batch::uniform(2, 4)),
                       doctest::Contains("radius_graph: batch node_offsets cover 8 nodes but the points matrix has 10"),
                       hepgnn::error);
  auto y = x;
  y(2, 2) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph(y, 0.5), doctest::Contains("radius_graph: points must be finite"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph<hepgnn::metric::delta_r>(x, 0.5),
                       doctest::Contains("needs 2 coordinate columns"), hepgnn::error);
  hepgnn::radius_workspace<double> ws;
  hepgnn::graph out;
  CHECK_THROWS_WITH_AS(hepgnn::radius_graph_into(x.data(), 10, 3, 2, 0.5, batch::single(10), {}, out, ws),
                       doctest::Contains("radius_graph: row stride ld must be >= the number of coordinates d = 3"),
                       hepgnn::error);
  matrix<double> empty(0, 2), one(1, 2);
  one << 0.5, 0.5;
  CHECK(hepgnn::radius_graph(empty, 1.0).num_nodes == 0);
  CHECK(hepgnn::radius_graph(one, 1.0).num_edges() == 0);
}

TEST_CASE("radius_graph: a cap far beyond the graph sizes is clamped, same graph as no cap") {
  hepgnn::rng g(4);
  matrix<float> x(10, 3);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(g.uniform(0, 1));
  const batch b = batch::from_sizes({6, 4});
  const auto capped = hepgnn::radius_graph(x, 0.8f, b, {.max_neighbors = 1000000000});  // used to ask for 40 GB
  const auto plain = hepgnn::radius_graph(x, 0.8f, b, {.max_neighbors = 10});
  CHECK(capped.offsets == plain.offsets);
  CHECK(capped.sources == plain.sources);
  CHECK(capped.num_edges() > 0);
}

}  // namespace hepgnn_test_radius
