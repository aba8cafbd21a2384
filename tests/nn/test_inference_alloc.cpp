// The inference path allocates nothing once the caller's cache and output have seen the shapes (DESIGN.md 4), for
// the dense family and for every graph layer. Eigen allocates with malloc, so this executable counts malloc itself.
#include "support/doctest.hpp"

#include "support/count_allocations.hpp"

#include "hepgnn/graph/knn.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/gravnet_conv.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"
#include "hepgnn/nn/mpgan_message_passing.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace hepgnn_test_inference_alloc {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using T = float;
using M = matrix<T>;

namespace {
using hepgnn_test::allocation_count;

/// Allocations over 10 inference calls after one warm-up call; `context` is the graph or batch of graph layers.
template <class Model, class... Context>
long allocations_per_call(const Model& model, const M& x, const Context&... context) {
  typename Model::cache c;
  M y;
  model.infer(x, context..., y, c);  // warm-up sizes every buffer
  const long before = allocation_count.load();
  for (int i = 0; i < 10; ++i) model.infer(x, context..., y, c);
  return allocation_count.load() - before;
}
}  // namespace

TEST_CASE("sequential, residual, norms and mlp infer without allocating after warm-up") {
  if (!hepgnn_test::count_allocations_enabled) {
    MESSAGE("skipped: malloc is replaced by the sanitizer in this build");
    return;
  }
  rng g(1);
  using block = sequential<T, dense<T, 7, 32>, relu<T>, layer_norm<T>, dense<T, 32, 32>, gelu<T>>;
  sequential<T, block, residual<sequential<T, dense<T, 32, 32>, tanh_layer<T>>>, batch_norm<T>, dense<T, 32, 2>> model{
      block{dense<T, 7, 32>{g}, relu<T>{}, layer_norm<T>{32}, dense<T, 32, 32>{g}, gelu<T>{}},
      residual<sequential<T, dense<T, 32, 32>, tanh_layer<T>>>{sequential<T, dense<T, 32, 32>, tanh_layer<T>>{dense<T, 32, 32>{g}, tanh_layer<T>{}}},
      batch_norm<T>{32}, dense<T, 32, 2>{g}};
  const M x = M::Random(30, 7);  // one jet of 30 particles
  CHECK(allocations_per_call(model, x) == 0);
  mlp<T> m(g, {7, 64, 64, 3});
  CHECK(allocations_per_call(m, x) == 0);
  // the counter works: a fresh cache allocates
  const long before = allocation_count.load();
  decltype(model)::cache fresh;
  M y;
  model.infer(x, y, fresh);
  CHECK(allocation_count.load() > before);
}

TEST_CASE("graph layers and pooling infer without allocating after warm-up") {
  if (!hepgnn_test::count_allocations_enabled) {
    MESSAGE("skipped: malloc is replaced by the sanitizer in this build");
    return;
  }
  rng g(2);
  const batch jets = batch::from_sizes({30, 12, 25});  // three jets
  const M x = M::Random(jets.num_nodes(), 8);
  const M coords = x.leftCols(2);
  const graph knn_graph = hepgnn::knn_graph(coords, 7, jets);
  using net = sequential<T, dense<T>, relu<T>, dense<T>, relu<T>>;
  auto make_net = [&] { return net(dense<T>(g, 16, 32), relu<T>(), dense<T>(g, 32, 32), relu<T>()); };
  for (aggregation a : {aggregation::max, aggregation::mean, aggregation::sum}) {
    CAPTURE(to_string(a));
    const edge_conv<T, net> conv(make_net(), a);
    CHECK(allocations_per_call(conv, x, knn_graph) == 0);
    const dynamic_edge_conv<T, net> dyn(make_net(), 7, a);
    CHECK(allocations_per_call(dyn, x, jets) == 0);
  }
  interaction_network<T>::options io;
  io.in = 8;
  io.hidden = 16;
  io.iterations = 2;
  io.aggregations = {aggregation::sum, aggregation::max};
  CHECK(allocations_per_call(interaction_network<T>(g, io), x, knn_graph) == 0);
  io.edge_in = 4;  // edge input features: one more edge-level product in the edge encoder
  const M edge_attr = M::Random(knn_graph.num_edges(), 4);
  CHECK(allocations_per_call(interaction_network<T>(g, io), x, knn_graph, edge_attr) == 0);
  gravnet_conv<T>::options go;
  go.in_channels = 8;
  go.out_channels = 16;
  go.k = 7;
  CHECK(allocations_per_call(gravnet_conv<T>(g, go), x, jets) == 0);
  {  // an event of calorimeter size: the kNN search takes its grid path
    const batch event = batch::single(2000);
    const M hits = M::Random(2000, 8);
    CHECK(allocations_per_call(gravnet_conv<T>(g, go), hits, event) == 0);
  }
  mlpf_graph_layer<T>::options mo;
  mo.inout_dim = 8;
  mo.distance_dim = 8;
  mo.ffn_dist_hidden_dim = 16;
  mo.bin_size = 16;
  CHECK(allocations_per_call(mlpf_graph_layer<T>(g, mo), x, jets) == 0);
  mpgan_message_passing<T>::options po;
  po.in = 8;
  po.pos_dims = 2;
  CHECK(allocations_per_call(mpgan_message_passing<T>(g, po), x, jets) == 0);
  for (aggregation a : {aggregation::max, aggregation::mean, aggregation::sum})
    CHECK(allocations_per_call(global_pool_layer<T>(a), x, jets) == 0);
  CHECK(allocations_per_call(attention_pool<T, dense<T>>(dense<T>(g, 8, 1)), x, jets) == 0);
}

}  // namespace hepgnn_test_inference_alloc
