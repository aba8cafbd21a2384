// Sinkhorn: POT ot.sinkhorn2(method='sinkhorn_log') references (tests/reference/set_losses_pot.py), closed forms,
// finite-difference gradients (implicit differentiation at a converged fixed point), batching, bad input.
#include "support/doctest.hpp"
#include "support/thread_count.hpp"

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
    hepgnn::sinkhorn_details<double> r;
    const double cost = hepgnn::sinkhorn(xa, wa, xb, wb, opt, nullptr, &r);
    INFO("n = " << n << ", m = " << m << ", reg = " << reg << ", iterations " << r.iterations[0]);
    CHECK(std::abs(cost - value) <= 1e-5 * std::abs(value));
    // the cost-matrix call gives the same numbers
    matrix<double> M(n, m);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) M(i, j) = std::pow((xa.row(i) - xb.row(j)).norm(), beta);
    const double rm = hepgnn::sinkhorn(wa, wb, M, opt);
    CHECK(rm == doctest::Approx(cost).epsilon(1e-12));
    // the plan's row marginals are exact after the u update (as in POT), its cost is <plan, M>
    CHECK((r.plan[0].rowwise().sum() - wa / wa.sum()).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(r.plan[0].cwiseProduct(M).sum() == doctest::Approx(cost).epsilon(1e-12));
    ++checked;
  }
  CHECK(checked == 5);
}

