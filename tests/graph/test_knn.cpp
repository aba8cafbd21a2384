// Exact kNN (graph/knn.hpp) and its SIMD kernels (simd/distance.hpp, simd/top_k.hpp) against brute-force oracles.
#include "support/doctest.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/knn.hpp"
#include "support/data.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_knn {  // this file's names, apart from the other files of its unity build

using hepgnn::batch;
using hepgnn::index_t;
using hepgnn::matrix;

namespace {

// Independent oracle: every candidate of i's graph, sorted by (distance, index), first k kept.
template <class Metric, class T>
std::vector<std::vector<index_t>> oracle(const matrix<T>& x, int k, const batch& b, bool include_self) {
  std::vector<std::vector<index_t>> out(static_cast<std::size_t>(x.rows()));
  const int d = static_cast<int>(x.cols());
  for (index_t g = 0; g < b.num_graphs(); ++g)
    for (index_t i = b.begin(g); i < b.end(g); ++i) {
      std::vector<std::pair<T, index_t>> c;
      for (index_t j = b.begin(g); j < b.end(g); ++j)
        if (include_self || j != i) c.emplace_back(Metric::squared(x.row(i).data(), x.row(j).data(), d), j);
      const int kk = std::min<int>(k, static_cast<int>(c.size()));
      std::partial_sort(c.begin(), c.begin() + kk, c.end());
      for (int r = 0; r < kk; ++r) out[i].push_back(c[r].second);
    }
  return out;
}

template <class Metric, class T>
void check_one(const matrix<T>& x, int k, const batch& b, const hepgnn::knn_options& opt,
               const std::vector<std::vector<index_t>>& ref) {
  const auto nl = hepgnn::knn<Metric>(x, k, b, opt);
  REQUIRE(nl.num_nodes() == x.rows());
  // The row width is k, or the most candidates any graph offers when that is fewer (k is clamped to the graph).
  index_t most = 1;
  for (index_t g = 0; g < b.num_graphs(); ++g) most = std::max(most, b.size(g) - (opt.include_self ? 0 : 1));
  REQUIRE(nl.k == std::min<index_t>(k, most));
  k = nl.k;
  int bad = 0;
  for (index_t i = 0; i < nl.num_nodes(); ++i) {
    const auto row = nl.of(i);
    const std::vector<index_t> got(row.begin(), row.end());
    if (got != ref[i] && bad++ < 3) {
      std::ostringstream s;
      s << "node " << i << ": got";
      for (auto v : got) s << ' ' << v;
      s << " want";
      for (auto v : ref[i]) s << ' ' << v;
      FAIL_CHECK(s.str());
    }
    for (int r = static_cast<int>(row.size()); r < k; ++r) CHECK(nl.indices[static_cast<std::size_t>(i) * k + r] == -1);
    // The SIMD kernels sum the d terms in their own order (lane width follows the instruction set): equal to the
    // scalar sum within d roundings.
    for (std::size_t r = 0; r < row.size(); ++r) {
      const T want = Metric::squared(x.row(i).data(), x.row(row[r]).data(), static_cast<int>(x.cols()));
      const T got = nl.distances[static_cast<std::size_t>(i) * k + r];
      CHECK(std::abs(got - want) <= static_cast<T>(x.cols()) * std::numeric_limits<T>::epsilon() * std::abs(want));
    }
  }
  CHECK(bad == 0);
}

// Runs every selection path on the same input: the default choice, one-by-one insertion only, ranking for every
// graph (small inputs), and the cell list forced on (d <= 3).
template <class Metric = hepgnn::metric::euclidean, class T>
void check_against_oracle(const matrix<T>& x, int k, const batch& b, hepgnn::knn_options opt = {}) {
  const auto ref = oracle<Metric>(x, k, b, opt.include_self);
  check_one<Metric>(x, k, b, opt, ref);
  auto insertion = opt;
  insertion.rank_max_points = 0;
  check_one<Metric>(x, k, b, insertion, ref);
  if (x.rows() <= 400) {
    auto ranked = opt;
    ranked.rank_max_points = 400;
    check_one<Metric>(x, k, b, ranked, ref);
  }
  auto grid = insertion;
  grid.grid_min_points = 1;
  check_one<Metric>(x, k, b, grid, ref);
}

template <class T>
matrix<T> uniform_cloud(index_t n, int d, std::uint64_t seed, double scale = 1) {
  hepgnn::rng r(seed);
  matrix<T> x(n, d);
  for (index_t i = 0; i < n; ++i)
    for (int c = 0; c < d; ++c) x(i, c) = static_cast<T>(scale * r.uniform());
  return x;
}

template <class T>
matrix<T> clustered_cloud(index_t n, int d, std::uint64_t seed) {
  hepgnn::rng r(seed);
  matrix<T> centres(5, d), x(n, d);
  for (int j = 0; j < 5; ++j)
    for (int c = 0; c < d; ++c) centres(j, c) = static_cast<T>(r.uniform(-10, 10));
  for (index_t i = 0; i < n; ++i) {
    const auto j = r.below(5);
    for (int c = 0; c < d; ++c) x(i, c) = static_cast<T>(centres(j, c) + 0.05 * r.normal());
  }
  return x;
}

template <class T>
matrix<T> lattice_cloud(index_t side, int d) {  // integer lattice: many exact ties
  index_t n = 1;
  for (int c = 0; c < d; ++c) n *= side;
  matrix<T> x(n, d);
  for (index_t i = 0; i < n; ++i) {
    index_t v = i;
    for (int c = 0; c < d; ++c, v /= side) x(i, c) = static_cast<T>(v % side);
  }
  return x;
}

template <class T>
matrix<T> duplicated_cloud(index_t n, int d, std::uint64_t seed) {  // each point repeated 1 to 4 times
  hepgnn::rng r(seed);
  matrix<T> x(n, d);
  for (index_t i = 0; i < n;) {
    const index_t reps = 1 + static_cast<index_t>(r.below(4));
    matrix<T> p(1, d);
    for (int c = 0; c < d; ++c) p(0, c) = static_cast<T>(r.uniform());
    for (index_t k = 0; k < reps && i < n; ++k, ++i) x.row(i) = p;
  }
  // shuffle rows so duplicates are not adjacent
  for (index_t i = n - 1; i > 0; --i) {
    const index_t j = static_cast<index_t>(r.below(static_cast<std::uint64_t>(i) + 1));
    x.row(i).swap(x.row(j));
  }
  return x;
}

hepgnn::knn_options grid_always() {
  hepgnn::knn_options o;
  o.grid_min_points = 1;
  return o;
}

}  // namespace

