#pragma once
/// @file roc.hpp
/// @brief ROC curves and AUC for a binary score (higher = more signal-like), AUC with ties counted one half
/// (the Mann-Whitney U statistic / (n_sig n_bkg)), and working points: signal efficiency at a fixed
/// background efficiency or background rejection 1 / eps_B.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief A ROC curve: point k accepts every score >= thresholds[k]. Starts at (0, 0) with threshold +inf,
/// ends at (1, 1); one point per distinct score, so ties make one diagonal step.
struct roc_curve {
  std::vector<double> thresholds;  ///< decreasing
  std::vector<double> signal_eff;  ///< true positive rate, non-decreasing
  std::vector<double> background_eff;  ///< false positive rate, non-decreasing
};

namespace detail {
template <class T>
void roc_check(std::span<const T> s, std::span<const T> b, const char* who) {
  HEPGNN_CHECK(!s.empty() && !b.empty(), who, ": need at least one signal and one background score, got ",
               s.size(), " signal and ", b.size(), " background");
  for (std::size_t i = 0; i < s.size(); ++i)
    HEPGNN_CHECK(std::isfinite(static_cast<double>(s[i])), who, ": signal score ", i, " is not finite");
  for (std::size_t i = 0; i < b.size(); ++i)
    HEPGNN_CHECK(std::isfinite(static_cast<double>(b[i])), who, ": background score ", i, " is not finite");
}
}  // namespace detail

