// GATv2 attention (gatv2_conv) and the segment softmax it shares with attention_pool: the softmax and its VJP
// against plain loops (empty segments included), finite-difference gradients (double; 1 and 3 heads, concat and
// mean, shared weights, no self loops, no bias), PyTorch reference outputs and gradients
// (tests/reference/gatv2_reference.py), the layer as an element of a graph_sequential chain, bad input, identical
// bits for 1 and 2 threads, and inference without allocation.
#include "support/doctest.hpp"

#include "support/count_allocations.hpp"
#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"

#include <cmath>
#include <span>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/gatv2_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/simd/segment_softmax.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test_gatv2 {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using doctest::Contains;
using gnn_ref::rel_diff;

namespace {

/// A graph of n nodes with `e` random edges, one self loop, one duplicate edge and a node (n - 1) without
/// incoming edges.
graph random_graph(rng& gen, index_t n, index_t e) {
  std::vector<index_t> src{2, 4, 4}, dst{2, 1, 1};
  for (index_t k = 0; k < e; ++k) {
    src.push_back(static_cast<index_t>(gen.uniform() * n));
    dst.push_back(static_cast<index_t>(gen.uniform() * (n - 1)));
  }
  return graph::from_edges(n, src, dst);
}

/// Sets the thread count for its lifetime (no-op without OpenMP).
struct threads {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  explicit threads(int n) { omp_set_num_threads(n); }
  ~threads() { omp_set_num_threads(saved); }
#else
  explicit threads(int) {}
#endif
};

template <class T>
matrix<T> random_matrix(rng& gen, long r, long c) {
  matrix<T> m(r, c);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = T(gen.normal());
  return m;
}

}  // namespace

TEST_CASE("segment softmax and its VJP match plain loops, empty segments included, in place too") {
  rng gen(3);
  const std::vector<index_t> off{0, 3, 3, 4, 9, 9, 15};  // segments of 3, 0, 1, 5, 0 and 6 rows
  const long rows = off.back(), h = 3;
  matrix<double> s = random_matrix<double>(gen, rows, h) * 4.0, alpha, dalpha = random_matrix<double>(gen, rows, h);
  s(5, 1) = 800;  // exp(800) overflows: the max subtraction keeps the softmax finite
  simd::segment_softmax(std::span<const index_t>(off), s, alpha);
  matrix<double> dscore;
  simd::segment_softmax_backward(std::span<const index_t>(off), alpha, dalpha, dscore);
  for (std::size_t g = 0; g + 1 < off.size(); ++g)
    for (long k = 0; k < h; ++k) {
      double mx = -INFINITY, sum = 0, dot = 0;
      for (index_t r = off[g]; r < off[g + 1]; ++r) mx = std::max(mx, s(r, k));
      for (index_t r = off[g]; r < off[g + 1]; ++r) sum += std::exp(s(r, k) - mx);
      for (index_t r = off[g]; r < off[g + 1]; ++r) dot += std::exp(s(r, k) - mx) / sum * dalpha(r, k);
      for (index_t r = off[g]; r < off[g + 1]; ++r) {
        const double a = std::exp(s(r, k) - mx) / sum;
        CHECK(alpha(r, k) == doctest::Approx(a).epsilon(1e-14));
        // Jacobian of the softmax: d alpha_q / d s_r = alpha_q (delta_qr - alpha_r)
        double ds = 0;
        for (index_t q = off[g]; q < off[g + 1]; ++q) {
          const double aq = std::exp(s(q, k) - mx) / sum;
          ds += dalpha(q, k) * aq * ((q == r) - a);
        }
        CHECK(dscore(r, k) == doctest::Approx(ds).epsilon(1e-12));
      }
    }
  CHECK(alpha.allFinite());
  // In place (alpha written over the scores, dscore over dalpha): the same bits.
  matrix<double> s2 = s, d2 = dalpha;
  simd::segment_softmax(std::span<const index_t>(off), s2, s2);
  CHECK(s2 == alpha);
  simd::segment_softmax_backward(std::span<const index_t>(off), alpha, d2, d2);
  CHECK(d2 == dscore);
  // One segment by hand with the per-segment kernel and row strides (columns 1..2 of a 4-column block).
  matrix<double> wide = random_matrix<double>(gen, 5, 4), out = matrix<double>::Zero(5, 4);
  simd::softmax_segment<double>(1, 4, 2, wide.data() + 1, 4, out.data() + 1, 4);
  CHECK(out.row(0).isZero());  // rows outside [1, 4) untouched
  CHECK(out.row(4).isZero());
  CHECK(out.col(0).isZero());
  CHECK(out.col(3).isZero());
  CHECK(out.block(1, 1, 3, 2).colwise().sum().isApproxToConstant(1.0, 1e-15));
  CHECK_THROWS_WITH_AS(simd::segment_softmax(std::span<const index_t>(off).first(3), s, alpha),
                       Contains("segment_softmax: segment offsets must run from 0 to the row count 15"), error);
}

