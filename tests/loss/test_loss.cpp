// The one loss shape (loss/loss.hpp): gradients only on request and written (not added), the same value with or
// without gradients and details, weight gradients only where weights were given, and every option validated.
#include "support/doctest.hpp"

#include "support/point_sets.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/embedding.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/reconstruction.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "hepgnn/loss/sliced_wasserstein.hpp"

namespace hepgnn_test_loss {  // this file's names, apart from the other files of its unity build

using hepgnn::matrix;
using hepgnn::vector;
using hepgnn_test::random_points;
using hepgnn_test::random_weights;
using doctest::Contains;

namespace {

matrix<double> uniform(hepgnn::rng& r, long rows, long cols, double lo, double hi) {
  matrix<double> x(rows, cols);
  for (long k = 0; k < x.size(); ++k) x.data()[k] = r.uniform(lo, hi);
  return x;
}

/// A row loss as value(grad): the value without a gradient equals the value with one, and a second call into a
/// gradient holding the first result (or garbage of another shape) writes the same gradient.
void check_row_loss_shape(const char* name, const std::function<double(matrix<double>*)>& loss) {
  INFO(name);
  const double plain = loss(nullptr);
  matrix<double> grad = matrix<double>::Constant(2, 9, 7.0);  // garbage of another shape: written, not added
  CHECK(loss(&grad) == plain);
  const matrix<double> first = grad;
  CHECK(loss(&grad) == plain);
  CHECK(grad == first);
}

/// The same for a set loss: value(grad) with set_gradients, one value per graph.
void check_set_loss_shape(const char* name, const std::function<vector<double>(hepgnn::set_gradients<double>*)>& loss) {
  INFO(name);
  const vector<double> plain = loss(nullptr);
  hepgnn::set_gradients<double> grad;
  grad.xa = matrix<double>::Constant(3, 1, 7.0);
  grad.wa = vector<double>::Constant(5, 7.0);
  CHECK(loss(&grad) == plain);
  const hepgnn::set_gradients<double> first = grad;
  CHECK(loss(&grad) == plain);
  CHECK(grad.xa == first.xa);
  CHECK(grad.xb == first.xb);
  CHECK(grad.wa == first.wa);
  CHECK(grad.wb == first.wb);
}

}  // namespace

TEST_CASE("row losses: gradient only on request, written not added, the value the same either way") {
  hepgnn::rng r(1);
  const matrix<double> z = uniform(r, 9, 2, -3, 3), p = uniform(r, 9, 3, -1, 1), t = uniform(r, 9, 3, -1, 1);
  const matrix<double> y = (uniform(r, 9, 2, 0, 1).array() > 0.5).cast<double>();
  const matrix<double> logits = uniform(r, 9, 4, -2, 2), emb = uniform(r, 9, 3, -0.5, 0.5);
  const std::vector<hepgnn::index_t> labels{0, 3, 1, 1, 2, 0, 3, 2, 2}, first{0, 2, 4}, second{1, 3, 5};
  const std::vector<double> cw{0.5, 1, 2, 0.25};
  const vector<double> rw = uniform(r, 9, 1, 0, 2).col(0);
  check_row_loss_shape("bce_with_logits", [&](matrix<double>* g) { return hepgnn::bce_with_logits(z, y, {.pos_weight = 2}, g); });
  check_row_loss_shape("binary_focal_loss",
                       [&](matrix<double>* g) { return hepgnn::binary_focal_loss(z, y, {.gamma = 1.5, .alpha = 0.3}, g); });
  check_row_loss_shape("focal_loss", [&](matrix<double>* g) {
    return hepgnn::focal_loss<double>(logits, labels, {.gamma = 2, .class_weights = &cw}, g);
  });
  check_row_loss_shape("cross_entropy",
                       [&](matrix<double>* g) { return hepgnn::cross_entropy<double>(logits, labels, {}, g); });
  check_row_loss_shape("mse", [&](matrix<double>* g) { return hepgnn::mse(p, t, {.row_weights = &rw}, g); });
  check_row_loss_shape("huber", [&](matrix<double>* g) { return hepgnn::huber(p, t, {.delta = 0.4}, g); });
  check_row_loss_shape("hinge_embedding_loss", [&](matrix<double>* g) {
    return hepgnn::hinge_embedding_loss(emb, {first, second}, {second, first}, {.margin = 2}, g);
  });
  const auto bx = hepgnn::batch::from_sizes({4, 5});
  matrix<double> recon = uniform(r, 9, 3, 0.1, 1), x = uniform(r, 9, 3, 0.1, 1);
  for (auto kind : {hepgnn::set_loss_kind::chamfer, hepgnn::set_loss_kind::emd, hepgnn::set_loss_kind::sinkhorn,
                    hepgnn::set_loss_kind::energy_emd})
    check_row_loss_shape("reconstruction_loss", [&](matrix<double>* g) {
      return hepgnn::reconstruction_loss(recon, x, bx, {.kind = kind}, g).sum();
    });
  // nullptr passes where T comes from the inputs
  CHECK(hepgnn::mse(p, t, {}, nullptr) == hepgnn::mse(p, t));
}

TEST_CASE("set losses: gradient only on request, written not added, weight gradients only for given weights") {
  hepgnn::rng r(2);
  const auto ba = hepgnn::batch::from_sizes({3, 8, 5}), bb = hepgnn::batch::from_sizes({4, 8, 2});
  const auto xa = random_points(r, ba.num_nodes(), 2), xb = random_points(r, bb.num_nodes(), 2);
  const auto wa = random_weights(r, ba.num_nodes()), wb = random_weights(r, bb.num_nodes());
  hepgnn::sinkhorn_options so;
  so.reg = 0.1;
  check_set_loss_shape("chamfer", [&](hepgnn::set_gradients<double>* g) { return hepgnn::chamfer(xa, ba, xb, bb, {}, g); });
  check_set_loss_shape("emd", [&](auto* g) { return hepgnn::emd(xa, wa, ba, xb, wb, bb, {}, g); });
  check_set_loss_shape("emd, uniform", [&](auto* g) { return hepgnn::emd(xa, ba, xb, bb, {}, g); });
  check_set_loss_shape("sinkhorn", [&](auto* g) { return hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, so, g); });
  check_set_loss_shape("sliced_wasserstein",
                       [&](auto* g) { return hepgnn::sliced_wasserstein(xa, wa, ba, xb, wb, bb, {}, g); });

