#pragma once
/// @file generation.hpp
/// @brief JetNet's metrics of generated jets (jetnet.evaluation, arXiv:2106.11535): the 1-Wasserstein distances
/// w1m (relative jet mass), w1p (particle eta_rel, phi_rel, pt_rel) and w1efp (the 5 EFPs with n = 4, d = 4),
/// each averaged over random evaluation batches with its standard deviation. FPD and KPD are in
/// metrics/frechet.hpp, the EFP engine in metrics/efp.hpp.
///
/// Batching as JetNet: every batch draws num_eval_samples jets with replacement from each sample (numpy's
/// rng.choice), the metric is computed on the drawn jets, and the mean and the population standard deviation over
/// the batches are returned. The draws come from hepgnn::rng (seeded), not numpy's generator, so values agree with
/// JetNet's in distribution, and exactly when both are given the same batches (eval_batches).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/metrics/efp.hpp"
#include "hepgnn/metrics/frechet.hpp"

namespace hepgnn {

/// @brief 1-Wasserstein distance between the empirical distributions of two samples (scipy.stats.
/// wasserstein_distance without weights): the integral of |F_u - F_v|. O((n + m) log(n + m)).
inline double wasserstein_1d(std::span<const double> u, std::span<const double> v) {
  HEPGNN_CHECK(!u.empty() && !v.empty(), "wasserstein_1d: both samples need at least one value, got ", u.size(),
               " and ", v.size());
  std::vector<double> a(u.begin(), u.end()), b(v.begin(), v.end());
  for (std::size_t i = 0; i < a.size(); ++i)
    HEPGNN_CHECK(std::isfinite(a[i]), "wasserstein_1d: u[", i, "] is not finite (", a[i], ")");
  for (std::size_t i = 0; i < b.size(); ++i)
    HEPGNN_CHECK(std::isfinite(b[i]), "wasserstein_1d: v[", i, "] is not finite (", b[i], ")");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  // walk the merged order; between consecutive values x_k < x_{k+1} the CDFs are (#u <= x_k)/n and (#v <= x_k)/m
  std::size_t i = 0, j = 0;
  double prev = std::min(a[0], b[0]), sum = 0, comp = 0;  // Neumaier-compensated sum of |dF| dx
  while (i < a.size() || j < b.size()) {
    const double x = (j >= b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
    const double term = std::abs(static_cast<double>(i) / na - static_cast<double>(j) / nb) * (x - prev);
    const double t = sum + term;
    comp += std::abs(sum) >= std::abs(term) ? (sum - t) + term : (term - t) + sum;
    sum = t;
    prev = x;
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
  }
  return sum + comp;
}

/// @brief Relative jet mass of each jet as JetNet computes it (jetnet.utils.jet_features: massless particles
/// from (pt_rel, eta_rel, phi_rel), four-vectors summed over all slots): E_i = sqrt(pt^2 cosh^2 eta) in the
/// scikit-hep vector library's form, m = sign(m^2) sqrt(|m^2|), so a spacelike sum (round-off of a nearly
/// massless jet) gives a small negative mass, as JetNet's does.
template <class T>
std::vector<double> jet_masses(const jet_array<T>& jets) {
  jets.validate("jet_masses: jets");
  std::vector<double> m(static_cast<std::size_t>(jets.num_jets));
  const long work = static_cast<long>(jets.num_jets) * jets.max_particles * 16;
  parallel_for(jets.num_jets, work >= parallel_limits::min_work, [&](long j) {
    double x = 0, y = 0, z = 0, t = 0;
    for (index_t i = 0; i < jets.max_particles; ++i) {
      const auto r = jets.row(static_cast<index_t>(j), i);
      const double pt = static_cast<double>(r(jet_col::pt_rel)), eta = static_cast<double>(r(jet_col::eta_rel)),
                   phi = static_cast<double>(r(jet_col::phi_rel));
      const double e = std::exp(-eta), inv_sin_theta = 0.5 * (1 + e * e) / e;
      x += pt * std::cos(phi);
      y += pt * std::sin(phi);
      z += pt * std::sinh(eta);
      t += std::sqrt(std::max(pt * pt * inv_sin_theta * inv_sin_theta, 0.0));
    }
    const double m2 = t * t - (x * x + y * y + z * z);
    m[static_cast<std::size_t>(j)] = std::copysign(std::sqrt(std::abs(m2)), m2);
  });
  return m;
}

/// @brief Options of the batched W1 metrics: JetNet's defaults are 50,000 jets x 5 batches; the MPGAN paper's
/// tables used 10,000 x 5 (`{10000, 5}`).
struct w1_options {
  index_t num_eval_samples = 50'000;  ///< jets drawn (with replacement) from each sample per batch, >= 1
  int num_batches = 5;                ///< number of batches, >= 1
  std::uint64_t seed = 42;            ///< seed of the draws
};

/// @brief Mean and population standard deviation of one metric over the batches.
struct w1_score {
  double mean = 0, std = 0;
};
/// @brief Mean and standard deviation per feature (w1p: eta_rel, phi_rel, pt_rel; w1efp: one per EFP).
struct w1_scores {
  std::vector<double> mean, std;
};

namespace generation_detail {
inline w1_score mean_std(std::span<const double> v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / static_cast<double>(v.size()))};
}

/// W1 of each column (feature) of per-jet values, over the jets each batch lists; values(j, f) -> double.
template <class Values>
w1_scores batched_w1(const eval_batches& draws, int features, Values&& first, Values&& second) {
  const int nb = draws.num_batches();
  std::vector<double> w(static_cast<std::size_t>(nb) * features);
  parallel_for_dynamic(static_cast<long>(nb) * features, nb * features >= parallel_limits::metric_min_batches, 1,
                       [&](long k) {
                         const int b = static_cast<int>(k / features), f = static_cast<int>(k % features);
                         std::vector<double> u, v;
                         first(draws.first[b], f, u);
                         second(draws.second[b], f, v);
                         w[k] = u.empty() || v.empty() ? std::numeric_limits<double>::infinity() : wasserstein_1d(u, v);
                       });
  w1_scores out;
  for (int f = 0; f < features; ++f) {
    std::vector<double> col(nb);
    for (int b = 0; b < nb; ++b) col[b] = w[static_cast<std::size_t>(b) * features + f];
    const auto s = mean_std(col);
    out.mean.push_back(s.mean);
    out.std.push_back(s.std);
  }
  return out;
}

/// Per-jet values gathered over a batch's jets: column f of `per_jet` (num_jets x features).
inline auto gather_rows(const matrix<double>& per_jet) {
  return [&per_jet](const std::vector<index_t>& jets, int f, std::vector<double>& out) {
    out.resize(jets.size());
    for (std::size_t k = 0; k < jets.size(); ++k) out[k] = per_jet(jets[k], f);
  };
}

/// The seeded batches of `o`, checked against the n1 real and n2 generated jets given.
inline eval_batches seeded_batches(const char* who, const w1_options& o, index_t n1, index_t n2) {
  HEPGNN_CHECK(o.num_batches >= 1, who, ": num_batches must be >= 1, got ", o.num_batches);
  HEPGNN_CHECK(o.num_eval_samples >= 1, who, ": num_eval_samples must be >= 1, got ", o.num_eval_samples);
  HEPGNN_CHECK(o.num_eval_samples <= n1 && o.num_eval_samples <= n2, who, ": num_eval_samples = ",
               o.num_eval_samples, " exceeds the jets given (real: ", n1, ", generated: ", n2,
               "); give at least as many jets as are drawn per batch");
  return draw_eval_batches(n1, n2, o.num_eval_samples, o.num_batches, o.seed);
}
}  // namespace generation_detail

