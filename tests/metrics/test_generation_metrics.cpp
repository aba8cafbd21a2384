// JetNet's generation metrics: EFPs against energyflow and brute force, W1 metrics, FPD and KPD against JetNet's own
// code on the same batches (tests/reference/generation_metrics_reference.py), analytic cases, thread counts, bad input.
#include "support/doctest.hpp"
#include "support/wave_jets.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/metrics/generation.hpp"
#include "support/data.hpp"
#include "support/reference.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_generation_metrics {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using hepgnn_test::max_rel_diff;
using hepgnn_test::read_reference;
using hepgnn_test::wave;
using hepgnn_test::wave_jets;

namespace {

constexpr index_t NA = 200, NB = 180, P = 30;


/// The reference script's fixed_rows: draw number `call` of JetNet's stand-in generator.
std::vector<index_t> fixed_rows(int call, index_t n, index_t size) {
  std::vector<index_t> r(size);
  for (index_t k = 0; k < size; ++k) r[k] = static_cast<index_t>((static_cast<long>(k) * (11 + 2 * call) + 3 * call + 1) % n);
  return r;
}

/// Batches of the reference: batch k uses draws 2k (first) and 2k + 1 (second), of the given sizes.
eval_batches fixed_batches(const std::vector<index_t>& sizes, index_t n1, index_t n2) {
  eval_batches d;
  int call = 0;
  for (index_t s : sizes) {
    d.first.push_back(fixed_rows(call++, n1, s));
    d.second.push_back(fixed_rows(call++, n2, s));
  }
  return d;
}

/// Largest |a - b| / |b| (b = 0: |a|).
template <class A>
double rel_diff(const A& a, const std::vector<double>& b) {
  REQUIRE(static_cast<std::size_t>(a.size()) == b.size());
  double m = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double d = std::abs(static_cast<double>(a.data()[i]) - b[i]);
    m = std::max(m, b[i] == 0 ? d : d / std::abs(b[i]));
  }
  return m;
}

const std::map<std::string, std::vector<double>>& ref() {
  static const auto r = read_reference("tests/data/generation_metrics_reference.txt");
  return r;
}

/// EFP of one graph by the direct sum over all n-tuples of particles (energyflow's definition, z unnormalised).
double brute_efp(const jet_array<double>& jets, index_t j, const efp_graph& g) {
  const index_t m = jets.count(j);
  std::vector<int> idx(g.num_vertices, 0);
  double total = 0;
  while (true) {
    double v = 1;
    for (int a = 0; a < g.num_vertices; ++a) v *= jets.row(j, idx[a])(jet_col::pt_rel);
    for (auto [a, b] : g.edges) {
      const double de = jets.row(j, idx[a])(0) - jets.row(j, idx[b])(0);
      double dp = std::abs(jets.row(j, idx[a])(1) - jets.row(j, idx[b])(1));
      if (dp > std::numbers::pi) dp = 2 * std::numbers::pi - dp;
      v *= std::sqrt(de * de + dp * dp);
    }
    total += v;
    int a = 0;
    while (a < g.num_vertices && ++idx[a] == m) idx[a++] = 0;
    if (a == g.num_vertices) break;
  }
  return total;
}

}  // namespace

TEST_CASE("efps: the engine equals the direct sum over particle tuples, for every graph with d <= 4") {
  auto jets = wave_jets(0, 6);
  const auto graphs = efp_graphs::d_le_4();
  const matrix<double> e = efps(jets, graphs);
  // jets of 5, 26 (wide phi: wrap-around) and 14 particles; the direct sum costs M^n, so the larger jets take
  // the graphs with fewer vertices (3.5 s in a Debug -O0 build)
  for (auto [j, max_vertices] : {std::pair{0, 8}, std::pair{3, 3}, std::pair{5, 4}}) {
    CAPTURE(j);
    for (std::size_t g = 0; g < graphs.size(); ++g) {
      if (graphs[g].num_vertices > max_vertices) continue;
      CAPTURE(g);
      const double want = brute_efp(jets, j, graphs[g]);
      CHECK(std::abs(e(j, static_cast<Eigen::Index>(g)) - want) <= 1e-13 * std::abs(want));
    }
  }
  // a graph of treewidth 3 (K4) is refused by name
  CHECK_THROWS_WITH_AS(efps(jets, {{4, {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}}}),
                       doctest::Contains("treewidth"), hepgnn::error);
}