TEST_CASE_TEMPLATE("knn matches brute force on uniform, clustered, duplicated and lattice clouds", T, float, double) {
  for (int d : {1, 2, 3, 5, 16}) {
    CAPTURE(d);
    check_against_oracle(uniform_cloud<T>(300, d, 11 + d), 7, batch::single(300));
    check_against_oracle(clustered_cloud<T>(300, d, 12 + d), 16, batch::single(300));
    check_against_oracle(duplicated_cloud<T>(200, d, 13 + d), 5, batch::single(200));
    if (d <= 3) {
      // the cell-list path on the same clouds
      check_against_oracle(uniform_cloud<T>(300, d, 11 + d), 7, batch::single(300), grid_always());
      check_against_oracle(clustered_cloud<T>(300, d, 12 + d), 16, batch::single(300), grid_always());
      check_against_oracle(duplicated_cloud<T>(200, d, 13 + d), 5, batch::single(200), grid_always());
    }
  }
  for (int d : {1, 2, 3}) {
    const index_t side = d == 1 ? 50 : d == 2 ? 12 : 6;
    const auto x = lattice_cloud<T>(side, d);
    const auto b = batch::single(static_cast<index_t>(x.rows()));
    check_against_oracle(x, 6, b);
    check_against_oracle(x, 6, b, grid_always());
  }
}

TEST_CASE("knn cell list on large clouds (uniform, clustered, anisotropic) matches brute force") {
  using T = float;
  check_against_oracle(uniform_cloud<T>(3000, 3, 21), 16, batch::single(3000));
  check_against_oracle(clustered_cloud<T>(2500, 3, 22), 10, batch::single(2500));
  check_against_oracle(uniform_cloud<T>(2500, 2, 23, 1000.0), 8, batch::single(2500));
  matrix<T> line = uniform_cloud<T>(2100, 3, 24);
  line.col(1) *= 1e-4f;  // nearly one-dimensional
  line.col(2).setConstant(5.0f);
  check_against_oracle(line, 12, batch::single(2100));
  // all points identical: every distance ties, lower indices win
  matrix<T> same = matrix<T>::Constant(2100, 3, 0.25f);
  check_against_oracle(same, 9, batch::single(2100));
}

