// edge_conv, dynamic_edge_conv and the segment reductions of aggregate.hpp: PyTorch Geometric reference outputs
// (tests/reference/edge_conv_reference.py), finite-difference gradients, thread-count independence, bad input.
#include "support/doctest.hpp"

#include <fstream>
#include <map>
#include <sstream>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/graph/knn.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "support/check_layer.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_edge_conv {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

/// Tensors of tests/data/edge_conv_reference.txt by name (float64 values).
const std::map<std::string, matrix<double>>& reference() {
  static const std::map<std::string, matrix<double>> ref = [] {
    std::map<std::string, matrix<double>> m;
    std::ifstream in(std::string(HEPGNN_SOURCE_DIR) + "/tests/data/edge_conv_reference.txt");
    REQUIRE_MESSAGE(in.good(), "missing tests/data/edge_conv_reference.txt (run tests/reference/edge_conv_reference.py)");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("tensor ", 0) != 0) continue;
      std::istringstream h(line.substr(7));
      std::string name;
      long r = 0, c = 0;
      h >> name >> r >> c;
      matrix<double> t(r, c);
      for (long i = 0; i < r * c; ++i) in >> t.data()[i];
      m[name] = t;
    }
    return m;
  }();
  return ref;
}
const matrix<double>& ref_t(const std::string& name) {
  auto it = reference().find(name);
  REQUIRE_MESSAGE(it != reference().end(), "reference tensor missing: " << name);
  return it->second;
}
template <class T>
matrix<T> ref_as(const std::string& name) { return ref_t(name).cast<T>(); }

graph reference_graph() {
  const auto& s = ref_t("src");
  const auto& d = ref_t("dst");
  std::vector<index_t> src(s.size()), dst(d.size());
  for (long e = 0; e < s.size(); ++e) src[e] = static_cast<index_t>(s(e, 0)), dst[e] = static_cast<index_t>(d(e, 0));
  return graph::from_edges(12, src, dst);
}

template <class T>
using net = sequential<T, dense<T>, relu<T>, dense<T>>;

template <class T>
net<T> reference_net() {
  rng gen(7);
  net<T> nn(dense<T>(gen, 6, 8), relu<T>(), dense<T>(gen, 8, 4));
  nn.template get<0>().weight() = ref_as<T>("nn.0.weight");
  nn.template get<0>().bias() = ref_as<T>("nn.0.bias");
  nn.template get<2>().weight() = ref_as<T>("nn.2.weight");
  nn.template get<2>().bias() = ref_as<T>("nn.2.bias");
  return nn;
}

/// max |a - b| / max(|b|, floor)
template <class A, class B>
double rel_diff(const A& a, const B& b, double floor = 1.0) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  double worst = 0;
  for (long i = 0; i < a.rows(); ++i)
    for (long j = 0; j < a.cols(); ++j)
      worst = std::max(worst, std::abs(double(a(i, j)) - double(b(i, j))) / std::max(floor, std::abs(double(b(i, j)))));
  return worst;
}

constexpr aggregation all_aggr[] = {aggregation::sum, aggregation::mean, aggregation::max};

template <class T>
void check_against_reference(double tol) {
  const graph g = reference_graph();
  const matrix<T> x = ref_as<T>("x");
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    edge_conv<T, net<T>> conv(reference_net<T>(), a);
    typename edge_conv<T, net<T>>::cache c;
    matrix<T> y, yi, dx;
    conv.forward(x, g, y, c);
    const std::string p = "edge_conv." + std::string(to_string(a));
    CHECK(rel_diff(y, ref_t(p + ".out")) < tol);
    conv.infer(x, g, yi, c);
    CHECK(rel_diff(yi, ref_t(p + ".out")) < tol);
    CHECK(yi.row(3).norm() == 0);  // node 3 has no incoming edge
    // Gradients of loss = sum(y * r) against torch autograd.
    zero_grad(conv);
    conv.forward(x, g, y, c);
    conv.backward(x, g, y, ref_as<T>("r"), c, &dx);
    CHECK(rel_diff(dx, ref_t(p + ".dx")) < tol);
    CHECK(rel_diff(conv.nn().template get<0>().weight_grad(), ref_t(p + ".d_nn.0.weight")) < tol);
    CHECK(rel_diff(conv.nn().template get<2>().bias_grad(), ref_t(p + ".d_nn.2.bias")) < tol);
  }
}

}  // namespace

