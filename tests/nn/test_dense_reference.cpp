// Dense layers, norms, losses and optimizers against PyTorch (tests/reference/dense_reference.py).
#include "support/doctest.hpp"

#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/sgd.hpp"
#include "support/reference.hpp"

namespace hepgnn_test_dense_reference {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using hepgnn_test::max_rel_diff;
using M = matrix<double>;

namespace {
const auto& ref() {
  static const auto r = hepgnn_test::read_reference("tests/data/dense_reference.txt");
  return r;
}
const M x = hepgnn_test::wave<M>(5, 4, 0.1);

template <class P>
double activation_diff(const char* name) {
  activation<double, P> a;
  M y;
  no_cache c;
  a.infer(x, y, c);
  return max_rel_diff(y, ref().at(name));
}
}  // namespace

TEST_CASE("activations match PyTorch's defaults") {
  CHECK(activation_diff<act::relu>("relu") < 1e-14);
  CHECK(activation_diff<act::leaky_relu>("leaky_relu") < 1e-14);
  CHECK(activation_diff<act::elu>("elu") < 1e-14);
  CHECK(activation_diff<act::gelu>("gelu") < 1e-14);
  CHECK(activation_diff<act::silu>("silu") < 1e-14);
  CHECK(activation_diff<act::tanh>("tanh") < 1e-14);
  CHECK(activation_diff<act::sigmoid>("sigmoid") < 1e-14);
}

TEST_CASE("dense matches torch.nn.Linear with the same [out, in] weights") {
  rng g(3);
  dense<double, 4, 3> lin(g);
  lin.weight() = hepgnn_test::wave<M>(3, 4, 0.5, 0.5);
  lin.bias() = hepgnn_test::wave<M>(1, 3, 0.9, 0.3);
  M y;
  no_cache c;
  lin.infer(x, y, c);
  CHECK(max_rel_diff(y, ref().at("linear")) < 1e-14);
}

TEST_CASE("layer_norm and batch_norm (train, running statistics, eval) match PyTorch") {
  layer_norm<double> ln(4);
  ln.weight() = hepgnn_test::wave<M>(1, 4, 1.3, 1.0);
  ln.bias() = hepgnn_test::wave<M>(1, 4, 1.7, 0.5);
  M y;
  layer_norm<double>::cache lc;
  ln.infer(x, y, lc);
  CHECK(max_rel_diff(y, ref().at("layer_norm")) < 1e-12);

  batch_norm<double> bn(4);
  bn.weight() = hepgnn_test::wave<M>(1, 4, 2.1, 1.0);
  bn.bias() = hepgnn_test::wave<M>(1, 4, 2.3, 0.5);
  batch_norm<double>::cache bc;
  bn.forward(x, y, bc);
  CHECK(max_rel_diff(y, ref().at("batch_norm_train")) < 1e-12);
  CHECK(max_rel_diff(bn.running_mean(), ref().at("batch_norm_running_mean")) < 1e-12);
  CHECK(max_rel_diff(bn.running_var(), ref().at("batch_norm_running_var")) < 1e-12);
  const M half = x * 0.5;
  bn.infer(half, y, bc);
  CHECK(max_rel_diff(y, ref().at("batch_norm_eval")) < 1e-12);
}

TEST_CASE("regression and classification losses match PyTorch, value and gradient") {
  const M pred = hepgnn_test::wave<M>(5, 4, 0.2), target = hepgnn_test::wave<M>(5, 4, 1.1);
  M g;
  CHECK(std::abs(mse(pred, target, {}, &g) - ref().at("mse")[0]) < 1e-14);
  CHECK(max_rel_diff(g, ref().at("mse_grad")) < 1e-14);
  CHECK(std::abs(huber(pred, target, {.delta = 0.7}, &g) - ref().at("huber")[0]) < 1e-14);
  CHECK(max_rel_diff(g, ref().at("huber_grad")) < 1e-14);

  const M logits = hepgnn_test::wave<M>(5, 1, 0.4, 3.0);
  M y(5, 1);
  y << 1, 0, 1, 1, 0;
  CHECK(std::abs(bce_with_logits(logits, y, {.pos_weight = 2.5}, &g) - ref().at("bce")[0]) < 1e-14);
  CHECK(max_rel_diff(g, ref().at("bce_grad")) < 1e-14);

  const M logits3 = hepgnn_test::wave<M>(5, 3, 0.8, 2.0);
  const std::vector<index_t> labels{0, 2, 1, 2, 0};
  const std::vector<double> weights{0.5, 2.0, 1.0};
  CHECK(std::abs(cross_entropy<double>(logits3, labels, {.class_weights = &weights}, &g) - ref().at("cross_entropy")[0]) < 1e-14);
  CHECK(max_rel_diff(g, ref().at("cross_entropy_grad")) < 1e-14);
}

namespace {
/// f(w) = sum(c w^2) + sum(w), the reference script's objective, as a "model" with one parameter.
struct quadratic {
  M w = hepgnn_test::wave<M>(1, 6, 0.3), grad = M::Zero(1, 6);
  M c = (hepgnn_test::wave<M>(1, 6, 2.7, 1.0).array().abs() + 0.1).matrix();
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "w", make_parameter(w, grad, {6}));
  }
  void backward() { grad = (2 * c.array() * w.array() + 1).matrix(); }
};
template <class Opt>
M run5(Opt opt) {
  quadratic q;
  for (int i = 0; i < 5; ++i) {
    q.backward();
    opt.step(q);
  }
  return q.w;
}
}  // namespace

TEST_CASE("sgd (momentum, nesterov, weight decay), adam and adamw follow PyTorch's trajectories") {
  CHECK(max_rel_diff(run5(sgd<double>({.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01})),
                     ref().at("sgd")) < 1e-13);
  CHECK(max_rel_diff(run5(adam<double>({.lr = 0.1, .weight_decay = 0.01})), ref().at("adam")) < 1e-13);
  CHECK(max_rel_diff(run5(adamw<double>({.lr = 0.1, .weight_decay = 0.05})), ref().at("adamw")) < 1e-13);
}

}  // namespace hepgnn_test_dense_reference