/// @brief AUC = P(score_sig > score_bkg) + P(equal) / 2, computed by sorting (O(n log n)).
template <class T>
double auc(std::span<const T> signal, std::span<const T> background) {
  detail::roc_check(signal, background, "auc");
  std::vector<double> b(background.begin(), background.end());
  std::sort(b.begin(), b.end());
  double u = 0;
  for (T x : signal) {
    const auto lo = std::lower_bound(b.begin(), b.end(), static_cast<double>(x));
    const auto hi = std::upper_bound(lo, b.end(), static_cast<double>(x));
    u += static_cast<double>(lo - b.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return u / (static_cast<double>(signal.size()) * static_cast<double>(background.size()));
}

/// @brief AUC for std::vector arguments.
template <class T>
double auc(const std::vector<T>& signal, const std::vector<T>& background) {
  return auc(std::span<const T>(signal), std::span<const T>(background));
}

/// @brief AUC from scores and 0/1 labels (label 1 = signal).
template <class T>
double auc(std::span<const T> scores, std::span<const int> labels) {
  HEPGNN_CHECK(scores.size() == labels.size(), "auc: scores and labels must have the same size, got ",
               scores.size(), " and ", labels.size());
  std::vector<T> s, b;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    HEPGNN_CHECK(labels[i] == 0 || labels[i] == 1, "auc: labels must be 0 or 1, got ", labels[i], " at ", i);
    (labels[i] ? s : b).push_back(scores[i]);
  }
  return auc(std::span<const T>(s), std::span<const T>(b));
}

/// @brief The ROC curve of signal vs background scores.
template <class T>
roc_curve roc(std::span<const T> signal, std::span<const T> background) {
  detail::roc_check(signal, background, "roc");
  std::vector<std::pair<double, int>> all;
  all.reserve(signal.size() + background.size());
  for (T x : signal) all.emplace_back(static_cast<double>(x), 1);
  for (T x : background) all.emplace_back(static_cast<double>(x), 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  roc_curve c;
  c.thresholds.push_back(std::numeric_limits<double>::infinity());
  c.signal_eff.push_back(0);
  c.background_eff.push_back(0);
  const double ns = static_cast<double>(signal.size()), nb = static_cast<double>(background.size());
  double ts = 0, tb = 0;
  for (std::size_t i = 0; i < all.size();) {
    const double t = all[i].first;
    for (; i < all.size() && all[i].first == t; ++i) (all[i].second ? ts : tb) += 1;
    c.thresholds.push_back(t);
    c.signal_eff.push_back(ts / ns);
    c.background_eff.push_back(tb / nb);
  }
  return c;
}

/// @brief ROC curve for std::vector arguments.
template <class T>
roc_curve roc(const std::vector<T>& signal, const std::vector<T>& background) {
  return roc(std::span<const T>(signal), std::span<const T>(background));
}

/// @brief Trapezoid area under a ROC curve (equals auc() on the same scores).
inline double area(const roc_curve& c) {
  double a = 0;
  for (std::size_t k = 1; k < c.signal_eff.size(); ++k)
    a += (c.background_eff[k] - c.background_eff[k - 1]) * (c.signal_eff[k] + c.signal_eff[k - 1]) / 2;
  return a;
}

/// @brief Signal efficiency at background efficiency eps_b in [0, 1], linearly interpolated along the curve
/// (a random mix of the two neighbouring thresholds reaches every point in between).
inline double signal_efficiency_at_background_efficiency(const roc_curve& c, double eps_b) {
  HEPGNN_CHECK(eps_b >= 0 && eps_b <= 1, "signal_efficiency_at_background_efficiency: eps_b must be in [0, 1], got ",
               eps_b);
  HEPGNN_CHECK(c.signal_eff.size() >= 2 && c.signal_eff.size() == c.background_eff.size(),
               "signal_efficiency_at_background_efficiency: curve must have >= 2 points with matching sizes, got ",
               c.signal_eff.size(), " and ", c.background_eff.size());
  // first point with background_eff >= eps_b (the best signal efficiency at exactly eps_b)
  std::size_t k = std::lower_bound(c.background_eff.begin(), c.background_eff.end(), eps_b) - c.background_eff.begin();
  if (k >= c.background_eff.size()) return c.signal_eff.back();
  if (c.background_eff[k] == eps_b) {
    // on a vertical segment take its top
    while (k + 1 < c.background_eff.size() && c.background_eff[k + 1] == eps_b) ++k;
    return c.signal_eff[k];
  }
  const double x0 = c.background_eff[k - 1], x1 = c.background_eff[k];
  return c.signal_eff[k - 1] + (c.signal_eff[k] - c.signal_eff[k - 1]) * (eps_b - x0) / (x1 - x0);
}

/// @brief Signal efficiency at background rejection 1 / eps_b = `rejection` (>= 1), e.g. 10 or 100.
inline double signal_efficiency_at_rejection(const roc_curve& c, double rejection) {
  HEPGNN_CHECK(rejection >= 1, "signal_efficiency_at_rejection: rejection (1 / eps_b) must be >= 1, got ", rejection);
  return signal_efficiency_at_background_efficiency(c, 1.0 / rejection);
}

/// @brief Background rejection 1 / eps_b at signal efficiency eps_s (interpolated; +inf when eps_b reaches 0).
inline double rejection_at_signal_efficiency(const roc_curve& c, double eps_s) {
  HEPGNN_CHECK(eps_s > 0 && eps_s <= 1, "rejection_at_signal_efficiency: eps_s must be in (0, 1], got ", eps_s);
  HEPGNN_CHECK(c.signal_eff.size() >= 2 && c.signal_eff.size() == c.background_eff.size(),
               "rejection_at_signal_efficiency: curve must have >= 2 points with matching sizes");
  std::size_t k = std::lower_bound(c.signal_eff.begin(), c.signal_eff.end(), eps_s) - c.signal_eff.begin();
  if (k >= c.signal_eff.size()) k = c.signal_eff.size() - 1;
  // leftmost point reaching eps_s on a horizontal run is the lowest background
  double eb;
  if (c.signal_eff[k] == eps_s || k == 0) {
    eb = c.background_eff[k];
  } else {
    const double y0 = c.signal_eff[k - 1], y1 = c.signal_eff[k];
    eb = c.background_eff[k - 1] + (c.background_eff[k] - c.background_eff[k - 1]) * (eps_s - y0) / (y1 - y0);
  }
  return eb > 0 ? 1.0 / eb : std::numeric_limits<double>::infinity();
}

}  // namespace hepgnn