TEST_CASE("edge_conv matches the PyTorch Geometric equations (float and double)") {
  check_against_reference<double>(1e-10);
  check_against_reference<float>(1e-5);
}

TEST_CASE("edge_conv parameter names follow PyG EdgeConv(nn=Sequential(...))") {
  edge_conv<double, net<double>> conv(reference_net<double>());
  std::vector<std::string> names;
  conv.for_each_param("conv.", [&](const std::string& n, parameter<double>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"conv.nn.0.weight", "conv.nn.0.bias", "conv.nn.2.weight", "conv.nn.2.bias"});
  CHECK(conv.aggr() == aggregation::max);  // PyG default
  static_assert(graph_layer<edge_conv<double, net<double>>>);
  static_assert(batch_layer<dynamic_edge_conv<double, net<double>>>);
}

namespace {
/// loss = sum(y * r) of a training forward; fills gradients (zeroed first) and dx.
template <class Conv>
double loss_and_grad(Conv& conv, const matrix<double>& x, const graph& g, const matrix<double>& r, matrix<double>* dx) {
  typename Conv::cache c;
  matrix<double> y;
  conv.forward(x, g, y, c);
  if (dx) {
    zero_grad(conv);
    conv.backward(x, g, y, r, c, dx);
  }
  return (y.array() * r.array()).sum();
}
}  // namespace

TEST_CASE("edge_conv gradients match finite differences for every aggregation (split and generic paths)") {
  const graph g = reference_graph();
  matrix<double> x = ref_t("x");
  const matrix<double> r = ref_t("r");
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    // Split path: sequential<dense, ...>.
    edge_conv<double, net<double>> conv(reference_net<double>(), a);
    hepgnn_test::check_layer(conv, g, x, {.dy = &r});

    // Generic path: a runtime mlp (no split), same weights: same outputs and correct gradients.
    rng gen(3);
    mlp<double> m(gen, {6, 8, 4});
    m.linear(0).weight() = ref_t("nn.0.weight");
    m.linear(0).bias() = ref_t("nn.0.bias");
    m.linear(1).weight() = ref_t("nn.2.weight");
    m.linear(1).bias() = ref_t("nn.2.bias");
    edge_conv<double, mlp<double>> generic(m, a);
    matrix<double> dx, dxg;
    const double l1 = loss_and_grad(conv, x, g, r, &dx);
    const double l2 = loss_and_grad(generic, x, g, r, &dxg);
    CHECK(std::abs(l1 - l2) < 1e-12 * std::max(1.0, std::abs(l1)));
    CHECK(rel_diff(dxg, dx) < 1e-12);
    hepgnn_test::check_layer(generic, g, x, {.dy = &r});
  }
}

TEST_CASE("edge_conv inference: tiles, threads and infer vs forward agree") {
  // A larger random kNN graph so the fused inference loop runs many tiles.
  rng gen(11);
  const index_t graphs = 40, nodes = 25;
  matrix<float> x(graphs * nodes, 5);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(gen.normal());
  const batch b = batch::uniform(graphs, nodes);
  const graph g = knn_graph(x, 6, b);
  using fnet = sequential<float, dense<float>, relu<float>, dense<float>, relu<float>>;
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    fnet nn(dense<float>(gen, 10, 16), relu<float>(), dense<float>(gen, 16, 12), relu<float>());
    edge_conv<float, fnet> whole(nn, a, 1 << 30), tiled(nn, a, 50);
    edge_conv<float, fnet>::cache c1, c2, c3;
    matrix<float> yf, y1, y2, y3;
    whole.forward(x, g, yf, c1);
    whole.infer(x, g, y1, c1);
    tiled.infer(x, g, y2, c2);
    CHECK(rel_diff(y1, yf) < 1e-5);
    CHECK(rel_diff(y2, yf) < 1e-5);
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    tiled.infer(x, g, y3, c3);
    omp_set_num_threads(2);
    matrix<float> y4;
    tiled.infer(x, g, y4, c3);
    omp_set_num_threads(saved);
    CHECK(y3 == y4);  // bit for bit
    CHECK(y3 == y2);
#endif
    // Tiled training (many tiles, chunked gradients) equals one tile; gradients do not depend on the threads.
    const matrix<float> dy = matrix<float>::Ones(x.rows(), 12);
    auto grads = [&](edge_conv<float, fnet>& conv, int threads, matrix<float>& dx) {
#ifdef _OPENMP
      const int saved_threads = omp_get_max_threads();
      omp_set_num_threads(threads);
#endif
      edge_conv<float, fnet>::cache c;
      matrix<float> y;
      zero_grad(conv);
      conv.forward(x, g, y, c);
      conv.backward(x, g, y, dy, c, &dx);
#ifdef _OPENMP
      omp_set_num_threads(saved_threads);
#endif
      std::vector<float> all;
      conv.for_each_param("", [&](const std::string&, parameter<float> p) { all.insert(all.end(), p.grad, p.grad + p.size()); });
      return all;
    };
    matrix<float> dx1, dx2, dx3;
    const auto g1 = grads(whole, 1, dx1), g2 = grads(tiled, 1, dx2), g3 = grads(tiled, 2, dx3);
    CHECK(g2 == g3);
    CHECK(dx2 == dx3);
    CHECK(rel_diff(dx2, dx1) < 1e-5);
    for (std::size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(g1[i]).epsilon(1e-4));
  }
}