namespace {

template <int H, bool Concat>
void check_gradients(typename gatv2_conv<double, 5, 4, H, Concat>::options o, std::uint64_t seed) {
  rng gen(seed);
  gatv2_conv<double, 5, 4, H, Concat> layer(gen, o);
  // Non-zero output bias and a spread of scores, so every path carries gradient.
  for (long k = 0; k < layer.bias().size(); ++k) layer.bias().data()[k] = 0.1 * gen.normal();
  layer.att() *= 2.0;
  const graph g = random_graph(gen, 8, 18);
  matrix<double> x = random_matrix<double>(gen, 8, 5);
  const matrix<double> w = random_matrix<double>(gen, 8, layer.out_features());
  hepgnn_test::check_layer(layer, g, x, {.dy = &w});
}

}  // namespace

TEST_CASE("gatv2_conv: gradients match finite differences (double; heads 1 and 3, concat and mean)") {
  using o1c = gatv2_conv<double, 5, 4, 1, true>::options;
  using o3c = gatv2_conv<double, 5, 4, 3, true>::options;
  using o1m = gatv2_conv<double, 5, 4, 1, false>::options;
  using o3m = gatv2_conv<double, 5, 4, 3, false>::options;
  SUBCASE("heads 1, concat") { check_gradients<1, true>(o1c{}, 1); }
  SUBCASE("heads 3, concat") { check_gradients<3, true>(o3c{}, 2); }
  SUBCASE("heads 1, mean") { check_gradients<1, false>(o1m{}, 3); }
  SUBCASE("heads 3, mean") { check_gradients<3, false>(o3m{}, 4); }
  SUBCASE("heads 3, concat, shared weights") { check_gradients<3, true>(o3c{.share_weights = true}, 5); }
  SUBCASE("heads 3, mean, no self loops") {
    check_gradients<3, false>(o3m{.negative_slope = 0.05, .add_self_loops = false}, 6);
  }
  SUBCASE("heads 1, concat, no bias, shared") {
    check_gradients<1, true>(o1c{.share_weights = true, .bias = false}, 7);
  }
}

namespace {

template <int H, bool Concat>
void check_reference(const std::string& name) {
  CAPTURE(name);
  const auto ref = gnn_ref::load_file("tests/data/gatv2_" + name + ".txt");
  const auto& opt = gnn_ref::at(ref, "options");  // heads, concat, share, loops, slope, bias, channels
  REQUIRE(int(opt(0, 0)) == H);
  REQUIRE(bool(opt(0, 1)) == Concat);
  using layer_t = gatv2_conv<double, 5, 4, H, Concat>;
  typename layer_t::options o;
  o.share_weights = opt(0, 2) != 0;
  o.add_self_loops = opt(0, 3) != 0;
  o.negative_slope = opt(0, 4);
  o.bias = opt(0, 5) != 0;
  rng gen(1);
  layer_t layer(gen, o);
  gnn_ref::set_params(layer, ref);
  const auto x = gnn_ref::at(ref, "x");
  const graph g = graph::from_edges(static_cast<index_t>(x.rows()), gnn_ref::ints(gnn_ref::at(ref, "src")),
                                    gnn_ref::ints(gnn_ref::at(ref, "dst")));
  gnn_ref::check_against_reference(layer, g, ref, 1e-12);
  gatv2_conv<float, 5, 4, H, Concat> single(gen, {.negative_slope = o.negative_slope,
                                                  .add_self_loops = o.add_self_loops,
                                                  .share_weights = o.share_weights,
                                                  .bias = o.bias});
  gnn_ref::set_params(single, ref);
  gnn_ref::check_float_against_reference(single, g, ref, 2e-6);
}

}  // namespace

TEST_CASE("gatv2_conv matches PyTorch GATv2 (tests/reference/gatv2_reference.py)") {
  check_reference<1, true>("h1_concat");
  check_reference<3, true>("h3_concat");
  check_reference<3, false>("h3_mean");
  check_reference<2, true>("h2_shared_no_loops");
  check_reference<2, false>("h2_mean_no_bias");
}