TEST_CASE("efps and jet masses match energyflow and JetNet on the reference jets") {
  const auto a = wave_jets(0, NA), b = wave_jets(1, NB);
  const matrix<double> e5a = efps(a, efp_graphs::n4_d4_prime()), e5b = efps(b, efp_graphs::n4_d4_prime());
  const matrix<double> e36a = fpd_kpd_features(a), e36b = fpd_kpd_features(b);
  const double d5 = std::max(rel_diff(matrix<double>(e5a.topRows(24)), ref().at("efp5_a_first24")),
                             rel_diff(matrix<double>(e5b.topRows(24)), ref().at("efp5_b_first24")));
  const double d36 = std::max(rel_diff(matrix<double>(e36a.topRows(24)), ref().at("efp36_a_first24")),
                              rel_diff(matrix<double>(e36b.topRows(24)), ref().at("efp36_b_first24")));
  const double dsum = std::max(rel_diff(row_vector<double>(e5a.colwise().sum()), ref().at("efp5_a_colsum")),
                               rel_diff(row_vector<double>(e36b.colwise().sum()), ref().at("efp36_b_colsum")));
  MESSAGE("EFPs vs energyflow, max relative deviation: n4d4 ", d5, ", d<=4 ", d36, ", column sums ", dsum);
  CHECK(d5 <= 1e-10);
  CHECK(d36 <= 1e-10);
  CHECK(dsum <= 1e-10);
  // masses are differences of large sums: compare to 1e-10 of the jet energy scale (pt_rel ~ 1)
  const auto ma = jet_masses(a), mb = jet_masses(b);
  const double dm = std::max(max_rel_diff(ma, ref().at("mass_a")), max_rel_diff(mb, ref().at("mass_b")));
  MESSAGE("jet masses vs JetNet, max deviation ", dm);
  CHECK(dm <= 1e-12);
}

TEST_CASE("efps and masses match energyflow on real FastJet jets") {
  HEPGNN_REQUIRE_DATA(dir, "jets_fastjet_pythia");
  if (!ref().contains("fastjet_efp5")) {
    MESSAGE("skipped: the reference file has no real-jet entries");
    return;
  }
  const auto arr = read_npy(dir / "jetnet30_particle_features.npy").as<double>();
  auto jets = jet_array<double>::zeros(26, P);
  REQUIRE(arr.size() == 26 * P * 4);
  for (long i = 0; i < 26 * P * 4; ++i) jets.particles.data()[i] = arr.data()[i];
  const double d5 = rel_diff(efps(jets, efp_graphs::n4_d4_prime()), ref().at("fastjet_efp5"));
  const double d36 = rel_diff(fpd_kpd_features(jets), ref().at("fastjet_efp36"));
  const double dm = max_rel_diff(jet_masses(jets), ref().at("fastjet_mass"));
  MESSAGE("real jets vs energyflow / JetNet: n4d4 ", d5, ", d<=4 ", d36, ", mass ", dm);
  CHECK(d5 <= 1e-10);
  CHECK(d36 <= 1e-10);
  CHECK(dm <= 1e-12);
}