namespace {
/// Fused inference (packed kernel) against the layer-by-layer tiles of a training forward, on a kNN graph plus
/// nodes without incoming edges.
template <class T, class Net>
void check_fused_against_layers(Net nn, int f, double tol) {
  rng gen(17);
  const index_t graphs = 6, nodes = 31;
  matrix<T> x(graphs * nodes + 3, f);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(gen.normal());
  const graph k = knn_graph(matrix<T>(x.topRows(graphs * nodes)), 7, batch::uniform(graphs, nodes));
  graph g = k;  // three trailing nodes receive nothing
  g.num_nodes += 3;
  for (int i = 0; i < 3; ++i) g.offsets.push_back(g.offsets.back());
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    edge_conv<T, Net> conv(nn, a, 64);
    typename edge_conv<T, Net>::cache c;
    matrix<T> yf, yi;
    conv.forward(x, g, yf, c);
    conv.infer(x, g, yi, c);
    CHECK(rel_diff(yi, yf) < tol);
    CHECK(yi.bottomRows(3).norm() == 0);
    // Inference keeps what the training forward left in the cache: backward after it is unchanged.
    const matrix<T> dy = matrix<T>::Ones(yf.rows(), yf.cols());
    matrix<T> dx1, dx2, y2;
    conv.backward(x, g, yf, dy, c, &dx1);
    typename edge_conv<T, Net>::cache c3;
    conv.forward(x, g, y2, c3);
    conv.backward(x, g, y2, dy, c3, &dx2);
    CHECK(dx1 == dx2);
    // The packed weights follow changes of any parameter between calls with the same cache.
    conv.for_each_param("", [&](const std::string& name, parameter<T> p) {
      CAPTURE(name);
      p.value[0] += T(0.5);
      matrix<T> again, fresh;
      typename edge_conv<T, Net>::cache c2;
      conv.infer(x, g, again, c);
      conv.infer(x, g, fresh, c2);
      CHECK(again == fresh);
      CHECK(again != yi);
      p.value[0] -= T(0.5);
    });
    // No edges at all.
    graph empty;
    empty.num_nodes = static_cast<index_t>(x.rows());
    empty.offsets.assign(x.rows() + 1, 0);
    conv.infer(x, empty, yi, c);
    CHECK(yi.rows() == x.rows());
    CHECK(yi.norm() == 0);
  }
}
}  // namespace