  hepgnn::set_gradients<double> g;
  hepgnn::emd(xa, wa, ba, xb, wb, bb, {}, &g);
  CHECK(g.xa.rows() == xa.rows());
  CHECK(g.xb.rows() == xb.rows());
  CHECK(g.wa.size() == wa.size());
  CHECK(g.wb.size() == wb.size());
  for (auto* loss : {+[](const matrix<double>& a, const hepgnn::batch& x, const matrix<double>& b,
                         const hepgnn::batch& y, hepgnn::set_gradients<double>* out) { hepgnn::emd(a, x, b, y, {}, out); },
                     +[](const matrix<double>& a, const hepgnn::batch& x, const matrix<double>& b,
                         const hepgnn::batch& y, hepgnn::set_gradients<double>* out) {
                       hepgnn::sinkhorn(a, x, b, y, {.reg = 0.1}, out);
                     },
                     +[](const matrix<double>& a, const hepgnn::batch& x, const matrix<double>& b,
                         const hepgnn::batch& y, hepgnn::set_gradients<double>* out) { hepgnn::chamfer(a, x, b, y, {}, out); }}) {
    loss(xa, ba, xb, bb, &g);
    CHECK(g.xa.rows() == xa.rows());
    CHECK(g.wa.size() == 0);
    CHECK(g.wb.size() == 0);
  }
  // sliced Wasserstein does not differentiate the weights: empty, not zero
  hepgnn::sliced_wasserstein(xa, wa, ba, xb, wb, bb, {}, &g);
  CHECK(g.wa.size() == 0);
}

TEST_CASE("set losses: details are optional and leave the value unchanged") {
  hepgnn::rng r(3);
  const auto xa = random_points(r, 7, 2), xb = random_points(r, 9, 2);
  const auto wa = random_weights(r, 7), wb = random_weights(r, 9);
  hepgnn::emd_details<double> ed;
  CHECK(hepgnn::emd(xa, wa, xb, wb, {}, nullptr, &ed) == hepgnn::emd(xa, wa, xb, wb));
  CHECK(ed.flow.size() == 1);
  CHECK(ed.flow[0].rows() == 7);
  CHECK(ed.flow[0].cols() == 9);
  hepgnn::sinkhorn_details<double> sd;
  CHECK(hepgnn::sinkhorn(xa, wa, xb, wb, {}, nullptr, &sd) == hepgnn::sinkhorn(xa, wa, xb, wb));
  CHECK(sd.iterations.size() == 1);
  CHECK(sd.plan[0].rows() == 7);
  hepgnn::chamfer_details cd;
  CHECK(hepgnn::chamfer(xa, xb, {}, nullptr, &cd) == hepgnn::chamfer(xa, xb));
  CHECK(cd.nearest_in_b.size() == 7);
  CHECK(cd.nearest_in_a.size() == 9);
  // the pair calls are the batched calls on one graph
  const auto one_a = hepgnn::batch::single(7), one_b = hepgnn::batch::single(9);
  CHECK(hepgnn::sliced_wasserstein(xa, wa, xb, wb) == hepgnn::sliced_wasserstein(xa, wa, one_a, xb, wb, one_b)[0]);
  CHECK(hepgnn::chamfer(xa, xb) == hepgnn::chamfer(xa, one_a, xb, one_b)[0]);
}

