// Coverage and MMD (JetNet's cov_mmd) on the library's exact EMD: the EMD matrix against energyflow.emd.emds and
// cov / mmd against JetNet's own code on the same batches (tests/reference/cov_mmd_reference.py), analytic cases,
// argmin ties, thread counts, seeds, bad input.
#include "support/doctest.hpp"
#include "support/wave_jets.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/metrics/coverage.hpp"
#include "support/reference.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_coverage {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using hepgnn_test::read_reference;

namespace {

constexpr index_t cov_NR = 40, cov_NG = 36;


/// The reference's batches: batch k uses draw 2k for the real rows and 2k + 1 for the generated ones, draw `call`
/// being (a k + c) mod n with a = 11 + 2 call, c = 3 call + 1 (draws 2 and 5 repeat rows).
eval_batches cov_fixed_batches(index_t size, int batches, index_t n_real, index_t n_gen) {
  auto rows = [size](int call, index_t n) {
    std::vector<index_t> r(size);
    for (index_t k = 0; k < size; ++k) r[k] = static_cast<index_t>((static_cast<long>(k) * (11 + 2 * call) + 3 * call + 1) % n);
    return r;
  };
  eval_batches d;
  for (int b = 0; b < batches; ++b) {
    d.first.push_back(rows(2 * b, n_real));
    d.second.push_back(rows(2 * b + 1, n_gen));
  }
  return d;
}

const std::map<std::string, std::vector<double>>& cov_ref() {
  static const auto r = read_reference("tests/data/cov_mmd_reference.txt");
  return r;
}

/// Largest |a - b| / max(|b|, 1e-300) over a matrix (row-major reference) and a reference list.
double cov_rel_diff_rowmajor(const matrix<double>& a, const std::vector<double>& b) {
  REQUIRE(static_cast<std::size_t>(a.size()) == b.size());
  double m = 0;
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index k = 0; k < a.cols(); ++k) {
      const double want = b[static_cast<std::size_t>(i * a.cols() + k)];
      m = std::max(m, std::abs(a(i, k) - want) / std::max(std::abs(want), 1e-300));
    }
  return m;
}

std::vector<index_t> cov_first_rows(index_t n) {
  std::vector<index_t> r(n);
  for (index_t i = 0; i < n; ++i) r[i] = i;
  return r;
}

/// A jet of one particle with weight pt at (eta, phi).
jet_array<double> cov_single_particle_jets(const std::vector<std::array<double, 3>>& particles) {
  auto jets = jet_array<double>::zeros(static_cast<index_t>(particles.size()), 2);
  for (std::size_t j = 0; j < particles.size(); ++j) {
    auto r = jets.row(static_cast<index_t>(j), 0);
    r(jet_col::eta_rel) = particles[j][0];
    r(jet_col::phi_rel) = particles[j][1];
    r(jet_col::pt_rel) = particles[j][2];
    r(jet_col::mask) = 1;
  }
  return jets;
}

}  // namespace

TEST_CASE("jet_emd_matrix equals energyflow.emd.emds (R = 1, beta = 1, norm = False) on the reference jets") {
  const auto real = hepgnn_test::wave_jets(0, cov_NR), gen = hepgnn_test::wave_jets(1, cov_NG);
  const matrix<double> d = jet_emd_matrix(gen, cov_first_rows(12), real, cov_first_rows(10));
  CHECK(cov_rel_diff_rowmajor(d, cov_ref().at("emd_gen12_real10")) <= 1e-10);
  // real against real: zeros on the diagonal, and jet 3's wide phi is not wrapped (energyflow's default)
  const matrix<double> dr = jet_emd_matrix(real, cov_first_rows(10), real, cov_first_rows(10));
  const auto& want = cov_ref().at("emd_real10_real10");
  for (Eigen::Index i = 0; i < 10; ++i)
    for (Eigen::Index k = 0; k < 10; ++k) {
      const double w = want[static_cast<std::size_t>(i * 10 + k)];
      CHECK(std::abs(dr(i, k) - w) <= 1e-10 * std::max(std::abs(w), 1e-3));
    }
}

TEST_CASE("cov_mmd equals JetNet's cov_mmd on the same batches, ties included") {
  const auto real = hepgnn_test::wave_jets(0, cov_NR), gen = hepgnn_test::wave_jets(1, cov_NG), truth = hepgnn_test::wave_jets(2, cov_NG);
  for (auto [size, batches] : {std::pair<index_t, int>{24, 3}, std::pair<index_t, int>{36, 1}}) {
    CAPTURE(size);
    const std::string tag = std::to_string(size) + "x" + std::to_string(batches);
    const auto draws = cov_fixed_batches(size, batches, cov_NR, cov_NG);
    const auto r = cov_mmd(real, gen, draws);
    const auto& want = cov_ref().at("cov_mmd_" + tag);
    CHECK(r.cov == doctest::Approx(want[0]).epsilon(1e-12));  // a count over the batch size: exact up to the mean
    CHECK(std::abs(r.mmd - want[1]) <= 1e-10 * want[1]);
    REQUIRE(r.cov_batches.size() == static_cast<std::size_t>(batches));
    const auto t = cov_mmd(real, truth, draws);
    const auto& want_t = cov_ref().at("cov_mmd_truth_" + tag);
    CHECK(t.cov == doctest::Approx(want_t[0]).epsilon(1e-12));
    CHECK(std::abs(t.mmd - want_t[1]) <= 1e-10 * want_t[1]);
  }
}

