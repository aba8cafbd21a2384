// interaction_network: PyTorch reference outputs and gradients (tests/reference/gnn_layers_reference.py),
// finite differences for every aggregation, inference == training forward, thread-count independence, bad input.
#include <doctest/doctest.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "support/gnn_layers_reference.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/train/gradient_check.hpp"

using namespace hepgnn;

static_assert(graph_layer<interaction_network<float>> && graph_layer<interaction_network<double, 3, 64>>,
              "interaction_network must satisfy the graph_layer concept");

namespace {

using gnn_ref::ints;
using gnn_ref::load;
using gnn_ref::random_matrix;
using gnn_ref::rel_diff;
using gnn_ref::set_params;
using tensors = gnn_ref::tensors;

struct ref_case {
  const char* file;
  std::vector<aggregation> aggrs;
};

template <class T>
using net = interaction_network<T>;

template <class T>
net<T> make_net(const tensors& ref, const std::vector<aggregation>& aggrs, rng& gen) {
  typename net<T>::options o;
  o.in = static_cast<int>(ref.at("x").cols());
  o.hidden = static_cast<int>(ref.at("hidden")(0, 0));
  o.iterations = static_cast<int>(ref.at("iterations")(0, 0));
  o.shared_weights = ref.at("shared")(0, 0) != 0;
  o.aggregations = aggrs;
  o.out = static_cast<int>(ref.at("y").cols());
  return net<T>(gen, o);
}

/// Random graph with a node without incoming edges and one with many.
graph random_graph(rng& gen, index_t n, index_t e) {
  std::vector<index_t> s(e), d(e);
  for (index_t i = 0; i < e; ++i) {
    s[i] = static_cast<index_t>(gen.below(n));
    d[i] = i % 5 == 0 ? 0 : static_cast<index_t>(gen.below(n - 1));
  }
  return graph::from_edges(n, s, d);
}

}  // namespace

TEST_CASE("interaction_network matches the PyTorch reference (double, outputs and gradients)") {
  const ref_case cases[] = {{"in_sum", {aggregation::sum}},
                            {"in_mean_unshared", {aggregation::mean}},
                            {"in_max", {aggregation::max}},
                            {"in_concat", {aggregation::sum, aggregation::mean, aggregation::max}}};
  for (const auto& rc : cases) {
    CAPTURE(rc.file);
    const tensors ref = load(rc.file);
    rng gen(7);
    auto model = make_net<double>(ref, rc.aggrs, gen);
    set_params(model, ref);
    const auto src = ints(ref.at("src")), dst = ints(ref.at("dst"));
    const index_t n = static_cast<index_t>(ref.at("x").rows());
    const graph g = graph::from_edges(n, src, dst);
    const auto pos = graph::csr_position(n, dst);
    matrix<double> x = ref.at("x"), y;
    net<double>::cache c;
    model.forward(x, g, y, c);
    // reference rows are in input edge order; ours in CSR order
    matrix<double> yref(y.rows(), y.cols()), dy(y.rows(), y.cols());
    for (std::size_t e = 0; e < src.size(); ++e) {
      yref.row(pos[e]) = ref.at("y").row(e);
      dy.row(pos[e]) = ref.at("dy").row(e);
    }
    CHECK(rel_diff(y, yref) < 1e-10);
    zero_grad(model);
    matrix<double> dx;
    model.backward(x, g, y, dy, c, &dx);
    CHECK(rel_diff(dx, ref.at("grad_x")) < 1e-10);
    CHECK(gnn_ref::grad_diff(model, ref) < 1e-10);
    // inference gives the training output
    matrix<double> yi;
    model.infer(x, g, yi, c);
    CHECK(rel_diff(yi, y) < 1e-14);
  }
}

TEST_CASE("interaction_network in float matches the reference to 1e-5") {
  const tensors ref = load("in_concat");
  rng gen(7);
  auto model = make_net<float>(ref, {aggregation::sum, aggregation::mean, aggregation::max}, gen);
  set_params(model, ref);
  const auto src = ints(ref.at("src")), dst = ints(ref.at("dst"));
  const index_t n = static_cast<index_t>(ref.at("x").rows());
  const graph g = graph::from_edges(n, src, dst);
  const auto pos = graph::csr_position(n, dst);
  matrix<float> x = ref.at("x").cast<float>(), y;
  net<float>::cache c;
  model.infer(x, g, y, c);
  for (std::size_t e = 0; e < src.size(); ++e)
    for (long f = 0; f < y.cols(); ++f) {
      const double r = ref.at("y")(e, f);
      CHECK(std::abs(y(pos[e], f) - r) <= 1e-5 * std::max(1.0, std::abs(r)));
    }
}