TEST_CASE("w1m, w1p and w1efp match JetNet on the same batches") {
  const auto a = wave_jets(0, NA), b = wave_jets(1, NB);
  const auto draws = fixed_batches({150, 150, 150}, NA, NB);
  const auto m = w1m(a, b, draws);
  const auto p = w1p(a, b, draws);
  const auto e = w1efp(a, b, draws);
  const double dm = rel_diff(std::vector<double>{m.mean, m.std}, ref().at("w1m_fixed3"));
  const double dp = std::max(rel_diff(p.mean, ref().at("w1p_fixed3_mean")), rel_diff(p.std, ref().at("w1p_fixed3_std")));
  const double de = std::max(rel_diff(e.mean, ref().at("w1efp_fixed3_mean")), rel_diff(e.std, ref().at("w1efp_fixed3_std")));
  MESSAGE("relative deviation from JetNet: w1m ", dm, ", w1p ", dp, ", w1efp ", de);
  CHECK(dm <= 1e-10);
  CHECK(dp <= 1e-10);
  CHECK(de <= 1e-10);
}

TEST_CASE("fpd and kpd match JetNet on the same batches") {
  const auto a = wave_jets(0, NA), b = wave_jets(1, NB);
  matrix<double> real = fpd_kpd_features(a), gen = fpd_kpd_features(b);
  normalise_features(real, gen);
  // the deterministic core: Frechet distance of the two whole samples
  const double fd = frechet_distance(fit_gaussian(real), fit_gaussian(gen));
  const double dfd = std::abs(fd - ref().at("fd_full")[0]) / ref().at("fd_full")[0];
  // the batch sizes, the per-size means and the bounded fit
  const auto sizes = fpd_batch_sizes(50, 150, 4);
  CHECK(rel_diff(std::vector<double>(sizes.begin(), sizes.end()), ref().at("fpd_sizes")) == 0);
  std::vector<index_t> per_batch;
  for (index_t s : sizes) per_batch.insert(per_batch.end(), 3, s);
  const auto draws = fixed_batches(per_batch, NA, NB);
  std::vector<double> means;
  for (int p = 0; p < 4; ++p) {
    double s = 0;
    for (int k = 0; k < 3; ++k)
      s += frechet_distance(fit_gaussian(real, draws.first[3 * p + k]), fit_gaussian(gen, draws.second[3 * p + k]));
    means.push_back(s / 3);
  }
  const double dmeans = rel_diff(means, ref().at("fpd_point_means"));
  const auto f = fpd(real, gen, draws, 4);
  const double dfpd = rel_diff(std::vector<double>{f.value, f.error}, ref().at("fpd_fixed"));
  MESSAGE("relative deviation from JetNet: full-sample Frechet ", dfd, ", per-size means ", dmeans, ", fpd (fit) ", dfpd);
  // sample a's first EFP (sum pt_rel = 1) is constant, so its covariance is singular; scipy's sqrtm turns the
  // product's round-off eigenvalues into ~sqrt(eps) each, which trace_sqrt_product counts as 0 (frechet.hpp)
  CHECK(dfd <= 1e-7);
  // the value does not depend on the order of the samples
  CHECK(std::abs(frechet_distance(fit_gaussian(gen), fit_gaussian(real)) - fd) <= 1e-11 * fd);
  CHECK(dmeans <= 1e-7);
  CHECK(dfpd <= 1e-6);  // scipy's trust-region fit stops at its tolerance (1e-8), and differentiates numerically

  const std::vector<double> x{1.0 / 50, 1.0 / 80, 1.0 / 110, 1.0 / 150};
  const auto free_fit = fit_intercept_nonnegative(x, std::vector<double>{0.9, 0.7, 0.62, 0.55});
  const auto bounded = fit_intercept_nonnegative(x, std::vector<double>{0.5, 0.6, 0.62, 0.7});
  CHECK(free_fit.value == doctest::Approx(ref().at("fit_free")[0]).epsilon(1e-7));
  CHECK(free_fit.error == doctest::Approx(ref().at("fit_free")[1]).epsilon(1e-6));
  CHECK(bounded.value == doctest::Approx(ref().at("fit_bounded")[0]).epsilon(1e-6));  // slope clamped to 0
  CHECK(bounded.error == doctest::Approx(ref().at("fit_bounded")[1]).epsilon(1e-6));

  eval_batches kd;
  for (int i = 0; i < 5; ++i) kd.first.push_back(fixed_rows(2 * i, NA, 60)), kd.second.push_back(fixed_rows(2 * i + 1, NB, 60));
  std::vector<double> per;
  for (int i = 0; i < 5; ++i) per.push_back(mmd_poly_unbiased(real, kd.first[i], gen, kd.second[i]));
  // MMD^2 is a difference of O(1) kernel means: compare on the scale of those means
  const double dk = max_rel_diff(per, ref().at("kpd_batches"));
  const auto k = kpd(real, gen, kd);
  const double dkpd = max_rel_diff(std::vector<double>{k.value, k.error}, ref().at("kpd_fixed"));
  MESSAGE("deviation from JetNet: KPD per batch ", dk, ", median and error ", dkpd);
  CHECK(dk <= 1e-12);
  CHECK(dkpd <= 1e-12);
}

