// Global sum / mean / max and attention pooling: PyTorch reference outputs (tests/reference/edge_conv_reference.py),
// finite-difference gradients, empty graphs, bad input.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace hepgnn_test_pooling {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

const matrix<double>& ref_t(const std::string& name) {
  static const gnn_ref::tensors ref = gnn_ref::load_file("tests/data/edge_conv_reference.txt");
  return gnn_ref::at(ref, name);
}

using gnn_ref::rel_diff;

const batch pool_batch = batch::from_sizes({7, 0, 5});

template <class T>
dense<T> loaded(const std::string& name, int in, int out) {
  rng gen(1);
  dense<T> d(gen, in, out);
  d.weight() = ref_t(name + ".weight").cast<T>();
  d.bias() = ref_t(name + ".bias").cast<T>();
  return d;
}

template <class T>
void check_reference(double tol) {
  const matrix<T> x = ref_t("x").cast<T>();
  const std::pair<aggregation, const char*> kinds[] = {
      {aggregation::sum, "pool.sum"}, {aggregation::mean, "pool.mean"}, {aggregation::max, "pool.max"}};
  for (const auto& kind : kinds) {
    const aggregation a = kind.first;
    const std::string name = kind.second;
    CAPTURE(name);
    global_pool_layer<T> p(a);
    typename global_pool_layer<T>::cache c;
    matrix<T> y;
    p.forward(x, pool_batch, y, c);
    CHECK(rel_diff(y, ref_t(name)) < tol);
    p.infer(x, pool_batch, y, c);
    CHECK(rel_diff(y, ref_t(name)) < tol);
    CHECK(y.row(1).norm() == 0);  // empty graph
  }
  attention_pool<T, dense<T>> att(loaded<T>("gate_nn", 3, 1));
  typename attention_pool<T, dense<T>>::cache c;
  matrix<T> y;
  att.forward(x, pool_batch, y, c);
  CHECK(rel_diff(y, ref_t("pool.attention")) < tol);
  attention_pool<T, dense<T>, dense<T>> att2(loaded<T>("gate_nn", 3, 1), loaded<T>("nn", 3, 5));
  typename attention_pool<T, dense<T>, dense<T>>::cache c2;
  att2.infer(x, pool_batch, y, c2);
  CHECK(rel_diff(y, ref_t("pool.attention_nn")) < tol);
  CHECK(y.row(1).norm() == 0);
}

}  // namespace

TEST_CASE("global pooling and attention pooling match PyTorch (float and double)") {
  check_reference<double>(1e-10);
  check_reference<float>(1e-5);
}

TEST_CASE("pooling gradients match finite differences") {
  matrix<double> x = ref_t("x");
  rng gen(9);
  matrix<double> r(3, 3), r5(3, 5);
  for (long i = 0; i < r.size(); ++i) r.data()[i] = gen.normal();
  for (long i = 0; i < r5.size(); ++i) r5.data()[i] = gen.normal();
  for (aggregation a : {aggregation::sum, aggregation::mean, aggregation::max}) {
    CAPTURE(to_string(a));
    global_pool_layer<double> p(a);
    hepgnn_test::check_layer(p, pool_batch, x, {.dy = &r});
  }
  using mlp_gate = sequential<double, dense<double>, tanh_layer<double>, dense<double>>;
  attention_pool<double, mlp_gate, dense<double>> att(
      mlp_gate(dense<double>(gen, 3, 4), tanh_layer<double>(), dense<double>(gen, 4, 1)), dense<double>(gen, 3, 5));
  hepgnn_test::check_layer(att, pool_batch, x, {.dy = &r5});
  attention_pool<double, dense<double>> plain(dense<double>(gen, 3, 1));
  hepgnn_test::check_layer(plain, pool_batch, x, {.dy = &r});

  std::vector<std::string> names;
  att.for_each_param("pool.", [&](const std::string& n, parameter<double>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"pool.gate_nn.0.weight", "pool.gate_nn.0.bias", "pool.gate_nn.2.weight",
                                          "pool.gate_nn.2.bias", "pool.nn.weight", "pool.nn.bias"});
}

TEST_CASE("pooling rejects bad input") {
  const matrix<double> x = ref_t("x");
  matrix<double> y, dx;
  global_pool_layer<double> p(aggregation::max);
  global_pool_layer<double>::cache c;
  CHECK_THROWS_WITH_AS(p.forward(x, batch::from_sizes({7, 6}), y, c),
                       doctest::Contains("x must have one row per batch node (13), got 12"), error);
  CHECK_THROWS_WITH_AS(p.forward(x, batch{{0, 9, 4, 12}}, y, c), doctest::Contains("non-decreasing"), error);
  p.forward(x, pool_batch, y, c);
  CHECK_THROWS_WITH_AS(p.backward(x, pool_batch, y, matrix<double>(matrix<double>::Zero(2, 3)), c, &dx),
                       doctest::Contains("dy must have one row per graph (3)"), error);
  rng gen(2);
  attention_pool<double, dense<double>> bad_gate(dense<double>(gen, 3, 2));
  attention_pool<double, dense<double>>::cache ac;
  CHECK_THROWS_WITH_AS(bad_gate.forward(x, pool_batch, y, ac), doctest::Contains("one score per node"), error);
}

}  // namespace hepgnn_test_pooling