TEST_CASE("interaction_network gradients match finite differences for every aggregation") {
  const std::vector<std::vector<aggregation>> lists = {
      {aggregation::sum}, {aggregation::mean}, {aggregation::max}, {aggregation::max, aggregation::sum}};
  for (bool shared : {true, false})
    for (const auto& aggrs : lists) {
      CAPTURE(shared);
      CAPTURE(aggrs.size());
      rng gen(11 + aggrs.size() + 3 * static_cast<int>(aggrs[0]));
      net<double>::options o;
      o.in = 3;
      o.hidden = 4;
      o.iterations = 2;
      o.shared_weights = shared;
      o.aggregations = aggrs;
      o.out = 1;
      net<double> model(gen, o);
      const graph g = random_graph(gen, 7, 18);
      matrix<double> x = random_matrix(gen, 7, 3);
      const matrix<double> w = random_matrix(gen, g.num_edges(), 1);
      gnn_ref::check_layer_gradients(model, g, x, w);
    }
}

TEST_CASE("interaction_network results do not depend on the thread count") {
#ifdef _OPENMP
  rng gen(5);
  net<float>::options o;
  o.in = 3;
  o.hidden = 16;
  o.iterations = 2;
  o.aggregations = {aggregation::sum, aggregation::max};
  net<float> model(gen, o);
  const graph g = random_graph(gen, 3000, 30000);
  matrix<float> x = random_matrix(gen, 3000, 3).cast<float>();
  const matrix<float> dy = random_matrix(gen, g.num_edges(), 1).cast<float>();
  auto run = [&](int threads, std::vector<float>& grads, matrix<float>& y, matrix<float>& dx) {
    omp_set_num_threads(threads);
    net<float>::cache c;
    zero_grad(model);
    model.forward(x, g, y, c);
    model.backward(x, g, y, dy, c, &dx);
    grads.clear();
    model.for_each_param("", [&](const std::string&, parameter<float> p) { grads.insert(grads.end(), p.grad, p.grad + p.size()); });
  };
  std::vector<float> g1, g2;
  matrix<float> y1, y2, dx1, dx2;
  const int saved = omp_get_max_threads();
  run(1, g1, y1, dx1);
  run(2, g2, y2, dx2);
  omp_set_num_threads(saved);
  CHECK(y1 == y2);
  CHECK(dx1 == dx2);
  CHECK(g1 == g2);
#else
  MESSAGE("skipped: built without OpenMP");
#endif
}

