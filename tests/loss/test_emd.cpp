// Exact EMD: POT ot.emd2 references (tests/reference/set_losses_pot.py), real-jet references from energyflow + POT
// (shared data), closed forms, brute force, metric properties, finite-difference gradients and bad input.
#include "support/doctest.hpp"
#include "support/thread_count.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/train/gradient_check.hpp"
#include "support/data.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_emd {  // this file's names, apart from the other files of its unity build

using hepgnn::matrix;
using hepgnn::vector;

namespace {

struct pot_case {
  int kind = 0, n = 0, m = 0, d = 0;
  double beta = 1, reg = 0, thr = 0, value = 0;
  long iters = 0;
  matrix<double> xa, xb;
  vector<double> wa, wb;
};

std::vector<pot_case> read_pot_cases() {
  std::ifstream in(hepgnn_test::source_path("tests/data/set_losses_pot.txt"));
  REQUIRE(in.good());
  int count = 0;
  in >> count;
  std::vector<pot_case> cases(count);
  for (auto& c : cases) {
    in >> c.kind >> c.n >> c.m >> c.d >> c.beta >> c.reg >> c.iters >> c.thr >> c.value;
    c.xa.resize(c.n, c.d);
    c.xb.resize(c.m, c.d);
    c.wa.resize(c.n);
    c.wb.resize(c.m);
    for (int k = 0; k < c.n * c.d; ++k) in >> c.xa.data()[k];
    for (int k = 0; k < c.n; ++k) in >> c.wa[k];
    for (int k = 0; k < c.m * c.d; ++k) in >> c.xb.data()[k];
    for (int k = 0; k < c.m; ++k) in >> c.wb[k];
  }
  REQUIRE(in.good());
  return cases;
}

matrix<double> random_points(hepgnn::rng& r, int n, int d) {
  matrix<double> x(n, d);
  for (int k = 0; k < n * d; ++k) x.data()[k] = r.uniform(-1, 1);
  return x;
}

vector<double> random_weights(hepgnn::rng& r, int n) {
  vector<double> w(n);
  for (int k = 0; k < n; ++k) w[k] = r.uniform(0.1, 1.0);
  return w;
}

}  // namespace

TEST_CASE("emd matches POT ot.emd2 on fixed random sets (1e-6 relative)") {
  int checked = 0;
  for (const auto& c : read_pot_cases()) {
    if (c.kind != 0) continue;
    hepgnn::emd_options opt;
    opt.cost.beta = c.beta;
    for (bool fast : {true, false}) {
      opt.assignment_fast_path = fast;
      hepgnn::emd_details<double> r;
      const double cost = hepgnn::emd(c.xa, c.wa, c.xb, c.wb, opt, nullptr, &r);
      const matrix<double>& flow = r.flow[0];
      INFO("n = " << c.n << ", m = " << c.m << ", beta = " << c.beta << ", fast path " << fast);
      CHECK(r.converged);
      CHECK(std::abs(cost - c.value) <= 1e-6 * std::abs(c.value) + 1e-12);
      // the flow is feasible and carries the cost
      const vector<double> rows = flow.rowwise().sum(), cols = flow.colwise().sum().transpose();
      CHECK((rows - c.wa / c.wa.sum()).cwiseAbs().maxCoeff() < 1e-12);
      CHECK((cols - c.wb / c.wb.sum()).cwiseAbs().maxCoeff() < 1e-12);
      CHECK(flow.minCoeff() >= 0);
      double fc = 0;
      for (int i = 0; i < c.n; ++i)
        for (int j = 0; j < c.m; ++j) fc += flow(i, j) * std::pow((c.xa.row(i) - c.xb.row(j)).norm(), c.beta);
      CHECK(std::abs(fc - cost) < 1e-12);
      // dual feasibility and strong duality
      double dual = 0;
      for (int i = 0; i < c.n; ++i) dual += r.u[0][i] * c.wa[i] / c.wa.sum();
      for (int j = 0; j < c.m; ++j) dual += r.v[0][j] * c.wb[j] / c.wb.sum();
      CHECK(std::abs(dual - cost) < 1e-9);
      ++checked;
    }
  }
  CHECK(checked == 20);
}

