// nn/element.hpp, the edge part of the contract: a layer with one output row per edge (interaction_network) and
// edge input features in a graph_sequential chain, against the elements called by hand (outputs, gradients,
// names); finite differences through the chain (double); a graph builder clears the edge features; bad edge
// features; the layer's inference precision chosen through its cache.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/knn_builder.hpp"

namespace hepgnn_test_element {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using gnn_ref::random_matrix;

static_assert(edge_feature_layer<interaction_network<double>> && edge_feature_layer<interaction_network<float, 3>>,
              "interaction_network reads edge features");
static_assert(element_traits<interaction_network<double>, double>::reads_edge_features);
static_assert(element_traits<interaction_network<double>, double>::output_rows(rows_of::nodes) == rows_of::edges,
              "interaction_network writes one row per edge");
static_assert(!element_traits<dense<double>, double>::reads_edge_features);

/// Node rows -> dense, tanh -> interaction network (edge rows, reads edge features) -> dense on the edge rows.
using edge_chain = graph_sequential<double, 3, dense<double, 3, 4>, tanh_layer<double>, interaction_network<double, 4>,
                                    dense<double>>;
static_assert(edge_chain::output_rows == rows_of::edges, "the chain ends in edge rows");

namespace {

interaction_network<double, 4> make_edge_layer(rng& gen, int edge_in) {
  interaction_network<double, 4>::options o;
  o.hidden = 5;
  o.iterations = 2;
  o.aggregations = {aggregation::sum, aggregation::max};
  o.out = 3;
  o.edge_in = edge_in;
  o.source_aggregation = true;
  return {gen, o};
}

graph small_graph(rng& gen, index_t n, index_t e) {
  std::vector<index_t> s(e), d(e);
  for (index_t i = 0; i < e; ++i) {
    s[i] = static_cast<index_t>(gen.below(n));
    d[i] = static_cast<index_t>((s[i] + 1 + gen.below(n - 1)) % n);
  }
  return graph::from_edges(n, s, d);
}

std::vector<double> all_grads(auto& model) {
  std::vector<double> v;
  model.for_each_param("", [&](const std::string&, parameter<double> p) {
    v.insert(v.end(), p.grad, p.grad + p.size());
  });
  return v;
}

}  // namespace

TEST_CASE("element contract: an edge-output layer with edge features in a chain equals its elements by hand") {
  rng gen(3);
  dense<double, 3, 4> first(gen);
  tanh_layer<double> act;
  auto in = make_edge_layer(gen, 2);
  dense<double> last(gen, 3, 2);
  edge_chain net(first, act, in, last);
  const graph g = small_graph(gen, 40, 150);
  const matrix<double> x = random_matrix(gen, 40, 3), attr = random_matrix(gen, g.num_edges(), 2);
  const matrix<double> dy = random_matrix(gen, g.num_edges(), 2);

  // by hand
  dense<double, 3, 4>::cache c0;
  tanh_layer<double>::cache c1;
  interaction_network<double, 4>::cache c2;
  dense<double>::cache c3;
  matrix<double> h0, h1, e, y_hand, de, dh1, dh0, dx_hand;
  first.forward(x, h0, c0);
  act.forward(h0, h1, c1);
  in.forward(h1, g, attr, e, c2);
  last.forward(e, y_hand, c3);
  REQUIRE(y_hand.rows() == g.num_edges());
  zero_grad(first), zero_grad(in), zero_grad(last);
  last.backward(e, y_hand, dy, c3, &de);
  in.backward(h1, g, attr, e, de, c2, &dh1);
  act.backward(h0, h1, dh1, c1, &dh0);
  first.backward(x, h0, dh0, c0, &dx_hand);
  std::vector<double> grads_hand = all_grads(first), g_in = all_grads(in), g_last = all_grads(last);
  grads_hand.insert(grads_hand.end(), g_in.begin(), g_in.end());
  grads_hand.insert(grads_hand.end(), g_last.begin(), g_last.end());

  // the chain: forward, infer and backward with the edge features of g
  edge_chain::cache c;
  matrix<double> y, yi, dx;
  net.forward(x, g, attr, y, c);
  CHECK(y == y_hand);
  net.infer(x, g, attr, yi, c);
  CHECK(yi == y_hand);
  zero_grad(net);
  net.forward(x, g, attr, y, c);
  net.backward(x, g, attr, y, dy, c, &dx);
  CHECK(dx == dx_hand);
  CHECK(all_grads(net) == grads_hand);
  // the same through a context the caller fills in (batch, graph, edge features)
  const batch b = batch::single(40);
  const chain_context ctx{&b, &g, edge_features_ref(attr)};
  net.infer(x, ctx, yi, c);
  CHECK(yi == y_hand);

  // names: "<index>.<name>"; the edge encoder's first Linear takes [x_src, x_dst, attr_e]
  std::vector<std::string> names;
  net.for_each_param("", [&](const std::string& name, parameter<double> p) {
    names.push_back(name);
    if (name == "2.edge_encoder.0.weight") CHECK(p.shape == std::vector<std::int64_t>{5, 2 * 4 + 2});
  });
  CHECK(names.front() == "0.weight");
  CHECK(std::find(names.begin(), names.end(), "2.node_network.2.bias") != names.end());
  CHECK(names.back() == "3.bias");

  // finite differences (parameters and x) through the chain, the edge features held fixed
  const graph tiny = small_graph(gen, 8, 20);
  const batch tb = batch::single(8);
  const matrix<double> tx = random_matrix(gen, 8, 3), tattr = random_matrix(gen, tiny.num_edges(), 2);
  hepgnn_test::check_layer(net, chain_context{&tb, &tiny, edge_features_ref(tattr)}, tx);
}

TEST_CASE("element contract: a graph builder clears the edge features; bad edge features fail clearly") {
  rng gen(8);
  const graph g = small_graph(gen, 30, 90);
  const matrix<double> x = random_matrix(gen, 30, 4), attr = random_matrix(gen, g.num_edges(), 2);
  matrix<double> y;
  // the kNN graph replaces g: g's edge features no longer apply, so the layer sees none
  graph_sequential<double, 4, knn_builder<3>, interaction_network<double, 4>> rebuilt(knn_builder<3>{},
                                                                                    make_edge_layer(gen, 2));
  decltype(rebuilt)::cache rc;
  CHECK_THROWS_WITH_AS(rebuilt.infer(x, g, attr, y, rc), doctest::Contains("this layer was built with edge_in = 2"),
                       hepgnn::error);
  // without the builder they reach it
  graph_sequential<double, 4, interaction_network<double, 4>> direct(make_edge_layer(gen, 2));
  decltype(direct)::cache dc;
  direct.infer(x, g, attr, y, dc);
  CHECK(y.rows() == g.num_edges());
  CHECK(y.cols() == 3);
  const matrix<double> short_attr = random_matrix(gen, g.num_edges() - 1, 2);
  CHECK_THROWS_WITH_AS(direct.infer(x, g, short_attr, y, dc),
                       doctest::Contains("edge_features (one row per edge of the graph): expected 90 rows"),
                       hepgnn::error);
  const matrix<float> float_attr = attr.cast<float>();
  const batch b = batch::single(30);
  CHECK_THROWS_WITH_AS(direct.infer(x, chain_context{&b, &g, edge_features_ref(float_attr)}, y, dc),
                       doctest::Contains("edge features are of another scalar type"), hepgnn::error);
}

TEST_CASE("element contract: the interaction network's inference precision is chosen through its cache") {
  rng gen(12);
  interaction_network<float, 3>::options o;
  o.hidden = 16;
  o.iterations = 2;
  o.edge_in = 2;
  interaction_network<float, 3> in(gen, o);
  graph_sequential<float, 3, interaction_network<float, 3>> net(in);
  const graph g = small_graph(gen, 200, 1200);
  const matrix<float> x = random_matrix(gen, 200, 3).cast<float>();
  const matrix<float> attr = random_matrix(gen, g.num_edges(), 2).cast<float>();
  interaction_network<float, 3>::cache lc;
  matrix<float> y32, y16, chained;
  in.infer(x, g, attr, y32, lc, inference_precision::f32);
  in.infer(x, g, attr, y16, lc, inference_precision::bf16);
  REQUIRE(y16 != y32);
  decltype(net)::cache c;
  net.infer(x, g, attr, chained, c);
  CHECK(chained == y32);
  std::get<0>(c.elements).precision = inference_precision::bf16;
  net.infer(x, g, attr, chained, c);
  CHECK(chained == y16);
}

}  // namespace hepgnn_test_element