TEST_CASE("interaction_network float edge kernels agree with the double model (hidden 16 to 64)") {
  // float with hidden a multiple of the SIMD width takes the register-tiled edge-block products; double at these
  // widths goes through Eigen: both must agree (forward and every gradient)
  for (int hidden : {16, 32, 48, 64}) {
    CAPTURE(hidden);
    rng gen(100 + hidden);
    net<double>::options o;
    o.in = 3;
    o.hidden = hidden;
    o.iterations = 2;
    o.aggregations = {aggregation::mean, aggregation::max};
    o.out = 2;
    net<double> md(gen, o);
    net<float>::options of;
    of.in = 3;
    of.hidden = hidden;
    of.iterations = 2;
    of.aggregations = o.aggregations;
    of.out = 2;
    net<float> mf(gen, of);
    std::vector<double> values;
    md.for_each_param("", [&](const std::string&, parameter<double> p) { values.insert(values.end(), p.value, p.value + p.size()); });
    std::size_t at = 0;
    mf.for_each_param("", [&](const std::string&, parameter<float> p) {
      for (long i = 0; i < p.size(); ++i) p.value[i] = static_cast<float>(values[at++]);
    });
    const graph g = random_graph(gen, 300, 2000);  // several blocks, row counts not multiples of the tile
    const matrix<double> x = random_matrix(gen, 300, 3);
    const matrix<float> xf = x.cast<float>();
    const matrix<double> dy = random_matrix(gen, g.num_edges(), 2);
    const matrix<float> dyf = dy.cast<float>();
    net<double>::cache cd;
    net<float>::cache cf;
    matrix<double> yd, dxd;
    matrix<float> yf, dxf;
    zero_grad(md);
    zero_grad(mf);
    md.forward(x, g, yd, cd);
    mf.forward(xf, g, yf, cf);
    md.backward(x, g, yd, dy, cd, &dxd);
    mf.backward(xf, g, yf, dyf, cf, &dxf);
    const double scale_y = std::max(1.0, yd.cwiseAbs().maxCoeff());
    CHECK((yf.cast<double>() - yd).cwiseAbs().maxCoeff() < 1e-4 * scale_y);
    const double scale_dx = std::max(1.0, dxd.cwiseAbs().maxCoeff());
    CHECK((dxf.cast<double>() - dxd).cwiseAbs().maxCoeff() < 1e-4 * scale_dx);
    std::vector<double> gd;
    md.for_each_param("", [&](const std::string&, parameter<double> p) { gd.insert(gd.end(), p.grad, p.grad + p.size()); });
    at = 0;
    double worst = 0, scale = 1;
    for (double v : gd) scale = std::max(scale, std::abs(v));
    mf.for_each_param("", [&](const std::string&, parameter<float> p) {
      for (long i = 0; i < p.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(p.grad[i]) - gd[at++]));
    });
    CHECK(worst < 1e-4 * scale);
  }
}

TEST_CASE("interaction_network handles graphs without edges") {
  rng gen(9);
  net<double>::options o;
  o.in = 2;
  o.hidden = 3;
  net<double> model(gen, o);
  const graph g = graph::from_edges(4, std::vector<index_t>{}, std::vector<index_t>{});
  matrix<double> x = random_matrix(gen, 4, 2), y, dx;
  net<double>::cache c;
  model.forward(x, g, y, c);
  CHECK(y.rows() == 0);
  const matrix<double> dy(0, 1);
  model.backward(x, g, y, dy, c, &dx);
  CHECK(dx.rows() == 4);
  CHECK(dx.cwiseAbs().maxCoeff() == 0.0);  // nothing depends on x without edges
}

TEST_CASE("interaction_network rejects bad input with a clear message") {
  rng gen(3);
  net<double>::options o;
  o.in = 3;
  o.hidden = 4;
  net<double> model(gen, o);
  const graph g = random_graph(gen, 6, 10);
  net<double>::cache c;
  matrix<double> y;
  matrix<double> x_bad_cols = matrix<double>::Ones(6, 4);
  CHECK_THROWS_WITH_AS(model.forward(x_bad_cols, g, y, c), doctest::Contains("interaction_network::forward: expected 3 columns"),
                       hepgnn::error);
  matrix<double> x_bad_rows = matrix<double>::Ones(5, 3);
  CHECK_THROWS_WITH_AS(model.infer(x_bad_rows, g, y, c), doctest::Contains("x must have one row per graph node (6)"),
                       hepgnn::error);
  graph broken = g;
  broken.sources[2] = 17;
  matrix<double> x = matrix<double>::Ones(6, 3);
  CHECK_THROWS_WITH_AS(model.forward(x, broken, y, c), doctest::Contains("out of range"), hepgnn::error);
  net<double>::cache fresh;
  matrix<double> dy = matrix<double>::Ones(10, 1);
  CHECK_THROWS_WITH_AS(model.backward(x, g, y, dy, fresh, nullptr), doctest::Contains("call forward"), hepgnn::error);
  model.forward(x, g, y, c);
  matrix<double> dy_bad = matrix<double>::Ones(9, 1);
  CHECK_THROWS_WITH_AS(model.backward(x, g, y, dy_bad, c, nullptr), doctest::Contains("output gradient dy"),
                       hepgnn::error);
  o.aggregations.clear();
  CHECK_THROWS_WITH_AS(net<double>(gen, o), doctest::Contains("aggregations must not be empty"), hepgnn::error);
  o.aggregations = {aggregation::sum};
  o.hidden = 0;
  CHECK_THROWS_WITH_AS(net<double>(gen, o), doctest::Contains("must be positive"), hepgnn::error);
}
