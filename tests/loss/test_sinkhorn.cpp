// Sinkhorn: POT ot.sinkhorn2(method='sinkhorn_log') references (tests/reference/set_losses_pot.py), closed forms,
// finite-difference gradients (implicit differentiation at a converged fixed point), batching, bad input.
#include "support/doctest.hpp"

#include "support/point_sets.hpp"

#include <cmath>
#include <fstream>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "hepgnn/train/gradient_check.hpp"
#include "support/data.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_sinkhorn {  // this file's names, apart from the other files of its unity build

using hepgnn::matrix;
using hepgnn_test::random_points;
using hepgnn_test::random_weights;
using hepgnn::vector;

TEST_CASE("sinkhorn matches POT ot.sinkhorn2(method='sinkhorn_log') (1e-5 relative)") {
  std::ifstream in(hepgnn_test::source_path("tests/data/set_losses_pot.txt"));
  REQUIRE(in.good());
  int count = 0, checked = 0;
  in >> count;
  for (int k = 0; k < count; ++k) {
    int kind, n, m, d, iters;
    double beta, reg, thr, value;
    in >> kind >> n >> m >> d >> beta >> reg >> iters >> thr >> value;
    matrix<double> xa(n, d), xb(m, d);
    vector<double> wa(n), wb(m);
    for (int t = 0; t < n * d; ++t) in >> xa.data()[t];
    for (int t = 0; t < n; ++t) in >> wa[t];
    for (int t = 0; t < m * d; ++t) in >> xb.data()[t];
    for (int t = 0; t < m; ++t) in >> wb[t];
    REQUIRE(in.good());
    if (kind != 1) continue;
    hepgnn::sinkhorn_options opt;
    opt.reg = reg;
    opt.max_iterations = iters;
    opt.tolerance = thr;
    opt.cost.beta = beta;
    const auto r = hepgnn::sinkhorn(xa, wa, xb, wb, opt);
    INFO("n = " << n << ", m = " << m << ", reg = " << reg << ", iterations " << r.iterations);
    CHECK(std::abs(r.cost - value) <= 1e-5 * std::abs(value));
    // the cost-matrix call gives the same numbers
    matrix<double> M(n, m);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) M(i, j) = std::pow((xa.row(i) - xb.row(j)).norm(), beta);
    const auto rm = hepgnn::sinkhorn(wa, wb, M, opt);
    CHECK(rm.cost == doctest::Approx(r.cost).epsilon(1e-12));
    // the plan's row marginals are exact after the u update (as in POT), its cost is <plan, M>
    CHECK((r.plan.rowwise().sum() - wa / wa.sum()).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(r.plan.cwiseProduct(M).sum() == doctest::Approx(r.cost).epsilon(1e-12));
    ++checked;
  }
  CHECK(checked == 5);
}

TEST_CASE("sinkhorn closed forms and small reg") {
  matrix<double> a(1, 2), b(1, 2);
  a << 0.1, 0.2;
  b << -0.3, 0.5;
  const auto r = hepgnn::sinkhorn(a, vector<double>{}, b, vector<double>{});
  CHECK(r.cost == doctest::Approx(0.5).epsilon(1e-14));
  CHECK(r.plan(0, 0) == doctest::Approx(1.0).epsilon(1e-14));
  // reg -> 0 approaches the exact EMD; no NaN at tiny reg (kernel entries underflow without the log domain)
  hepgnn::rng rr(2);
  const auto x = random_points(rr, 15, 2), y = random_points(rr, 18, 2);
  const auto wx = random_weights(rr, 15), wy = random_weights(rr, 18);
  const double exact = hepgnn::emd(x, wx, y, wy).cost;
  hepgnn::sinkhorn_options opt;
  opt.reg = 1e-4;  // exp(-M / reg) underflows to 0 for most entries: the log-domain fallback keeps it finite
  opt.max_iterations = 200;
  const auto tiny = hepgnn::sinkhorn(x, wx, y, wy, opt);
  CHECK(std::isfinite(tiny.cost));
  CHECK(tiny.plan.allFinite());
  CHECK((tiny.plan.rowwise().sum() - wx / wx.sum()).cwiseAbs().maxCoeff() < 1e-12);
  opt.reg = 3e-3;
  opt.max_iterations = 100000;
  opt.tolerance = 1e-12;
  const auto s = hepgnn::sinkhorn(x, wx, y, wy, opt);
  INFO("iterations " << s.iterations << ", marginal error " << s.marginal_error);
  CHECK(s.marginal_error < 1e-12);
  CHECK(s.cost == doctest::Approx(exact).epsilon(2e-2));
  CHECK(s.cost >= exact - 1e-9);
}

