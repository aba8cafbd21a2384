// Chamfer distance: brute force over batches of different set sizes, closed forms, finite-difference gradients,
// thread independence and bad input. (Real-jet Chamfer references are checked in test_emd.cpp.)
#include "support/doctest.hpp"
#include "support/thread_count.hpp"

#include "support/point_sets.hpp"

#include <cmath>
#include <limits>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/train/gradient_check.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_chamfer {  // this file's names, apart from the other files of its unity build

using hepgnn::matrix;
using hepgnn_test::random_points;
using hepgnn_test::random_weights;
using hepgnn::vector;

namespace {

/// Brute-force Chamfer of graph g in double.
template <class T>
double brute(const matrix<T>& a, const hepgnn::batch& ba, const matrix<T>& b, const hepgnn::batch& bb, int g,
             const hepgnn::chamfer_options& o) {
  auto dist = [&](int i, int j) {
    double s = 0;
    for (int c = 0; c < a.cols(); ++c) {
      const double t = static_cast<double>(a(i, c)) - static_cast<double>(b(j, c));
      s += t * t;
    }
    return o.metric == hepgnn::chamfer_metric::euclidean ? std::sqrt(s) : s;
  };
  double ra = 0, rb = 0;
  for (int i = ba.begin(g); i < ba.end(g); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (int j = bb.begin(g); j < bb.end(g); ++j) best = std::min(best, dist(i, j));
    ra += best;
  }
  for (int j = bb.begin(g); j < bb.end(g); ++j) {
    double best = std::numeric_limits<double>::infinity();
    for (int i = ba.begin(g); i < ba.end(g); ++i) best = std::min(best, dist(i, j));
    rb += best;
  }
  if (o.reduction == hepgnn::chamfer_reduction::mean) return ra / ba.size(g) + rb / bb.size(g);
  return ra + rb;
}

}  // namespace

TEST_CASE_TEMPLATE("chamfer matches brute force on batches of different set sizes", T, float, double) {
  hepgnn::rng r(1);
  // sizes straddle the SIMD widths (1, 7, 16, 17, 33, 64, 100)
  const auto ba = hepgnn::batch::from_sizes({1, 7, 16, 17, 64, 33, 100}),
             bb = hepgnn::batch::from_sizes({5, 1, 16, 33, 64, 100, 17});
  for (int d : {1, 2, 3, 7}) {
    const auto a = random_points<T>(r, ba.num_nodes(), d), b = random_points<T>(r, bb.num_nodes(), d);
    for (auto red : {hepgnn::chamfer_reduction::mean, hepgnn::chamfer_reduction::sum})
      for (auto met : {hepgnn::chamfer_metric::squared_euclidean, hepgnn::chamfer_metric::euclidean}) {
        hepgnn::chamfer_options o{red, met};
        hepgnn::chamfer_details details;
        const auto fwd = hepgnn::chamfer(a, ba, b, bb, o);
        const auto with_details = hepgnn::chamfer(a, ba, b, bb, o, nullptr, &details);
        for (int g = 0; g < ba.num_graphs(); ++g) {
          const double want = brute(a, ba, b, bb, g, o);
          INFO("d " << d << ", graph " << g);
          CHECK(static_cast<double>(fwd[g]) == doctest::Approx(want).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-12));
          CHECK(with_details[g] == fwd[g]);
        }
        // recorded neighbours are in the same graph and attain the minimum
        bool ok = true;
        for (int g = 0; g < ba.num_graphs(); ++g) {
          for (int i = ba.begin(g); i < ba.end(g); ++i) {
            const int j = details.nearest_in_b[i];
            ok = ok && j >= bb.begin(g) && j < bb.end(g);
            for (int k = bb.begin(g); k < bb.end(g) && ok; ++k)
              ok = (a.row(i) - b.row(j)).squaredNorm() <= (a.row(i) - b.row(k)).squaredNorm() * (1 + 1e-6) + 1e-12;
          }
          for (int j = bb.begin(g); j < bb.end(g); ++j) {
            const int i = details.nearest_in_a[j];
            ok = ok && i >= ba.begin(g) && i < ba.end(g);
            for (int k = ba.begin(g); k < ba.end(g) && ok; ++k)
              ok = (a.row(i) - b.row(j)).squaredNorm() <= (a.row(k) - b.row(j)).squaredNorm() * (1 + 1e-6) + 1e-12;
          }
        }
        CHECK(ok);
      }
  }
}

