#pragma once
/// @file coverage.hpp
/// @brief JetNet's coverage and MMD of generated jets (jetnet.evaluation.cov_mmd, arXiv:2106.11535), on the
/// library's exact EMD (loss/emd.hpp) in energyflow's form.
///
/// As JetNet: the distance between two jets is energyflow.emd.emds with its defaults (R = 1, beta = 1,
/// norm = False, no phi wrap-around): particles weighted by pt_rel at (eta_rel, phi_rel), Euclidean ground
/// distance, EMD = min sum f_ij theta_ij + |sum pt_a - sum pt_b|. Every batch draws num_eval_samples jets with
/// replacement from each sample; with D(g, r) the EMD between generated jet g and real jet r of the batch,
///   MMD      = mean over the batch's real jets r of min_g D(g, r),
///   coverage = (number of distinct real positions that are argmin_r D(g, r) of some generated g) / batch size,
/// ties going to the first position (numpy's argmin), so a real jet drawn twice counts once. Both are averaged over
/// the batches. The draws come from hepgnn::rng (seeded), not numpy's generator: values agree with JetNet's in
/// distribution, and exactly when both use the same batches (eval_batches).

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/metrics/eval_batches.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::cov_mmd: JetNet's defaults, 100 jets x 10 batches.
struct cov_mmd_options {
  index_t num_eval_samples = 100;  ///< jets drawn (with replacement) from each sample per batch, >= 1
  int num_batches = 10;            ///< number of batches, >= 1
  std::uint64_t seed = 42;         ///< seed of the draws
};

/// @brief Coverage and MMD averaged over the batches, and their values per batch.
struct cov_mmd_result {
  double cov = 0, mmd = 0;
  std::vector<double> cov_batches, mmd_batches;
};

namespace coverage_detail {

/// One jet as energyflow sees it: the particles with pt_rel > 0 (any mask: JetNet passes every slot, and a
/// zero weight moves no energy), coordinates (eta_rel, phi_rel) and weights pt_rel, in double as energyflow.
struct emd_jet {
  matrix<double> x;
  vector<double> w;
  double total = 0;
};

template <class T>
emd_jet extract(const jet_array<T>& jets, index_t j) {
  emd_jet e;
  index_t n = 0;
  for (index_t i = 0; i < jets.max_particles; ++i) n += jets.row(j, i)(jet_col::pt_rel) > T(0);
  e.x.resize(n, 2);
  e.w.resize(n);
  index_t k = 0;
  for (index_t i = 0; i < jets.max_particles; ++i) {
    const auto r = jets.row(j, i);
    if (!(r(jet_col::pt_rel) > T(0))) continue;
    e.x(k, 0) = static_cast<double>(r(jet_col::eta_rel));
    e.x(k, 1) = static_cast<double>(r(jet_col::phi_rel));
    e.w(k) = static_cast<double>(r(jet_col::pt_rel));
    e.total += e.w(k);
    ++k;
  }
  return e;
}

/// energyflow's EMD between two extracted jets. A jet without particles moves nothing: all of the other jet's
/// energy goes to the extra particle at distance R = 1, so the EMD is the other's total (0 between two empty jets).
inline double jet_emd(const emd_jet& a, const emd_jet& b) {
  if (a.w.size() == 0 || b.w.size() == 0) return std::abs(a.total - b.total);
  emd_options o;
  o.normalize = false;  // energyflow's norm=False, JetNet's call
  return emd(a.x, a.w, b.x, b.w, o);
}

/// The extracted jets of the rows listed (each distinct row once; slot[r] is its index in the result, -1 if unused).
template <class T>
std::vector<emd_jet> extract_rows(const jet_array<T>& jets, const std::vector<std::vector<index_t>>& lists,
                                  std::vector<long>& slot) {
  slot.assign(static_cast<std::size_t>(jets.num_jets), -1);
  std::vector<index_t> rows;
  for (const auto& l : lists)
    for (index_t r : l)
      if (slot[r] < 0) {
        slot[r] = static_cast<long>(rows.size());
        rows.push_back(r);
      }
  std::vector<emd_jet> out(rows.size());
  parallel_for(static_cast<long>(rows.size()), rows.size() * jets.max_particles >= 4096,
               [&](long k) { out[k] = extract(jets, rows[k]); });
  return out;
}

/// D(i, k) = EMD(first[i], second[k]) over the index lists (into the extracted jets), threaded over pairs.
inline matrix<double> emd_matrix(const std::vector<emd_jet>& a, const std::vector<long>& ia,
                                 const std::vector<emd_jet>& b, const std::vector<long>& ib) {
  const long n = static_cast<long>(ia.size()), m = static_cast<long>(ib.size());
  matrix<double> d(n, m);
  parallel_for_dynamic(n * m, n * m >= 16, 8, [&](long p) {
    const long i = p / m, k = p % m;
    d(i, k) = jet_emd(a[ia[i]], b[ib[k]]);
  });
  return d;
}

inline void check_options(const cov_mmd_options& o, index_t n_real, index_t n_gen) {
  HEPGNN_CHECK(o.num_batches >= 1, "cov_mmd: num_batches must be >= 1, got ", o.num_batches);
  HEPGNN_CHECK(o.num_eval_samples >= 1, "cov_mmd: num_eval_samples must be >= 1, got ", o.num_eval_samples);
  HEPGNN_CHECK(o.num_eval_samples <= n_real && o.num_eval_samples <= n_gen, "cov_mmd: num_eval_samples = ",
               o.num_eval_samples, " exceeds the jets given (real: ", n_real, ", generated: ", n_gen,
               "); give at least as many jets as are drawn per batch");
}

template <class T>
void check_jets(const jet_array<T>& real, const jet_array<T>& gen) {
  real.validate("cov_mmd: real");  // shapes, finite features, pt_rel >= 0 (energyflow's weights)
  gen.validate("cov_mmd: generated");
}

}  // namespace coverage_detail

