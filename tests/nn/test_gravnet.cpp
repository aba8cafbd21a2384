// gravnet_conv: PyTorch reference (PyG GravNetConv equations, tests/reference/gnn_layers_reference.py), finite
// differences away from kNN ties, float vs reference, training at several thread counts, bad input.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "support/thread_count.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/nn/gravnet_conv.hpp"

namespace hepgnn_test_gravnet {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using gnn_ref::load;

static_assert(batch_layer<gravnet_conv<float>> && batch_layer<gravnet_conv<double, 4, 8>>,
              "gravnet_conv must satisfy the batch_layer concept");

namespace {
template <class T>
gravnet_conv<T> make(const gnn_ref::tensors& ref, rng& gen) {
  typename gravnet_conv<T>::options o;
  o.in_channels = static_cast<int>(ref.at("x").cols());
  o.out_channels = static_cast<int>(ref.at("y").cols());
  o.space_dimensions = static_cast<int>(ref.at("param:lin_s.weight").rows());
  o.propagate_dimensions = static_cast<int>(ref.at("param:lin_h.weight").rows());
  o.k = static_cast<int>(ref.at("k")(0, 0));
  return gravnet_conv<T>(gen, o);
}
}  // namespace

TEST_CASE("gravnet_conv matches the PyTorch reference (double: outputs and gradients)") {
  const auto ref = load("gravnet");
  rng gen(1);
  auto layer = make<double>(ref, gen);
  gnn_ref::set_params(layer, ref);
  gnn_ref::check_against_reference(layer, batch::from_sizes(gnn_ref::ints(ref.at("sizes"))), ref);
}

TEST_CASE("gravnet_conv in float matches the reference to 1e-5") {
  const auto ref = load("gravnet");
  rng gen(1);
  auto layer = make<float>(ref, gen);
  gnn_ref::set_params(layer, ref);
  gnn_ref::check_float_against_reference(layer, batch::from_sizes(gnn_ref::ints(ref.at("sizes"))), ref);
}

TEST_CASE("gravnet_conv gradients match finite differences") {
  rng gen(21);
  gravnet_conv<double>::options o;
  o.in_channels = 4;
  o.out_channels = 3;
  o.space_dimensions = 3;
  o.propagate_dimensions = 5;
  o.k = 3;
  gravnet_conv<double> layer(gen, o);
  // small learned-space scale keeps the weights exp(-10 d) in a useful range
  layer.lin_s().weight() *= 0.3;
  const batch b = batch::from_sizes({6, 4, 1});
  matrix<double> x = gnn_ref::random_matrix(gen, 11, 4);
  const matrix<double> w = gnn_ref::random_matrix(gen, 11, 3);
  // the neighbour sets must not change under the finite-difference steps: check they are stable
  gravnet_conv<double>::cache c0;
  matrix<double> y0;
  layer.infer(x, b, y0, c0);
  const auto sources = c0.g.sources;
  hepgnn_test::check_layer(layer, b, x, {.dy = &w},
                           [&](const gravnet_conv<double>::cache& c) { REQUIRE(c.g.sources == sources); });
  // the gradient reaches the learned space (lin_s) through the distance weights
  double s_grad = 0;
  layer.for_each_param("", [&](const std::string& name, parameter<double> p) {
    if (name == "lin_s.weight")
      for (long i = 0; i < p.size(); ++i) s_grad += std::abs(p.grad[i]);
  });
  CHECK(s_grad > 1e-6);
}

TEST_CASE("gravnet_conv training is the same bits at 1, 2 and 3 threads") {
  // Large enough for every threaded loop: the per-node loops (N x P x 8 >= min_work) and the weight-gradient
  // products (3 x N x in x out >= gemm_min_flops), which Eigen used to block by the thread count.
  rng gen(8);
  gravnet_conv<float>::options o;
  o.in_channels = 8;
  o.out_channels = 16;
  o.space_dimensions = 4;
  o.propagate_dimensions = 16;
  o.k = 8;
  gravnet_conv<float> layer(gen, o);
  layer.lin_s().weight() *= 0.3f;
  const batch b = batch::uniform(100, 60);
  const long n = b.num_nodes();
  REQUIRE(n * o.propagate_dimensions * 8 >= parallel_limits::min_work);
  REQUIRE(3 * n * o.in_channels * o.out_channels >= parallel_limits::gemm_min_flops);
  const matrix<float> x = gnn_ref::random_matrix(gen, n, o.in_channels).cast<float>();
  const matrix<float> dy = gnn_ref::random_matrix(gen, n, o.out_channels).cast<float>();
  auto train = [&](int threads) { return hepgnn_test::at_threads(threads, [&] { return hepgnn_test::train_steps(layer, x, b, dy, 2); }); };
  const auto one = train(1);
  hepgnn_test::check_same_training(one, train(2));
  hepgnn_test::check_same_training(one, train(3));
}

TEST_CASE("gravnet_conv rejects bad input with a clear message") {
  rng gen(2);
  gravnet_conv<double>::options o;
  o.in_channels = 4;
  o.out_channels = 2;
  o.k = 3;
  gravnet_conv<double> layer(gen, o);
  gravnet_conv<double>::cache c;
  matrix<double> y;
  const matrix<double> x_cols = matrix<double>::Ones(5, 3);
  CHECK_THROWS_WITH_AS(layer.forward(x_cols, batch::single(5), y, c),
                       doctest::Contains("gravnet_conv::forward: expected 4 columns"), hepgnn::error);
  const matrix<double> x = matrix<double>::Ones(5, 4);
  CHECK_THROWS_WITH_AS(layer.infer(x, batch::single(6), y, c), doctest::Contains("the batch covers 6 nodes but x has 5"),
                       hepgnn::error);
  matrix<double> x_nan = x;
  x_nan(2, 1) = std::nan("");
  CHECK_THROWS_WITH_AS(layer.forward(x_nan, batch::single(5), y, c), doctest::Contains("non-finite value"),
                       hepgnn::error);
  const matrix<double> dy = matrix<double>::Ones(5, 2);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(5), y, dy, c, nullptr), doctest::Contains("call forward"),
                       hepgnn::error);
  layer.forward(x, batch::single(5), y, c);
  const matrix<double> dy_bad = matrix<double>::Ones(5, 3);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(5), y, dy_bad, c, nullptr),
                       doctest::Contains("output gradient dy"), hepgnn::error);
  batch no_offsets;  // not even the leading 0
  no_offsets.node_offsets.clear();
  CHECK_THROWS_WITH_AS(layer.forward(x, no_offsets, y, c),
                       doctest::Contains("gravnet_conv::forward: batch node_offsets must start with 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(layer.infer(x, no_offsets, y, c),
                       doctest::Contains("gravnet_conv::infer: batch node_offsets must start with 0"), hepgnn::error);
  o.k = 0;
  CHECK_THROWS_WITH_AS(gravnet_conv<double>(gen, o), doctest::Contains("must be positive"), hepgnn::error);
}

}  // namespace hepgnn_test_gravnet
