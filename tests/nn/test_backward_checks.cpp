// A backward given another graph, batch or input than its forward's: a clear hepgnn::error, never a write past the
// forward's buffers (issue: "backward trusts that the graph/batch it receives is the forward's"). Each case keeps
// the sizes a cheaper check would compare (edge count, graph count, node count) and changes only the structure.
#include "support/doctest.hpp"

#include <vector>

#include "hepgnn/core/fingerprint.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/gatv2_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/gravnet_conv.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"
#include "hepgnn/nn/pooling.hpp"

namespace hepgnn_test_backward_checks {

using namespace hepgnn;
using doctest::Contains;
using M = matrix<double>;

M random_matrix(rng& g, long r, long c) {
  M m(r, c);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = g.normal();
  return m;
}

/// Two graphs on 6 nodes with 6 edges each: a ring, and a star into node 0 (in-degrees 1,1,1,1,1,1 vs 5,0,0,0,0,1).
graph ring() { return graph::from_edges(6, std::vector<index_t>{1, 2, 3, 4, 5, 0}, std::vector<index_t>{0, 1, 2, 3, 4, 5}); }
graph star() { return graph::from_edges(6, std::vector<index_t>{1, 2, 3, 4, 5, 0}, std::vector<index_t>{0, 0, 0, 0, 0, 5}); }

using net = sequential<double, dense<double, 6, 4>, relu<double>>;

/// Training forward on (x, given), then backward on (x, other) is refused with `what` in the message, and backward
/// on the forward's own (x, given) runs.
template <class Layer, class Given>
void check_refuses_other(Layer& layer, const M& x, const Given& given, const Given& other, const char* what) {
  typename Layer::cache c;
  M y, dx;
  layer.forward(x, given, y, c);
  const M dy = M::Ones(y.rows(), y.cols());
  CHECK_THROWS_WITH_AS(layer.backward(x, other, y, dy, c, &dx), Contains(what), error);
  layer.backward(x, given, y, dy, c, &dx);
  CHECK(dx.rows() == x.rows());
}

TEST_CASE("fingerprints tell graphs, batches and matrices apart and agree on copies") {
  rng g(3);
  CHECK(fingerprint(ring()) == fingerprint(ring()));
  CHECK(fingerprint(ring()) != fingerprint(star()));
  CHECK(fingerprint(batch::from_sizes({3, 3})) != fingerprint(batch::from_sizes({2, 4})));
  const M x = random_matrix(g, 6, 3);
  M y = x;
  CHECK(fingerprint(x) == fingerprint(y));
  y(5, 2) = std::nextafter(y(5, 2), 1e9);  // one bit
  CHECK(fingerprint(x) != fingerprint(y));
  M swapped = x;
  swapped.row(0).swap(swapped.row(1));
  CHECK(fingerprint(x) != fingerprint(swapped));
  const M reshaped = Eigen::Map<const M>(x.data(), 3, 6);
  CHECK(fingerprint(x) != fingerprint(reshaped));
}

TEST_CASE("edge_conv::backward refuses a graph of the same edge count but other in-degrees, and another x") {
  rng g(1);
  edge_conv<double, net> conv(net(dense<double, 6, 4>(g), relu<double>()), aggregation::max);
  edge_conv<double, net>::cache c;
  const M x = random_matrix(g, 6, 3);
  M y, dx;
  const graph a = ring(), b = star();
  conv.forward(x, a, y, c);
  const M dy = M::Ones(y.rows(), y.cols());
  CHECK_THROWS_WITH_AS(conv.backward(x, b, y, dy, c, &dx), Contains("edge_conv::backward: the graph or input x differs"),
                       error);
  CHECK_THROWS_WITH_AS(conv.backward(M(x * 2.0), a, y, dy, c, &dx), Contains("graph or input x differs"), error);
  conv.backward(x, a, y, dy, c, &dx);  // the forward's own graph and x
  CHECK(dx.rows() == 6);
  M yi;
  conv.infer(x, b, yi, c);  // infer reuses the buffers: backward needs a new forward
  CHECK_THROWS_WITH_AS(conv.backward(x, a, y, dy, c, &dx), Contains("call forward first"), error);
}

TEST_CASE("dynamic_edge_conv::backward refuses another batch with the same node count") {
  rng g(2);
  dynamic_edge_conv<double, net> conv(net(dense<double, 6, 4>(g), relu<double>()), 2);
  check_refuses_other(conv, random_matrix(g, 6, 3), batch::from_sizes({3, 3}), batch::from_sizes({2, 4}),
                      "dynamic_edge_conv::backward: the batch differs");
}

TEST_CASE("interaction_network::backward refuses another graph with the same edge count, and a cache infer reused") {
  rng g(4);
  interaction_network<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.iterations = 1;
  o.out = 1;
  interaction_network<double> in(g, o);
  interaction_network<double>::cache c;
  const M x = random_matrix(g, 6, 3);
  M y, dx;
  in.forward(x, ring(), y, c);
  const M dy = M::Ones(y.rows(), y.cols());
  CHECK_THROWS_WITH_AS(in.backward(x, star(), y, dy, c, &dx), Contains("interaction_network::backward: the graph"),
                       error);
  in.backward(x, ring(), y, dy, c, &dx);
  CHECK(dx.rows() == 6);
  M yi;
  in.infer(x, ring(), yi, c);  // infer reuses the training buffers
  CHECK_THROWS_WITH_AS(in.backward(x, ring(), y, dy, c, &dx), Contains("interaction_network::backward: call forward"),
                       error);
}

TEST_CASE("gatv2_conv, gravnet_conv and mlpf_graph_layer backward refuse another graph, batch or x") {
  rng g(5);
  const M x = random_matrix(g, 6, 4);
  gatv2_conv<double, 4, 3> gat(g, {});
  check_refuses_other(gat, x, ring(), star(), "gatv2_conv::backward: the graph or input x differs");

  gravnet_conv<double>::options go;
  go.in_channels = 4;
  go.out_channels = 3;
  go.space_dimensions = 2;
  go.propagate_dimensions = 3;
  go.k = 2;
  gravnet_conv<double> grav(g, go);
  check_refuses_other(grav, x, batch::from_sizes({3, 3}), batch::from_sizes({2, 4}),
                      "gravnet_conv::backward: the input x or batch differs");
  {  // another x with the forward's batch
    gravnet_conv<double>::cache c;
    M y, dx;
    grav.forward(x, batch::from_sizes({3, 3}), y, c);
    CHECK_THROWS_WITH_AS(grav.backward(M(x * 0.5), batch::from_sizes({3, 3}), y, M::Ones(y.rows(), y.cols()), c, &dx),
                         Contains("gravnet_conv::backward: the input x or batch differs"), error);
  }

  mlpf_graph_layer<double>::options mo;
  mo.inout_dim = 4;
  mo.distance_dim = 4;
  mo.ffn_dist_hidden_dim = 4;
  mo.bin_size = 4;
  mlpf_graph_layer<double> mlpf(g, mo);
  check_refuses_other(mlpf, random_matrix(g, 8, 4), batch::from_sizes({4, 4}), batch::from_sizes({8}),
                      "mlpf_graph_layer::backward: the input x or batch differs");
}

TEST_CASE("global_pool_backward refuses arg-max ids outside the batch's graphs (another batch, same graph count)") {
  rng g(6);
  const M x = random_matrix(g, 6, 2);
  M y, dx;
  std::vector<index_t> argmax;
  global_pool(x, batch::from_sizes({1, 5}), aggregation::max, y, &argmax);
  const M dy = M::Ones(2, 2);
  // Same graph count, other sizes: graph 0 now holds rows 0..4, graph 1 row 5 only; the forward's ids of graph 1
  // (rows 1..5) are mostly outside it.
  CHECK_THROWS_WITH_AS(global_pool_backward(batch::from_sizes({5, 1}), aggregation::max, dy, &argmax, dx),
                       Contains("global_pool_backward: argmax["), error);
  global_pool_backward(batch::from_sizes({1, 5}), aggregation::max, dy, &argmax, dx);
  CHECK(dx.sum() == doctest::Approx(4.0));  // each of the 2 x 2 outputs sends its gradient to one row
}

template <class T>
using chain = graph_sequential<T, 3, knn_builder<2>, edge_conv<T, sequential<T, dense<T, 6, 4>, relu<T>>>,
                               global_pool_layer<T>>;

TEST_CASE("graph_sequential::backward refuses another x, batch or graph than its forward's") {
  rng g(7);
  chain<double> model(knn_builder<2>(), edge_conv<double, net>(net(dense<double, 6, 4>(g), relu<double>())),
                      global_pool_layer<double>(aggregation::max));
  chain<double>::cache c;
  const M x = random_matrix(g, 6, 3);
  M y, dx;
  model.forward(x, batch::from_sizes({3, 3}), y, c);
  const M dy = M::Ones(y.rows(), y.cols());
  CHECK_THROWS_WITH_AS(model.backward(x, batch::from_sizes({4, 2}), y, dy, c, &dx),
                       Contains("graph_sequential::backward: the batch or graph differs"), error);
  CHECK_THROWS_WITH_AS(model.backward(M(x + M::Constant(6, 3, 1.0)), batch::from_sizes({3, 3}), y, dy, c, &dx),
                       Contains("graph_sequential::backward: the input x differs"), error);
  model.backward(x, batch::from_sizes({3, 3}), y, dy, c, &dx);
  CHECK(dx.rows() == 6);
  M yi;
  model.infer(x, batch::from_sizes({3, 3}), yi, c);
  CHECK_THROWS_WITH_AS(model.backward(x, batch::from_sizes({3, 3}), y, dy, c, &dx),
                       Contains("call forward first"), error);
}

}  // namespace hepgnn_test_backward_checks
