// Sliced Wasserstein: brute force on sorted projections, exact 1-D EMD on weighted projections, closed forms,
// finite-difference gradients, batching and bad input.
#include "support/doctest.hpp"
#include "support/thread_count.hpp"

#include "support/point_sets.hpp"

#include <algorithm>
#include <cmath>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/loss/sliced_wasserstein.hpp"
#include "hepgnn/train/gradient_check.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_sliced_wasserstein {  // this file's names, apart from the other files of its unity build

using hepgnn::matrix;
using hepgnn_test::random_points;
using hepgnn_test::random_weights;
using hepgnn::vector;

TEST_CASE("sliced wasserstein: uniform equal sizes match sorted projections (brute force)") {
  hepgnn::rng r(1);
  const int n = 17, d = 3;
  const auto x = random_points(r, n, d), y = random_points(r, n, d);
  for (double p : {1.0, 2.0, 3.0}) {
    hepgnn::sliced_wasserstein_options opt;
    opt.projections = 25;
    opt.p = p;
    opt.seed = 99;
    const auto dirs = hepgnn::sliced_wasserstein_directions(d, opt.projections, opt.seed);
    CHECK((dirs.rowwise().norm().array() - 1).abs().maxCoeff() < 1e-14);
    double mean = 0;
    for (int k = 0; k < opt.projections; ++k) {
      std::vector<double> px(n), py(n);
      for (int i = 0; i < n; ++i) px[i] = x.row(i).dot(dirs.row(k)), py[i] = y.row(i).dot(dirs.row(k));
      std::sort(px.begin(), px.end());
      std::sort(py.begin(), py.end());
      for (int i = 0; i < n; ++i) mean += std::pow(std::abs(px[i] - py[i]), p) / n;
    }
    mean /= opt.projections;
    const double got = hepgnn::sliced_wasserstein(x, vector<double>{}, y, vector<double>{}, opt);
    CHECK(got == doctest::Approx(std::pow(mean, 1 / p)).epsilon(1e-12));
    opt.root = false;
    CHECK(hepgnn::sliced_wasserstein(x, vector<double>{}, y, vector<double>{}, opt) ==
          doctest::Approx(mean).epsilon(1e-12));
  }
}

TEST_CASE("sliced wasserstein: weighted sets match the exact EMD of each projection") {
  hepgnn::rng r(2);
  const int n = 9, m = 13, d = 2;
  const auto x = random_points(r, n, d), y = random_points(r, m, d);
  const auto wx = random_weights(r, n), wy = random_weights(r, m);
  for (double p : {1.0, 2.0}) {
    hepgnn::sliced_wasserstein_options opt;
    opt.projections = 7;
    opt.p = p;
    opt.root = false;
    const auto dirs = hepgnn::sliced_wasserstein_directions(d, opt.projections, opt.seed);
    double mean = 0;
    for (int k = 0; k < opt.projections; ++k) {
      const matrix<double> px = x * dirs.row(k).transpose(), py = y * dirs.row(k).transpose();
      hepgnn::emd_options eo;
      eo.cost.beta = p;
      mean += hepgnn::emd(px, wx, py, wy, eo);
    }
    mean /= opt.projections;
    CHECK(hepgnn::sliced_wasserstein(x, wx, y, wy, opt) == doctest::Approx(mean).epsilon(1e-10));
  }
}

TEST_CASE("sliced wasserstein closed forms: one particle, identical sets") {
  matrix<double> a(1, 2), b(1, 2);
  a << 0.3, -0.1;
  b << -0.5, 0.5;
  hepgnn::sliced_wasserstein_options opt;
  opt.projections = 20000;
  opt.root = false;
  // E[(theta . delta)^2] = |delta|^2 / d for uniform directions
  CHECK(hepgnn::sliced_wasserstein(a, vector<double>{}, b, vector<double>{}, opt) ==
        doctest::Approx(1.0 / 2).epsilon(0.02));
  hepgnn::rng r(3);
  const auto x = random_points(r, 12, 3);
  const auto w = random_weights(r, 12);
  opt.projections = 30;
  CHECK(hepgnn::sliced_wasserstein(x, w, x, w, opt) == 0.0);
}

TEST_CASE("sliced wasserstein gradients match finite differences") {
  hepgnn::rng r(4);
  for (double p : {2.0, 1.5}) {
    auto xa = random_points(r, 8, 3), xb = random_points(r, 11, 3);
    const auto wa = random_weights(r, 8), wb = random_weights(r, 11);
    hepgnn::sliced_wasserstein_options opt;
    opt.projections = 6;
    opt.p = p;
    hepgnn::set_gradients<double> g;
    hepgnn::sliced_wasserstein(xa, wa, xb, wb, opt, &g);
    CHECK(g.wa.size() == 0);  // the weights are not differentiated
    auto loss = [&] { return hepgnn::sliced_wasserstein(xa, wa, xb, wb, opt); };
    auto e = hepgnn::check_input_gradient(xa, g.xa, loss, "xa");
    e.merge(hepgnn::check_input_gradient(xb, g.xb, loss, "xb"));
    INFO("p " << p << ": " << e.worst << ": analytic " << e.analytic << ", numeric " << e.numeric);
    CHECK(e.max_error < 1e-6);
  }
}