TEST_CASE("analytic cases: identical samples give 0, a shift gives the shift") {
  std::vector<double> u{0.3, -1.2, 4.0, 2.5, 2.5, 0.0};
  std::vector<double> v = u;
  CHECK(wasserstein_1d(u, v) == 0);
  for (auto& x : v) x += 0.75;
  CHECK(wasserstein_1d(u, v) == doctest::Approx(0.75).epsilon(1e-14));
  CHECK(wasserstein_1d(std::vector<double>{0, 1}, std::vector<double>{0}) == doctest::Approx(0.5));

  const auto a = wave_jets(0, 60);
  const auto same = draw_eval_batches(60, 60, 40, 3, 7);
  eval_batches mirrored = same;
  mirrored.second = mirrored.first;  // the same jets on both sides
  CHECK(w1m(a, a, mirrored).mean == 0);
  const auto p0 = w1p(a, a, mirrored);
  CHECK(p0.mean == std::vector<double>{0, 0, 0});
  CHECK(w1efp(a, a, mirrored).mean == std::vector<double>(5, 0.0));
  auto shifted = a;
  for (index_t j = 0; j < 60; ++j)
    for (index_t i = 0; i < shifted.count(j); ++i) shifted.row(j, i)(jet_col::eta_rel) += 0.125;
  const auto ps = w1p(a, shifted, mirrored);
  CHECK(ps.mean[0] == doctest::Approx(0.125).epsilon(1e-12));
  CHECK(ps.std[0] == doctest::Approx(0).epsilon(1e-12));
  CHECK(ps.mean[1] == 0);
  CHECK(ps.mean[2] == 0);

  // a well-conditioned sample (the square root at a zero eigenvalue amplifies round-off to ~sqrt(eps))
  rng r(5);
  matrix<double> x(300, 4);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = r.normal(0, 1 + 0.3 * (i % 4));
  matrix<double> y = x;
  CHECK(std::abs(frechet_distance(fit_gaussian(x), fit_gaussian(y))) <= 1e-12);
  y.col(1).array() += 0.5;
  y.col(3).array() -= 0.25;
  CHECK(frechet_distance(fit_gaussian(x), fit_gaussian(y)) == doctest::Approx(0.3125).epsilon(1e-11));
}