TEST_CASE_TEMPLATE("knn cell list stays exact when the density jumps between neighbouring queries", T, float, double) {
  // cell_grid::nearest() starts each query's box at the previous query's k-th distance: a tight cluster inside a
  // sparse background makes that guess far too large (leaving the cluster) or far too small (entering it)
  for (int d : {1, 2, 3}) {
    CAPTURE(d);
    matrix<T> x = uniform_cloud<T>(2400, d, 40 + d);
    hepgnn::rng r(50 + d);
    for (index_t i = 0; i < 800; ++i)
      for (int c = 0; c < d; ++c) x(i, c) = static_cast<T>(0.5 + 1e-4 * r.normal());
    check_against_oracle(x, 20, batch::single(2400), grid_always());
    check_against_oracle(x, 1, batch::single(2400), grid_always());
  }
}

TEST_CASE("knn respects graph boundaries, k >= size, empty and single-node graphs") {
  const auto x = uniform_cloud<double>(40, 3, 31);
  const auto b = batch::from_sizes({0, 1, 3, 0, 20, 16});
  check_against_oracle(x, 4, b);
  check_against_oracle(x, 50, b);  // k >= every graph size: all other nodes
  check_against_oracle(x, 4, b, grid_always());
  check_against_oracle(x, 50, b, grid_always());  // the cell list's box grows until it holds the whole graph
  const auto nl = hepgnn::knn(x, 4, b);
  CHECK(nl.counts[0] == 0);  // the single-node graph
  CHECK(nl.counts[1] == 2);  // a three-node graph
  for (index_t i = 4; i < 24; ++i)
    for (auto j : nl.of(i)) CHECK((j >= 4 && j < 24));

  matrix<double> empty(0, 3);
  const auto ne = hepgnn::knn(empty, 3);
  CHECK(ne.num_nodes() == 0);
  CHECK(ne.to_graph().num_edges() == 0);
}

TEST_CASE("knn include_self and strict policy") {
  const auto x = uniform_cloud<double>(30, 2, 41);
  hepgnn::knn_options self;
  self.include_self = true;
  check_against_oracle(x, 5, batch::single(30), self);
  const auto nl = hepgnn::knn(x, 5, self);
  for (index_t i = 0; i < 30; ++i) CHECK(nl.of(i)[0] == i);  // distinct points: self is nearest

  hepgnn::knn_options strict;
  strict.strict = true;
  CHECK_NOTHROW(hepgnn::knn(x, 29, strict));
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 30, strict), doctest::Contains("graph 0 has 30 nodes, too few for k = 30"),
                       hepgnn::error);
  strict.include_self = true;
  CHECK_NOTHROW(hepgnn::knn(x, 30, strict));
  CHECK(hepgnn::knn(x, 30).counts[0] == 29);  // default: fewer neighbours
}

TEST_CASE("knn CSR graph: edges j -> i, nearest first") {
  const auto x = uniform_cloud<float>(50, 3, 51);
  const auto nl = hepgnn::knn(x, 6);
  const auto g = nl.to_graph();
  g.validate();
  CHECK(g.num_edges() == 50 * 6);
  for (index_t i = 0; i < 50; ++i) {
    const auto in = g.incoming(i);
    REQUIRE(in.size() == 6);
    for (int r = 0; r < 6; ++r) CHECK(in[r] == nl.of(i)[r]);
  }
  const auto g2 = hepgnn::knn_graph(x, 6, batch::single(50));
  CHECK(g2.sources == g.sources);
  const auto dyn = hepgnn::dynamic_knn(x, 6, batch::single(50), true);
  for (index_t i = 0; i < 50; ++i) CHECK(dyn.of(i)[0] == i);
}