TEST_CASE("batched sliced wasserstein equals the per-pair calls and does not depend on the thread count") {
  hepgnn::rng r(5);
  const auto ba = hepgnn::batch::from_sizes({3, 20, 1, 8}), bb = hepgnn::batch::from_sizes({5, 20, 2, 8});
  const auto xa = random_points(r, ba.num_nodes(), 2), xb = random_points(r, bb.num_nodes(), 2);
  const auto wa = random_weights(r, ba.num_nodes()), wb = random_weights(r, bb.num_nodes());
  hepgnn::sliced_wasserstein_options opt;
  hepgnn::set_gradients<double> all;
  const vector<double> all_value = hepgnn::sliced_wasserstein(xa, wa, ba, xb, wb, bb, opt, &all);
  for (hepgnn::index_t g = 0; g < ba.num_graphs(); ++g) {
    const matrix<double> pa = xa.middleRows(ba.begin(g), ba.size(g)), pb = xb.middleRows(bb.begin(g), bb.size(g));
    const vector<double> qa = wa.segment(ba.begin(g), ba.size(g)), qb = wb.segment(bb.begin(g), bb.size(g));
    hepgnn::set_gradients<double> one;
    const double one_value = hepgnn::sliced_wasserstein(pa, qa, pb, qb, opt, &one);
    CHECK(all_value[g] == one_value);
    CHECK(all.xa.middleRows(ba.begin(g), ba.size(g)) == one.xa);
  }
  // 1 and 3 threads, whatever OMP_NUM_THREADS says: the same values and gradients, bit for bit
  hepgnn::set_gradients<double> serial, threaded;
  const vector<double> serial_value =
      hepgnn_test::at_threads(1, [&] { return hepgnn::sliced_wasserstein(xa, wa, ba, xb, wb, bb, opt, &serial); });
  const vector<double> threaded_value =
      hepgnn_test::at_threads(3, [&] { return hepgnn::sliced_wasserstein(xa, wa, ba, xb, wb, bb, opt, &threaded); });
  CHECK(serial_value == all_value);
  CHECK(serial_value == threaded_value);
  CHECK(serial.xa == threaded.xa);
  CHECK(serial.xb == threaded.xb);
  CHECK(serial.wa == threaded.wa);
  CHECK(serial.wb == threaded.wb);
  const matrix<float> fa = xa.cast<float>(), fb = xb.cast<float>();
  hepgnn::set_gradients<float> fg;
  const vector<float> f =
      hepgnn::sliced_wasserstein(fa, wa.cast<float>().eval(), ba, fb, wb.cast<float>().eval(), bb, opt, &fg);
  CHECK((f.cast<double>() - all_value).cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("sliced wasserstein rejects bad input") {
  matrix<double> a = matrix<double>::Zero(3, 2), b = matrix<double>::Ones(4, 2), c = matrix<double>::Ones(2, 3);
  const vector<double> none;
  auto throws = [](auto&& f, const char* what) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(what), hepgnn::error);
  };
  throws([&] { hepgnn::sliced_wasserstein(a, none, c, none); },
         "sliced_wasserstein: xa and xb must have the same number of columns");
  throws([&] { hepgnn::sliced_wasserstein(matrix<double>(0, 2), none, b, none); },
         "sliced_wasserstein: point sets must not be empty");
  vector<double> w(3);
  w << 1, -1, 1;
  throws([&] { hepgnn::sliced_wasserstein(a, w, b, none); }, "sliced_wasserstein: wa must be finite and >= 0, got -1 at index 1");
  throws([&] { hepgnn::sliced_wasserstein(a, vector<double>::Zero(3).eval(), b, none); },
         "needs a positive total weight on both sides, got 0 and 4");
  hepgnn::sliced_wasserstein_options opt;
  opt.projections = 0;
  throws([&] { hepgnn::sliced_wasserstein(a, none, b, none, opt); }, "sliced_wasserstein: projections must be >= 1, got 0");
  opt = {};
  opt.p = 0.5;
  throws([&] { hepgnn::sliced_wasserstein(a, none, b, none, opt); }, "sliced_wasserstein: p must be finite and >= 1, got 0.5");
  a(0, 0) = NAN;
  throws([&] { hepgnn::sliced_wasserstein(a, none, b, none); }, "sliced_wasserstein: xa: non-finite value");
}

}  // namespace hepgnn_test_sliced_wasserstein
