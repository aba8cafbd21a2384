// graph_sequential: a jet tagger written flat (kNN -> EdgeConv -> kNN -> EdgeConv -> pool -> dense) against the same
// elements called by hand, its gradients against finite differences (double), its names and weight files, the
// skips (concat_skip, residual_skip, carry_columns, concat_branches, repeated), a caller-given graph, const inference
// from two threads, bad input.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"

#include <filesystem>
#include <thread>

#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/columns.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/repeated.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/nn/skips.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test_graph_sequential {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

template <class T>
using net1 = sequential<T, dense<T, 6, 8>, relu<T>, dense<T, 8, 8>, relu<T>>;
template <class T>
using net2 = sequential<T, dense<T, 16, 5>, relu<T>>;

/// The jet tagger, small: kNN in (eta, phi) = columns 0 and 2 of 3 features, EdgeConv, kNN in the learned
/// space, EdgeConv, mean pool per jet, dense head.
template <class T>
using tagger = graph_sequential<T, 3,
                                knn_builder<4, metric::delta_r, 0, 2>,
                                edge_conv<T, net1<T>>,
                                knn_builder<3>,
                                edge_conv<T, net2<T>>,
                                global_pool_layer<T>,
                                dense<T, 5, 2>>;

template <class T>
tagger<T> make_tagger(rng& g, aggregation a = aggregation::mean) {
  return tagger<T>(knn_builder<4, metric::delta_r, 0, 2>(), edge_conv<T, net1<T>>(net1<T>(dense<T, 6, 8>(g), relu<T>(), dense<T, 8, 8>(g), relu<T>()), a),
                   knn_builder<3>(), edge_conv<T, net2<T>>(net2<T>(dense<T, 16, 5>(g), relu<T>()), a),
                   global_pool_layer<T>(aggregation::mean), dense<T, 5, 2>(g));
}

template <class T>
matrix<T> random_matrix(rng& g, long r, long c) {
  matrix<T> m(r, c);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = T(g.normal());
  return m;
}

}  // namespace

TEST_CASE("graph_sequential: a flat jet tagger equals its elements called by hand, in training and inference") {
  rng g(7);
  auto model = make_tagger<float>(g, aggregation::max);
  const batch b = batch::from_sizes({9, 6, 11});
  const matrix<float> x = random_matrix<float>(g, b.num_nodes(), 3);

  // By hand, with the same element objects.
  graph g1, g2;
  knn_workspace<float> ws;
  build_knn_graph<metric::delta_r>(x, b, 4, false, g1, ws, 0, 2);
  matrix<float> h1, h2, pooled, want;
  typename edge_conv<float, net1<float>>::cache c1;
  typename edge_conv<float, net2<float>>::cache c2;
  model.get<1>().infer(x, g1, h1, c1);
  build_knn_graph(h1, b, 3, false, g2, ws);
  model.get<3>().infer(h1, g2, h2, c2);
  global_pool(h2, b, aggregation::mean, pooled);
  no_cache nc;
  model.get<5>().infer(pooled, want, nc);

  decltype(model)::cache c;
  matrix<float> y;
  model.infer(x, b, y, c);
  REQUIRE(y.rows() == 3);
  REQUIRE(y.cols() == 2);
  CHECK(y == want);
  CHECK(decltype(model)::output<1>(c) == h1);  // the first EdgeConv's node features

  // Training forward: the edge convolutions' training path (a different summation order from the fused inference).
  model.get<1>().forward(x, g1, h1, c1);
  build_knn_graph(h1, b, 3, false, g2, ws);
  model.get<3>().forward(h1, g2, h2, c2);
  global_pool(h2, b, aggregation::mean, pooled);
  model.get<5>().forward(pooled, want, nc);
  matrix<float> yt;
  model.forward(x, b, yt, c);
  CHECK(yt == want);
}

