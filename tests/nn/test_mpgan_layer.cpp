// mpgan_message_passing: PyTorch reference (MPGAN equations, tests/reference/gnn_layers_reference.py), finite
// differences, float vs reference, jets of different sizes, training at several thread counts, bad input.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "support/thread_count.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/nn/mpgan_message_passing.hpp"

namespace hepgnn_test_mpgan_layer {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

static_assert(batch_layer<mpgan_message_passing<float>> && batch_layer<mpgan_message_passing<double, 3, 3>>,
              "mpgan_message_passing must satisfy the batch_layer concept");

namespace {
template <class T>
mpgan_message_passing<T> make(const gnn_ref::tensors& ref, rng& gen) {
  typename mpgan_message_passing<T>::options o;
  const auto& opt = ref.at("options");
  o.in = static_cast<int>(ref.at("x").cols());
  o.hidden = static_cast<int>(opt(0, 0));
  o.iterations = static_cast<int>(opt(0, 1));
  o.pos_dims = static_cast<int>(opt(0, 2));
  o.sum = opt(0, 3) != 0;
  o.final_activation = opt(0, 4) != 0;
  o.out = static_cast<int>(ref.at("y").cols());
  o.fe_widths = gnn_ref::ints(ref.at("fe_widths"));
  o.fn_widths = gnn_ref::ints(ref.at("fn_widths"));
  return mpgan_message_passing<T>(gen, o);
}
}  // namespace

TEST_CASE("mpgan_message_passing matches the PyTorch reference (double: outputs and gradients)") {
  for (const char* name : {"mpgan_sum", "mpgan_mean"}) {
    CAPTURE(name);
    const auto ref = gnn_ref::load(name);
    rng gen(1);
    auto layer = make<double>(ref, gen);
    gnn_ref::set_params(layer, ref);
    gnn_ref::check_against_reference(layer, batch::from_sizes(gnn_ref::ints(ref.at("sizes"))), ref);
  }
}

TEST_CASE("mpgan_message_passing in float matches the reference to 1e-5") {
  const auto ref = gnn_ref::load("mpgan_sum");
  rng gen(1);
  auto layer = make<float>(ref, gen);
  gnn_ref::set_params(layer, ref);
  gnn_ref::check_float_against_reference(layer, batch::from_sizes(gnn_ref::ints(ref.at("sizes"))), ref);
}

TEST_CASE("mpgan_message_passing gradients match finite differences (sum and mean, with and without distance)") {
  for (int variant = 0; variant < 4; ++variant) {
    CAPTURE(variant);
    rng gen(31 + variant);
    mpgan_message_passing<double>::options o;
    o.in = 3;
    o.hidden = 4;
    o.out = 2;
    o.iterations = 2;
    o.fe_widths = {5, 4};
    o.fn_widths = {6};
    o.pos_dims = variant % 2 == 0 ? 2 : 0;
    o.sum = variant < 2;
    o.final_activation = variant == 3;
    mpgan_message_passing<double> layer(gen, o);
    const batch b = batch::from_sizes({5, 1, 3});
    matrix<double> x = gnn_ref::random_matrix(gen, 9, 3);
    const matrix<double> w = gnn_ref::random_matrix(gen, 9, 2);
    hepgnn_test::check_layer(layer, b, x, {.dy = &w});
  }
}

TEST_CASE("mpgan_message_passing keeps jets apart") {
  rng gen(4);
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.pos_dims = 2;
  mpgan_message_passing<double> layer(gen, o);
  matrix<double> x = gnn_ref::random_matrix(gen, 7, 3), y_all, y_first;
  mpgan_message_passing<double>::cache c;
  layer.infer(x, batch::from_sizes({4, 3}), y_all, c);
  const matrix<double> x_first = x.topRows(4);
  layer.infer(x_first, batch::single(4), y_first, c);
  CHECK(gnn_ref::rel_diff(y_all.topRows(4), y_first) < 1e-15);
}

TEST_CASE("mpgan_message_passing training is the same bits at 1, 2 and 3 threads") {
  // 60 jets of 30 (mean aggregation; sum is the same code without the scale): the aggregation (N x message width
  // >= min_work) and the edge-level weight gradients (3 x E x in x out >= gemm_min_flops) run threaded.
  rng gen(9);
  mpgan_message_passing<float>::options o;
  o.in = 6;
  o.hidden = 8;
  o.iterations = 2;
  o.fe_widths = {16, 24};
  o.fn_widths = {16};
  o.pos_dims = 2;
  o.sum = false;
  mpgan_message_passing<float> layer(gen, o);
  const batch b = batch::uniform(60, 30);
  const long n = b.num_nodes(), edges = 60 * 30 * 30;
  REQUIRE(n * o.fe_widths.back() >= parallel_limits::min_work);
  REQUIRE(3 * edges * 16 * 24 >= parallel_limits::gemm_min_flops);
  const matrix<float> x = gnn_ref::random_matrix(gen, n, o.in).cast<float>();
  const matrix<float> dy = gnn_ref::random_matrix(gen, n, o.hidden).cast<float>();
  auto train = [&](int threads) {
    return hepgnn_test::at_threads(threads, [&] { return hepgnn_test::train_steps(layer, x, b, dy, 2); });
  };
  const auto one = train(1);
  hepgnn_test::check_same_training(one, train(2));
  hepgnn_test::check_same_training(one, train(3));
}

TEST_CASE("mpgan_message_passing rejects bad input with a clear message") {
  rng gen(2);
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.pos_dims = 2;
  mpgan_message_passing<double> layer(gen, o);
  mpgan_message_passing<double>::cache c;
  matrix<double> y;
  const matrix<double> x_cols = matrix<double>::Ones(4, 2);
  CHECK_THROWS_WITH_AS(layer.forward(x_cols, batch::single(4), y, c),
                       doctest::Contains("mpgan_message_passing::forward: expected 3 columns"), hepgnn::error);
  const matrix<double> x = matrix<double>::Ones(4, 3);
  CHECK_THROWS_WITH_AS(layer.infer(x, batch::from_sizes({2, 3}), y, c),
                       doctest::Contains("the batch covers 5 nodes but x has 4"), hepgnn::error);
  const matrix<double> dy = matrix<double>::Ones(4, 3);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(4), y, dy, c, nullptr), doctest::Contains("call forward"),
                       hepgnn::error);
  layer.forward(x, batch::single(4), y, c);
  const matrix<double> dy_bad = matrix<double>::Ones(3, 3);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(4), y, dy_bad, c, nullptr),
                       doctest::Contains("output gradient dy"), hepgnn::error);
  batch no_offsets;  // not even the leading 0
  no_offsets.node_offsets.clear();
  CHECK_THROWS_WITH_AS(layer.infer(x, no_offsets, y, c),
                       doctest::Contains("mpgan_message_passing::infer: batch node_offsets must start with 0"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::from_sizes({2, 2}), y, matrix<double>::Ones(4, 3), c, nullptr),
                       doctest::Contains("call forward with this batch"), hepgnn::error);
  o.pos_dims = 5;
  CHECK_THROWS_WITH_AS(mpgan_message_passing<double>(gen, o), doctest::Contains("pos_dims = 5 exceeds the node width 3"),
                       hepgnn::error);
  o.pos_dims = 0;
  o.fe_widths.clear();
  CHECK_THROWS_WITH_AS(mpgan_message_passing<double>(gen, o), doctest::Contains("fe_widths must name"), hepgnn::error);
}

}  // namespace hepgnn_test_mpgan_layer