TEST_CASE("emd closed forms: one particle vs one particle, identical sets, uniform brute force") {
  matrix<double> a(1, 2), b(1, 2);
  a << 0.3, -0.2;
  b << -0.4, 0.5;
  CHECK(hepgnn::emd(a, b) == doctest::Approx(std::sqrt(0.49 + 0.49)).epsilon(1e-14));
  hepgnn::emd_options sq;
  sq.cost.beta = 2;
  CHECK(hepgnn::emd(a, b, sq) == doctest::Approx(0.98).epsilon(1e-14));
  // energyflow form: one particle of pt 2 against one of pt 0.5 at R = 0.4: 0.5 theta / R + 1.5
  hepgnn::emd_options ef;
  ef.normalize = false;
  ef.cost.R = 0.4;
  vector<double> wa(1), wb(1);
  wa << 2.0;
  wb << 0.5;
  CHECK(hepgnn::emd(a, wa, b, wb, ef) == doctest::Approx(0.5 * std::sqrt(0.98) / 0.4 + 1.5).epsilon(1e-14));

  hepgnn::rng r(7);
  const auto x = random_points(r, 20, 3);
  const auto w = random_weights(r, 20);
  CHECK(std::abs(hepgnn::emd(x, w, x, w)) < 1e-13);
  CHECK(std::abs(hepgnn::emd(x, x)) < 1e-13);
  ef.cost.R = 1;
  CHECK(std::abs(hepgnn::emd(x, w, x, w, ef)) < 1e-13);

  // uniform equal sizes: the minimum over all permutations
  for (int n = 1; n <= 6; ++n) {
    const auto p = random_points(r, n, 2), q = random_points(r, n, 2);
    std::vector<int> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    double best = 1e300;
    do {
      double s = 0;
      for (int i = 0; i < n; ++i) s += (p.row(i) - q.row(perm[i])).norm();
      best = std::min(best, s / n);
    } while (std::next_permutation(perm.begin(), perm.end()));
    hepgnn::emd_options o;
    for (bool fast : {true, false}) {
      o.assignment_fast_path = fast;
      CHECK(hepgnn::emd(p, q, o) == doctest::Approx(best).epsilon(1e-12));
    }
  }
}

TEST_CASE("emd optimality on degenerate problems (ties, equal partial sums): primal and dual feasible, equal") {
  hepgnn::rng r(21);
  int failures = 0;
  for (int t = 0; t < 300; ++t) {
    const int n = 1 + static_cast<int>(r.below(12)), m = 1 + static_cast<int>(r.below(12));
    matrix<double> x(n, 2), y(m, 2);
    for (int k = 0; k < 2 * n; ++k) x.data()[k] = static_cast<double>(r.below(3));  // many ties and duplicates
    for (int k = 0; k < 2 * m; ++k) y.data()[k] = static_cast<double>(r.below(3));
    vector<double> wx = vector<double>::Ones(n), wy = vector<double>::Ones(m);
    if (t % 2) {
      for (int k = 0; k < n; ++k) wx[k] = static_cast<double>(1 + r.below(3));
      for (int k = 0; k < m; ++k) wy[k] = static_cast<double>(1 + r.below(3));
    }
    hepgnn::emd_options opt;
    opt.cost.beta = t % 3 == 0 ? 2.0 : 1.0;
    opt.assignment_fast_path = t % 4 != 0;
    hepgnn::emd_details<double> res;
    const double cost = hepgnn::emd(x, wx, y, wy, opt, nullptr, &res);
    const matrix<double>& flow = res.flow[0];
    const vector<double>& u = res.u[0], &v = res.v[0];
    const vector<double> a = wx / wx.sum(), b = wy / wy.sum();
    double dual = 0, worst_dual = 0;
    for (int i = 0; i < n; ++i) dual += a[i] * u[i];
    for (int j = 0; j < m; ++j) dual += b[j] * v[j];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j)
        worst_dual = std::max(worst_dual, u[i] + v[j] - std::pow((x.row(i) - y.row(j)).norm(), opt.cost.beta));
    const bool ok = res.converged && flow.minCoeff() >= 0 &&
                    (flow.rowwise().sum() - a).cwiseAbs().maxCoeff() < 1e-12 &&
                    (flow.colwise().sum().transpose() - b).cwiseAbs().maxCoeff() < 1e-12 && worst_dual < 1e-9 &&
                    std::abs(dual - cost) < 1e-9;
    if (!ok) ++failures;
  }
  CHECK(failures == 0);
}

