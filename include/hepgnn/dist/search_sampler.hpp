#pragma once
/// @file search_sampler.hpp
/// @brief Samplers that propose a trial's configuration: hepgnn::random_sampler (the prior) and
/// hepgnn::tpe_sampler (tree-structured Parzen estimator, Bergstra et al. 2011, with Optuna's default settings).
/// Both are reproducible: a trial's draws come from a generator seeded by (seed, trial id), so the random sampler
/// gives trial k the same configuration whatever order trials are created in.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/dist/search_space.hpp"

namespace hepgnn {

/// @brief One finished rung of a trial, as samplers see it: lower `loss` is better (a maximised metric arrives
/// negated). With `pending`, a trial that is training now: its configuration only (resource 0, loss NaN).
struct search_observation {
  trial_config config;
  double resource = 0;
  double loss = 0;
  bool pending = false;
};

/// @brief Proposes configurations. `history` holds every rung result recorded so far (any order), then the
/// trials training at that moment (`pending`; run_search passes them, for TPE's constant liar).
class search_sampler {
 public:
  virtual ~search_sampler() = default;
  virtual trial_config sample(const search_space& space, std::size_t trial_id,
                              const std::vector<search_observation>& history) = 0;
};

/// @brief The generator for trial `trial_id` of a search seeded with `seed`.
inline rng search_trial_rng(std::uint64_t seed, std::size_t trial_id) {
  return rng(mix64(seed ^ mix64(static_cast<std::uint64_t>(trial_id) + 0x51ED5EEDULL)));
}

/// @brief Random search: every dimension drawn from its prior.
class random_sampler : public search_sampler {
 public:
  explicit random_sampler(std::uint64_t seed = 1) : seed_(seed) {}
  trial_config sample(const search_space& space, std::size_t trial_id,
                      const std::vector<search_observation>&) override {
    rng g = search_trial_rng(seed_, trial_id);
    return space.sample(g);
  }

 private:
  std::uint64_t seed_;
};

/// @brief TPE settings (Optuna's defaults).
struct tpe_options {
  std::size_t n_startup_trials = 10;  ///< random configurations until this many results exist at one resource
  std::size_t n_ei_candidates = 24;   ///< candidates drawn from l(x) per dimension; the best l/g is kept
  double prior_weight = 1.0;          ///< weight of the prior component in each Parzen mixture
  std::size_t gamma_cap = 25;         ///< gamma(n) = min(ceil(0.1 n), gamma_cap) observations form l(x)
  /// Optuna's constant liar: trials still training (pending observations) count as results worse than every
  /// real one, so they join g(x) and parallel workers stop proposing next to each other. Off: pending ignored.
  bool constant_liar = false;
};

/// @brief Tree-structured Parzen estimator, univariate (each dimension modelled and chosen independently, as
/// Optuna does by default). Observations are those at the largest resource that has at least n_startup_trials
/// results (BOHB's rule: early rungs are plentiful, late rungs are accurate); before that, configurations come
/// from the prior. The best gamma(n) observations make l(x), the rest g(x); each is a mixture of truncated normals
/// (one per observation, plus the prior: centre of the range, width of the range), bandwidth = the larger gap to a
/// sorted neighbour, clipped to [range / min(100, n + 1), range] (hyperopt's and Optuna's "magic clip"). Log and
/// integer dimensions are modelled in log / continuous space and rounded. Choices: counts plus prior_weight / k.
class tpe_sampler : public search_sampler {
 public:
  explicit tpe_sampler(std::uint64_t seed = 1, tpe_options o = {}) : seed_(seed), o_(o) {
    HEPGNN_CHECK(o_.n_ei_candidates >= 1, "tpe_sampler: n_ei_candidates must be >= 1, got ", o_.n_ei_candidates);
    HEPGNN_CHECK(o_.prior_weight > 0, "tpe_sampler: prior_weight must be > 0, got ", o_.prior_weight);
    HEPGNN_CHECK(o_.gamma_cap >= 1, "tpe_sampler: gamma_cap must be >= 1, got ", o_.gamma_cap);
  }