TEST_CASE("graph_sequential: backward matches finite differences (double; max and mean aggregation)") {
  for (aggregation a : {aggregation::mean, aggregation::max}) {
    const std::string aggr(to_string(a));
    CAPTURE(aggr);
    rng g(11);
    auto model = make_tagger<double>(g, a);
    const batch b = batch::from_sizes({7, 5});
    matrix<double> x = random_matrix<double>(g, b.num_nodes(), 3);
    const matrix<double> r = random_matrix<double>(g, 2, 2);
    decltype(model)::cache c;
    auto loss = [&](matrix<double>* dx) {
      matrix<double> y;
      model.forward(x, b, y, c);
      if (dx) {
        zero_grad(model);
        model.backward(x, b, y, r, c, dx);
      }
      return (y.array() * r.array()).sum();
    };
    matrix<double> dx;
    loss(&dx);
    // Central differences move x by 1e-6: the kNN graphs stay the same (distinct distances), as the gradient assumes.
    const auto rx = check_input_gradient(x, dx, [&] { return loss(nullptr); });
    CHECK_MESSAGE(rx.max_error < 1e-6, rx.worst);
    const auto rp = check_parameter_gradients(model, [&] { return loss(nullptr); }, [&] { loss(&dx); });
    CHECK_MESSAGE(rp.max_error < 1e-6, rp.worst);
  }
}

TEST_CASE("graph_sequential: parameter names count every element as torch.nn.Sequential does; weight files round-trip") {
  rng g(3);
  auto model = make_tagger<float>(g);
  std::vector<std::string> names;
  model.for_each_param("", [&](const std::string& n, parameter<float>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"1.nn.0.weight", "1.nn.0.bias", "1.nn.2.weight", "1.nn.2.bias",
                                          "3.nn.0.weight", "3.nn.0.bias", "5.weight", "5.bias"});
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_graph_sequential.safetensors";
  save_weights(model, path);
  rng other(99);
  auto loaded = make_tagger<float>(other);
  load_weights(loaded, path);
  std::filesystem::remove(path);
  const batch b = batch::uniform(2, 8);
  const matrix<float> x = random_matrix<float>(g, 16, 3);
  matrix<float> y1, y2;
  decltype(model)::cache c1, c2;
  model.infer(x, b, y1, c1);
  loaded.infer(x, b, y2, c2);
  CHECK(y1 == y2);
}

TEST_CASE("graph_sequential: concat_skip, residual_skip and repeated (values and finite differences)") {
  using T = double;
  using conv = edge_conv<T, sequential<T, dense<T>, relu<T>>>;
  using block = concat_skip<knn_builder<>, conv>;                  // x <- [EdgeConv(kNN(x)), x]
  using res = residual_skip<knn_builder<>, conv, dense<T>>;        // x <- x + dense(EdgeConv(kNN(x)))
  using chain = graph_sequential<T, dynamic, repeated<block>, res, global_pool_layer<T>, dense<T>>;
  rng g(5);
  auto make_conv = [&](int in, int out) { return conv(sequential<T, dense<T>, relu<T>>(dense<T>(g, 2 * in, out), relu<T>()), aggregation::mean); };
  std::vector<block> blocks;
  blocks.emplace_back(knn_builder<>(3, 0, 2), make_conv(3, 4));  // 3 -> 7, kNN on the first two columns
  blocks.emplace_back(knn_builder<>(3), make_conv(7, 5));        // 7 -> 12
  chain model(repeated<block>(std::move(blocks)), res(knn_builder<>(2), make_conv(12, 6), dense<T>(g, 6, 12)),
              global_pool_layer<T>(aggregation::max), dense<T>(g, 12, 2));
  const batch b = batch::from_sizes({6, 5});
  matrix<T> x = random_matrix<T>(g, 11, 3);
  chain::cache c;
  matrix<T> y;
  model.infer(x, b, y, c);
  REQUIRE(y.rows() == 2);
  REQUIRE(y.cols() == 2);

  // The concatenation puts the block output first: block 0 keeps x in its last three columns.
  const auto& rep = model.get<0>();
  matrix<T> h;
  typename repeated<block>::cache rc;
  rep.infer(x, chain_context{&b, nullptr}, h, rc);
  CHECK(h.cols() == 12);
  CHECK(h.rightCols(3) == x);
  CHECK(rc.out[0].rightCols(3) == x);

  std::vector<std::string> names;
  model.for_each_param("", [&](const std::string& n, parameter<T>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"0.0.1.nn.0.weight", "0.0.1.nn.0.bias", "0.1.1.nn.0.weight",
                                          "0.1.1.nn.0.bias", "1.1.nn.0.weight", "1.1.nn.0.bias", "1.2.weight",
                                          "1.2.bias", "3.weight", "3.bias"});

  const matrix<T> r = random_matrix<T>(g, 2, 2);
  auto loss = [&](matrix<T>* dx) {
    matrix<T> out;
    model.forward(x, b, out, c);
    if (dx) {
      zero_grad(model);
      model.backward(x, b, out, r, c, dx);
    }
    return (out.array() * r.array()).sum();
  };
  matrix<T> dx;
  loss(&dx);
  const auto rx = check_input_gradient(x, dx, [&] { return loss(nullptr); });
  CHECK_MESSAGE(rx.max_error < 1e-6, rx.worst);
  const auto rp = check_parameter_gradients(model, [&] { return loss(nullptr); }, [&] { loss(&dx); });
  CHECK_MESSAGE(rp.max_error < 1e-6, rp.worst);
}