namespace {

/// Optimality certificate of a balanced EMD result: primal feasibility (flow >= 0, marginals), dual feasibility
/// (u_i + v_j <= c_ij) and equal primal and dual objectives. Returns the worst violation.
double certificate_violation(const matrix<double>& x, const vector<double>& wx, const matrix<double>& y,
                             const vector<double>& wy, const hepgnn::emd_options& opt, double cost,
                             const hepgnn::emd_details<double>& res) {
  const matrix<double>& flow = res.flow[0];
  const vector<double>& u = res.u[0], &v = res.v[0];
  const vector<double> a = wx / wx.sum(), b = wy / wy.sum();
  double worst = std::max(0.0, -flow.minCoeff());
  worst = std::max(worst, (flow.rowwise().sum() - a).cwiseAbs().maxCoeff());
  worst = std::max(worst, (flow.colwise().sum().transpose() - b).cwiseAbs().maxCoeff());
  double primal = 0, dual = a.dot(u) + b.dot(v);
  for (int i = 0; i < x.rows(); ++i)
    for (int j = 0; j < y.rows(); ++j) {
      const double c = std::pow((x.row(i) - y.row(j)).norm(), opt.cost.beta);
      primal += flow(i, j) * c;
      worst = std::max(worst, u[i] + v[j] - c);
    }
  worst = std::max(worst, std::abs(primal - cost));
  return std::max(worst, std::abs(dual - cost));
}

}  // namespace

TEST_CASE("emd simplex on degenerate inputs at W4a sizes: certified optimal") {
  hepgnn::rng r(31);
  hepgnn::emd_options opt;
  opt.assignment_fast_path = false;  // the network simplex itself
  auto check = [&](const matrix<double>& x, const vector<double>& wx, const matrix<double>& y,
                   const vector<double>& wy, const char* what) {
    hepgnn::emd_details<double> res;
    const double cost = hepgnn::emd(x, wx, y, wy, opt, nullptr, &res);
    INFO(what << ": n = " << x.rows() << ", m = " << y.rows());
    CHECK(res.converged);
    CHECK(certificate_violation(x, wx, y, wy, opt, cost, res) < 1e-12);
    return cost;
  };
  // one point against many, both ways
  for (int m : {1, 2, 64, 128}) {
    const auto x = random_points(r, 1, 2), y = random_points(r, m, 2);
    const auto wy = random_weights(r, m);
    const vector<double> one = vector<double>::Constant(1, 0.7);
    double direct = 0;
    for (int j = 0; j < m; ++j) direct += wy[j] / wy.sum() * (x.row(0) - y.row(j)).norm();
    CHECK(check(x, one, y, wy, "1 vs m") == doctest::Approx(direct).epsilon(1e-13));
    CHECK(check(y, wy, x, one, "m vs 1") == doctest::Approx(direct).epsilon(1e-13));
  }
  for (int n : {30, 64, 128}) {
    const auto x = random_points(r, n, 2), y = random_points(r, n + 3, 2);
    auto wx = random_weights(r, n), wy = random_weights(r, n + 3);
    // identical sets and a set against itself at one point: cost 0
    CHECK(std::abs(check(x, wx, x, wx, "identical sets")) < 1e-13);
    const matrix<double> same = matrix<double>::Constant(n, 2, 0.25);
    const matrix<double> same_y = matrix<double>::Constant(n + 3, 2, 0.25);
    CHECK(std::abs(check(same, wx, same_y, wy, "all points coincide")) < 1e-13);
    // integer grid points and integer weights: massive ties in costs and in partial sums of weights
    matrix<double> gx(n, 2), gy(n + 3, 2);
    for (int k = 0; k < 2 * n; ++k) gx.data()[k] = static_cast<double>(r.below(4));
    for (int k = 0; k < 2 * (n + 3); ++k) gy.data()[k] = static_cast<double>(r.below(4));
    vector<double> ix(n), iy(n + 3);
    for (int k = 0; k < n; ++k) ix[k] = static_cast<double>(1 + r.below(3));
    for (int k = 0; k < n + 3; ++k) iy[k] = static_cast<double>(1 + r.below(3));
    for (double beta : {1.0, 2.0}) {
      opt.cost.beta = beta;
      check(gx, ix, gy, iy, "grid ties");
      check(gx, vector<double>::Ones(n), gy, vector<double>::Ones(n + 3), "grid ties, uniform");
    }
    opt.cost.beta = 1;
    // half of the weights zero on both sides
    for (int k = 0; k < n; k += 2) wx[k] = 0;
    for (int k = 1; k < n + 3; k += 2) wy[k] = 0;
    check(x, wx, y, wy, "zero weights");
    // weights spanning 12 orders of magnitude
    for (int k = 0; k < n; ++k) wx[k] = std::pow(10.0, -12.0 * r.uniform(0, 1));
    for (int k = 0; k < n + 3; ++k) wy[k] = std::pow(10.0, -12.0 * r.uniform(0, 1));
    check(x, wx, y, wy, "wide weight range");
  }
}