TEST_CASE("chamfer closed forms: one point each, identical sets") {
  matrix<double> a(1, 3), b(1, 3);
  a << 0.1, 0.2, 0.3;
  b << 0.4, -0.2, 0.3;
  const auto one = hepgnn::batch::single(1);
  CHECK(hepgnn::chamfer(a, one, b, one)[0] == doctest::Approx(2 * 0.25).epsilon(1e-14));
  hepgnn::chamfer_options o;
  o.metric = hepgnn::chamfer_metric::euclidean;
  CHECK(hepgnn::chamfer(a, one, b, one, o)[0] == doctest::Approx(2 * 0.5).epsilon(1e-14));
  hepgnn::rng r(2);
  const auto x = random_points<double>(r, 40, 3);
  const auto bx = hepgnn::batch::uniform(4, 10);
  CHECK(hepgnn::chamfer(x, bx, x, bx).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("chamfer gradients match finite differences") {
  hepgnn::rng r(3);
  const auto ba = hepgnn::batch::from_sizes({4, 9, 1}), bb = hepgnn::batch::from_sizes({6, 3, 5});
  auto a = random_points<double>(r, ba.num_nodes(), 3), b = random_points<double>(r, bb.num_nodes(), 3);
  vector<double> dloss(3);
  dloss << 0.5, -1.25, 2.0;
  for (auto red : {hepgnn::chamfer_reduction::mean, hepgnn::chamfer_reduction::sum})
    for (auto met : {hepgnn::chamfer_metric::squared_euclidean, hepgnn::chamfer_metric::euclidean}) {
      hepgnn::chamfer_options o{red, met};
      hepgnn::set_gradients<double> grad;
      hepgnn::chamfer(a, ba, b, bb, o, &grad);
      // d(sum_g dloss_g value_g): graph g's gradient lives in its own rows, scaled by dloss_g
      matrix<double> ga = grad.xa, gb = grad.xb;
      for (int g = 0; g < ba.num_graphs(); ++g) {
        ga.middleRows(ba.begin(g), ba.size(g)) *= dloss[g];
        gb.middleRows(bb.begin(g), bb.size(g)) *= dloss[g];
      }
      CHECK(grad.wa.size() == 0);
      auto loss = [&] { return hepgnn::chamfer(a, ba, b, bb, o).dot(dloss); };
      auto e = hepgnn::check_input_gradient(a, ga, loss, "a");
      e.merge(hepgnn::check_input_gradient(b, gb, loss, "b"));
      INFO(e.worst << ": analytic " << e.analytic << ", numeric " << e.numeric);
      CHECK(e.max_error < 1e-6);
    }
}

TEST_CASE("chamfer does not depend on the thread count") {
  hepgnn::rng r(4);
  const auto bx = hepgnn::batch::uniform(64, 20);
  const auto a = random_points<float>(r, bx.num_nodes(), 3), b = random_points<float>(r, bx.num_nodes(), 3);
  hepgnn::chamfer_details c1, c2;
  hepgnn::set_gradients<float> g1, g2;
  const auto v1 = hepgnn_test::at_threads(1, [&] { return hepgnn::chamfer(a, bx, b, bx, {}, &g1, &c1); });
  const auto v2 = hepgnn_test::at_threads(3, [&] { return hepgnn::chamfer(a, bx, b, bx, {}, &g2, &c2); });
  CHECK(v1 == v2);
  CHECK(g1.xa == g2.xa);
  CHECK(g1.xb == g2.xb);
  CHECK(c1.nearest_in_a == c2.nearest_in_a);
  CHECK(c1.nearest_in_b == c2.nearest_in_b);
}

TEST_CASE("chamfer rejects bad input") {
  matrix<double> a = matrix<double>::Zero(3, 2), b = matrix<double>::Ones(4, 2), c = matrix<double>::Ones(4, 3);
  const auto ba = hepgnn::batch::single(3), bb = hepgnn::batch::single(4);
  auto throws = [](auto&& f, const char* what) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(what), hepgnn::error);
  };
  throws([&] { hepgnn::chamfer(a, ba, c, bb); }, "chamfer: a and b must have the same number of columns (dimensions), got 2 and 3");
  throws([&] { hepgnn::chamfer(a, ba, b, hepgnn::batch::from_sizes({2, 2})); },
         "chamfer: batches must hold the same number of graphs, got 1 and 2");
  throws([&] { hepgnn::chamfer(a, hepgnn::batch::from_sizes({3, 0}), b, hepgnn::batch::from_sizes({2, 2})); },
         "chamfer: point sets must not be empty, graph 1 has 0 points in a and 2 in b");
  throws([&] { hepgnn::chamfer(a, hepgnn::batch::single(2), b, bb); }, "batch: node_offsets cover 2 nodes but the features have 3 rows");
  matrix<double> bad = a;
  bad(2, 1) = INFINITY;
  throws([&] { hepgnn::chamfer(bad, ba, b, bb); }, "chamfer: a: non-finite value inf at row 2, column 1");
  // the gradient comes from the same call: no cache of other inputs can reach it (chamfer_backward checked that)
  hepgnn::set_gradients<double> grad;
  throws([&] { hepgnn::chamfer(bad, ba, b, bb, {}, &grad); }, "chamfer: a: non-finite value inf at row 2, column 1");
}

}  // namespace hepgnn_test_chamfer