  trial_config sample(const search_space& space, std::size_t trial_id,
                      const std::vector<search_observation>& history) override {
    rng g = search_trial_rng(seed_, trial_id);
    const std::vector<const search_observation*> obs = usable(history);
    if (obs.empty()) return space.sample(g);
    const std::size_t nb = n_below(obs.size());
    trial_config c;
    for (const auto& d : space.dimensions()) {
      std::vector<search_value> below, above;
      for (std::size_t i = 0; i < obs.size(); ++i) (i < nb ? below : above).push_back(obs[i]->config.at(d.name));
      c.set(d.name, d.kind == search_kind::choice ? pick_choice(d, below, above, g) : pick_number(d, below, above, g));
    }
    return c;
  }

  /// @brief gamma(n): how many of n observations form l(x).
  std::size_t n_below(std::size_t n) const {
    return std::max<std::size_t>(
        1, std::min<std::size_t>(static_cast<std::size_t>(std::ceil(0.1 * static_cast<double>(n))), o_.gamma_cap));
  }

 private:
  /// Observations at the largest resource with enough of them, best first (ties: earlier first).
  std::vector<const search_observation*> usable(const std::vector<search_observation>& history) const {
    std::vector<double> levels;
    for (const auto& h : history)
      if (!h.pending && std::isfinite(h.loss)) levels.push_back(h.resource);
    std::sort(levels.begin(), levels.end());
    double chosen = -1;
    for (std::size_t i = 0; i < levels.size();) {
      std::size_t j = i;
      while (j < levels.size() && levels[j] == levels[i]) ++j;
      if (j - i >= std::max<std::size_t>(o_.n_startup_trials, 1)) chosen = levels[i];
      i = j;
    }
    std::vector<const search_observation*> out;
    if (chosen < 0) return out;
    for (const auto& h : history)
      if (!h.pending && h.resource == chosen && std::isfinite(h.loss)) out.push_back(&h);
    std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->loss < b->loss; });
    if (o_.constant_liar) {  // the lies go last (the worst); a trial already measured at this level keeps its value
      const std::size_t real = out.size();
      for (const auto& h : history)
        if (h.pending && std::none_of(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(real),
                                      [&](auto* o) { return o->config == h.config; }))
          out.push_back(&h);
    }
    return out;
  }

  /// A Parzen mixture of truncated normals on [a, b].
  struct parzen {
    std::vector<double> mu, sigma, weight;
    double a = 0, b = 1;
    parzen(std::vector<double> points, double lo, double hi, double prior_weight) : a(lo), b(hi) {
      const double range = b - a, prior_mu = 0.5 * (a + b);
      points.push_back(prior_mu);
      std::vector<std::size_t> order(points.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return points[i] < points[j]; });
      const double min_sigma = range / std::min(100.0, static_cast<double>(points.size()));  // n + 1 with the prior
      sigma.assign(points.size(), range);
      for (std::size_t k = 0; k < order.size(); ++k) {
        const double left = k == 0 ? a : points[order[k - 1]], right = k + 1 == order.size() ? b : points[order[k + 1]];
        const double x = points[order[k]];
        sigma[order[k]] = std::clamp(std::max(x - left, right - x), min_sigma, range);
      }
      sigma.back() = range;  // the prior keeps the full width
      mu = std::move(points);
      weight.assign(mu.size(), 1.0);
      weight.back() = prior_weight;
      double total = 0;
      for (const double w : weight) total += w;
      for (double& w : weight) w /= total;
    }
    static double cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
    double log_pdf(double x) const {
      double p = 0;
      for (std::size_t i = 0; i < mu.size(); ++i) {
        const double s = sigma[i], z = (x - mu[i]) / s;
        const double mass = std::max(cdf((b - mu[i]) / s) - cdf((a - mu[i]) / s), 1e-300);
        p += weight[i] * std::exp(-0.5 * z * z) / (s * std::sqrt(2 * std::numbers::pi) * mass);
      }
      return std::log(std::max(p, 1e-300));
    }
    double draw(rng& g) const {
      double u = g.uniform(), acc = 0;
      std::size_t i = 0;
      for (; i + 1 < weight.size(); ++i) {
        acc += weight[i];
        if (u < acc) break;
      }
      for (int tries = 0; tries < 100; ++tries) {  // mu is inside [a, b], so at least ~1/3 of draws land there
        const double x = g.normal(mu[i], sigma[i]);
        if (x >= a && x <= b) return x;
      }
      return std::clamp(mu[i], a, b);
    }
  };

  /// Maps a numeric value to the modelling line (log for log dimensions; integers as continuous).
  static double to_line(const search_dimension& d, const search_value& v) {
    const double x = v.index() == 0 ? std::get<double>(v) : static_cast<double>(std::get<std::int64_t>(v));
    return (d.kind == search_kind::log_uniform || (d.kind == search_kind::integer && d.log)) ? std::log(x) : x;
  }
  static void line_bounds(const search_dimension& d, double& a, double& b) {
    if (d.kind == search_kind::integer) {
      a = d.lo - 0.5;
      b = d.hi + 0.5;
      if (d.log) { a = std::log(a); b = std::log(b); }
    } else if (d.kind == search_kind::log_uniform) {
      a = std::log(d.lo);
      b = std::log(d.hi);
    } else {
      a = d.lo;
      b = d.hi;
    }
  }
  search_value pick_number(const search_dimension& d, const std::vector<search_value>& below,
                           const std::vector<search_value>& above, rng& g) const {
    double a = 0, b = 1;
    line_bounds(d, a, b);
    std::vector<double> xb, xa;
    for (const auto& v : below) xb.push_back(to_line(d, v));
    for (const auto& v : above) xa.push_back(to_line(d, v));
    const parzen l(std::move(xb), a, b, o_.prior_weight), gm(std::move(xa), a, b, o_.prior_weight);
    double best = l.draw(g), best_score = l.log_pdf(best) - gm.log_pdf(best);
    for (std::size_t k = 1; k < o_.n_ei_candidates; ++k) {
      const double x = l.draw(g), score = l.log_pdf(x) - gm.log_pdf(x);
      if (score > best_score) { best = x; best_score = score; }
    }
    const bool log = d.kind == search_kind::log_uniform || (d.kind == search_kind::integer && d.log);
    const double value = log ? std::exp(best) : best;
    if (d.kind == search_kind::integer) return search_space::clamp_integer(d, value);
    return std::clamp(value, d.lo, d.hi);
  }
  search_value pick_choice(const search_dimension& d, const std::vector<search_value>& below,
                           const std::vector<search_value>& above, rng& g) const {
    const std::size_t k = d.choices.size();
    const auto weights = [&](const std::vector<search_value>& vs) {
      std::vector<double> w(k, o_.prior_weight / static_cast<double>(k));
      for (const auto& v : vs)
        for (std::size_t c = 0; c < k; ++c)
          if (d.choices[c] == v) w[c] += 1;
      double total = 0;
      for (const double x : w) total += x;
      for (double& x : w) x /= total;
      return w;
    };
    const std::vector<double> wl = weights(below), wg = weights(above);
    std::size_t best = k;
    double best_score = -std::numeric_limits<double>::infinity();
    for (std::size_t t = 0; t < o_.n_ei_candidates; ++t) {
      double u = g.uniform(), acc = 0;
      std::size_t c = 0;
      for (; c + 1 < k; ++c) {
        acc += wl[c];
        if (u < acc) break;
      }
      const double score = std::log(wl[c]) - std::log(wg[c]);
      if (score > best_score) { best = c; best_score = score; }
    }
    return d.choices[best];
  }

  std::uint64_t seed_;
  tpe_options o_;
};

}  // namespace hepgnn
