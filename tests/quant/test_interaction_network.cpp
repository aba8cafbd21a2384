// quant::fixed_interaction_network: the integer kernels against a scalar emulation with the fixed<> type, written
// out edge by edge, node by node in the rule the header states (hls4ml's dense order, sums cast term by term),
// for default, rounding/saturating and per-column-quantized formats; overflow exercised; bad parts and graphs.
#include "support/doctest.hpp"

#include <random>
#include <vector>

#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/quant/fixed_point.hpp"
#include "hepgnn/quant/interaction_network.hpp"

namespace hepgnn_test_quant_in {

using namespace hepgnn;
using namespace hepgnn::quant;

struct layer_w {
  int in, out;
  std::vector<double> w, b;  // w [out, in]
};
struct net_w {
  layer_w e[2], n[2], c[2];
};
constexpr int P = 3;

layer_w make_layer(int in, int out, double scale, std::mt19937_64& gen) {
  std::normal_distribution<double> nd(0, 1);
  layer_w l{in, out, std::vector<double>(static_cast<std::size_t>(in) * out), std::vector<double>(out)};
  for (auto& v : l.w) v = scale * nd(gen);
  for (auto& v : l.b) v = 0.5 * nd(gen);
  return l;
}
// edge 6 -> 7 -> 5, node 8 -> 6 -> 4, classifier 4 -> 5 -> 2 (odd widths: partial vector lanes)
net_w make_net(double scale, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  return {{make_layer(2 * P, 7, scale, gen), make_layer(7, 5, scale, gen)},
          {make_layer(P + 5, 6, scale, gen), make_layer(6, 4, scale, gen)},
          {make_layer(4, 5, scale, gen), make_layer(5, 2, scale, gen)}};
}

// Formats of one test network: every dense shares W, B, A, R; ReLU outputs Act; stage inputs EIn (edge[0]), NIn
// (node[0]), CIn (classifier[0]), Act elsewhere; with Quant, edge[0], edge[1], node[0] and classifier[0] cast
// each input column to Q0 (even columns) or Q1 (odd) first.
template <class X_, class EIn_, class W_, class B_, class A_, class R_, class Act_, class AggA_, class AggR_,
          class NIn_, class PoolA_, class PoolR_, class CIn_, bool Quant_ = false, class Q0_ = X_, class Q1_ = X_>
struct formats {
  using X = X_; using EIn = EIn_; using W = W_; using B = B_; using A = A_; using R = R_; using Act = Act_;
  using AggA = AggA_; using AggR = AggR_; using NIn = NIn_; using PoolA = PoolA_; using PoolR = PoolR_;
  using CIn = CIn_; using Q0 = Q0_; using Q1 = Q1_;
  static constexpr bool quant = Quant_;
};

template <class Fm>
struct scalar_in {
  template <class In, class From>
  static In cast_col(const From& v, int c, bool q) {
    if (q) return c % 2 == 0 ? In(typename Fm::Q0(v)) : In(typename Fm::Q1(v));
    return In(v);
  }
  // one stage: input columns cast to In, dense in hls4ml's order, ReLU into Act (or no ReLU: R)
  template <class In, class Out, class From>
  static std::vector<Out> stage(const std::vector<From>& a, const layer_w& l, bool q, bool relu) {
    using A = typename Fm::A;
    std::vector<In> x;
    for (int i = 0; i < l.in; ++i) x.push_back(cast_col<In>(a[i], i, q));
    std::vector<Out> y;
    for (int o = 0; o < l.out; ++o) {
      A acc = A(typename Fm::B(l.b[o]));
      for (int i = 0; i < l.in; ++i) acc = A(acc + A(x[i] * typename Fm::W(l.w[o * l.in + i])));
      const typename Fm::R r(acc);
      if (relu)
        y.push_back(r.raw() > 0 ? Out(r) : Out(0));
      else
        y.push_back(Out(r));
    }
    return y;
  }