TEST_CASE("cov_mmd: analytic cases of one-particle jets") {
  // real jets at eta = 0, 1, 2 (pt 1); generated at eta = 0.1, 0.2 (pt 1) and 2.5 with pt 1.5:
  // D = |eta_g - eta_r| for equal pt, plus 0.5 for the pt-1.5 jet (energyflow's extra particle at distance 1)
  const auto real = cov_single_particle_jets({{0, 0, 1}, {1, 0, 1}, {2, 0, 1}});
  const auto gen = cov_single_particle_jets({{0.1, 0, 1}, {0.2, 0, 1}, {2.5, 0, 1.5}});
  const matrix<double> d = jet_emd_matrix(gen, cov_first_rows(3), real, cov_first_rows(3));
  CHECK(d(0, 1) == doctest::Approx(0.9).epsilon(1e-14));
  CHECK(d(2, 2) == doctest::Approx(1.0).epsilon(1e-14));  // 0.5 of transport + 0.5 of excess
  CHECK(d(2, 0) == doctest::Approx(3.0).epsilon(1e-14));
  eval_batches all;
  all.first = {cov_first_rows(3)};
  all.second = {cov_first_rows(3)};
  const auto r = cov_mmd(real, gen, all);
  // nearest real of each generated jet: 0, 0, 2 -> 2 of 3 covered; nearest generated of each real: 0.1, 0.8, 1.0
  CHECK(r.cov == doctest::Approx(2.0 / 3).epsilon(1e-15));
  CHECK(r.mmd == doctest::Approx((0.1 + 0.8 + 1.0) / 3).epsilon(1e-14));
  // a real jet drawn twice: numpy's argmin takes its first position, so it is covered once
  eval_batches twice;
  twice.first = {{0, 0, 2}};
  twice.second = {{0, 1, 2}};
  const auto t = cov_mmd(real, gen, twice);
  CHECK(t.cov == doctest::Approx(2.0 / 3).epsilon(1e-15));
  CHECK(t.mmd == doctest::Approx((0.1 + 0.1 + 1.0) / 3).epsilon(1e-14));
  // generated = real: every real jet is its own nearest neighbour
  const auto same = cov_mmd(real, real, all);
  CHECK(same.cov == 1.0);
  CHECK(same.mmd == 0.0);
}

TEST_CASE("cov_mmd: an empty jet is at its partner's total pt") {
  auto gen = cov_single_particle_jets({{0.3, 0.1, 0.7}, {0, 0, 1}});
  gen.row(0, 0).setZero();  // jet 0 has no particles at all
  const auto real = cov_single_particle_jets({{0, 0, 1}});
  const matrix<double> d = jet_emd_matrix(gen, {0, 1}, real, {0});
  CHECK(d(0, 0) == 1.0);
  CHECK(d(1, 0) == 0.0);
}

TEST_CASE("cov_mmd: seeded draws are deterministic, independent of the thread count, and differ between seeds") {
  const auto real = hepgnn_test::wave_jets(0, cov_NR), gen = hepgnn_test::wave_jets(1, cov_NG);
  const cov_mmd_options o{12, 3, 7};
  const auto one = hepgnn_test::at_threads(1, [&] { return cov_mmd(real, gen, o); });
  const auto three = hepgnn_test::at_threads(3, [&] { return cov_mmd(real, gen, o); });
  CHECK(one.cov == three.cov);
  CHECK(one.mmd == three.mmd);
  CHECK(one.mmd_batches == three.mmd_batches);
  const auto other = cov_mmd(real, gen, cov_mmd_options{12, 3, 8});
  CHECK(other.mmd != one.mmd);
  CHECK(one.mmd > 0);
  CHECK(one.cov > 0);
  CHECK(one.cov <= 1);
}

TEST_CASE("cov_mmd: bad input is refused by name") {
  const auto real = hepgnn_test::wave_jets(0, 20), gen = hepgnn_test::wave_jets(1, 15);
  CHECK_THROWS_WITH_AS(cov_mmd(real, gen, cov_mmd_options{16, 2, 1}), doctest::Contains("num_eval_samples = 16 exceeds"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(cov_mmd(real, gen, cov_mmd_options{10, 0, 1}), doctest::Contains("num_batches must be >= 1"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(cov_mmd(real, gen, cov_mmd_options{0, 1, 1}), doctest::Contains("num_eval_samples must be >= 1"),
                       hepgnn::error);
  auto negative = gen;
  negative.row(2, 1)(jet_col::pt_rel) = -0.1;
  CHECK_THROWS_WITH_AS(cov_mmd(real, negative, cov_mmd_options{10, 1, 1}), doctest::Contains("pt_rel must be >= 0"),
                       hepgnn::error);
  auto bad_shape = gen;
  bad_shape.particles.conservativeResize(bad_shape.particles.rows() - 1, 4);
  CHECK_THROWS_WITH_AS(cov_mmd(real, bad_shape, cov_mmd_options{10, 1, 1}), doctest::Contains("cov_mmd: generated"),
                       hepgnn::error);
  eval_batches out_of_range;
  out_of_range.first = {{0, 20}};
  out_of_range.second = {{0, 1}};
  CHECK_THROWS_WITH_AS(cov_mmd(real, gen, out_of_range), doctest::Contains("lists row 20"), hepgnn::error);
  CHECK_THROWS_WITH_AS(jet_emd_matrix(real, {0}, gen, {15}), doctest::Contains("rows_b lists jet 15"), hepgnn::error);
}

}  // namespace hepgnn_test_coverage