TEST_CASE("knn delta_r wraps phi") {
  using T = double;
  matrix<T> x(4, 2);
  x << 0.0, 3.1,   // near +pi
      0.0, -3.1,   // near -pi: 2 pi - 6.2 = 0.083 away from row 0
      0.0, 2.5,    // 0.6 from row 0
      0.5, 3.1;    // 0.5 from row 0
  const auto nl = hepgnn::knn<hepgnn::metric::delta_r>(x, 3);
  CHECK(nl.of(0)[0] == 1);
  CHECK(nl.of(0)[1] == 3);
  CHECK(nl.of(0)[2] == 2);
  const double dphi = 2 * std::numbers::pi - 6.2;
  CHECK(nl.distances[0] == doctest::Approx(dphi * dphi).epsilon(1e-12));
  CHECK(hepgnn::simd::wrap_phi(3.5) == doctest::Approx(3.5 - 2 * std::numbers::pi));
  CHECK(hepgnn::simd::wrap_phi(-3.5) == doctest::Approx(2 * std::numbers::pi - 3.5));
  CHECK(hepgnn::simd::wrap_phi(7.0) == doctest::Approx(7.0 - 2 * std::numbers::pi));
  CHECK(hepgnn::simd::wrap_phi(-std::numbers::pi) == doctest::Approx(-std::numbers::pi));

  // random (eta, phi) clouds spanning the seam, against the oracle (same rounding, independent selection)
  hepgnn::rng r(61);
  matrix<float> y(400, 2);
  for (index_t i = 0; i < 400; ++i) {
    y(i, 0) = static_cast<float>(r.uniform(-1, 1));
    y(i, 1) = static_cast<float>(r.uniform(-std::numbers::pi, std::numbers::pi));
  }
  check_against_oracle<hepgnn::metric::delta_r>(y, 8, batch::uniform(4, 100));
  // the oracle distance agrees with an independent double computation
  for (index_t i = 1; i < 400; ++i) {
    double dp = std::fmod(std::abs(double(y(i, 1)) - double(y(0, 1))), 2 * std::numbers::pi);
    dp = std::min(dp, 2 * std::numbers::pi - dp);
    const double de = double(y(i, 0)) - double(y(0, 0));
    CHECK(hepgnn::metric::delta_r::squared(y.row(0).data(), y.row(i).data(), 2) ==
          doctest::Approx(de * de + dp * dp).epsilon(1e-5));
  }
}

TEST_CASE("knn results are identical for 1 and 2 threads, and those of a plain loop") {
  const auto x = clustered_cloud<float>(6000, 3, 71);
  const auto y = uniform_cloud<float>(3000, 8, 72);
  const auto z = uniform_cloud<float>(2000, 16, 73);  // tiled filter path
  const batch jets = batch::uniform(30, 100);
  auto run = [&] { return std::tuple{hepgnn::knn(x, 16), hepgnn::knn(y, 9, jets), hepgnn::knn(z, 16)}; };
  const auto [a, c, e] = hepgnn_test::at_threads(1, run);
  const auto [b, d, f] = hepgnn_test::at_threads(2, run);
  CHECK(a.indices == b.indices);
  CHECK(a.distances == b.distances);
  CHECK(c.indices == d.indices);
  CHECK(e.indices == f.indices);
  CHECK(e.distances == f.distances);
  // A plain loop (sort every candidate) as the oracle: the comparison above holds trivially without OpenMP.
  check_one<hepgnn::metric::euclidean>(y, 9, jets, {}, oracle<hepgnn::metric::euclidean>(y, 9, jets, false));
  check_one<hepgnn::metric::euclidean>(z, 16, batch::single(2000), {},
                                       oracle<hepgnn::metric::euclidean>(z, 16, batch::single(2000), false));
}

// simd/distance.hpp fuses every multiply-add on both paths; where the target has no hardware FMA (baseline
// x86-64), xsimd's SIMD fma is a multiply and an add, so the two paths agree within d roundings instead.
#if defined(__FMA__) || defined(__AVX512F__) || defined(__aarch64__)
constexpr bool hardware_fma = true;
#else
constexpr bool hardware_fma = false;
#endif

template <class T>
bool same_rounding(T scalar, T simd, int d) {
  if (hardware_fma) return scalar == simd;
  return std::abs(scalar - simd) <= T(d + 4) * std::numeric_limits<T>::epsilon() * std::abs(scalar);
}

template <class T>
bool same_rounding(const std::vector<T>& scalar, const std::vector<T>& simd, int d) {
  if (scalar.size() != simd.size()) return false;
  for (std::size_t j = 0; j < scalar.size(); ++j)
    if (!same_rounding(scalar[j], simd[j], d)) return false;
  return true;
}