TEST_CASE("sinkhorn: a zero-weight point is the same as no point") {
  hepgnn::rng r(12);
  const auto x = random_points(r, 10, 2), y = random_points(r, 9, 2);
  auto wx = random_weights(r, 10);
  const auto wy = random_weights(r, 9);
  wx[4] = 0;
  matrix<double> x_drop(9, 2);
  vector<double> w_drop(9);
  for (int i = 0, k = 0; i < 10; ++i)
    if (i != 4) x_drop.row(k) = x.row(i), w_drop[k++] = wx[i];
  hepgnn::sinkhorn_options opt;
  opt.reg = 0.05;
  opt.tolerance = 1e-13;  // converged, so summation-order rounding cannot move the stopping iteration's cost
  opt.max_iterations = 100000;
  const auto with = hepgnn::sinkhorn(x, wx, y, wy, opt), without = hepgnn::sinkhorn(x_drop, w_drop, y, wy, opt);
  CHECK(with.cost == doctest::Approx(without.cost).epsilon(1e-10));
  CHECK(with.plan.row(4).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("sinkhorn gradients match finite differences at a converged fixed point") {
  hepgnn::rng r(4);
  for (double beta : {1.0, 2.0}) {
    auto xa = random_points(r, 6, 2), xb = random_points(r, 8, 2);
    auto wa = random_weights(r, 6), wb = random_weights(r, 8);
    hepgnn::sinkhorn_options opt;
    opt.reg = 0.3;
    opt.max_iterations = 100000;
    opt.tolerance = 1e-15;
    opt.cost.beta = beta;
    opt.gradient = true;
    const auto g = hepgnn::sinkhorn(xa, wa, xb, wb, opt);
    auto loss = [&] { return hepgnn::sinkhorn(xa, wa, xb, wb, opt).cost; };
    auto e = hepgnn::check_input_gradient(xa, g.grad_xa, loss, "xa");
    e.merge(hepgnn::check_input_gradient(xb, g.grad_xb, loss, "xb"));
    e.merge(hepgnn::check_gradient(wa.data(), g.grad_a.data(), wa.size(), loss, "wa"));
    e.merge(hepgnn::check_gradient(wb.data(), g.grad_b.data(), wb.size(), loss, "wb"));
    INFO("beta " << beta << ": " << e.worst << ": analytic " << e.analytic << ", numeric " << e.numeric);
    CHECK(e.max_error < 1e-6);
    // cost-matrix gradient
    matrix<double> M(6, 8);
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 8; ++j) M(i, j) = r.uniform(0, 2);
    const auto gm = hepgnn::sinkhorn(wa, wb, M, opt);
    auto lm = [&] { return hepgnn::sinkhorn(wa, wb, M, opt).cost; };
    const auto em = hepgnn::check_input_gradient(M, gm.grad_M, lm, "M");
    INFO(em.worst << ": analytic " << em.analytic << ", numeric " << em.numeric);
    CHECK(em.max_error < 1e-6);
  }
}

TEST_CASE("batched sinkhorn equals the per-pair calls and does not depend on the thread count") {
  hepgnn::rng r(8);
  const auto ba = hepgnn::batch::from_sizes({4, 20, 1, 9}), bb = hepgnn::batch::from_sizes({7, 20, 3, 9});
  const auto xa = random_points(r, ba.num_nodes(), 3), xb = random_points(r, bb.num_nodes(), 3);
  const auto wa = random_weights(r, ba.num_nodes()), wb = random_weights(r, bb.num_nodes());
  hepgnn::sinkhorn_options opt;
  opt.reg = 0.05;
  opt.gradient = true;
  const auto all = hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, opt);
  for (hepgnn::index_t g = 0; g < ba.num_graphs(); ++g) {
    const matrix<double> pa = xa.middleRows(ba.begin(g), ba.size(g)), pb = xb.middleRows(bb.begin(g), bb.size(g));
    const vector<double> qa = wa.segment(ba.begin(g), ba.size(g)), qb = wb.segment(bb.begin(g), bb.size(g));
    const auto one = hepgnn::sinkhorn(pa, qa, pb, qb, opt);
    CHECK(all.cost[g] == one.cost);
    CHECK(all.plan[g] == one.plan);
    CHECK(all.grad_xb.middleRows(bb.begin(g), bb.size(g)) == one.grad_xb);
    CHECK(all.grad_wa.segment(ba.begin(g), ba.size(g)) == one.grad_a);
  }
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto serial = hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, opt);
  omp_set_num_threads(saved);
  CHECK(serial.cost == all.cost);
  CHECK(serial.grad_xa == all.grad_xa);