TEST_CASE("edge_conv fused inference equals the layer-by-layer path (widths, padding, ReLU placement)") {
  rng gen(23);
  {  // W5-like: three dense + ReLU, register-multiple widths (messages written in place)
    using F = float;
    using net3 = sequential<F, dense<F>, relu<F>, dense<F>, relu<F>, dense<F>, relu<F>>;
    check_fused_against_layers<F>(net3(dense<F>(gen, 14, 32), relu<F>(), dense<F>(gen, 32, 64), relu<F>(),
                                       dense<F>(gen, 64, 32), relu<F>()), 7, 1e-5);
    using D = double;  // odd widths: padded columns and a copied last layer
    using net3d = sequential<D, dense<D>, relu<D>, dense<D>, relu<D>, dense<D>, relu<D>>;
    check_fused_against_layers<D>(net3d(dense<D>(gen, 10, 24), relu<D>(), dense<D>(gen, 24, 19), relu<D>(),
                                        dense<D>(gen, 19, 13), relu<D>()), 5, 1e-12);
  }
  {  // one dense + ReLU: the gather is the whole net (padded 20 -> 32 columns)
    using net1 = sequential<float, dense<float>, relu<float>>;
    check_fused_against_layers<float>(net1(dense<float>(gen, 6, 20), relu<float>()), 3, 1e-5);
  }
  {  // no ReLU at all, narrow output (padding and copy)
    using net2 = sequential<double, dense<double>, dense<double>>;
    check_fused_against_layers<double>(net2(dense<double>(gen, 8, 16, false), dense<double>(gen, 16, 5)), 4, 1e-12);
  }
}

TEST_CASE("segment reductions: brute force, empty nodes and max routing") {
  rng gen(5);
  std::vector<index_t> src, dst;
  for (int e = 0; e < 200; ++e) {
    src.push_back(static_cast<index_t>(gen.below(30)));
    dst.push_back(static_cast<index_t>(gen.below(25)));  // nodes 25..29 receive nothing
  }
  const graph g = graph::from_edges(30, src, dst);
  matrix<double> m(g.num_edges(), 3);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = gen.normal();
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    matrix<double> y;
    std::vector<index_t> arg;
    segment_reduce(g, m, a, y, &arg);
    for (index_t i = 0; i < 30; ++i)
      for (int c = 0; c < 3; ++c) {
        double ref = a == aggregation::max ? -1e300 : 0;
        for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e)
          ref = a == aggregation::max ? std::max(ref, m(e, c)) : ref + m(e, c);
        if (g.degree(i) == 0) ref = 0;
        if (a == aggregation::mean && g.degree(i) > 0) ref /= g.degree(i);
        CHECK(y(i, c) == doctest::Approx(ref).epsilon(1e-12));
      }
    // Backward against finite differences of sum(y * w).
    matrix<double> w(30, 3), dm;
    for (long i = 0; i < w.size(); ++i) w.data()[i] = gen.normal();
    segment_reduce_backward(g, a, w, &arg, dm);
    auto loss = [&] {
      matrix<double> yy;
      segment_reduce(g, m, a, yy);
      return (yy.array() * w.array()).sum();
    };
    CHECK(check_input_gradient(m, dm, loss).max_error < 1e-6);
    // gather_reduce equals segment_reduce of gathered sources.
    matrix<double> xs(30, 3), ms, y1, y2;
    for (long i = 0; i < xs.size(); ++i) xs.data()[i] = gen.normal();
    gather_sources(g, xs, ms);
    segment_reduce(g, ms, a, y1);
    gather_reduce(g, xs, a, y2);
    CHECK(y1 == y2);
  }
}

TEST_CASE("dynamic_edge_conv: PyG DynamicEdgeConv reference, kNN oracle and gradients") {
  const matrix<double> x = ref_t("x");
  const batch b = batch::from_sizes({7, 5});
  // The in-layer kNN builder against a brute-force oracle: the 3 nearest of each node in its graph, self included.
  graph mine;
  knn_workspace<double> ws;
  build_knn_graph(x, b, 3, true, mine, ws);
  REQUIRE(mine.num_nodes == x.rows());
  for (index_t g = 0; g < b.num_graphs(); ++g)
    for (index_t i = b.begin(g); i < b.end(g); ++i) {
      std::vector<std::pair<double, index_t>> all;
      for (index_t j = b.begin(g); j < b.end(g); ++j) all.emplace_back((x.row(i) - x.row(j)).squaredNorm(), j);
      std::sort(all.begin(), all.end());
      std::vector<index_t> want, got(mine.incoming(i).begin(), mine.incoming(i).end());
      for (int r = 0; r < 3; ++r) want.push_back(all[r].second);
      std::sort(want.begin(), want.end());
      std::sort(got.begin(), got.end());
      CAPTURE(i);
      CHECK(got == want);
    }
  for (aggregation a : all_aggr) {
    CAPTURE(to_string(a));
    dynamic_edge_conv<double, net<double>> conv(reference_net<double>(), 3, a);
    dynamic_edge_conv<double, net<double>>::cache c;
    matrix<double> y;
    conv.forward(x, b, y, c);
    CHECK(rel_diff(y, ref_t("dynamic_edge_conv." + std::string(to_string(a)) + ".out")) < 1e-10);
    dynamic_edge_conv<float, net<float>> convf(reference_net<float>(), 3, a);
    dynamic_edge_conv<float, net<float>>::cache cf;
    matrix<float> yf;
    convf.infer(x.cast<float>(), b, yf, cf);
    CHECK(rel_diff(yf, ref_t("dynamic_edge_conv." + std::string(to_string(a)) + ".out")) < 1e-5);

    // Finite differences (random data: no kNN ties within the step).
    const matrix<double> r = ref_t("r");
    hepgnn_test::check_layer(conv, b, x, {.dy = &r});
  }
}