TEST_CASE_TEMPLATE("simd kernels are bit-identical to the scalar fallback (with hardware FMA)", T, float, double) {
  using hepgnn::simd::distance_kind;
  hepgnn::rng r(81);
  for (int d : {1, 2, 3, 7, 16, 33}) {
    for (int m : {0, 1, 5, 16, 37, 100}) {
      CAPTURE(d);
      CAPTURE(m);
      std::vector<T> a(d), block(static_cast<std::size_t>(m) * d);
      for (auto& v : a) v = static_cast<T>(r.uniform(-3, 3));
      for (auto& v : block) v = static_cast<T>(r.uniform(-3, 3));
      std::vector<T> s(m), v(m), aos(m);
      std::vector<T> soa(static_cast<std::size_t>(m) * d + 1);
      hepgnn::simd::transpose_to_soa(block.data(), m, d, soa.data(), m);
      hepgnn::simd::squared_distances_soa<hepgnn::simd::scalar>(a.data(), d, soa.data(), m, m, s.data());
      hepgnn::simd::squared_distances_soa(a.data(), d, soa.data(), m, m, v.data());
      hepgnn::simd::squared_distances(a.data(), d, block.data(), m, aos.data());
      CHECK(same_rounding(s, v, d));  // with hardware FMA: == on floats, bit-identical for these finite values
      CHECK(same_rounding(s, aos, d));
      for (int j = 0; j < m; ++j) {
        double ref = 0;
        for (int c = 0; c < d; ++c) ref += std::pow(double(a[c]) - double(block[j * d + c]), 2);
        CHECK(double(s[j]) == doctest::Approx(ref).epsilon(1e-5));
      }
      if (d == 2) {
        hepgnn::simd::distances_soa<distance_kind::delta_r, hepgnn::simd::scalar>(a.data(), 2, soa.data(), m, m, s.data());
        hepgnn::simd::distances_soa<distance_kind::delta_r>(a.data(), 2, soa.data(), m, m, v.data());
        CHECK(same_rounding(s, v, d));
      }
      // fused scan + top-k, scalar vs SIMD
      const int k = 4;
      std::vector<T> ds(k), dv(k);
      std::vector<index_t> is(k), iv(k);
      hepgnn::simd::top_k<T> ts(ds.data(), is.data(), k), tv(dv.data(), iv.data(), k);
      hepgnn::simd::scan_nearest<distance_kind::euclidean, hepgnn::simd::scalar>(a.data(), d, soa.data(), m, 0, m,
                                                                                nullptr, 2, ts);
      hepgnn::simd::scan_nearest(a.data(), d, soa.data(), m, 0, m, nullptr, 2, tv);
      CHECK(ts.size() == std::min(k, m > 2 ? m - 1 : m));
      CHECK(tv.size() == ts.size());
      for (int j = 0; j < ts.size(); ++j) {
        CHECK(is[j] == iv[j]);
        CHECK(same_rounding(ds[j], dv[j], d));
        CHECK(is[j] != 2);
      }
    }
  }
}

TEST_CASE("top_k keeps the k smallest (distance, index) pairs in order, ties to the lower index") {
  std::vector<float> d(3);
  std::vector<index_t> i(3);
  hepgnn::simd::top_k<float> t(d.data(), i.data(), 3, 2.0f);
  CHECK_FALSE(t.offer(2.5f, 0));  // above the limit
  CHECK(t.offer(1.0f, 9));
  CHECK(t.offer(1.0f, 4));
  CHECK(t.offer(2.0f, 1));  // limit is inclusive
  CHECK(t.threshold() == 2.0f);
  CHECK(t.offer(1.0f, 7));
  CHECK_FALSE(t.offer(1.0f, 10));  // ties the last entry with a higher index
  CHECK(i == std::vector<index_t>{4, 7, 9});
  CHECK(t.offer(1.0f, 8));
  CHECK(i == std::vector<index_t>{4, 7, 8});
}

// Brute-force top-k of query q over points [a, a + m) of x: (fused-difference distance, id), self skipped.
template <class T>
std::vector<std::pair<T, index_t>> brute_row(const matrix<T>& x, index_t q, index_t a, index_t m, int k, bool skip) {
  std::vector<std::pair<T, index_t>> c;
  for (index_t j = a; j < a + m; ++j)
    if (!skip || j != q)
      c.emplace_back(hepgnn::metric::euclidean::squared(x.row(q).data(), x.row(j).data(), int(x.cols())), j);
  std::sort(c.begin(), c.end());
  c.resize(std::min<std::size_t>(c.size(), static_cast<std::size_t>(k)));
  return c;
}