TEST_CASE("emd pivot limit: converged is false and the cost an upper bound") {
  hepgnn::rng r(32);
  const auto x = random_points(r, 64, 2), y = random_points(r, 64, 2);
  const auto wx = random_weights(r, 64), wy = random_weights(r, 64);
  const double best = hepgnn::emd(x, wx, y, wy);
  hepgnn::emd_options opt;
  opt.max_pivots = 3;
  hepgnn::emd_details<double> capped;
  const double capped_cost = hepgnn::emd(x, wx, y, wy, opt, nullptr, &capped);
  CHECK_FALSE(capped.converged);
  CHECK(capped_cost > best);
  CHECK((capped.flow[0].rowwise().sum() - wx / wx.sum()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("emd is symmetric and satisfies the triangle inequality") {
  hepgnn::rng r(11);
  for (int t = 0; t < 30; ++t) {
    const int n1 = 1 + static_cast<int>(r.below(25)), n2 = 1 + static_cast<int>(r.below(25)),
              n3 = 1 + static_cast<int>(r.below(25));
    const auto x1 = random_points(r, n1, 2), x2 = random_points(r, n2, 2), x3 = random_points(r, n3, 2);
    const auto w1 = random_weights(r, n1), w2 = random_weights(r, n2), w3 = random_weights(r, n3);
    const double d12 = hepgnn::emd(x1, w1, x2, w2), d21 = hepgnn::emd(x2, w2, x1, w1);
    const double d13 = hepgnn::emd(x1, w1, x3, w3), d23 = hepgnn::emd(x2, w2, x3, w3);
    CHECK(d12 == doctest::Approx(d21).epsilon(1e-12));
    CHECK(d13 <= d12 + d23 + 1e-12);
    CHECK(d12 <= d13 + d23 + 1e-12);
  }
}

TEST_CASE("emd gradients match finite differences (coordinates and weights)") {
  hepgnn::rng r(5);
  for (int form = 0; form < 4; ++form) {
    const int n = 7, m = 9;
    auto xa = random_points(r, n, 2), xb = random_points(r, m, 2);
    auto wa = random_weights(r, n), wb = random_weights(r, m);
    hepgnn::emd_options opt;
    if (form == 1) opt.cost.beta = 2;
    if (form >= 2) {  // energyflow form, both directions of the energy difference
      opt.normalize = false;
      opt.cost.R = 0.8;
      opt.cost.beta = form == 2 ? 1.0 : 2.0;
      if (form == 3) wa *= 3;
    }
    hepgnn::set_gradients<double> g;
    hepgnn::emd(xa, wa, xb, wb, opt, &g);
    auto loss = [&] { return hepgnn::emd(xa, wa, xb, wb, opt); };
    INFO("form " << form);
    auto e = hepgnn::check_input_gradient(xa, g.xa, loss, "xa");
    e.merge(hepgnn::check_input_gradient(xb, g.xb, loss, "xb"));
    e.merge(hepgnn::check_gradient(wa.data(), g.wa.data(), n, loss, "wa"));
    e.merge(hepgnn::check_gradient(wb.data(), g.wb.data(), m, loss, "wb"));
    INFO(e.worst << ": analytic " << e.analytic << ", numeric " << e.numeric);
    CHECK(e.max_error < 1e-6);
  }
}

TEST_CASE("emd: a zero-weight point is the same as no point") {
  hepgnn::rng r(12);
  const auto x = random_points(r, 10, 2), y = random_points(r, 9, 2);
  auto wx = random_weights(r, 10);
  const auto wy = random_weights(r, 9);
  wx[4] = 0;
  matrix<double> x_drop(9, 2);
  vector<double> w_drop(9);
  for (int i = 0, k = 0; i < 10; ++i)
    if (i != 4) x_drop.row(k) = x.row(i), w_drop[k++] = wx[i];
  for (bool norm : {true, false}) {
    hepgnn::emd_options opt;
    opt.normalize = norm;
    hepgnn::emd_details<double> with;
    const double with_cost = hepgnn::emd(x, wx, y, wy, opt, nullptr, &with);
    CHECK(with_cost == doctest::Approx(hepgnn::emd(x_drop, w_drop, y, wy, opt)).epsilon(1e-12));
    CHECK(with.flow[0].row(4).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("emd periodic phi wraps the difference") {
  matrix<double> a(1, 2), b(1, 2);
  a << 0.1, 3.0;
  b << 0.1, -3.0;
  hepgnn::emd_options opt;
  opt.cost.periodic_column = 1;
  CHECK(hepgnn::emd(a, b, opt) == doctest::Approx(2 * std::numbers::pi - 6.0).epsilon(1e-12));
  CHECK(hepgnn::emd(a, b) == doctest::Approx(6.0).epsilon(1e-12));
}

TEST_CASE("batched emd equals the per-pair calls and does not depend on the thread count") {
  hepgnn::rng r(3);
  const std::vector<hepgnn::index_t> sa{5, 30, 1, 12, 30}, sb{8, 30, 4, 12, 30};
  const auto ba = hepgnn::batch::from_sizes(sa), bb = hepgnn::batch::from_sizes(sb);
  auto xa = random_points(r, ba.num_nodes(), 2), xb = random_points(r, bb.num_nodes(), 2);
  auto wa = random_weights(r, ba.num_nodes()), wb = random_weights(r, bb.num_nodes());
  hepgnn::emd_options opt;
  hepgnn::set_gradients<double> all;
  hepgnn::emd_details<double> all_details;
  const vector<double> all_cost = hepgnn::emd(xa, wa, ba, xb, wb, bb, opt, &all, &all_details);
  for (hepgnn::index_t g = 0; g < ba.num_graphs(); ++g) {
    const matrix<double> pa = xa.middleRows(ba.begin(g), ba.size(g)), pb = xb.middleRows(bb.begin(g), bb.size(g));
    const vector<double> qa = wa.segment(ba.begin(g), ba.size(g)), qb = wb.segment(bb.begin(g), bb.size(g));
    hepgnn::set_gradients<double> one;
    hepgnn::emd_details<double> one_details;
    const double one_cost = hepgnn::emd(pa, qa, pb, qb, opt, &one, &one_details);
    CHECK(all_cost[g] == one_cost);
    CHECK(all_details.flow[g] == one_details.flow[0]);
    CHECK(all.xa.middleRows(ba.begin(g), ba.size(g)) == one.xa);
    CHECK(all.wb.segment(bb.begin(g), bb.size(g)) == one.wb);
  }
  // 1 and 3 threads, whatever OMP_NUM_THREADS says: the same values and gradients, bit for bit
  hepgnn::set_gradients<double> serial, threaded;
  const vector<double> serial_cost =
      hepgnn_test::at_threads(1, [&] { return hepgnn::emd(xa, wa, ba, xb, wb, bb, opt, &serial); });
  const vector<double> threaded_cost =
      hepgnn_test::at_threads(3, [&] { return hepgnn::emd(xa, wa, ba, xb, wb, bb, opt, &threaded); });
  CHECK(serial_cost == all_cost);
  CHECK(serial_cost == threaded_cost);
  CHECK(serial.xa == threaded.xa);
  CHECK(serial.xb == threaded.xb);
  CHECK(serial.wa == threaded.wa);
  CHECK(serial.wb == threaded.wb);
}

TEST_CASE("emd works in float") {
  hepgnn::rng r(9);
  const auto x = random_points(r, 12, 2), y = random_points(r, 15, 2);
  const matrix<float> xf = x.cast<float>(), yf = y.cast<float>();
  const double d = hepgnn::emd(x, y);
  const float f = hepgnn::emd(xf, yf);
  CHECK(f == doctest::Approx(d).epsilon(1e-5));
}

TEST_CASE("emd rejects bad input") {
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
  throws([&] { hepgnn::emd(a, c); }, "emd: xa and xb must have the same number of columns");
  throws([&] { hepgnn::emd(e, b); }, "emd: point sets must not be empty");
  vector<double> neg = wa;
  neg[1] = -1;
  throws([&] { hepgnn::emd(a, neg, b, wb); }, "emd: wa must be finite and >= 0, got -1 at index 1");
  vector<double> nan = wb;
  nan[2] = std::nan("");
  throws([&] { hepgnn::emd(a, wa, b, nan); }, "emd: wb must be finite and >= 0");
  const vector<double> zero = vector<double>::Zero(3);
  throws([&] { hepgnn::emd(a, zero, b, wb); }, "needs a positive total weight on both sides, got 0 and 4");
  throws([&] { hepgnn::emd(a, wb, b, wb); }, "emd: wa must have one weight per point (3), got 4");
  matrix<double> inf = a;
  inf(1, 1) = INFINITY;
  throws([&] { hepgnn::emd(inf, b); }, "emd: xa: non-finite value");
  hepgnn::emd_options bad;
  bad.cost.R = 0;
  throws([&] { hepgnn::emd(a, b, bad); }, "ground_cost.R must be finite and > 0, got 0");
  bad = {};
  bad.cost.periodic_column = 2;
  throws([&] { hepgnn::emd(a, b, bad); }, "periodic_column must be -1 or a column in [0, 2), got 2");
  const auto ba = hepgnn::batch::from_sizes({3}), bb = hepgnn::batch::from_sizes({2, 2});
  throws([&] { hepgnn::emd(a, wa, ba, b, wb, bb); }, "emd: batches must hold the same number of graphs, got 1 and 2");
  const auto b0 = hepgnn::batch::from_sizes({1, 2}), b1 = hepgnn::batch::from_sizes({0, 4});
  throws([&] { hepgnn::emd(a, wa, b0, b, wb, b1); }, "emd: point sets must not be empty, got 1 and 0 points in graph 0");
}

TEST_CASE("real jets: EMD and Chamfer match the energyflow + POT / scipy references") {
  HEPGNN_REQUIRE_DATA(dir, "jets_fastjet_pythia");
  const auto feats = hepgnn::read_npy(dir / "jetnet30_particle_features.npy");
  REQUIRE(feats.shape == std::vector<std::int64_t>{26, 30, 4});
  const auto values = feats.as<double>();  // float32 values re-read as float64, as the reference did
  const auto ref = hepgnn::npz_file::open(dir / "emd_reference.npz");
  const int J = 12, P = 30;
  std::vector<matrix<double>> yphi(J), all3(J);
  std::vector<vector<double>> pt(J);
  for (int j = 0; j < J; ++j) {
    yphi[j].resize(P, 2);
    all3[j].resize(P, 3);
    pt[j].resize(P);
    for (int p = 0; p < P; ++p) {
      const double* f = values.data() + (j * P + p) * 4;
      yphi[j](p, 0) = all3[j](p, 0) = f[0];
      yphi[j](p, 1) = all3[j](p, 1) = f[1];
      all3[j](p, 2) = pt[j][p] = f[2];
    }
  }
  auto check_matrix = [&](const std::string& name, auto&& fn) {
    const auto want = ref.read(name).as_matrix<double>();
    REQUIRE(want.rows() == J);
    REQUIRE(want.cols() == J);
    double worst = 0;
    for (int a = 0; a < J; ++a)
      for (int b = 0; b < J; ++b)
        worst = std::max(worst, std::abs(fn(a, b) - want(a, b)) / std::max(1e-6, std::abs(want(a, b))));
    INFO(name << ": worst relative error " << worst);
    CHECK(worst < 1e-6);
  };
  for (double R : {0.4, 0.8})
    for (int beta : {1, 2})
      for (int norm : {0, 1}) {
        hepgnn::emd_options opt;
        opt.normalize = norm == 1;
        opt.cost.R = R;
        opt.cost.beta = beta;
        char name[64];
        std::snprintf(name, sizeof name, "ef_emd_R%.1f_beta%d_norm%d", R, beta, norm);
        check_matrix(name, [&](int a, int b) { return hepgnn::emd(yphi[a], pt[a], yphi[b], pt[b], opt); });
      }
  check_matrix("uniform_emd_l2", [&](int a, int b) { return hepgnn::emd(all3[a], all3[b]); });
  hepgnn::emd_options sq;
  sq.cost.beta = 2;
  check_matrix("uniform_emd_sql2", [&](int a, int b) { return hepgnn::emd(all3[a], all3[b], sq); });
  for (auto red : {hepgnn::chamfer_reduction::sum, hepgnn::chamfer_reduction::mean}) {
    hepgnn::chamfer_options co;
    co.reduction = red;
    const auto one = hepgnn::batch::single(P);
    check_matrix(red == hepgnn::chamfer_reduction::sum ? "chamfer_sum_sq" : "chamfer_mean_sq",
                 [&](int a, int b) { return hepgnn::chamfer(all3[a], one, all3[b], one, co)[0]; });
  }
}

}  // namespace hepgnn_test_emd