TEST_CASE("sinkhorn closed forms and small reg") {
  matrix<double> a(1, 2), b(1, 2);
  a << 0.1, 0.2;
  b << -0.3, 0.5;
  hepgnn::sinkhorn_details<double> r;
  const double cost = hepgnn::sinkhorn(a, vector<double>{}, b, vector<double>{}, {}, nullptr, &r);
  CHECK(cost == doctest::Approx(0.5).epsilon(1e-14));
  CHECK(r.plan[0](0, 0) == doctest::Approx(1.0).epsilon(1e-14));
  // reg -> 0 approaches the exact EMD; no NaN at tiny reg (kernel entries underflow without the log domain)
  hepgnn::rng rr(2);
  const auto x = random_points(rr, 15, 2), y = random_points(rr, 18, 2);
  const auto wx = random_weights(rr, 15), wy = random_weights(rr, 18);
  const double exact = hepgnn::emd(x, wx, y, wy);
  hepgnn::sinkhorn_options opt;
  opt.reg = 1e-4;  // exp(-M / reg) underflows to 0 for most entries: the log-domain fallback keeps it finite
  opt.max_iterations = 200;
  hepgnn::sinkhorn_details<double> tiny;
  CHECK(std::isfinite(hepgnn::sinkhorn(x, wx, y, wy, opt, nullptr, &tiny)));
  CHECK(tiny.plan[0].allFinite());
  CHECK((tiny.plan[0].rowwise().sum() - wx / wx.sum()).cwiseAbs().maxCoeff() < 1e-12);
  opt.reg = 3e-3;
  opt.max_iterations = 100000;
  opt.tolerance = 1e-12;
  hepgnn::sinkhorn_details<double> s;
  const double s_cost = hepgnn::sinkhorn(x, wx, y, wy, opt, nullptr, &s);
  INFO("iterations " << s.iterations[0] << ", marginal error " << s.marginal_error[0]);
  CHECK(s.marginal_error[0] < 1e-12);
  CHECK(s_cost == doctest::Approx(exact).epsilon(2e-2));
  CHECK(s_cost >= exact - 1e-9);
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
  hepgnn::sinkhorn_details<double> with;
  const double with_cost = hepgnn::sinkhorn(x, wx, y, wy, opt, nullptr, &with);
  const double without = hepgnn::sinkhorn(x_drop, w_drop, y, wy, opt);
  CHECK(with_cost == doctest::Approx(without).epsilon(1e-10));
  CHECK(with.plan[0].row(4).cwiseAbs().maxCoeff() == 0.0);
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
    hepgnn::set_gradients<double> g;
    hepgnn::sinkhorn(xa, wa, xb, wb, opt, &g);
    auto loss = [&] { return hepgnn::sinkhorn(xa, wa, xb, wb, opt); };
    auto e = hepgnn::check_input_gradient(xa, g.xa, loss, "xa");
    e.merge(hepgnn::check_input_gradient(xb, g.xb, loss, "xb"));
    e.merge(hepgnn::check_gradient(wa.data(), g.wa.data(), wa.size(), loss, "wa"));
    e.merge(hepgnn::check_gradient(wb.data(), g.wb.data(), wb.size(), loss, "wb"));
    INFO("beta " << beta << ": " << e.worst << ": analytic " << e.analytic << ", numeric " << e.numeric);
    CHECK(e.max_error < 1e-6);
    // cost-matrix gradient
    matrix<double> M(6, 8);
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 8; ++j) M(i, j) = r.uniform(0, 2);
    hepgnn::cost_matrix_gradients<double> gm;
    hepgnn::sinkhorn(wa, wb, M, opt, &gm);
    auto lm = [&] { return hepgnn::sinkhorn(wa, wb, M, opt); };
    auto em = hepgnn::check_input_gradient(M, gm.M, lm, "M");
    em.merge(hepgnn::check_gradient(wa.data(), gm.a.data(), wa.size(), lm, "a"));
    em.merge(hepgnn::check_gradient(wb.data(), gm.b.data(), wb.size(), lm, "b"));
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
  hepgnn::set_gradients<double> all;
  hepgnn::sinkhorn_details<double> all_details;
  const vector<double> all_cost = hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, opt, &all, &all_details);
  for (hepgnn::index_t g = 0; g < ba.num_graphs(); ++g) {
    const matrix<double> pa = xa.middleRows(ba.begin(g), ba.size(g)), pb = xb.middleRows(bb.begin(g), bb.size(g));
    const vector<double> qa = wa.segment(ba.begin(g), ba.size(g)), qb = wb.segment(bb.begin(g), bb.size(g));
    hepgnn::set_gradients<double> one;
    hepgnn::sinkhorn_details<double> one_details;
    const double one_cost = hepgnn::sinkhorn(pa, qa, pb, qb, opt, &one, &one_details);
    CHECK(all_cost[g] == one_cost);
    CHECK(all_details.plan[g] == one_details.plan[0]);
    CHECK(all.xb.middleRows(bb.begin(g), bb.size(g)) == one.xb);
    CHECK(all.wa.segment(ba.begin(g), ba.size(g)) == one.wa);
  }
  // 1 and 3 threads, whatever OMP_NUM_THREADS says: the same values and gradients, bit for bit
  hepgnn::set_gradients<double> serial, threaded;
  const vector<double> serial_cost =
      hepgnn_test::at_threads(1, [&] { return hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, opt, &serial); });
  const vector<double> threaded_cost =
      hepgnn_test::at_threads(3, [&] { return hepgnn::sinkhorn(xa, wa, ba, xb, wb, bb, opt, &threaded); });
  CHECK(serial_cost == all_cost);
  CHECK(serial_cost == threaded_cost);
  CHECK(serial.xa == threaded.xa);
  CHECK(serial.xb == threaded.xb);
  CHECK(serial.wa == threaded.wa);
  CHECK(serial.wb == threaded.wb);
  // float inputs
  const matrix<float> fa = xa.cast<float>(), fb = xb.cast<float>();
  const vector<float> fwa = wa.cast<float>(), fwb = wb.cast<float>();
  hepgnn::set_gradients<float> fg;
  const vector<float> f = hepgnn::sinkhorn(fa, fwa, ba, fb, fwb, bb, opt, &fg);
  CHECK((f.cast<double>() - all_cost).cwiseAbs().maxCoeff() < 1e-5);
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