TEST_CASE_TEMPLATE("knn_tile: exact, and bit-identical for the scalar fallback (far clouds, ties, duplicates)", T, float,
                   double) {
  namespace simd = hepgnn::simd;
  struct input {
    matrix<T> x;
    int k;
  };
  std::vector<input> inputs;
  inputs.push_back({uniform_cloud<T>(203, 16, 91), 16});
  inputs.push_back({uniform_cloud<T>(150, 5, 92), 7});
  auto far = uniform_cloud<T>(180, 4, 93);
  far.array() += T(1e4);  // far from the origin: the filter works relative to the centre
  inputs.push_back({far, 9});
  inputs.push_back({duplicated_cloud<T>(130, 33, 94), 12});
  inputs.push_back({lattice_cloud<T>(6, 3), 10});                          // many exact ties
  inputs.push_back({matrix<T>::Constant(70, 3, T(0.5)), 20});              // all identical
  inputs.push_back({uniform_cloud<T>(9, 6, 95), 16});                      // k > candidates
  for (const auto& in : inputs) {
    const auto n = static_cast<index_t>(in.x.rows());
    const int d = static_cast<int>(in.x.cols()), k = in.k;
    CAPTURE(n);
    CAPTURE(d);
    hepgnn::knn_workspace<T> ws;
    ws.centred.resize(static_cast<std::size_t>(n + 64) * d);
    ws.bias.resize(static_cast<std::size_t>(n + 64));
    std::vector<T> centre(d);
    T max_norm = 0;
    const index_t stride = static_cast<index_t>(ws.bias.size());
    REQUIRE(hepgnn::detail::prepare_tile_segment(in.x.data(), d, 0, n, 0, stride, centre.data(), max_norm, ws));
    simd::tile_block<T> blk;
    blk.centred = ws.centred.data();
    blk.bias = ws.bias.data();
    blk.centre = centre.data();
    blk.stride = stride;
    blk.size = n;
    blk.padded = (n + simd::tile_step<T>() - 1) / simd::tile_step<T>() * simd::tile_step<T>();
    blk.margin = simd::tile_margin<T>(d);
    blk.max_norm = max_norm;
    constexpr int Q = simd::tile_queries;
    std::vector<T> qf(static_cast<std::size_t>(Q) * d), dv(Q * k), ds(Q * k);
    std::vector<index_t> iv(Q * k, -1), is(Q * k, -1);
    std::vector<simd::tile_candidates<T>> cand(Q);
    int bad = 0;
    for (const bool skip : {true, false})
      for (index_t q0 = 0; q0 < n; q0 += Q) {
        const int nq = static_cast<int>(std::min<index_t>(Q, n - q0));
        index_t qids[Q], cv[Q], cs[Q];
        for (int u = 0; u < Q; ++u) qids[u] = q0 + (u < nq ? u : 0);
        simd::knn_tile(in.x.data(), d, qids, nq, skip, blk, k, qf.data(), cand.data(), dv.data(), iv.data(), cv);
        simd::knn_tile<simd::scalar>(in.x.data(), d, qids, nq, skip, blk, k, qf.data(), cand.data(), ds.data(),
                                     is.data(), cs);
        for (int u = 0; u < nq; ++u) {
          const auto ref = brute_row(in.x, qids[u], 0, n, k, skip);
          bad += cv[u] != static_cast<index_t>(ref.size()) || cs[u] != cv[u];
          for (std::size_t r = 0; r < ref.size() && r < static_cast<std::size_t>(cv[u]); ++r) {
            const std::size_t at = static_cast<std::size_t>(u) * k + r;
            bad += iv[at] != ref[r].second || dv[at] != ref[r].first || is[at] != iv[at] || ds[at] != dv[at];
          }
        }
      }
    CHECK(bad == 0);
  }
}