TEST_CASE("gatv2_conv: a graph's own self loops are replaced by one per node; parameter names are PyG's") {
  rng gen(8);
  gatv2_conv<double, 5, 4, 2> layer(gen);
  const matrix<double> x = random_matrix<double>(gen, 4, 5);
  const std::vector<index_t> src{1, 0, 2, 3, 1}, dst{0, 1, 1, 2, 3};
  std::vector<index_t> src2 = src, dst2 = dst;
  src2.insert(src2.end(), {1, 3, 1});  // self loops of nodes 1 (twice) and 3
  dst2.insert(dst2.end(), {1, 3, 1});
  matrix<double> y1, y2;
  decltype(layer)::cache c;
  layer.infer(x, graph::from_edges(4, src, dst), y1, c);
  layer.infer(x, graph::from_edges(4, src2, dst2), y2, c);
  CHECK(y1 == y2);
  std::vector<std::string> names;
  std::vector<std::vector<std::int64_t>> shapes;
  layer.for_each_param("conv.", [&](const std::string& n, parameter<double> p) {
    names.push_back(n);
    shapes.push_back(p.shape);
  });
  CHECK(names == std::vector<std::string>{"conv.att", "conv.bias", "conv.lin_l.weight", "conv.lin_l.bias",
                                          "conv.lin_r.weight", "conv.lin_r.bias"});
  CHECK(shapes == std::vector<std::vector<std::int64_t>>{{1, 2, 4}, {8}, {8, 5}, {8}, {8, 5}, {8}});
  static_assert(graph_layer<gatv2_conv<float, 5, 4, 2>>);
  static_assert(gatv2_conv<float, 5, 4, 3, true>::out_width == 12 && gatv2_conv<float, 5, 4, 3, false>::out_width == 4);
  static_assert(gatv2_conv<float>::out_width == dynamic);
}

namespace {
using conv_t = gatv2_conv<double, 3, 4, 2>;
using chain_t = graph_sequential<double, 3, knn_builder<4>, conv_t, global_pool_layer<double>, dense<double, 8, 2>>;
}  // namespace

TEST_CASE("gatv2_conv as an element of a graph_sequential chain equals its elements called by hand") {
  rng gen(12);
  chain_t model{knn_builder<4>(), conv_t(gen), global_pool_layer<double>(aggregation::mean), dense<double, 8, 2>(gen)};
  const batch b = batch::from_sizes({7, 3, 9});
  matrix<double> x = random_matrix<double>(gen, b.num_nodes(), 3);

  graph g;
  knn_workspace<double> ws;
  build_knn_graph(x, b, 4, false, g, ws);
  conv_t::cache cc;
  matrix<double> h, pooled, want;
  model.get<1>().forward(x, g, h, cc);
  global_pool(h, b, aggregation::mean, pooled);
  no_cache nc;
  model.get<3>().forward(pooled, want, nc);

  chain_t::cache c;
  matrix<double> y, yi;
  model.forward(x, b, y, c);
  CHECK(y == want);
  model.infer(x, b, yi, c);
  CHECK(yi == want);

  // Backward through the chain equals the elements' backward passes chained by hand, and finite differences.
  const matrix<double> r = random_matrix<double>(gen, 3, 2);
  model.forward(x, b, y, c);
  zero_grad(model);
  matrix<double> dx;
  model.backward(x, b, y, r, c, &dx);
  std::vector<double> chain_grads;
  model.for_each_param("", [&](const std::string&, parameter<double> p) {
    chain_grads.insert(chain_grads.end(), p.grad, p.grad + p.size());
  });
  zero_grad(model);
  matrix<double> dpooled, dh, dx_hand;
  model.get<3>().backward(pooled, want, r, nc, &dpooled);
  global_pool_backward(b, aggregation::mean, dpooled, nullptr, dh);
  model.get<1>().backward(x, g, h, dh, cc, &dx_hand);
  std::vector<double> hand_grads;
  model.for_each_param("", [&](const std::string&, parameter<double> p) {
    hand_grads.insert(hand_grads.end(), p.grad, p.grad + p.size());
  });
  CHECK(dx == dx_hand);
  CHECK(chain_grads == hand_grads);
  std::vector<std::string> names;
  model.for_each_param("", [&](const std::string& n, parameter<double>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"1.att", "1.bias", "1.lin_l.weight", "1.lin_l.bias", "1.lin_r.weight",
                                          "1.lin_r.bias", "3.weight", "3.bias"});
  auto loss = [&] {
    matrix<double> out;
    model.infer(x, b, out, c);
    return (out.array() * r.array()).sum();
  };
  // Steps of 1e-6 in x keep the kNN graph (distinct distances), as the gradient assumes.
  const auto rx = check_input_gradient(x, dx, loss);
  CHECK_MESSAGE(rx.max_error < 1e-6, rx.worst);
  const auto rp = check_parameter_gradients(model, loss, [&] {
    matrix<double> out, d;
    model.forward(x, b, out, c);
    zero_grad(model);
    model.backward(x, b, out, r, c, &d);
  });
  CHECK_MESSAGE(rp.max_error < 1e-6, rp.worst);
}

