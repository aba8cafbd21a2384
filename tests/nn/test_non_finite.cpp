// Non-finite values propagate as in PyTorch: a NaN in a max reduction (wherever it lies in the segment), through a
// fused ReLU and through EdgeConv's fused inference and its training forward, so they reach the loss and the
// trainer's guard instead of vanishing.
#include "support/doctest.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/pooling.hpp"

namespace hepgnn_test_non_finite {

using namespace hepgnn;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

TEST_CASE_TEMPLATE("max pooling propagates a NaN from any row of a graph, and its gradient goes to that row", T,
                   float, double) {
  for (int where : {0, 2, 4}) {
    CAPTURE(where);
    matrix<T> x(5, 2);
    x << 1, 2, 3, -1, 0, 5, -2, 0, 4, 1;
    x(where, 0) = T(nan);
    matrix<T> y;
    std::vector<index_t> argmax;
    global_pool(x, batch::single(5), aggregation::max, y, &argmax);
    CHECK(std::isnan(y(0, 0)));
    CHECK(argmax[0] == where);
    CHECK(y(0, 1) == T(5));  // the other column is untouched
    matrix<T> dx;
    global_pool_backward(batch::single(5), aggregation::max, matrix<T>::Ones(1, 2).eval(), &argmax, dx);
    CHECK(dx(where, 0) == T(1));
  }
}

template <class T>
using net = sequential<T, dense<T>, relu<T>, dense<T>>;

TEST_CASE_TEMPLATE("a NaN node feature reaches the EdgeConv outputs of the nodes it sends to (fused and training)", T,
                   float, double) {
  rng gen(3);
  net<T> nn(dense<T>(gen, 6, 8), relu<T>(), dense<T>(gen, 8, 4));
  for (aggregation a : {aggregation::max, aggregation::mean, aggregation::sum}) {
    CAPTURE(static_cast<int>(a));
    edge_conv<T, net<T>> conv(nn, a);
    typename edge_conv<T, net<T>>::cache c;
    matrix<T> x(4, 3);
    for (long i = 0; i < x.size(); ++i) x.data()[i] = T(gen.normal());
    x(1, 2) = T(nan);
    // edges 1 -> 0, 2 -> 0, 2 -> 3, 3 -> 2: only node 0 receives from node 1
    const graph g = graph::from_edges(4, std::vector<index_t>{1, 2, 2, 3}, std::vector<index_t>{0, 0, 3, 2});
    matrix<T> yi, yt;
    conv.infer(x, g, yi, c);
    conv.forward(x, g, yt, c);
    for (const matrix<T>* y : {&yi, &yt}) {
      CHECK(y->row(0).array().isNaN().any());
      CHECK(y->row(2).allFinite());
      CHECK(y->row(3).allFinite());
    }
  }
}

TEST_CASE("mlp's fused ReLU keeps NaN") {
  rng gen(4);
  mlp<double> m(gen, {3, 5, 2});
  mlp<double>::cache c;
  matrix<double> x = matrix<double>::Ones(2, 3), y;
  x(1, 0) = nan;
  m.infer(x, y, c);
  CHECK(y.row(0).allFinite());
  CHECK(y.row(1).array().isNaN().all());
}

}  // namespace hepgnn_test_non_finite