TEST_CASE_TEMPLATE("select_k_by_rank and argmax_argmin: SIMD equals the scalar fallback and a sort", T, float, double) {
  namespace simd = hepgnn::simd;
  hepgnn::rng r(97);
  for (int m : {1, 2, 15, 16, 17, 31, 32, 64, 65, 100, 128}) {
    for (int k : {1, 5, 16, 40}) {
      for (const bool ties : {false, true}) {
        CAPTURE(m);
        CAPTURE(k);
        std::vector<T> dist(m);
        for (auto& v : dist) v = ties ? static_cast<T>(r.below(5)) : static_cast<T>(r.uniform());
        const int skip = m > 3 ? 3 : -1;
        std::vector<T> d1(k), d2(k);
        std::vector<index_t> i1(k), i2(k);
        const int c1 = simd::select_k_by_rank(dist.data(), m, 100, skip, k, d1.data(), i1.data());
        const int c2 = simd::select_k_by_rank<simd::scalar>(dist.data(), m, 100, skip, k, d2.data(), i2.data());
        std::vector<std::pair<T, index_t>> ref;
        for (int j = 0; j < m; ++j)
          if (j != skip) ref.emplace_back(dist[j], 100 + j);
        std::sort(ref.begin(), ref.end());
        REQUIRE(c1 == std::min<int>(k, static_cast<int>(ref.size())));
        REQUIRE(c2 == c1);
        for (int j = 0; j < c1; ++j) {
          CHECK(i1[j] == ref[j].second);
          CHECK(d1[j] == ref[j].first);
          CHECK(i2[j] == i1[j]);
          CHECK(d2[j] == d1[j]);
        }
      }
    }
    std::vector<T> v(m);
    for (auto& e : v) e = static_cast<T>(r.below(7));  // ties: the first occurrence wins
    const auto [hi, lo] = simd::argmax_argmin(v.data(), m);
    const auto [hs, ls] = simd::argmax_argmin<simd::scalar>(v.data(), m);
    CHECK(hi == std::max_element(v.begin(), v.end()) - v.begin());
    CHECK(lo == std::min_element(v.begin(), v.end()) - v.begin());
    CHECK(hs == hi);
    CHECK(ls == lo);
  }
}

TEST_CASE_TEMPLATE("smallest_distinct: SIMD ranks give a sort's first keys, also past the rank limit", K, std::uint64_t,
                   std::int32_t) {
  namespace simd = hepgnn::simd;
  hepgnn::rng r(31);
  for (int n : {0, 1, 2, 7, 8, 9, 15, 16, 17, 47, 96, 97, 200}) {
    std::vector<K> keys;
    while (static_cast<int>(keys.size()) < n) {  // distinct, spread over the whole range (large values included)
      const auto v = static_cast<K>(r.below(1u << 30)) * (std::is_same_v<K, std::uint64_t> ? K(1) << 33 : K(1)) +
                     static_cast<K>(keys.size());
      if (std::find(keys.begin(), keys.end(), v) == keys.end()) keys.push_back(v);
    }
    if (n > 2) keys[1] = std::numeric_limits<K>::max(), keys[2] = std::numeric_limits<K>::min();
    std::vector<K> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    for (int count : {0, 1, 5, 24, n / 2, n}) {
      if (count > n) continue;
      CAPTURE(n);
      CAPTURE(count);
      std::vector<K> got(static_cast<std::size_t>(count) + 1), scalar(static_cast<std::size_t>(count) + 1);
      simd::smallest_distinct(keys.data(), n, count, got.data());
      simd::smallest_distinct<simd::scalar>(keys.data(), n, count, scalar.data());
      CHECK(std::equal(sorted.begin(), sorted.begin() + count, got.begin()));
      CHECK(std::equal(sorted.begin(), sorted.begin() + count, scalar.begin()));
    }
  }
}

TEST_CASE("knn_into: strided rows and a reused workspace give knn()'s result") {
  const auto wide = uniform_cloud<float>(700, 10, 98);
  const batch b = batch::from_sizes({120, 0, 1, 579});
  hepgnn::knn_workspace<float> ws;
  hepgnn::neighbour_list<float> out;
  for (const int col0 : {0, 3}) {
    const matrix<float> cols = wide.middleCols(col0, 6);
    const auto ref = hepgnn::knn(cols, 8, b);
    for (int rep = 0; rep < 2; ++rep) {
      hepgnn::knn_into(wide.data() + col0, 700, 6, 10, 8, b, {}, out, ws);
      CHECK(out.indices == ref.indices);
      CHECK(out.distances == ref.distances);
      CHECK(out.counts == ref.counts);
    }
  }
  CHECK_THROWS_WITH_AS(hepgnn::knn_into(wide.data(), 700, 6, 5, 8, b, {}, out, ws),
                       doctest::Contains("row stride ld must be >= the number of coordinates"), hepgnn::error);
}

