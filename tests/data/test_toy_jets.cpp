// Toy jet generator invariants (JetNet layout, pt_rel sums to 1, determinism, resonance masses) and
// N-subjettiness: hand-computed values and prong counting visible in tau21 / tau32.
#include "support/doctest.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/data/jet_substructure.hpp"
#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/metrics/roc.hpp"

namespace hepgnn_test_toy_jets {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
template <class T>
double mean_of(const std::vector<T>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double mean_col(const matrix<float>& m, int c) { return static_cast<double>(m.col(c).mean()); }
}  // namespace

TEST_CASE_TEMPLATE("toy jets: JetNet layout invariants", T, float, double) {
  rng g(11);
  for (auto kind : {jet_kind::qcd, jet_kind::w, jet_kind::top}) {
    CAPTURE(static_cast<int>(kind));
    const auto jets = make_toy_jets<T>(300, kind, g);
    REQUIRE(jets.num_jets == 300);
    REQUIRE(jets.max_particles == 30);
    REQUIRE(jets.particles.rows() == 300 * 30);
    jets.validate();  // mask 0/1 with real rows first, finite, pt_rel >= 0
    int full = 0;
    for (index_t j = 0; j < jets.num_jets; ++j) {
      const index_t n = jets.count(j);
      REQUIRE(n >= 1);
      full += n == 30;
      double sum = 0, weta = 0;
      for (index_t i = 0; i < n; ++i) {
        auto r = jets.row(j, i);
        sum += static_cast<double>(r(jet_col::pt_rel));
        weta += static_cast<double>(r(jet_col::pt_rel) * r(jet_col::eta_rel));
        CHECK(std::hypot(double(r(jet_col::eta_rel)), double(r(jet_col::phi_rel))) < 1.2);  // cone 0.8 + axis shift
        if (i > 0) CHECK(r(jet_col::pt_rel) <= jets.row(j, i - 1)(jet_col::pt_rel));     // pt-ordered
      }
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
      CHECK(std::fabs(weta) < 0.2);  // axis close to the pt centroid
      CHECK(jets.labels[j] == static_cast<int>(kind));
      CHECK(jets.jet_features(j, 3) >= T(n));
    }
    CHECK(full > 50);  // JetNet-like multiplicities: many jets fill all 30 slots
  }
}

TEST_CASE("toy jets: seeded and deterministic") {
  rng a(5), b(5), c(6);
  const auto ja = make_toy_jets<float>(50, jet_kind::top, a);
  const auto jb = make_toy_jets<float>(50, jet_kind::top, b);
  const auto jc = make_toy_jets<float>(50, jet_kind::top, c);
  CHECK(ja.particles == jb.particles);
  CHECK(!(ja.particles == jc.particles));
}

TEST_CASE("toy jets: resonance masses and pt") {
  rng g(3);
  const auto q = make_toy_jets<float>(1000, jet_kind::qcd, g);
  const auto w = make_toy_jets<float>(1000, jet_kind::w, g);
  const auto t = make_toy_jets<float>(1000, jet_kind::top, g);
  const double mq = mean_col(q.jet_features, 2), mw = mean_col(w.jet_features, 2), mt = mean_col(t.jet_features, 2);
  MESSAGE("mean jet mass QCD ", mq, " W ", mw, " top ", mt);
  CHECK(mw > 75);
  CHECK(mw < 105);  // showering adds a little mass on top of 80.4
  CHECK(mt > 160);
  CHECK(mt < 195);
  CHECK(mean_col(q.jet_features, 0) > 900);
  CHECK(mean_col(q.jet_features, 0) < 1050);
}

TEST_CASE("nsubjettiness: hand-computed values") {
  auto jets = jet_array<double>::zeros(1, 30);
  // two pairs along eta: A(0, .3) B(.02, .2) | C(.4, .3) D(.43, .2), phi = 0
  const double eta[] = {0, 0.02, 0.4, 0.43}, pt[] = {0.3, 0.2, 0.3, 0.2};
  for (int i = 0; i < 4; ++i) jets.row(0, i) << eta[i], 0.0, pt[i], 1.0;
  // beta = 1: WTA kt axes A and C; refinement to centroids does not lower the sum, so axes stay
  CHECK(nsubjettiness(jets, 0, 2) == doctest::Approx((0.2 * 0.02 + 0.2 * 0.03) / 0.8).epsilon(1e-12));
  // beta = 2: refinement reaches the pt centroids 0.008 and 0.412
  nsubjettiness_options o2{.beta = 2.0};
  const double t2 = (0.3 * 0.008 * 0.008 + 0.2 * 0.012 * 0.012 + 0.3 * 0.012 * 0.012 + 0.2 * 0.018 * 0.018) / 0.64;
  CHECK(nsubjettiness(jets, 0, 2, o2) == doctest::Approx(t2).epsilon(1e-9));
  CHECK(nsubjettiness(jets, 0, 4) == 0.0);  // as many axes as particles
  // tau1 (beta 1): WTA axis: A-B merge (axis A), C-D (axis C), then (A,C) -> A (pt .5 each, first kept)
  // costs 0 + .2*.02 + .3*.4 + .2*.43 = 0.21; refinement to the centroid .2 gives .3*.2+.2*.18+.3*.2+.2*.23=.202
  CHECK(nsubjettiness(jets, 0, 1) <= 0.21 / 0.8 + 1e-12);
  CHECK(nsubjettiness(jets, 0, 1) > 0.15);
  // phi wrap-around: the same jet shifted across phi = pi gives the same tau2
  auto wrapped = jets;
  for (int i = 0; i < 4; ++i) wrapped.row(0, i)(jet_col::phi_rel) = (i % 2 ? -1.0 : 1.0) * (std::numbers::pi - 1e-3);
  auto straight = jets;
  for (int i = 0; i < 4; ++i) straight.row(0, i)(jet_col::phi_rel) = (i % 2 ? 1.0 : -1.0) * 1e-3;
  CHECK(nsubjettiness(wrapped, 0, 2) == doctest::Approx(nsubjettiness(straight, 0, 2)).epsilon(1e-9));
}

TEST_CASE("nsubjettiness: prong count visible in tau21 and tau32") {
  rng g(21);
  const auto q = make_toy_jets<float>(600, jet_kind::qcd, g);
  const auto w = make_toy_jets<float>(600, jet_kind::w, g);
  const auto t = make_toy_jets<float>(600, jet_kind::top, g);
  const auto q21 = nsubjettiness_ratio(q, 2, 1), w21 = nsubjettiness_ratio(w, 2, 1);
  const auto q32 = nsubjettiness_ratio(q, 3, 2), t32 = nsubjettiness_ratio(t, 3, 2), w32 = nsubjettiness_ratio(w, 3, 2);
  MESSAGE("mean tau21 QCD ", mean_of(q21), " W ", mean_of(w21), "; tau32 QCD ", mean_of(q32), " W ", mean_of(w32),
          " top ", mean_of(t32));
  CHECK(mean_of(w21) < mean_of(q21) - 0.1);
  CHECK(mean_of(t32) < mean_of(q32) - 0.15);
  CHECK(mean_of(t32) < mean_of(w32) - 0.15);
  // as a tagger: small ratio = signal, so score = -ratio
  std::vector<double> st, sq, sw, sq21;
  for (double x : t32) st.push_back(-x);
  for (double x : q32) sq.push_back(-x);
  for (double x : w21) sw.push_back(-x);
  for (double x : q21) sq21.push_back(-x);
  const double auc_top = auc(st, sq), auc_w = auc(sw, sq21);
  MESSAGE("AUC tau32 top vs QCD ", auc_top, ", tau21 W vs QCD ", auc_w);
  CHECK(auc_top > 0.75);
  CHECK(auc_w > 0.65);
}

TEST_CASE("toy jets and nsubjettiness: bad input") {
  rng g(1);
  CHECK_THROWS_WITH_AS(make_toy_jets<float>(-1, jet_kind::qcd, g), doctest::Contains("n must be >= 0, got -1"),
                       hepgnn::error);
  toy_jet_options o;
  o.pt_min = 2000;
  o.pt_max = 1000;
  CHECK_THROWS_WITH_AS(make_toy_jets<float>(1, jet_kind::qcd, g, o), doctest::Contains("pt_min <= pt_max"),
                       hepgnn::error);
  const auto jets = make_toy_jets<float>(2, jet_kind::qcd, g);
  CHECK_THROWS_WITH_AS(nsubjettiness(jets, 2, 1), doctest::Contains("jet index 2 out of range [0, 2)"), hepgnn::error);
  CHECK_THROWS_WITH_AS(nsubjettiness(jets, 0, 0), doctest::Contains("n_axes must be >= 1, got 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(nsubjettiness_ratio(jets, 3, 2, {.beta = -1.0}), doctest::Contains("beta and r0 must be > 0"),
                       hepgnn::error);
  auto broken = jets;
  broken.row(0, 0)(jet_col::mask) = 0.5f;
  CHECK_THROWS_WITH_AS(broken.validate(), doctest::Contains("mask must be 0 or 1, got 0.5"), hepgnn::error);
  broken = jets;
  broken.particles.conservativeResize(broken.particles.rows() - 1, 4);
  CHECK_THROWS_WITH_AS(broken.validate(), doctest::Contains("particles must be (num_jets*max_particles) x 4"),
                       hepgnn::error);
}

TEST_CASE("jet_array: pack_jets and concat_jets") {
  rng g(8);
  const auto a = make_toy_jets<float>(3, jet_kind::qcd, g, {.max_particles = 10});
  const auto b = make_toy_jets<float>(2, jet_kind::top, g, {.max_particles = 10});
  const auto c = concat_jets<float>({&a, &b});
  REQUIRE(c.num_jets == 5);
  CHECK(c.labels == std::vector<int>{0, 0, 0, 2, 2});
  CHECK(c.jet_features.rows() == 5);
  CHECK(c.particles.topRows(30) == a.particles);
  CHECK(c.particles.bottomRows(20) == b.particles);
  matrix<float> x;
  batch bt;
  pack_jets(c, 1, 3, x, bt);  // jets 1, 2, 3
  REQUIRE(bt.num_graphs() == 3);
  CHECK(bt.size(0) == c.count(1));
  CHECK(bt.size(2) == c.count(3));
  CHECK(x.cols() == 3);
  CHECK(x.rows() == c.count(1) + c.count(2) + c.count(3));
  CHECK(x.row(bt.begin(2)) == c.row(3, 0).head(3));
  const auto other = make_toy_jets<float>(1, jet_kind::qcd, g);  // 30 slots
  CHECK_THROWS_WITH_AS(concat_jets<float>({&a, &other}), doctest::Contains("must have max_particles=10, got 30"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(pack_jets(c, 4, 2, x, bt), doctest::Contains("jets [4, 6) out of range for 5 jets"),
                       hepgnn::error);
  // first + n would overflow a 32-bit index: still a clear error, not a wrapped range.
  CHECK_THROWS_WITH_AS(pack_jets(c, 3, std::numeric_limits<index_t>::max(), x, bt),
                       doctest::Contains("out of range for 5 jets"), hepgnn::error);
}

TEST_CASE("jet_array: pack_jets of an index list (a shuffled minibatch)") {
  rng g(9);
  const auto jets = make_toy_jets<float>(6, jet_kind::w, g, {.max_particles = 12});
  const std::vector<std::size_t> items{4, 0, 4, 2};
  matrix<float> x;
  batch bt;
  pack_jets(jets, std::span<const std::size_t>(items), x, bt, 4);
  REQUIRE(bt.num_graphs() == 4);
  CHECK(x.cols() == 4);
  Eigen::Index r = 0;
  for (std::size_t k = 0; k < items.size(); ++k) {
    const auto jet = static_cast<index_t>(items[k]);
    REQUIRE(bt.size(static_cast<index_t>(k)) == jets.count(jet));
    for (index_t i = 0; i < jets.count(jet); ++i) CHECK(x.row(r++) == jets.row(jet, i));
  }
  CHECK(r == x.rows());
  // The contiguous overload is the index list 0, 1, ..., n-1.
  matrix<float> xr, xl;
  batch br, bl;
  pack_jets(jets, 1, 3, xr, br);
  const std::vector<int> range{1, 2, 3};
  pack_jets(jets, std::span<const int>(range), xl, bl);
  CHECK(xr == xl);
  CHECK(br.node_offsets == bl.node_offsets);
  const std::vector<long> bad{0, 6};
  CHECK_THROWS_WITH_AS(pack_jets(jets, std::span<const long>(bad), x, bt),
                       doctest::Contains("items[1] = 6 is not a jet index in [0, 6)"), hepgnn::error);
  const std::vector<int> negative{-1};
  CHECK_THROWS_WITH_AS(pack_jets(jets, std::span<const int>(negative), x, bt),
                       doctest::Contains("items[0] = -1"), hepgnn::error);
}

}  // namespace hepgnn_test_toy_jets
