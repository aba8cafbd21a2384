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

TEST_CASE("mpgan_message_passing source mask: masked nodes send nothing, still receive (brute force: real nodes alone)") {
  rng gen(12);
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.iterations = 2;
  o.fe_widths = {5, 4};
  o.fn_widths = {6};
  o.pos_dims = 2;
  mpgan_message_passing<double> layer(gen, o);
  const matrix<double> x = gnn_ref::random_matrix(gen, 8, 3);
  const std::vector<double> mask{1, 0, 1, 1, 0, 0, 1, 1};  // jets {0..4}, {5..7}
  mpgan_message_passing<double>::cache c;
  matrix<double> y, y_real;
  layer.infer(x, batch::from_sizes({5, 3}), y, c, &mask);
  matrix<double> x_real(5, 3);
  const long real[] = {0, 2, 3, 6, 7};
  for (int r = 0; r < 5; ++r) x_real.row(r) = x.row(real[r]);
  layer.infer(x_real, batch::from_sizes({3, 2}), y_real, c);
  for (int r = 0; r < 5; ++r) CHECK(gnn_ref::rel_diff(y.row(real[r]), y_real.row(r)) < 1e-14);
  // Masked nodes still receive: their outputs differ from those of a mask of ones only through the messages.
  matrix<double> y_ones;
  layer.infer(x, batch::from_sizes({5, 3}), y_ones, c);
  CHECK(gnn_ref::rel_diff(y.row(1), y_ones.row(1)) > 1e-6);
  // Bad masks are refused by name.
  const std::vector<double> short_mask{1, 0};
  CHECK_THROWS_WITH_AS(layer.infer(x, batch::from_sizes({5, 3}), y, c, &short_mask),
                       doctest::Contains("source_mask has 2 weights, expected one per node (8)"), hepgnn::error);
  const std::vector<double> negative{1, 0, 1, 1, -1, 0, 1, 1};
  CHECK_THROWS_WITH_AS(layer.infer(x, batch::from_sizes({5, 3}), y, c, &negative),
                       doctest::Contains("source_mask[4] = -1"), hepgnn::error);
}

TEST_CASE("mpgan_message_passing source mask: gradients match finite differences (0/1 and fractional weights)") {
  rng gen(13);
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.out = 2;
  o.iterations = 2;
  o.fe_widths = {5, 4};
  o.fn_widths = {6};
  o.message_first = true;
  mpgan_message_passing<double> layer(gen, o);
  const batch b = batch::from_sizes({4, 3});
  matrix<double> x = gnn_ref::random_matrix(gen, 7, 3), dx;
  const matrix<double> w = gnn_ref::random_matrix(gen, 7, 2);
  const std::vector<double> mask{1, 0, 0.5, 1, 0, 1, 1};
  mpgan_message_passing<double>::cache c;
  matrix<double> y;
  const auto loss = [&] {
    layer.forward(x, b, y, c, &mask);
    return y.cwiseProduct(w).sum();
  };
  const auto backward = [&] {
    layer.forward(x, b, y, c, &mask);
    layer.backward(x, b, y, w, c, &dx);
  };
  hepgnn_test::check_gradients(layer, loss, backward, {{"x", &x, &dx}});
}

TEST_CASE("mpgan_message_passing dropout: after every MLP layer, finite differences with fixed masks, thread-independent") {
  rng gen(17);
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.out = 2;
  o.iterations = 2;
  o.fe_widths = {5, 4};
  o.fn_widths = {6};
  o.message_first = true;
  o.dropout = 0.5;
  mpgan_message_passing<double> layer(gen, o);
  const batch b = batch::from_sizes({4, 3});
  matrix<double> x = gnn_ref::random_matrix(gen, 7, 3), dx;
  const matrix<double> w = gnn_ref::random_matrix(gen, 7, 2);
  const std::vector<double> mask{1, 0, 1, 1, 0, 1, 1};
  mpgan_message_passing<double>::cache c;
  matrix<double> y, y_plain;
  const auto forward = [&](std::uint64_t seed) {
    rng drop(seed);
    layer.forward(x, b, y, c, &mask, &drop);
  };
  const auto loss = [&] {
    forward(5);
    return y.cwiseProduct(w).sum();
  };
  const auto backward = [&] {
    forward(5);
    layer.backward(x, b, y, w, c, &dx);
  };
  hepgnn_test::check_gradients(layer, loss, backward, {{"x", &x, &dx}});
  // A null generator is no dropout (the plain forward), another seed other masks.
  layer.forward(x, b, y_plain, c, &mask, nullptr);
  matrix<double> y_infer;
  layer.infer(x, b, y_infer, c, &mask);
  CHECK(y_plain == y_infer);
  forward(5);
  const matrix<double> y5 = y;
  CHECK(y5 != y_plain);
  forward(6);
  CHECK(y != y5);
  // The node MLP's last layer is followed by dropout too: with p = 0.5 about half the outputs are exactly 0.
  const long zeros = (y5.array() == 0.0).count();
  CHECK(zeros > 0);
  // Same bits at 1 and 2 threads (a larger batch, so the draws run in parallel blocks).
  const batch big = batch::uniform(64, 30);
  const matrix<double> xb = gnn_ref::random_matrix(gen, 64 * 30, 3);
  const std::vector<double> mb(64 * 30, 1.0);
  const auto run = [&] {
    rng drop(9);
    mpgan_message_passing<double>::cache cb;
    matrix<double> yb;
    layer.forward(xb, big, yb, cb, &mb, &drop);
    return yb;
  };
  CHECK(hepgnn_test::at_threads(1, run) == hepgnn_test::at_threads(2, run));
  o.dropout = 1.0;
  CHECK_THROWS_WITH_AS(mpgan_message_passing<double>(gen, o), doctest::Contains("dropout must be in [0, 1)"), error);
}

TEST_CASE("mpgan_message_passing message_first is the [m_i, h_i] node input (first node weight's columns permuted)") {
  mpgan_message_passing<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.iterations = 2;
  o.fe_widths = {5, 6};
  o.fn_widths = {7};
  rng g1(21), g2(21);
  mpgan_message_passing<double> plain(g1, o);
  o.message_first = true;
  mpgan_message_passing<double> first(g2, o);
  for (int t = 0; t < 2; ++t) {
    const matrix<double> wt = plain.fn(t, 0).weight();  // [W_h | W_m]
    const long F = t == 0 ? 3 : 4, Wm = 6;
    first.fn(t, 0).weight() << wt.rightCols(Wm), wt.leftCols(F);
  }
  rng gen(22);
  const matrix<double> x = gnn_ref::random_matrix(gen, 5, 3);
  mpgan_message_passing<double>::cache c;
  matrix<double> y1, y2;
  plain.infer(x, batch::single(5), y1, c);
  first.infer(x, batch::single(5), y2, c);
  CHECK(gnn_ref::rel_diff(y1, y2) < 1e-14);
  CHECK(gnn_ref::rel_diff(y1, matrix<double>::Zero(5, 4)) > 1e-3);  // not trivially equal
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