TEST_CASE("gatv2_conv rejects bad input with messages that name the argument") {
  rng gen(2);
  gatv2_conv<float, 5, 4, 3> layer(gen);
  decltype(layer)::cache c;
  matrix<float> y, dx;
  const graph g = random_graph(gen, 6, 10);
  const matrix<float> x = random_matrix<float>(gen, 6, 5);
  CHECK_THROWS_WITH_AS(layer.infer(random_matrix<float>(gen, 6, 4), g, y, c),
                       Contains("gatv2_conv: x must have 5 features (in_channels), got 6 x 4"), error);
  CHECK_THROWS_WITH_AS(layer.forward(random_matrix<float>(gen, 5, 5), g, y, c),
                       Contains("gatv2_conv: x must have one row per graph node (6), got 5 x 5"), error);
  graph bad = g;
  bad.sources[0] = 9;
  CHECK_THROWS_WITH_AS(layer.infer(x, bad, y, c), Contains("gatv2_conv: graph: sources[0] = 9 is out of range"), error);
  layer.forward(x, g, y, c);
  CHECK_THROWS_WITH_AS(layer.backward(x, g, y, matrix<float>::Zero(6, 4), c, &dx),
                       Contains("gatv2_conv::backward: output gradient dy: expected shape 6 x 12"), error);
  decltype(layer)::cache fresh;
  CHECK_THROWS_WITH_AS(layer.backward(x, g, y, y, fresh, &dx), Contains("gatv2_conv::backward: call forward"), error);
  CHECK_THROWS_WITH_AS((gatv2_conv<float, 5, 4>(gen, {.in_channels = 6})), Contains("contradict the compile-time"),
                       error);
  CHECK_THROWS_WITH_AS((gatv2_conv<float>(gen)), Contains("gatv2_conv: in_channels and out_channels must be positive"),
                       error);
}

TEST_CASE("gatv2_conv: 1 and 2 threads give identical bits (forward, inference, backward)") {
  rng gen(21);
  using layer_t = gatv2_conv<float, 6, 8, 3, false>;  // the head mean path
  layer_t layer(gen);
  const index_t n = 3000;
  std::vector<index_t> src, dst;
  for (index_t i = 0; i < n; ++i)
    for (int k = 0; k < 6; ++k) {
      src.push_back(static_cast<index_t>(gen.uniform() * n));
      dst.push_back(i);
    }
  const graph g = graph::from_edges(n, src, dst);  // 21000 edges with the loops, x 24 columns: past the threshold
  const matrix<float> x = random_matrix<float>(gen, n, 6), dy = random_matrix<float>(gen, n, 8);
  auto run = [&](int t, matrix<float>& y, matrix<float>& yi, matrix<float>& dx, std::vector<float>& grads) {
    threads scope(t);
    layer_t::cache c;
    layer.infer(x, g, yi, c);
    layer.forward(x, g, y, c);
    zero_grad(layer);
    layer.backward(x, g, y, dy, c, &dx);
    grads.clear();
    layer.for_each_param("", [&](const std::string&, parameter<float> p) {
      grads.insert(grads.end(), p.grad, p.grad + p.size());
    });
  };
  matrix<float> y1, yi1, dx1, y2, yi2, dx2;
  std::vector<float> g1, g2;
  run(1, y1, yi1, dx1, g1);
  run(2, y2, yi2, dx2, g2);
  CHECK(y1 == y2);
  CHECK(yi1 == yi2);
  CHECK(yi1 == y1);
  CHECK(dx1 == dx2);
  CHECK(g1 == g2);
}

TEST_CASE("gatv2_conv infers without allocating once the cache has seen the shapes") {
  if (!hepgnn_test::count_allocations_enabled) {
    MESSAGE("skipped: malloc is replaced by the sanitizer in this build");
    return;
  }
  rng gen(4);
  gatv2_conv<float, 5, 4, 3, false> layer(gen);
  const graph g = random_graph(gen, 40, 200);
  const matrix<float> x = random_matrix<float>(gen, 40, 5);
  decltype(layer)::cache c;
  matrix<float> y;
  layer.infer(x, g, y, c);
  const long before = hepgnn_test::allocation_count.load();
  for (int i = 0; i < 10; ++i) layer.infer(x, g, y, c);
  CHECK(hepgnn_test::allocation_count.load() - before == 0);
}

}  // namespace hepgnn_test_gatv2