  static std::vector<double> run(const net_w& nw, const std::vector<double>& xd, const graph& g, const batch& b) {
    using X = typename Fm::X; using Act = typename Fm::Act; using AggA = typename Fm::AggA;
    using AggR = typename Fm::AggR; using PoolA = typename Fm::PoolA; using PoolR = typename Fm::PoolR;
    const bool q = Fm::quant;
    std::vector<std::vector<X>> x(g.num_nodes);
    for (index_t i = 0; i < g.num_nodes; ++i)
      for (int c = 0; c < P; ++c) x[i].push_back(X(xd[i * P + c]));
    std::vector<std::vector<AggR>> agg(g.num_nodes);
    for (index_t i = 0; i < g.num_nodes; ++i) {
      std::vector<AggA> acc(5, AggA(0));
      for (index_t e = g.offsets[i]; e < g.offsets[i + 1]; ++e) {
        std::vector<X> in = x[i];
        in.insert(in.end(), x[g.sources[e]].begin(), x[g.sources[e]].end());
        const auto h = stage<typename Fm::EIn, Act>(in, nw.e[0], q, true);
        const auto m = stage<Act, Act>(h, nw.e[1], q, true);
        for (int j = 0; j < 5; ++j) acc[j] = AggA(acc[j] + AggA(m[j]));
      }
      for (int j = 0; j < 5; ++j) agg[i].push_back(AggR(acc[j]));
    }
    std::vector<double> y;
    for (index_t k = 0; k < b.num_graphs(); ++k) {
      std::vector<PoolA> acc(4, PoolA(0));
      for (index_t i = b.begin(k); i < b.end(k); ++i) {
        using NIn = typename Fm::NIn;
        std::vector<NIn> in;  // [x_i, a_i], each column from its own format
        for (int c = 0; c < P; ++c) in.push_back(cast_col<NIn>(x[i][c], c, q));
        for (int c = 0; c < 5; ++c) in.push_back(cast_col<NIn>(agg[i][c], P + c, q));
        const auto h = stage<NIn, Act>(in, nw.n[0], false, true);
        const auto o = stage<Act, Act>(h, nw.n[1], false, true);
        for (int j = 0; j < 4; ++j) acc[j] = PoolA(acc[j] + PoolA(o[j]));
      }
      std::vector<PoolR> pooled;
      for (int j = 0; j < 4; ++j) pooled.push_back(PoolR(acc[j]));
      const auto h = stage<typename Fm::CIn, Act>(pooled, nw.c[0], q, true);
      const auto out = stage<Act, typename Fm::R>(h, nw.c[1], false, false);
      for (const auto& v : out) y.push_back(v.to_double());
    }
    return y;
  }
};

template <class Fm>
fixed_interaction_network make_fixed(const net_w& nw) {
  auto st = [](const layer_w& l, fixed_spec in, bool relu, bool q) {
    const dense_precision p{in, Fm::W::spec(), Fm::B::spec(), Fm::A::spec(), Fm::R::spec()};
    fixed_stage s{quantized_dense(l.w.data(), l.b.data(), l.in, l.out, p), relu, Fm::Act::spec(), {}};
    if (q)
      for (int c = 0; c < l.in; ++c) s.input_quantizer.push_back(c % 2 == 0 ? Fm::Q0::spec() : Fm::Q1::spec());
    return s;
  };
  const bool q = Fm::quant;
  const fixed_spec act = Fm::Act::spec();
  fixed_interaction_parts p;
  p.input = Fm::X::spec();
  p.edge = {st(nw.e[0], Fm::EIn::spec(), true, q), st(nw.e[1], act, true, q)};
  p.aggregate = {Fm::AggA::spec(), Fm::AggR::spec()};
  p.node = {st(nw.n[0], Fm::NIn::spec(), true, q), st(nw.n[1], act, true, false)};
  p.pool = {Fm::PoolA::spec(), Fm::PoolR::spec()};
  p.classifier = {st(nw.c[0], Fm::CIn::spec(), true, q), st(nw.c[1], act, false, false)};
  return fixed_interaction_network(p);
}

// graphs of 5, 1, 0, 7 and 3 nodes
batch test_batch() { return batch::from_sizes({5, 1, 0, 7, 3}); }

std::vector<double> random_x(index_t n, double scale, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd(0, scale);
  std::vector<double> x(static_cast<std::size_t>(n) * P);
  for (auto& v : x) v = nd(gen);
  return x;
}

// The fixed-point network's outputs; checks them against the scalar emulation.
template <class Fm>
std::vector<double> check_against_scalar(const net_w& nw, const graph& g, const batch& b, double xscale) {
  const auto xd = random_x(g.num_nodes, xscale, 7);
  matrix<double> x(g.num_nodes, P), y;
  for (index_t i = 0; i < g.num_nodes * P; ++i) x.data()[i] = xd[i];
  const auto net = make_fixed<Fm>(nw);
  net.forward(x, g, b, y);
  const auto want = scalar_in<Fm>::run(nw, xd, g, b);
  REQUIRE(want.size() == static_cast<std::size_t>(y.size()));
  int mismatches = 0, nonzero = 0;
  for (std::size_t e = 0; e < want.size(); ++e) {
    mismatches += y.data()[e] != want[e];
    nonzero += want[e] != 0;
  }
  CHECK(mismatches == 0);
  CHECK(nonzero >= static_cast<int>(want.size()) / 2);  // values, not a network of zeros
  return {y.data(), y.data() + y.size()};
}

using F16 = fixed<16, 6>;
using hls_default = formats<F16, F16, F16, F16, F16, F16, F16, F16, F16, F16, F16, F16, F16>;
// narrow wrapping sums (AP_WRAP overflows)
using wrap_sums = formats<F16, F16, F16, F16, F16, F16, F16, fixed<7, 3>, fixed<7, 3>, F16, fixed<6, 3>, fixed<6, 3>, F16>;
// rounding and saturating everywhere; unsigned ReLU outputs; sums rounding (aggregate) and shifting left (pool)
using rounding = formats<fixed<14, 4, AP_RND>, fixed<10, 3, AP_RND_CONV, AP_SAT>, fixed<8, 2, AP_RND>,
                         fixed<8, 3, AP_RND>, fixed<14, 5, AP_RND, AP_SAT>, fixed<12, 4, AP_RND_INF, AP_SAT_SYM>,
                         ufixed<9, 4, AP_RND, AP_SAT>, fixed<9, 5, AP_RND_CONV, AP_SAT>,
                         fixed<10, 5, AP_RND_MIN_INF, AP_SAT_ZERO>, fixed<10, 5, AP_RND, AP_SAT>,
                         fixed<13, 7, AP_TRN_ZERO, AP_SAT_SYM>, fixed<10, 6, AP_RND, AP_SAT>, fixed<10, 6>>;
// HGQ-style per-column quantizers, wide exact formats around them
using quantized = formats<fixed<24, 6>, fixed<16, 4>, fixed<12, 3>, fixed<16, 6, AP_RND>, fixed<32, 12>,
                          fixed<32, 12>, fixed<32, 12>, fixed<32, 14>, fixed<32, 14>, fixed<20, 8>, fixed<32, 14>,
                          fixed<32, 14>, fixed<20, 8>, true, fixed<6, 2, AP_RND, AP_SAT>, ufixed<5, 1, AP_RND, AP_SAT>>;

TEST_CASE("fixed_interaction_network: hls4ml's ap_fixed<16,6> everywhere equals the scalar emulation") {
  const batch b = test_batch();
  check_against_scalar<hls_default>(make_net(0.8, 1), fully_connected(b), b, 1.5);
  check_against_scalar<hls_default>(make_net(0.8, 2), fully_connected(b, true), b, 1.5);  // with self loops
}

TEST_CASE("fixed_interaction_network: wrapping sums equal the scalar emulation, and they do wrap") {
  const batch b = test_batch();
  const net_w nw = make_net(1.0, 3);
  const auto narrow = check_against_scalar<wrap_sums>(nw, fully_connected(b), b, 2.0);
  const auto wide = check_against_scalar<hls_default>(nw, fully_connected(b), b, 2.0);
  CHECK(narrow != wide);  // the narrow sums overflowed somewhere
}

TEST_CASE("fixed_interaction_network: rounding and saturating formats equal the scalar emulation") {
  const batch b = test_batch();
  for (std::uint64_t seed = 10; seed < 14; ++seed) check_against_scalar<rounding>(make_net(0.9, seed), fully_connected(b), b, 2.5);
}

TEST_CASE("fixed_interaction_network: per-column input quantizers equal the scalar emulation") {
  const batch b = test_batch();
  check_against_scalar<quantized>(make_net(0.8, 20), fully_connected(b), b, 1.5);
  // any graph whose edges stay inside their jets: a random one (repeated edges included)
  std::mt19937_64 gen(5);
  std::vector<index_t> src, dst;
  for (index_t k = 0; k < b.num_graphs(); ++k)
    for (int r = 0; b.size(k) > 0 && r < 3 * b.size(k); ++r) {
      src.push_back(b.begin(k) + static_cast<index_t>(gen() % b.size(k)));
      dst.push_back(b.begin(k) + static_cast<index_t>(gen() % b.size(k)));
    }
  check_against_scalar<quantized>(make_net(0.8, 21), graph::from_edges(b.num_nodes(), src, dst), b, 1.5);
}

TEST_CASE("fixed_interaction_network: many blocks of edges, nodes and graphs equal the scalar emulation") {
  // 300 jets of 0..24 particles: thousands of edges and nodes, over 256 graphs, a node with over 256 incoming edges
  std::mt19937_64 gen(8);
  std::vector<index_t> sizes;
  for (int k = 0; k < 300; ++k) sizes.push_back(static_cast<index_t>(gen() % 25));
  sizes[7] = 0;
  sizes[8] = 20;
  const batch b = batch::from_sizes(sizes);
  graph g = fully_connected(b);
  std::vector<index_t> src, dst;
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (index_t s : g.incoming(i)) src.push_back(s), dst.push_back(i);
  const index_t hub = b.begin(8);
  for (int r = 0; r < 300; ++r) src.push_back(b.begin(8) + static_cast<index_t>(r % b.size(8))), dst.push_back(hub);
  g = graph::from_edges(b.num_nodes(), src, dst);
  REQUIRE(g.degree(hub) > 256);
  check_against_scalar<hls_default>(make_net(0.8, 40), g, b, 1.5);
  check_against_scalar<rounding>(make_net(0.9, 41), g, b, 2.5);
  check_against_scalar<quantized>(make_net(0.8, 42), g, b, 1.5);
}

TEST_CASE("fixed_interaction_network: bad parts and graphs are rejected, naming them") {
  const net_w nw = make_net(0.8, 30);
  const auto good = make_fixed<hls_default>(nw).parts();
  auto rejects = [](fixed_interaction_parts p, const char* what) {
    CHECK_THROWS_WITH_AS(fixed_interaction_network{p}, doctest::Contains(what), hepgnn::error);
  };
  {
    auto p = good;
    p.edge.clear();
    rejects(p, "parts.edge must hold at least one stage");
  }
  {
    auto p = good;
    p.node.erase(p.node.begin());  // node[0] now takes 6 inputs
    rejects(p, "parts.node[0] must take [x_i, a_i]");
  }
  {
    auto p = good;
    const std::vector<double> w(35, 0.1);
    p.edge[0].dense = quantized_dense(w.data(), nullptr, 5, 7, p.edge[0].dense.precision());
    rejects(p, "parts.edge[0] must take [x_dst, x_src], an even width 2 P, got 5");
  }
  {
    auto p = good;
    p.classifier.erase(p.classifier.begin());
    rejects(p, "parts.classifier[0] must take the node network's 4 outputs, got 5");
  }
  {
    auto p = good;
    p.edge[1].input_quantizer.assign(3, fixed_spec{});
    rejects(p, "parts.edge[1].input_quantizer must be empty or hold one format per input (7), got 3");
  }
  {
    auto p = good;
    p.node[1].input_quantizer.assign(6, fixed_spec{});
    p.node[1].input_quantizer[4].width = 40;
    rejects(p, "parts.node[1].input_quantizer[4].width");
  }
  {
    auto p = good;
    p.aggregate.accum.width = 0;
    rejects(p, "parts.aggregate.accum.width");
  }
  {
    auto p = good;
    p.pool.result.integer = 20;
    rejects(p, "parts.pool.result.integer");
  }
  {
    auto p = good;
    p.edge[0].relu_result.width = 33;
    rejects(p, "parts.edge[0].relu_result.width");
  }

  const fixed_interaction_network net(good);
  const batch b = test_batch();
  const graph g = fully_connected(b);
  matrix<double> x = matrix<double>::Zero(b.num_nodes(), P), y;
  matrix<double> x_short = matrix<double>::Zero(b.num_nodes() - 1, P), x_wide = matrix<double>::Zero(b.num_nodes(), P + 1);
  CHECK_THROWS_WITH_AS(net.forward(x_short, g, b, y), doctest::Contains("input x"), hepgnn::error);
  CHECK_THROWS_WITH_AS(net.forward(x_wide, g, b, y), doctest::Contains("input x"), hepgnn::error);
  const batch other = batch::from_sizes({5, 1, 0, 7, 2});
  CHECK_THROWS_WITH_AS(net.forward(x, g, other, y), doctest::Contains("the batch covers 15 nodes, the graph has 16"),
                       hepgnn::error);
  const batch regrouped = batch::from_sizes({6, 0, 0, 7, 3});  // the one-node jet joins the first: fine
  CHECK_NOTHROW(net.forward(x, g, regrouped, y));
  const batch split = batch::from_sizes({3, 3, 0, 7, 3});  // the first jet split in two: its edges cross
  CHECK_THROWS_WITH_AS(net.forward(x, g, split, y), doctest::Contains("joins graph"), hepgnn::error);
  graph bad = g;
  bad.sources[4] = 99;
  CHECK_THROWS_WITH_AS(net.forward(x, bad, b, y), doctest::Contains("out of range"), hepgnn::error);
  // an empty batch: no graphs, no outputs
  matrix<double> x0(0, P);
  const batch none = batch::from_sizes({});
  net.forward(x0, fully_connected(none), none, y);
  CHECK(y.rows() == 0);
}

}  // namespace hepgnn_test_quant_in