TEST_CASE("knn rejects bad input with messages naming the argument") {
  auto x = uniform_cloud<double>(10, 3, 91);
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 0), doctest::Contains("knn: k must be positive, got 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, -2), doctest::Contains("k must be positive"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 3, batch::from_sizes({4, 5})),
                       doctest::Contains("batch node_offsets cover 9 nodes but the points matrix has 10 rows"),
                       hepgnn::error);
  batch bad{{0, 6, 4, 10}};
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 3, bad), doctest::Contains("node_offsets must be non-decreasing"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::knn<hepgnn::metric::delta_r>(x, 3),
                       doctest::Contains("metric delta_r needs 2 coordinate columns (eta, phi), points have 3"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS((hepgnn::knn<hepgnn::metric::euclidean, 2>(x, 3)),
                       doctest::Contains("points have 3 columns but the compile-time dimension D is 2"), hepgnn::error);
  x(4, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 3), doctest::Contains("points must be finite, got nan at row 4, column 1"),
                       hepgnn::error);
  x(4, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(hepgnn::knn(x, 3), doctest::Contains("points must be finite"), hepgnn::error);
  // Finite coordinates whose squared distances overflow float: refused, not wrong neighbours.
  matrix<float> big = x.cast<float>();
  big(4, 1) = 1e19f;
  CHECK_THROWS_WITH_AS(hepgnn::knn(big, 3), doctest::Contains("so that squared distances stay finite"), hepgnn::error);
  big(4, 1) = 1e18f;  // within the bound: accepted
  CHECK(hepgnn::knn(big, 3).num_nodes() == big.rows());
}

TEST_CASE("knn in (eta, phi) on real FastJet jets matches brute force") {
  HEPGNN_REQUIRE_DATA(dir, "jets_fastjet_pythia");
  // Minimal .npy reader: little-endian float32, C order, shape (26, 30, 4) checked from the header text.
  std::ifstream in(dir / "jetnet30_particle_features.npy", std::ios::binary);
  REQUIRE(in);
  char magic[10];
  in.read(magic, 10);
  REQUIRE(std::string(magic, 6) == "\x93NUMPY");
  const int header_len = static_cast<unsigned char>(magic[8]) | (static_cast<unsigned char>(magic[9]) << 8);
  std::string header(static_cast<std::size_t>(header_len), '\0');
  in.read(header.data(), header_len);
  REQUIRE(header.find("'<f4'") != std::string::npos);
  REQUIRE(header.find("(26, 30, 4)") != std::string::npos);
  std::vector<float> v(26 * 30 * 4);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(v.size() * sizeof(float)));

  std::vector<index_t> sizes;
  std::vector<float> pts;
  for (int j = 0; j < 26; ++j) {
    index_t n = 0;
    for (int p = 0; p < 30; ++p) {
      const float* f = &v[(j * 30 + p) * 4];
      if (f[3] > 0.5f) {
        pts.push_back(f[0]);
        pts.push_back(f[1]);
        ++n;
      }
    }
    sizes.push_back(n);
  }
  const matrix<float> x = Eigen::Map<const matrix<float>>(pts.data(), static_cast<Eigen::Index>(pts.size() / 2), 2);
  const auto b = batch::from_sizes(sizes);
  CHECK(x.rows() > 100);
  check_against_oracle<hepgnn::metric::delta_r>(x, 7, b);
  check_against_oracle<hepgnn::metric::euclidean>(x, 16, b);
}

TEST_CASE("knn: k far beyond the graph sizes is clamped to the candidates, not allocated") {
  matrix<float> x(4, 2);
  x << 0, 0, 1, 0, 0, 2, 3, 3;
  const auto nl = hepgnn::knn(x, 100000000, batch::single(4));  // used to size 4 x 1e8 rows
  CHECK(nl.k == 3);
  for (index_t i = 0; i < 4; ++i) CHECK(nl.counts[i] == 3);
  CHECK(nl.of(0)[0] == 1);
  // The same neighbours as an exact k = 3 call.
  const auto exact = hepgnn::knn(x, 3, batch::single(4));
  CHECK(nl.indices == exact.indices);
  // Two graphs: the row width is the larger graph's candidates.
  const auto two = hepgnn::knn(x, 50, batch::from_sizes({1, 3}));
  CHECK(two.k == 2);
  CHECK(two.counts == std::vector<index_t>{0, 2, 2, 2});
}

}  // namespace hepgnn_test_knn