TEST_CASE("the metrics give the same bits at 1 and 3 threads") {
  const auto a = wave_jets(0, NA), b = wave_jets(1, NB);
  auto run = [&] {
    std::vector<double> out;
    const w1_options o{120, 4, 11};
    const auto m = w1m(a, b, o);
    const auto p = w1p(a, b, o);
    const auto e = w1efp(a, b, o);
    out.insert(out.end(), {m.mean, m.std});
    out.insert(out.end(), p.mean.begin(), p.mean.end());
    out.insert(out.end(), e.std.begin(), e.std.end());
    const matrix<double> fa = fpd_kpd_features(a), fb = fpd_kpd_features(b);
    out.insert(out.end(), fa.data(), fa.data() + fa.size());
    const auto f = fpd(fa, fb, fpd_options{60, 150, 4, 5, true, 3});
    const auto k = kpd(fa, fb, kpd_options{6, 170, true, 5, 4});
    out.insert(out.end(), {f.value, f.error, k.value, k.error});
    return out;
  };
  const auto one = hepgnn_test::at_threads(1, run), three = hepgnn_test::at_threads(3, run);
  CHECK(one == three);
  CHECK(std::all_of(one.begin(), one.end(), [](double v) { return std::isfinite(v); }));
}

TEST_CASE("bad input is refused by name") {
  const auto a = wave_jets(0, 20), b = wave_jets(1, 30);
  CHECK_THROWS_WITH_AS(w1m(a, b, w1_options{25, 5, 1}), doctest::Contains("num_eval_samples = 25 exceeds"), hepgnn::error);
  CHECK_THROWS_WITH_AS(w1p(a, b, w1_options{10, 0, 1}), doctest::Contains("num_batches must be >= 1"), hepgnn::error);
  CHECK_THROWS_WITH_AS(w1efp(a, b, w1_options{0, 2, 1}), doctest::Contains("num_eval_samples must be >= 1"), hepgnn::error);
  auto neg = a;
  neg.row(2, 1)(jet_col::pt_rel) = -0.1;
  CHECK_THROWS_WITH_AS(w1p(neg, b, w1_options{10, 2, 1}), doctest::Contains("pt_rel must be >= 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(efps(neg, efp_graphs::n4_d4_prime()), doctest::Contains("pt_rel must be >= 0"), hepgnn::error);
  auto shape = a;
  shape.particles.conservativeResize(shape.particles.rows() - 1, 4);
  CHECK_THROWS_WITH_AS(jet_masses(shape), doctest::Contains("particles must be (num_jets*max_particles) x 4"), hepgnn::error);
  eval_batches bad = draw_eval_batches(20, 30, 5, 2, 1);
  bad.second[1][3] = 30;
  CHECK_THROWS_WITH_AS(w1m(a, b, bad), doctest::Contains("lists row 30 of the second sample"), hepgnn::error);
  CHECK_THROWS_WITH_AS(efps(a, {{2, {{0, 2}}}}), doctest::Contains("graphs[0] has edge (0, 2)"), hepgnn::error);

  const matrix<double> f = wave<matrix<double>>(40, 3, 0.1), g = wave<matrix<double>>(40, 4, 0.2);
  CHECK_THROWS_WITH_AS(fpd(f, g), doctest::Contains("same number of feature columns"), hepgnn::error);
  CHECK_THROWS_WITH_AS(fpd(f, f, fpd_options{10, 50, 2, 4, true, 1}), doctest::Contains("max_samples = 50 exceeds"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(fpd(f, f, fpd_options{10, 30, 2, 2, true, 1}), doctest::Contains("num_points must be >= 3"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(kpd(f, f, kpd_options{0, 10, true, 1, 4}), doctest::Contains("num_batches must be >= 1"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(kpd(f, f, kpd_options{2, 41, true, 1, 4}), doctest::Contains("batch_size = 41 exceeds"),
                       hepgnn::error);
  matrix<double> nan = f;
  nan(3, 1) = std::nan("");
  CHECK_THROWS_WITH_AS(kpd(nan, f), doctest::Contains("features must be finite"), hepgnn::error);
  CHECK_THROWS_WITH_AS(frechet_distance(vector<double>::Zero(3), matrix<double>::Identity(3, 3), vector<double>::Zero(2),
                                        matrix<double>::Identity(2, 2)),
                       doctest::Contains("mu1 and mu2 must have the same length"), hepgnn::error);
}

}  // namespace hepgnn_test_generation_metrics