TEST_CASE("graph_sequential: add_branches (EdgeConv + linear shortcut) and columns, values and finite differences") {
  using T = double;
  using conv = edge_conv<T, sequential<T, dense<T, 6, 4>, relu<T>>>;
  using block = add_branches<conv, dense<T, 3, 4>>;  // EdgeConv(x) + shortcut(x), ParticleNet's block
  using chain = graph_sequential<T, 5, knn_builder<3, metric::euclidean, 0, 2>, columns<T, 2, 3>, block, relu<T>,
                                 global_pool_layer<T>, dense<T, 4, 2>>;
  rng g(13);
  chain model(knn_builder<3, metric::euclidean, 0, 2>(), columns<T, 2, 3>(),
              block(conv(sequential<T, dense<T, 6, 4>, relu<T>>(dense<T, 6, 4>(g), relu<T>()), aggregation::mean),
                    dense<T, 3, 4>(g)),
              relu<T>(), global_pool_layer<T>(aggregation::mean), dense<T, 4, 2>(g));
  const batch b = batch::from_sizes({7, 6});
  matrix<T> x = random_matrix<T>(g, 13, 5);
  chain::cache c;
  matrix<T> y;
  model.infer(x, b, y, c);
  // By hand: the graph on columns 0-1, the block on columns 2-4.
  graph gr;
  knn_workspace<T> ws;
  build_knn_graph(x, b, 3, false, gr, ws, 0, 2);
  const matrix<T> feats = x.rightCols(3);
  matrix<T> h, sc, pooled, want;
  typename conv::cache cc;
  no_cache nc;
  model.get<2>().get<0>().infer(feats, gr, h, cc);
  model.get<2>().get<1>().infer(feats, sc, nc);
  const matrix<T> summed = ((h + sc).array().max(T(0))).matrix();
  global_pool(summed, b, aggregation::mean, pooled);
  model.get<5>().infer(pooled, want, nc);
  CHECK(y.isApprox(want, 1e-14));
  std::vector<std::string> names;
  model.for_each_param("", [&](const std::string& n, parameter<T>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"2.0.nn.0.weight", "2.0.nn.0.bias", "2.1.weight", "2.1.bias", "5.weight",
                                          "5.bias"});

  const matrix<T> r = random_matrix<T>(g, 2, 2);
  auto loss = [&](matrix<T>* dx) {
    matrix<T> out;
    model.forward(x, b, out, c);
    if (dx) {
      zero_grad(model);
      model.backward(x, b, out, r, c, dx);
    }
    return (out.array() * r.array()).sum();
  };
  matrix<T> dx;
  loss(&dx);
  CHECK(dx.leftCols(2).isZero());  // the coordinates only choose the graph: no gradient flows through them
  const auto rx = check_input_gradient(x, dx, [&] { return loss(nullptr); });
  CHECK_MESSAGE(rx.max_error < 1e-6, rx.worst);
  const auto rp = check_parameter_gradients(model, [&] { return loss(nullptr); }, [&] { loss(&dx); });
  CHECK_MESSAGE(rp.max_error < 1e-6, rp.worst);
}