TEST_CASE("dynamic_edge_conv: small graphs and self exclusion") {
  matrix<double> x(4, 2);
  x << 0, 0, 1, 0, 0, 3, 10, 10;
  graph g;
  knn_workspace<double> ws;
  build_knn_graph(x, batch::from_sizes({3, 0, 1}), 5, false, g, ws);  // fewer candidates than k
  CHECK(g.offsets == std::vector<index_t>{0, 2, 4, 6, 6});
  CHECK(g.sources == std::vector<index_t>{1, 2, 0, 2, 0, 1});
  build_knn_graph(x, batch::from_sizes({3, 0, 1}), 2, true, g, ws);
  CHECK(g.sources == std::vector<index_t>{0, 1, 1, 0, 2, 0, 3});
}

TEST_CASE("edge_conv and dynamic_edge_conv reject bad input") {
  const graph g = reference_graph();
  edge_conv<double, net<double>> conv(reference_net<double>());
  edge_conv<double, net<double>>::cache c;
  matrix<double> y, dx;
  const matrix<double> x = ref_t("x");
  CHECK_THROWS_WITH_AS(conv.forward(matrix<double>::Zero(12, 4), g, y, c),
                       doctest::Contains("edge_conv: x must have 3 features"), error);
  CHECK_THROWS_WITH_AS(conv.infer(matrix<double>::Zero(11, 3), g, y, c),
                       doctest::Contains("edge_conv: x must have one row per graph node (12)"), error);
  graph other = g;  // a graph of another (bigger) batch: sources beyond this x
  other.sources[0] = 40;
  CHECK_THROWS_WITH_AS(conv.forward(x, other, y, c), doctest::Contains("out of range [0, 12)"), error);
  graph broken = g;
  broken.offsets.pop_back();
  CHECK_THROWS_WITH_AS(conv.forward(x, broken, y, c), doctest::Contains("offsets must have num_nodes + 1"), error);
  edge_conv<double, net<double>>::cache fresh;
  CHECK_THROWS_WITH_AS(conv.backward(x, g, y, y, fresh, &dx), doctest::Contains("edge_conv::backward"), error);
  conv.forward(x, g, y, c);
  CHECK_THROWS_WITH_AS(conv.backward(x, g, y, matrix<double>::Zero(12, 2), c, &dx),
                       doctest::Contains("dy must have the shape of y"), error);

  rng gen(1);
  edge_conv<double, mlp<double>> generic(mlp<double>(gen, {6, 4}));
  edge_conv<double, mlp<double>>::cache gc;
  CHECK_THROWS_WITH_AS(generic.infer(matrix<double>::Zero(12, 5), g, y, gc),
                       doctest::Contains("edge_conv: x must have 3 features (nn takes 2 x F = 6)"), error);

  dynamic_edge_conv<double, net<double>> dyn(reference_net<double>(), 3);
  dynamic_edge_conv<double, net<double>>::cache dc;
  CHECK_THROWS_WITH_AS(dyn.forward(x, batch::from_sizes({7, 6}), y, dc),
                       doctest::Contains("the batch covers 13 nodes but x has 12 rows"), error);
  matrix<double> bad = x;
  bad(2, 1) = std::nan("");
  CHECK_THROWS_WITH_AS(dyn.forward(bad, batch::from_sizes({7, 5}), y, dc), doctest::Contains("non-finite"), error);
  batch no_offsets;  // not even the leading 0
  no_offsets.node_offsets.clear();
  CHECK_THROWS_WITH_AS(dyn.forward(x, no_offsets, y, dc),
                       doctest::Contains("dynamic_edge_conv: batch node_offsets must start with 0"), error);
  CHECK_THROWS_WITH_AS(dyn.infer(x, no_offsets, y, dc),
                       doctest::Contains("dynamic_edge_conv: batch node_offsets must start with 0"), error);
  dyn.forward(x, batch::from_sizes({7, 5}), y, dc);
  CHECK_THROWS_WITH_AS(dyn.backward(x, no_offsets, y, y, dc, &dx),
                       doctest::Contains("dynamic_edge_conv::backward: batch node_offsets must start with 0"), error);
  CHECK_THROWS_WITH_AS((dynamic_edge_conv<double, net<double>>(reference_net<double>(), 0)),
                       doctest::Contains("k must be positive"), error);
  CHECK_THROWS_WITH_AS(segment_reduce(g, matrix<double>(matrix<double>::Zero(3, 2)), aggregation::sum, y),
                       doctest::Contains("one row per edge"), error);
}

