// Bad input to dense building blocks, losses and optimizers: hepgnn::error with a message naming the argument.
#include "support/doctest.hpp"

#include <cmath>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"

namespace hepgnn_test_nn_bad_input {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using M = matrix<float>;
using doctest::Contains;

TEST_CASE("mismatched runtime widths") {
  rng g(1);
  dense<float> d(g, 4, 3);
  M y;
  no_cache c;
  CHECK_THROWS_WITH_AS(d.infer(M::Zero(2, 5), y, c), Contains("dense: input x: expected 4 columns"), error);
  CHECK_THROWS_WITH_AS(dense<float>(g, 0, 3), Contains("dense: widths must be positive"), error);
  CHECK_THROWS_WITH_AS((dense<float, 4, 3>(g, 5, 3)), Contains("contradict the compile-time widths"), error);
  mlp<float> m(g, {3, 4, 2});
  mlp<float>::cache mc;
  CHECK_THROWS_WITH_AS(m.infer(M::Zero(2, 4), y, mc), Contains("mlp: input x: expected 3 columns"), error);
  layer_norm<float> ln(3);
  layer_norm<float>::cache lc;
  CHECK_THROWS_WITH_AS(ln.infer(M::Zero(2, 4), y, lc), Contains("layer_norm: input x"), error);
  CHECK_THROWS_WITH_AS(mlp<float>(g, {3}), Contains("mlp: widths needs at least {in, out}"), error);
}

TEST_CASE("graph and batch validation: out-of-range edge indices and inconsistent offsets") {
  const std::vector<index_t> src{0, 1, 5}, dst{1, 2, 0};
  CHECK_THROWS_WITH_AS(graph::from_edges(3, src, dst), Contains("src[2] = 5 is out of range [0, 3)"), error);
  const std::vector<index_t> src2{0, 1}, dst2{1, -1};
  CHECK_THROWS_WITH_AS(graph::from_edges(3, src2, dst2), Contains("dst[1] = -1 is out of range"), error);
  graph gr;
  gr.num_nodes = 2;
  gr.offsets = {0, 2, 1};
  gr.sources = {0};
  CHECK_THROWS_WITH_AS(gr.validate(), Contains("offsets must be non-decreasing"), error);
  gr.offsets = {0, 1, 1};
  gr.sources = {7};
  CHECK_THROWS_WITH_AS(gr.validate(), Contains("sources[0] = 7 is out of range [0, 2)"), error);
  const batch b = batch::from_sizes({3, 4});
  CHECK_THROWS_WITH_AS(b.validate(8), Contains("node_offsets cover 7 nodes but the features have 8 rows"), error);
  CHECK_THROWS_WITH_AS(batch::from_sizes({3, -1}), Contains("sizes[1] must be >= 0"), error);
}

TEST_CASE("graph from an edge list is in CSR order by destination and valid") {
  const std::vector<index_t> src{2, 0, 1, 2}, dst{0, 1, 0, 2};
  const graph g = graph::from_edges(3, src, dst);
  g.validate();
  CHECK(g.offsets == std::vector<index_t>{0, 2, 3, 4});
  CHECK(g.sources == std::vector<index_t>{2, 1, 0, 2});  // order kept within each destination
  CHECK(g.destinations() == std::vector<index_t>{0, 0, 1, 2});
  const auto pos = graph::csr_position(3, dst);
  for (std::size_t e = 0; e < src.size(); ++e) CHECK(g.sources[pos[e]] == src[e]);
}

TEST_CASE("losses reject mismatched shapes, bad labels and bad targets") {
  M g;
  CHECK_THROWS_WITH_AS(mse<float>(M::Zero(3, 2), M::Zero(3, 1)), Contains("mse: pred is 3 x 2 but target is 3 x 1"), error);
  CHECK_THROWS_WITH_AS(huber<float>(M::Zero(3, 2), M::Zero(3, 2), {.delta = -1.f}), Contains("huber: delta must be > 0"), error);
  const std::vector<index_t> labels{0, 3};
  CHECK_THROWS_WITH_AS(cross_entropy<float>(M::Zero(2, 3), labels), Contains("labels[1] = 3 is out of range [0, 3)"), error);
  const std::vector<index_t> short_labels{0};
  CHECK_THROWS_WITH_AS(focal_loss<float>(M::Zero(2, 3), short_labels), Contains("one label per logits row (2)"), error);
  M t(2, 1);
  t << 0.5f, 2.f;
  CHECK_THROWS_WITH_AS(bce_with_logits<float>(M::Zero(2, 1), t), Contains("targets must be in [0, 1]"), error);
  const std::vector<float> cw{1, 2};
  const std::vector<index_t> ok_labels{0, 1};
  CHECK_THROWS_WITH_AS(cross_entropy<float>(M::Zero(2, 3), ok_labels, {.class_weights = &cw}),
                       Contains("class_weights must have one entry per class (3)"), error);
}

TEST_CASE("optimizer reused on a different model fails loudly") {
  rng g(1);
  dense<float> a(g, 3, 2), b(g, 4, 2);
  adam<float> opt;
  opt.step(a);
  CHECK_THROWS_WITH_AS(opt.step(b), Contains("parameter 'weight' has 8 entries but the optimizer state has 6"), error);
  CHECK_THROWS_WITH_AS(clip_grad_norm(a, 0.0), Contains("max_norm must be > 0"), error);
  CHECK_THROWS_WITH_AS(adam<float>({.lr = -1}), Contains("adam: lr must be >= 0"), error);
}

TEST_CASE("relu keeps NaN (as PyTorch); norms and Adam refuse settings that make NaN") {
  relu<float> act;
  M x(1, 4), y;
  x << std::nanf(""), -1.0f, 2.0f, -0.0f;
  relu<float>::cache c;
  act.forward(x, y, c);
  CHECK(std::isnan(y(0, 0)));
  CHECK(y(0, 1) == 0.0f);
  CHECK(y(0, 2) == 2.0f);
  CHECK(y(0, 3) == 0.0f);
  CHECK_FALSE(std::signbit(y(0, 3)));  // +0 for -0, as before
  CHECK_THROWS_WITH_AS(batch_norm<float>(4, 0.0f), Contains("batch_norm: eps must be finite and > 0, got 0"), error);
  CHECK_THROWS_WITH_AS(batch_norm<float>(4, 1e-5f, std::nanf("")), Contains("momentum must be in [0, 1]"), error);
  CHECK_THROWS_WITH_AS(layer_norm<float>(4, -1.0f), Contains("layer_norm: eps must be finite and > 0, got -1"), error);
  CHECK_THROWS_WITH_AS(adam<float>({.eps = 0}), Contains("adam: eps must be finite and > 0, got 0"), error);
  adam<float> opt;
  CHECK_THROWS_WITH_AS(opt.set_lr(std::nan("")), Contains("adam: lr must be >= 0 and finite"), error);
  CHECK(opt.lr() == 1e-3);
}

}  // namespace hepgnn_test_nn_bad_input