TEST_CASE("graph_sequential: concat_branches, carry_columns and repeated without copies, values and finite differences") {
  using T = double;
  using conv = edge_conv<T, sequential<T, dense<T, 6, 4>, relu<T>>>;
  // [x, F(x)] where F = EdgeConv on a kNN graph of columns 2-4 with column 0 of x carried over its first output
  // column; no repeated blocks; pool; dense
  using carry = carry_columns<knn_builder<3, metric::euclidean, 2>, columns<T, 2, 3>, conv>;
  using both = concat_branches<columns<T, 0, 5>, carry>;
  using chain = graph_sequential<T, 5, both, repeated<residual_skip<dense<T, 9, 9>>>, global_pool_layer<T>,
                                 dense<T, 9, 2>>;
  static_assert(carry::out_width == 4 && both::out_width == 9 && chain::out_width == 2);
  rng g(17);
  chain model(both(columns<T, 0, 5>(),
                   carry(0, 1, knn_builder<3, metric::euclidean, 2>(), columns<T, 2, 3>(),
                         conv(sequential<T, dense<T, 6, 4>, relu<T>>(dense<T, 6, 4>(g), relu<T>()), aggregation::mean))),
              repeated<residual_skip<dense<T, 9, 9>>>(), global_pool_layer<T>(aggregation::sum), dense<T, 9, 2>(g));
  const batch b = batch::from_sizes({6, 7});
  matrix<T> x = random_matrix<T>(g, 13, 5);
  chain::cache c;
  matrix<T> y;
  model.infer(x, b, y, c);
  // By hand
  graph gr;
  knn_workspace<T> ws;
  build_knn_graph(x, b, 3, false, gr, ws, 2);
  const matrix<T> rest = x.rightCols(3);
  matrix<T> h, pooled, want;
  typename conv::cache cc;
  no_cache nc;
  model.get<0>().get<1>().inner().get<2>().infer(rest, gr, h, cc);
  h.col(0) = x.col(0);
  matrix<T> joined(13, 9);
  joined << x, h;
  CHECK(chain::output<0>(c) == joined);
  CHECK(chain::output<1>(c) == joined);  // no copies: the identity
  global_pool(joined, b, aggregation::sum, pooled);
  model.get<3>().infer(pooled, want, nc);
  CHECK(y.isApprox(want, 1e-14));
  std::vector<std::string> names;
  model.for_each_param("", [&](const std::string& n, parameter<T>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"0.1.2.nn.0.weight", "0.1.2.nn.0.bias", "3.weight", "3.bias"});

  const matrix<T> r = random_matrix<T>(g, 2, 2);
  auto loss = [&](matrix<T>* dx) {
    matrix<T> out;
    model.forward(x, b, out, c);
    if (dx) {
      zero_grad(model);
      model.backward(x, b, out, r, c, dx);
    }
    return (out.array() * r.array()).sum();
  };
  matrix<T> dx;
  loss(&dx);
  const auto rx = check_input_gradient(x, dx, [&] { return loss(nullptr); });
  CHECK_MESSAGE(rx.max_error < 1e-6, rx.worst);
  const auto rp = check_parameter_gradients(model, [&] { return loss(nullptr); }, [&] { loss(&dx); });
  CHECK_MESSAGE(rp.max_error < 1e-6, rp.worst);
  // the carried column's gradient reaches column 0 of x; the EdgeConv's first output takes none
  carry& cr = model.get<0>().get<1>();
  typename carry::cache crc;
  chain_context ctx{&b, nullptr};
  matrix<T> z, dz = matrix<T>::Zero(13, 4), dxc;
  cr.forward(x, ctx, z, crc);
  dz.col(0).setOnes();
  zero_grad(model);
  cr.backward(x, ctx, z, dz, crc, &dxc);
  CHECK(dxc.col(0) == matrix<T>::Ones(13, 1));
  CHECK(dxc.rightCols(4).isZero());
  model.for_each_param("", [&](const std::string&, parameter<T> p) {
    for (long i = 0; i < p.size(); ++i) CHECK(p.grad[i] == 0.0);
  });
  // bad input
  CHECK_THROWS_WITH_AS(carry(-1, 1, knn_builder<3, metric::euclidean, 2>(), columns<T, 2, 3>(), cr.inner().get<2>()),
                       doctest::Contains("from and count must be >= 0"), error);
  carry wide(4, 2, knn_builder<3, metric::euclidean, 2>(), columns<T, 2, 3>(), cr.inner().get<2>());
  CHECK_THROWS_WITH_AS(wide.infer(x, ctx, z, crc), doctest::Contains("carry_columns: copies input columns [4, 6)"), error);
}