/// @brief The EMD between jet rows_a[i] of `a` and jet rows_b[k] of `b` (energyflow.emd.emds(a, b) with R = 1,
/// beta = 1, norm = False: JetNet's distance), as a rows_a.size() x rows_b.size() matrix; threaded over pairs, each
/// entry independent of the thread count. Throws on invalid jets (shapes, non-finite features, negative pt_rel) or
/// rows out of range.
template <class T>
matrix<double> jet_emd_matrix(const jet_array<T>& a, const std::vector<index_t>& rows_a, const jet_array<T>& b,
                              const std::vector<index_t>& rows_b) {
  a.validate("jet_emd_matrix: a");
  b.validate("jet_emd_matrix: b");
  for (index_t r : rows_a)
    HEPGNN_CHECK(r >= 0 && r < a.num_jets, "jet_emd_matrix: rows_a lists jet ", r, " of a, which has ", a.num_jets);
  for (index_t r : rows_b)
    HEPGNN_CHECK(r >= 0 && r < b.num_jets, "jet_emd_matrix: rows_b lists jet ", r, " of b, which has ", b.num_jets);
  std::vector<long> sa, sb;
  const auto ja = coverage_detail::extract_rows(a, {rows_a}, sa), jb = coverage_detail::extract_rows(b, {rows_b}, sb);
  std::vector<long> ia(rows_a.size()), ib(rows_b.size());
  for (std::size_t i = 0; i < rows_a.size(); ++i) ia[i] = sa[rows_a[i]];
  for (std::size_t k = 0; k < rows_b.size(); ++k) ib[k] = sb[rows_b[k]];
  return coverage_detail::emd_matrix(ja, ia, jb, ib);
}

/// @brief Coverage and MMD of generated jets against real ones over the given batches (batch k: real rows
/// draws.first[k], generated rows draws.second[k]); the coverage of a batch is divided by its number of real rows.
/// Each distinct jet is extracted once; the EMDs of a batch run threaded over pairs.
template <class T>
cov_mmd_result cov_mmd(const jet_array<T>& real, const jet_array<T>& gen, const eval_batches& draws) {
  coverage_detail::check_jets(real, gen);
  draws.validate("cov_mmd", real.num_jets, gen.num_jets);
  std::vector<long> slot_r, slot_g;
  const auto jr = coverage_detail::extract_rows(real, draws.first, slot_r);
  const auto jg = coverage_detail::extract_rows(gen, draws.second, slot_g);
  cov_mmd_result out;
  for (int b = 0; b < draws.num_batches(); ++b) {
    const auto& rr = draws.first[b];
    const auto& rg = draws.second[b];
    std::vector<long> ir(rr.size()), ig(rg.size());
    for (std::size_t k = 0; k < rr.size(); ++k) ir[k] = slot_r[rr[k]];
    for (std::size_t k = 0; k < rg.size(); ++k) ig[k] = slot_g[rg[k]];
    const matrix<double> d = coverage_detail::emd_matrix(jg, ig, jr, ir);  // generated x real, as JetNet's dists
    double mmd = 0;
    for (Eigen::Index r = 0; r < d.cols(); ++r) mmd += d.col(r).minCoeff();
    std::vector<char> covered(static_cast<std::size_t>(d.cols()), 0);
    for (Eigen::Index g = 0; g < d.rows(); ++g) {
      Eigen::Index best = 0;
      for (Eigen::Index r = 1; r < d.cols(); ++r)
        if (d(g, r) < d(g, best)) best = r;  // strict: the first of equal distances, as numpy's argmin
      covered[static_cast<std::size_t>(best)] = 1;
    }
    long n_cov = 0;
    for (char c : covered) n_cov += c;
    out.mmd_batches.push_back(mmd / static_cast<double>(d.cols()));
    out.cov_batches.push_back(static_cast<double>(n_cov) / static_cast<double>(d.cols()));
  }
  for (std::size_t b = 0; b < out.cov_batches.size(); ++b) {
    out.cov += out.cov_batches[b];
    out.mmd += out.mmd_batches[b];
  }
  out.cov /= static_cast<double>(out.cov_batches.size());
  out.mmd /= static_cast<double>(out.mmd_batches.size());
  return out;
}

/// @brief cov_mmd over opt.num_batches batches of opt.num_eval_samples jets drawn with replacement from each sample
/// (seeded; per batch the real rows, then the generated ones, JetNet's order). Deterministic for a seed and
/// independent of the thread count. Throws on invalid jets, bad options or fewer jets than num_eval_samples.
template <class T>
cov_mmd_result cov_mmd(const jet_array<T>& real, const jet_array<T>& gen, const cov_mmd_options& opt = {}) {
  coverage_detail::check_jets(real, gen);
  coverage_detail::check_options(opt, real.num_jets, gen.num_jets);
  return cov_mmd(real, gen,
                 draw_eval_batches(real.num_jets, gen.num_jets, opt.num_eval_samples, opt.num_batches, opt.seed));
}

}  // namespace hepgnn