TEST_CASE("loss options are validated: a clear error naming the option") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  auto throws = [](auto&& f, const char* what) { CHECK_THROWS_WITH_AS(f(), Contains(what), hepgnn::error); };
  hepgnn::rng r(4);
  const matrix<double> z = uniform(r, 4, 1, -2, 2), y = matrix<double>::Ones(4, 1);
  throws([&] { hepgnn::bce_with_logits(z, y, {.pos_weight = -1}); },
         "bce_with_logits: pos_weight must be finite and >= 0, got -1");
  throws([&] { hepgnn::bce_with_logits(z, y, {.pos_weight = nan}); }, "bce_with_logits: pos_weight must be finite");
  throws([&] { hepgnn::binary_focal_loss(z, y, {.gamma = nan}); }, "binary_focal_loss: gamma must be >= 0 and finite");
  throws([&] { hepgnn::binary_focal_loss(z, y, {.gamma = -1}); }, "binary_focal_loss: gamma must be >= 0 and finite");
  throws([&] { hepgnn::binary_focal_loss(z, y, {.alpha = 1.5}); }, "binary_focal_loss: alpha must be <= 1");
  throws([&] { hepgnn::binary_focal_loss(z, y, {.alpha = nan}); }, "binary_focal_loss: alpha must be <= 1");

  const matrix<double> logits = uniform(r, 3, 3, -1, 1);
  const std::vector<hepgnn::index_t> labels{0, 2, 1};
  const std::vector<double> negative{1, -0.5, 1}, not_a_number{1, 1, nan};
  throws([&] { hepgnn::cross_entropy<double>(logits, labels, {.class_weights = &negative}); },
         "cross_entropy: class_weights[1] must be finite and >= 0, got -0.5");
  throws([&] { hepgnn::focal_loss<double>(logits, labels, {.class_weights = &not_a_number}); },
         "focal_loss: class_weights[2] must be finite and >= 0, got nan");
  throws([&] { hepgnn::focal_loss<double>(logits, labels, {.gamma = inf}); }, "focal_loss: gamma must be >= 0 and finite");

  const matrix<double> p = uniform(r, 3, 2, -1, 1), t = uniform(r, 3, 2, -1, 1);
  vector<double> w(3);
  w << 1, nan, 1;
  throws([&] { hepgnn::mse(p, t, {.row_weights = &w}); }, "mse: row_weights[1] must be finite and >= 0, got nan");
  w << 1, 1, -2;
  throws([&] { hepgnn::huber(p, t, {.row_weights = &w}); }, "huber: row_weights[2] must be finite and >= 0, got -2");
  throws([&] { hepgnn::huber(p, t, {.delta = inf}); }, "huber: delta must be > 0 and finite, got inf");

  const std::vector<hepgnn::index_t> a{0}, b{1};
  throws([&] { hepgnn::hinge_embedding_loss(p, {a, b}, {}, {.margin = 0}); },
         "hinge_embedding_loss: margin must be > 0 and finite, got 0");
  throws([&] { hepgnn::hinge_embedding_loss(p, {a, b}, {}, {.negative_weight = -1}); },
         "hinge_embedding_loss: negative_weight must be >= 0 and finite, got -1");

  const auto xa = random_points(r, 5, 2), xb = random_points(r, 6, 2);
  const auto bx = hepgnn::batch::single(5), by = hepgnn::batch::single(6);
  throws([&] { hepgnn::emd(xa, xb, {.max_pivots = -1}); }, "emd: max_pivots must be >= 0 (0: automatic), got -1");
  throws([&] { hepgnn::emd(xa, bx, xb, by, {.max_pivots = -1}); }, "emd: max_pivots must be >= 0");
  // reg so small that cost / reg leaves double precision: inf and NaN gradients before this check
  throws([&] { hepgnn::sinkhorn(xa, xb, {.reg = 1e-300}); }, "sinkhorn: reg = 1e-300 is too small for costs up to");
  throws([&] { hepgnn::sinkhorn(xa, bx, xb, by, {.reg = 1e-300}); }, "sinkhorn: reg = 1e-300 is too small");
  const matrix<double> M = matrix<double>::Constant(5, 6, 2.0);
  throws([&] { hepgnn::sinkhorn(vector<double>::Ones(5).eval(), vector<double>::Ones(6).eval(), M, {.reg = 1e-300}); },
         "sinkhorn: reg = 1e-300 is too small for costs up to 2");
  throws([&] { hepgnn::sinkhorn(xa, xb, {.reg = nan}); }, "sinkhorn: reg must be finite and > 0, got nan");
  CHECK(std::isfinite(hepgnn::sinkhorn(xa, xb, {.reg = 1e-6})));  // small but representable: accepted
}

}  // namespace hepgnn_test_loss