TEST_CASE("graph_sequential: a graph given by the caller (interaction-network style) instead of a builder") {
  using T = double;
  using conv = edge_conv<T, sequential<T, dense<T, 4, 3>, relu<T>>>;
  using chain = graph_sequential<T, 2, conv, dense<T, 3, 1>>;
  rng g(9);
  chain model(conv(sequential<T, dense<T, 4, 3>, relu<T>>(dense<T, 4, 3>(g), relu<T>()), aggregation::sum),
              dense<T, 3, 1>(g));
  const std::vector<index_t> src{0, 1, 2, 3, 0}, dst{1, 2, 3, 0, 2};
  const graph gr = graph::from_edges(4, src, dst);
  matrix<T> x = random_matrix<T>(g, 4, 2);
  chain::cache c;
  matrix<T> y, want, h;
  model.infer(x, gr, y, c);
  typename conv::cache cc;
  no_cache nc;
  model.get<0>().infer(x, gr, h, cc);
  model.get<1>().infer(h, want, nc);
  CHECK(y == want);

  const matrix<T> r = random_matrix<T>(g, 4, 1);
  auto loss = [&](matrix<T>* dx) {
    matrix<T> out;
    model.forward(x, gr, out, c);
    if (dx) {
      zero_grad(model);
      model.backward(x, gr, out, r, c, dx);
    }
    return (out.array() * r.array()).sum();
  };
  matrix<T> dx;
  loss(&dx);
  CHECK(check_input_gradient(x, dx, [&] { return loss(nullptr); }).max_error < 1e-6);
  CHECK(check_parameter_gradients(model, [&] { return loss(nullptr); }, [&] { loss(&dx); }).max_error < 1e-6);
}

TEST_CASE("graph_sequential: const inference from two threads, one cache each, gives the single-thread result") {
  rng g(21);
  const auto model = make_tagger<float>(g);
  const batch b = batch::from_sizes({12, 9, 15, 4});
  const matrix<float> x = random_matrix<float>(g, b.num_nodes(), 3);
  matrix<float> want;
  decltype(model)::cache c0;
  model.infer(x, b, want, c0);
  matrix<float> y[2];
  std::thread workers[2];
  for (int t = 0; t < 2; ++t)
    workers[t] = std::thread([&, t] {
      decltype(model)::cache c;
      for (int rep = 0; rep < 20; ++rep) model.infer(x, b, y[t], c);
    });
  for (auto& w : workers) w.join();
  CHECK(y[0] == want);
  CHECK(y[1] == want);
}

TEST_CASE("graph_sequential: bad input is refused with the argument named") {
  rng g(1);
  auto model = make_tagger<float>(g);
  decltype(model)::cache c;
  matrix<float> y;
  CHECK_THROWS_WITH_AS(model.infer(matrix<float>::Zero(10, 4), batch::uniform(2, 5), y, c),
                       doctest::Contains("graph_sequential: input x: expected 3 columns"), error);
  CHECK_THROWS_WITH_AS(model.infer(matrix<float>::Zero(10, 3), batch::uniform(2, 4), y, c),
                       doctest::Contains("node_offsets cover 8 nodes but the features have 10 rows"), error);
  // A graph layer with neither a builder before it nor a graph from the caller.
  using conv = edge_conv<float, sequential<float, dense<float, 6, 2>>>;
  graph_sequential<float, 3, conv> bare{conv(sequential<float, dense<float, 6, 2>>(dense<float, 6, 2>(g)))};
  decltype(bare)::cache bc;
  CHECK_THROWS_WITH_AS(bare.infer(matrix<float>::Zero(4, 3), batch::single(4), y, bc),
                       doctest::Contains("a graph layer has no graph"), error);
  // backward with a dy of the wrong shape.
  model.forward(matrix<float>::Ones(8, 3), batch::uniform(2, 4), y, c);
  CHECK_THROWS_WITH_AS(model.backward(matrix<float>::Ones(8, 3), batch::uniform(2, 4), y, matrix<float>::Zero(3, 2), c, nullptr),
                       doctest::Contains("dy must have the shape of y (2 x 2), got 3 x 2"), error);
}

}  // namespace hepgnn_test_graph_sequential