#endif
  // float inputs
  const matrix<float> fa = xa.cast<float>(), fb = xb.cast<float>();
  const vector<float> fwa = wa.cast<float>(), fwb = wb.cast<float>();
  const auto f = hepgnn::sinkhorn(fa, fwa, ba, fb, fwb, bb, opt);
  CHECK((f.cost.cast<double>() - all.cost).cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("sinkhorn rejects bad input") {
  matrix<double> a(3, 2), b(4, 2), c(2, 3), e(0, 2);
  a.setZero();
  b.setOnes();
  c.setOnes();
  vector<double> wa(3), wb(4);
  wa << 1, 2, 3;
  wb << 1, 1, 1, 1;
  auto throws = [](auto&& f, const char* what) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(what), hepgnn::error);
  };
  throws([&] { hepgnn::sinkhorn(a, wa, c, vector<double>{}); }, "sinkhorn: xa and xb must have the same number of columns");
  throws([&] { hepgnn::sinkhorn(e, vector<double>{}, b, wb); }, "sinkhorn: point sets must not be empty");
  vector<double> neg = wa;
  neg[0] = -2;
  throws([&] { hepgnn::sinkhorn(a, neg, b, wb); }, "sinkhorn: wa must be finite and >= 0, got -2 at index 0");
  throws([&] { hepgnn::sinkhorn(a, vector<double>::Zero(3).eval(), b, wb); },
         "needs a positive total weight on both sides, got 0 and 4");
  hepgnn::sinkhorn_options bad;
  bad.reg = 0;
  throws([&] { hepgnn::sinkhorn(a, wa, b, wb, bad); }, "sinkhorn: reg must be finite and > 0, got 0");
  bad = {};
  bad.max_iterations = 0;
  throws([&] { hepgnn::sinkhorn(a, wa, b, wb, bad); }, "sinkhorn: max_iterations must be >= 1, got 0");
  matrix<double> M = matrix<double>::Ones(3, 4);
  throws([&] { hepgnn::sinkhorn(wa, wa, M); }, "sinkhorn: a and b must have M.rows() = 3 and M.cols() = 4 entries, got 3 and 3");
  M(2, 1) = std::nan("");
  throws([&] { hepgnn::sinkhorn(wa, wb, M); }, "sinkhorn: M: non-finite value");
  vector<double> inf = wb;
  inf[3] = INFINITY;
  throws([&] { hepgnn::sinkhorn(a, wa, b, inf); }, "sinkhorn: wb must be finite and >= 0");
}

}  // namespace hepgnn_test_sinkhorn