/// @brief W1 between the relative jet masses (jet_masses) of two samples, over the given batches.
template <class T>
w1_score w1m(const jet_array<T>& real, const jet_array<T>& gen, const eval_batches& draws) {
  draws.validate("w1m", real.num_jets, gen.num_jets);
  const auto m1 = jet_masses(real), m2 = jet_masses(gen);
  const matrix<double> c1 = Eigen::Map<const matrix<double>>(m1.data(), real.num_jets, 1),
                       c2 = Eigen::Map<const matrix<double>>(m2.data(), gen.num_jets, 1);
  const auto s = generation_detail::batched_w1(draws, 1, generation_detail::gather_rows(c1),
                                               generation_detail::gather_rows(c2));
  return {s.mean[0], s.std[0]};
}
/// @brief w1m over opt.num_batches batches of opt.num_eval_samples jets drawn with replacement (seeded).
template <class T>
w1_score w1m(const jet_array<T>& real, const jet_array<T>& gen, const w1_options& opt = {}) {
  return w1m(real, gen, generation_detail::seeded_batches("w1m", opt, real.num_jets, gen.num_jets));
}

/// @brief W1 of each particle feature (eta_rel, phi_rel, pt_rel) between the particles of the batch's jets:
/// padded particles (mask 0) and particles whose three features are all exactly 0 are left out, as JetNet's
/// w1p(jets, mask=mask, exclude_zeros=True). A batch without particles on one side gives infinity (JetNet's).
template <class T>
w1_scores w1p(const jet_array<T>& real, const jet_array<T>& gen, const eval_batches& draws) {
  real.validate("w1p: real");
  gen.validate("w1p: gen");
  draws.validate("w1p", real.num_jets, gen.num_jets);
  auto particles = [](const jet_array<T>& jets) {
    return [&jets](const std::vector<index_t>& list, int f, std::vector<double>& out) {
      out.clear();
      for (index_t j : list)
        for (index_t i = 0; i < jets.max_particles; ++i) {
          const auto r = jets.row(j, i);
          if (r(jet_col::mask) == T(0)) continue;
          if (r(jet_col::eta_rel) == T(0) && r(jet_col::phi_rel) == T(0) && r(jet_col::pt_rel) == T(0)) continue;
          out.push_back(static_cast<double>(r(f)));
        }
    };
  };
  return generation_detail::batched_w1(draws, 3, particles(real), particles(gen));
}
/// @brief w1p over opt.num_batches seeded batches of opt.num_eval_samples jets.
template <class T>
w1_scores w1p(const jet_array<T>& real, const jet_array<T>& gen, const w1_options& opt = {}) {
  return w1p(real, gen, generation_detail::seeded_batches("w1p", opt, real.num_jets, gen.num_jets));
}