TEST_CASE("edge_conv training gradients on a large graph are the same bits with 1 and 2 threads") {
  // 12000 nodes: large enough for threaded products. The split first layer's weight gradient sums over all nodes;
  // summed by Eigen's threaded product, its rounding followed the thread count.
#ifdef _OPENMP
  using bn_net = sequential<float, dense<float>, batch_norm<float>, relu<float>>;  // not row-local: untiled training
  rng gen(31);
  const batch b = batch::uniform(200, 60);
  matrix<float> x(b.num_nodes(), 4);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(gen.normal());
  const graph g = knn_graph(x, 8, b);
  edge_conv<float, bn_net> conv(bn_net(dense<float>(gen, 8, 16), batch_norm<float>(16), relu<float>()), aggregation::max);
  const matrix<float> dy = matrix<float>::Ones(x.rows(), 16);
  auto grads = [&](int threads, matrix<float>& dx) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    edge_conv<float, bn_net>::cache c;
    matrix<float> y;
    zero_grad(conv);
    conv.forward(x, g, y, c);
    conv.backward(x, g, y, dy, c, &dx);
    omp_set_num_threads(saved);
    std::vector<float> all;
    conv.for_each_param("", [&](const std::string&, parameter<float> p) { all.insert(all.end(), p.grad, p.grad + p.size()); });
    return all;
  };
  matrix<float> dx1, dx2;
  const auto g1 = grads(1, dx1), g2 = grads(2, dx2);
  CHECK(g1 == g2);
  CHECK(dx1 == dx2);
#endif
}

TEST_CASE("dynamic_edge_conv training is the same bits at 1, 2 and 3 threads") {
  // 8000 nodes: the kNN rebuild, the tiled edge network and the weight-gradient products all run threaded.
  rng gen(32);
  const batch b = batch::uniform(200, 40);
  matrix<float> x(b.num_nodes(), 6);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(gen.normal());
  REQUIRE(3 * x.rows() * 6 * 16 >= parallel_limits::gemm_min_flops);  // the split first layer's dW over nodes
  const matrix<float> dy = matrix<float>::Constant(x.rows(), 8, 0.5f);
  for (aggregation a : {aggregation::mean, aggregation::max}) {
    CAPTURE(to_string(a));
    using fnet = sequential<float, dense<float>, relu<float>, dense<float>>;
    dynamic_edge_conv<float, fnet> conv(fnet(dense<float>(gen, 12, 16), relu<float>(), dense<float>(gen, 16, 8)), 8, a);
    auto train = [&](int threads) {
      return hepgnn_test::at_threads(threads, [&] { return hepgnn_test::train_steps(conv, x, b, dy, 2); });
    };
    const auto one = train(1);
    hepgnn_test::check_same_training(one, train(2));
    hepgnn_test::check_same_training(one, train(3));
  }
}

}  // namespace hepgnn_test_edge_conv
