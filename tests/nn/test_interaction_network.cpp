// interaction_network: PyTorch reference outputs and gradients (tests/reference/gnn_layers_reference.py),
// finite differences for every aggregation, inference == training forward, thread-count independence, bad input;
// edge input features (edge_attr): a plain-loop oracle, finite differences, edge_in = 0 unchanged.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "support/thread_count.hpp"
#include "hepgnn/nn/interaction_network.hpp"

namespace hepgnn_test_interaction_network {  // this file's names, apart from the other files of its unity build

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
  o.edge_in = ref.count("edge_attr") ? static_cast<int>(ref.at("edge_attr").cols()) : 0;
  return net<T>(gen, o);
}

/// Rows of a per-edge reference tensor (input edge order) moved to CSR order.
matrix<double> csr_rows(const matrix<double>& m, const std::vector<index_t>& pos) {
  matrix<double> out(m.rows(), m.cols());
  for (long e = 0; e < m.rows(); ++e) out.row(pos[e]) = m.row(e);
  return out;
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

/// The layer's equations (sum aggregation) with plain Eigen, one node and one CSR edge at a time: the oracle for
/// edge_attr, written from the file comment, not from the blocked implementation.
matrix<double> naive_forward(net<double>& m, const matrix<double>& x, const graph& g, const matrix<double>& attr) {
  using row = Eigen::RowVectorXd;
  auto mlp = [](dense<double>& l0, dense<double>& l1, const row& v, bool last) -> row {
    const row z = (v * l0.weight().transpose() + l0.bias().row(0)).cwiseMax(0.0);
    const row u = z * l1.weight().transpose() + l1.bias().row(0);
    return last ? row(u.cwiseMax(0.0)) : u;
  };
  const auto& o = m.config();
  const long n = g.num_nodes, H = o.hidden;
  matrix<double> h(n, H), e(g.num_edges(), H), y(g.num_edges(), o.out);
  for (long i = 0; i < n; ++i) h.row(i) = mlp(m.node_encoder(0), m.node_encoder(1), x.row(i), true);
  for (long i = 0; i < n; ++i)
    for (index_t k = g.offsets[i]; k < g.offsets[i + 1]; ++k) {
      row v(2 * o.in + o.edge_in);
      v << x.row(g.sources[k]), x.row(i), attr.row(k);
      e.row(k) = mlp(m.edge_encoder(0), m.edge_encoder(1), v, true);
    }
  for (int t = 0; t < o.iterations; ++t) {
    matrix<double> agg = matrix<double>::Zero(n, H), leaving = matrix<double>::Zero(n, H), h_next(n, H);
    for (long i = 0; i < n; ++i)
      for (index_t k = g.offsets[i]; k < g.offsets[i + 1]; ++k) {
        row v(3 * H);
        v << h.row(g.sources[k]), h.row(i), e.row(k);
        e.row(k) += mlp(m.edge_network(t, 0), m.edge_network(t, 1), v, true);
        agg.row(i) += e.row(k);
        leaving.row(g.sources[k]) += e.row(k);
      }
    for (long i = 0; i < n; ++i) {
      row v(o.source_aggregation ? 3 * H : 2 * H);
      if (o.source_aggregation)
        v << h.row(i), agg.row(i), leaving.row(i);
      else
        v << h.row(i), agg.row(i);
      h_next.row(i) = h.row(i) + mlp(m.node_network(t, 0), m.node_network(t, 1), v, true);
    }
    h = h_next;
  }
  for (long k = 0; k < g.num_edges(); ++k) y.row(k) = mlp(m.output(0), m.output(1), e.row(k), false);
  return y;
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

TEST_CASE("interaction_network with edge_attr matches the PyTorch reference (double, outputs and gradients)") {
  const tensors ref = load("in_edge_attr");
  rng gen(7);
  auto model = make_net<double>(ref, {aggregation::sum, aggregation::max}, gen);
  set_params(model, ref);  // edge_encoder.0.weight: hidden x (2 in + edge_in), as torch.nn.Linear
  const auto dst = ints(ref.at("dst"));
  const index_t n = static_cast<index_t>(ref.at("x").rows());
  const graph g = graph::from_edges(n, ints(ref.at("src")), dst);
  const auto pos = graph::csr_position(n, dst);
  const matrix<double> x = ref.at("x"), attr = csr_rows(ref.at("edge_attr"), pos), dy = csr_rows(ref.at("dy"), pos);
  matrix<double> y, yi, dx, da;
  net<double>::cache c;
  model.forward(x, g, attr, y, c);
  CHECK(rel_diff(y, csr_rows(ref.at("y"), pos)) < 1e-10);
  zero_grad(model);
  model.backward(x, g, attr, y, dy, c, &dx, &da);
  CHECK(rel_diff(dx, ref.at("grad_x")) < 1e-10);
  CHECK(rel_diff(da, csr_rows(ref.at("grad_edge_attr"), pos)) < 1e-10);
  CHECK(gnn_ref::grad_diff(model, ref) < 1e-10);
  model.infer(x, g, attr, yi, c);
  CHECK(rel_diff(yi, y) < 1e-14);
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
  for (bool source : {false, true})  // with source aggregation: 3 iterations, so two node updates see the sums
  for (bool shared : {true, false})
    for (const auto& aggrs : lists) {
      CAPTURE(source);
      CAPTURE(shared);
      CAPTURE(aggrs.size());
      rng gen(11 + aggrs.size() + 3 * static_cast<int>(aggrs[0]) + 40 * source);
      net<double>::options o;
      o.in = 3;
      o.hidden = 4;
      o.iterations = source ? 3 : 2;
      o.shared_weights = shared;
      o.aggregations = aggrs;
      o.out = 1;
      o.source_aggregation = source;
      net<double> model(gen, o);
      const graph g = random_graph(gen, 7, 18);
      matrix<double> x = random_matrix(gen, 7, 3);
      const matrix<double> w = random_matrix(gen, g.num_edges(), 1);
      hepgnn_test::check_layer(model, g, x, {.dy = &w});
    }
}

TEST_CASE("interaction_network results do not depend on the thread count") {
  for (int edge_in : {0, 3}) {
    CAPTURE(edge_in);
    rng gen(5);
    net<float>::options o;
    o.in = 3;
    o.hidden = 16;
    o.iterations = 2;
    o.aggregations = {aggregation::sum, aggregation::max};
    o.edge_in = edge_in;
    net<float> model(gen, o);
    const graph g = random_graph(gen, 3000, 30000);
    matrix<float> x = random_matrix(gen, 3000, 3).cast<float>();
    const matrix<float> attr = random_matrix(gen, g.num_edges(), edge_in).cast<float>();
    const matrix<float> dy = random_matrix(gen, g.num_edges(), 1).cast<float>();
    auto run = [&](int threads, std::vector<float>& grads, matrix<float>& y, matrix<float>& dx, matrix<float>& da) {
      hepgnn_test::at_threads(threads, [&] {
        net<float>::cache c;
        zero_grad(model);
        model.forward(x, g, attr, y, c);
        model.backward(x, g, attr, y, dy, c, &dx, &da);
      });
      grads.clear();
      model.for_each_param("", [&](const std::string&, parameter<float> p) { grads.insert(grads.end(), p.grad, p.grad + p.size()); });
    };
    std::vector<float> g1, g2;
    matrix<float> y1, y2, dx1, dx2, da1, da2;
    run(1, g1, y1, dx1, da1);
    run(2, g2, y2, dx2, da2);
    CHECK(y1 == y2);
    CHECK(dx1 == dx2);
    CHECK(da1 == da2);
    CHECK(g1 == g2);
  }
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

TEST_CASE("interaction_network with edge_attr matches a plain-loop evaluation of its equations") {
  // also with source aggregation (the node update sums each node's leaving edges too), shared and unshared
  for (const auto& setting : {std::pair{false, false}, std::pair{true, true}, std::pair{true, false}}) {
    const bool source = setting.first, shared = setting.second;  // not a structured binding: clang 14's CAPTURE
    CAPTURE(source);
    CAPTURE(shared);
    rng gen(source ? 41 + shared : 17);
    net<double>::options o;
    o.in = 3;
    o.hidden = 5;
    o.iterations = source ? 3 : 2;
    o.shared_weights = shared;
    o.out = 2;
    o.edge_in = 2;
    o.source_aggregation = source;
    net<double> model(gen, o);
    CHECK(model.edge_encoder(0).weight().rows() == 5);
    CHECK(model.edge_encoder(0).weight().cols() == 2 * 3 + 2);  // torch.nn.Linear(2 * in + edge_in, hidden)
    CHECK(model.node_network(0, 0).weight().cols() == (source ? 3 : 2) * 5);  // [h, a(, s)]
    const graph g = random_graph(gen, 300, 2000);  // several edge blocks
    const matrix<double> x = random_matrix(gen, 300, 3), attr = random_matrix(gen, g.num_edges(), 2);
    const matrix<double> expected = naive_forward(model, x, g, attr);
    net<double>::cache c;
    matrix<double> y, yi;
    model.forward(x, g, attr, y, c);
    CHECK(rel_diff(y, expected) < 1e-12);
    model.infer(x, g, attr, yi, c);
    CHECK(rel_diff(yi, expected) < 1e-12);
  }
}

TEST_CASE("interaction_network edge_attr gradients match finite differences (parameters, x and edge_attr)") {
  for (bool shared : {true, false}) {
    CAPTURE(shared);
    rng gen(21 + shared);
    net<double>::options o;
    o.in = 3;
    o.hidden = 4;
    o.iterations = 2;
    o.shared_weights = shared;
    o.aggregations = {aggregation::max, aggregation::sum};
    o.out = 2;
    o.edge_in = 2;
    net<double> model(gen, o);
    const graph g = random_graph(gen, 7, 18);
    matrix<double> x = random_matrix(gen, 7, 3), attr = random_matrix(gen, g.num_edges(), 2);
    const matrix<double> w = random_matrix(gen, g.num_edges(), 2);
    net<double>::cache c;
    matrix<double> y, dx, da;
    // x and edge_attr are both inputs: the generic checker, with the loss and the backward written out
    hepgnn_test::check_gradients(
        model,
        [&] {
          model.infer(x, g, attr, y, c);
          return (y.array() * w.array()).sum();
        },
        [&] {
          model.forward(x, g, attr, y, c);
          model.backward(x, g, attr, y, w, c, &dx, &da);
        },
        {{"x", &x, &dx}, {"edge_attr", &attr, &da}});
  }
}

TEST_CASE("interaction_network without edge features is unchanged: bit-identical to edge features with zero weights") {
  rng gen(31);
  net<float>::options o;
  o.in = 3;
  o.hidden = 16;  // float at a multiple of the SIMD width: the register-tiled edge kernels
  o.iterations = 2;
  o.aggregations = {aggregation::sum, aggregation::max};
  net<float> plain(gen, o);
  CHECK(plain.edge_encoder(0).weight().cols() == 6);
  o.edge_in = 3;
  net<float> featured(gen, o);
  std::vector<std::pair<std::string, parameter<float>>> targets;
  featured.for_each_param("", [&](const std::string& name, parameter<float> q) { targets.emplace_back(name, q); });
  std::size_t at = 0;
  plain.for_each_param("", [&](const std::string& name, parameter<float> p) {
    REQUIRE(targets.at(at).first == name);
    if (name != "edge_encoder.0.weight") std::copy(p.value, p.value + p.size(), targets[at].second.value);
    ++at;
  });
  featured.edge_encoder(0).weight() << plain.edge_encoder(0).weight(), matrix<float>::Zero(16, 3);
  const graph g = random_graph(gen, 300, 2000);
  const matrix<float> x = random_matrix(gen, 300, 3).cast<float>();
  const matrix<float> attr = random_matrix(gen, g.num_edges(), 3).cast<float>(), none(g.num_edges(), 0);
  const matrix<float> dy = random_matrix(gen, g.num_edges(), 1).cast<float>();
  net<float>::cache c0, c1, c2;
  matrix<float> y0, y1, y2, dx0, dx1, dx2, da;
  zero_grad(plain);
  plain.forward(x, g, y0, c0);
  plain.backward(x, g, y0, dy, c0, &dx0);
  std::vector<float> grads0;
  plain.for_each_param("", [&](const std::string&, parameter<float> p) { grads0.insert(grads0.end(), p.grad, p.grad + p.size()); });
  zero_grad(featured);
  featured.forward(x, g, attr, y1, c1);
  featured.backward(x, g, attr, y1, dy, c1, &dx1, &da);
  CHECK(y1 == y0);
  CHECK(dx1 == dx0);
  CHECK(da.rows() == g.num_edges());
  CHECK(da.cols() == 3);
  std::vector<float> grads1;
  featured.for_each_param("", [&](const std::string& name, parameter<float> p) {
    if (name == "edge_encoder.0.weight") {  // its edge_attr columns have no counterpart
      const matrix<float> kept = featured.edge_encoder(0).weight_grad().leftCols(6);
      grads1.insert(grads1.end(), kept.data(), kept.data() + kept.size());
    } else {
      grads1.insert(grads1.end(), p.grad, p.grad + p.size());
    }
  });
  CHECK(grads1 == grads0);
  // the edge_attr overloads with E x 0 features on the plain layer give the same results
  plain.forward(x, g, none, y2, c2);
  CHECK(y2 == y0);
  plain.backward(x, g, none, y2, dy, c2, &dx2);
  CHECK(dx2 == dx0);
  plain.infer(x, g, none, y2, c2);
  CHECK(y2 == y0);
}

TEST_CASE("interaction_network with edge features rejects a missing or misshapen edge_attr") {
  rng gen(4);
  net<double>::options o;
  o.in = 3;
  o.hidden = 4;
  o.edge_in = 2;
  net<double> model(gen, o);
  const graph g = random_graph(gen, 6, 10);
  const matrix<double> x = matrix<double>::Ones(6, 3), attr = matrix<double>::Ones(10, 2);
  const matrix<double> short_attr = matrix<double>::Ones(9, 2), wide_attr = matrix<double>::Ones(10, 3);
  const matrix<double> dy = matrix<double>::Ones(10, 1);
  net<double>::cache c;
  matrix<double> y;
  CHECK_THROWS_WITH_AS(model.forward(x, g, y, c),
                       doctest::Contains("interaction_network::forward: this layer was built with edge_in = 2; use "
                                         "the overload that takes edge_attr (10 x 2"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(model.infer(x, g, y, c), doctest::Contains("interaction_network::infer: this layer was built"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(model.forward(x, g, short_attr, y, c),
                       doctest::Contains("interaction_network::forward: edge_attr must be E x edge_in = 10 x 2 (one "
                                         "row per edge, CSR order), got 9 x 2"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(model.infer(x, g, wide_attr, y, c), doctest::Contains("got 10 x 3"), hepgnn::error);
  model.forward(x, g, attr, y, c);
  CHECK_THROWS_WITH_AS(model.backward(x, g, y, dy, c, nullptr),
                       doctest::Contains("interaction_network::backward: this layer was built with edge_in = 2"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(model.backward(x, g, short_attr, y, dy, c, nullptr),
                       doctest::Contains("interaction_network::backward: edge_attr must be"), hepgnn::error);
  o.edge_in = 0;
  const net<double> plain(gen, o);
  CHECK_THROWS_WITH_AS(plain.infer(x, g, attr, y, c), doctest::Contains("edge_attr must be E x edge_in = 10 x 0"),
                       hepgnn::error);
  o.edge_in = -1;
  CHECK_THROWS_WITH_AS(net<double>(gen, o), doctest::Contains("edge_in = -1"), hepgnn::error);
}

TEST_CASE("interaction_network bf16 inference is within bf16 rounding of float inference") {
  // hidden 64: the bf16 kernel's whole panels; hidden 24: widths the kernel leaves to the float emulation
  for (int hidden : {64, 24}) {
    CAPTURE(hidden);
    rng gen(200 + hidden);
    net<float>::options o;
    o.in = 3;
    o.hidden = hidden;
    o.iterations = 4;
    o.aggregations = {aggregation::sum, aggregation::max};
    o.edge_in = 2;
    net<float> m(gen, o);
    const graph g = random_graph(gen, 300, 2000);
    const matrix<float> x = random_matrix(gen, 300, 3).cast<float>();
    const matrix<float> attr = random_matrix(gen, g.num_edges(), 2).cast<float>();
    net<float>::cache c;
    matrix<float> y32, y16, again;
    m.infer(x, g, attr, y32, c);
    m.infer(x, g, attr, y16, c, inference_precision::bf16);
    m.infer(x, g, attr, again, c);  // the cache's bf16 panels leave float inference as it was
    CHECK(again == y32);
    REQUIRE(y16.rows() == g.num_edges());
    const double scale = std::max(1.0, static_cast<double>(y32.cwiseAbs().maxCoeff()));
    const double worst = (y16 - y32).cwiseAbs().maxCoeff();
    CHECK(worst > 0);               // the products really ran in bf16
    CHECK(worst < 2e-2 * scale);    // operand rounding (2^-9 relative) through 4 iterations, not a wrong product
    CHECK((y16 - y32).cwiseAbs().mean() < 2e-3 * scale);
  }
  rng gen(5);
  net<double>::options od;
  od.in = 3;
  od.hidden = 16;
  net<double> md(gen, od);
  const graph g = random_graph(gen, 20, 60);
  const matrix<double> x = random_matrix(gen, 20, 3);
  net<double>::cache c;
  matrix<double> y;
  CHECK_THROWS_WITH_AS(md.infer(x, g, y, c, inference_precision::bf16), doctest::Contains("needs a float network"),
                       error);
}

TEST_CASE("interaction_network with source aggregation does not depend on the thread count") {
  rng gen(61);
  net<float>::options o;
  o.in = 3;
  o.hidden = 16;
  o.iterations = 3;
  o.source_aggregation = true;
  net<float> m(gen, o);
  const graph g = random_graph(gen, 2000, 20000);
  const matrix<float> x = random_matrix(gen, 2000, 3).cast<float>();
  const matrix<float> dy = random_matrix(gen, g.num_edges(), 1).cast<float>();
  auto run = [&](int threads, matrix<float>& y, std::vector<float>& grads) {
    hepgnn_test::at_threads(threads, [&] {
      net<float>::cache c;
      matrix<float> dx;
      zero_grad(m);
      m.forward(x, g, y, c);
      m.backward(x, g, y, dy, c, &dx);
    });
    grads.clear();
    m.for_each_param("", [&](const std::string&, parameter<float> p) { grads.insert(grads.end(), p.grad, p.grad + p.size()); });
  };
  matrix<float> y1, y2;
  std::vector<float> g1, g2;
  run(1, y1, g1);
  run(2, y2, g2);
  CHECK(y1 == y2);
  CHECK(g1 == g2);
}

}  // namespace hepgnn_test_interaction_network