/// @brief W1 of each EFP (default: the 5 of JetNet's w1efp, efp_graphs::n4_d4_prime()) between the batch's jets.
/// The EFPs of all jets are computed once (efps()), as JetNet does.
template <class T>
w1_scores w1efp(const jet_array<T>& real, const jet_array<T>& gen, const eval_batches& draws,
                const std::vector<efp_graph>& graphs = efp_graphs::n4_d4_prime()) {
  draws.validate("w1efp", real.num_jets, gen.num_jets);
  const matrix<double> e1 = efps(real, graphs), e2 = efps(gen, graphs);
  return generation_detail::batched_w1(draws, static_cast<int>(graphs.size()), generation_detail::gather_rows(e1),
                                       generation_detail::gather_rows(e2));
}
/// @brief w1efp over opt.num_batches seeded batches of opt.num_eval_samples jets.
template <class T>
w1_scores w1efp(const jet_array<T>& real, const jet_array<T>& gen, const w1_options& opt = {},
                const std::vector<efp_graph>& graphs = efp_graphs::n4_d4_prime()) {
  return w1efp(real, gen, generation_detail::seeded_batches("w1efp", opt, real.num_jets, gen.num_jets), graphs);
}

/// @brief JetNet's FPD / KPD features of jets: the 36 EFPs with d <= 4 (get_fpd_kpd_jet_features).
template <class T>
matrix<double> fpd_kpd_features(const jet_array<T>& jets) {
  return efps(jets, efp_graphs::d_le_4());
}

}  // namespace hepgnn
