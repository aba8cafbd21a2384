#pragma once
/// @file search_predictor.hpp
/// @brief hepgnn::curve_predictor: predicts a trial's metric at the end of a rung from its partial learning curve,
/// for Swift-Hyperband's rule (hyperband_options::swift). Swift-Hyperband uses a support-vector regression; this
/// is kernel ridge regression with the same RBF kernel (the squared loss instead of the epsilon-insensitive one):
/// a closed-form fit (one Cholesky solve, no solver iterations or C/epsilon to tune) that predicts the same kind of
/// smooth function of the curve from the 15-100 curves a search has.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief Kernel ridge regression from fixed-length feature vectors (a partial curve) to a target (the metric at
/// the end). Features are standardised with the training set's mean and deviation; the kernel is
/// exp(-|x - x'|^2 / (2 l^2)) with l the median pairwise distance of the training points (median heuristic);
/// ridge lambda (default 0.01, on standardised targets) regularises.
class curve_predictor {
 public:
  explicit curve_predictor(std::size_t min_curves = 15, double ridge = 1e-2) : min_(min_curves), ridge_(ridge) {
    HEPGNN_CHECK(min_curves >= 2, "curve_predictor: min_curves must be >= 2, got ", min_curves);
    HEPGNN_CHECK(ridge > 0, "curve_predictor: ridge must be > 0, got ", ridge);
  }
  /// @brief Adds a fully trained example: its partial curve and its final metric (non-finite ones are skipped).
  void add(const std::vector<double>& partial, double final_metric) {
    HEPGNN_CHECK(!partial.empty(), "curve_predictor::add: the partial curve is empty");
    HEPGNN_CHECK(x_.empty() || partial.size() == x_.front().size(), "curve_predictor::add: curves must have ",
                 x_.empty() ? 0 : x_.front().size(), " points, got ", partial.size());
    if (!std::isfinite(final_metric)) return;
    for (const double v : partial)
      if (!std::isfinite(v)) return;
    x_.push_back(partial);
    y_.push_back(final_metric);
    fitted_ = false;
  }
  std::size_t size() const { return x_.size(); }
  /// @brief True once min_curves examples are in.
  bool ready() const { return x_.size() >= min_; }

  /// @brief The predicted final metric for a partial curve (ready() must hold).
  double predict(const std::vector<double>& partial) {
    HEPGNN_CHECK(ready(), "curve_predictor::predict: needs ", min_, " fully trained curves, has ", x_.size());
    HEPGNN_CHECK(partial.size() == x_.front().size(), "curve_predictor::predict: curve must have ",
                 x_.front().size(), " points, got ", partial.size());
    if (!fitted_) fit();
    const std::vector<double> z = standardise(partial);
    double out = 0;
    for (std::size_t i = 0; i < z_.size(); ++i) out += alpha_[i] * kernel(z, z_[i]);
    return y_mean_ + y_sd_ * out;
  }

 private:
  std::vector<double> standardise(const std::vector<double>& x) const {
    std::vector<double> z(x.size());
    for (std::size_t f = 0; f < x.size(); ++f) z[f] = (x[f] - mean_[f]) / sd_[f];
    return z;
  }
  double kernel(const std::vector<double>& a, const std::vector<double>& b) const {
    double d2 = 0;
    for (std::size_t f = 0; f < a.size(); ++f) d2 += (a[f] - b[f]) * (a[f] - b[f]);
    return std::exp(-d2 / (2 * scale_ * scale_));
  }
  void fit() {
    const std::size_t n = x_.size(), d = x_.front().size();
    mean_.assign(d, 0);
    sd_.assign(d, 0);
    for (const auto& x : x_)
      for (std::size_t f = 0; f < d; ++f) mean_[f] += x[f] / static_cast<double>(n);
    for (const auto& x : x_)
      for (std::size_t f = 0; f < d; ++f) sd_[f] += (x[f] - mean_[f]) * (x[f] - mean_[f]) / static_cast<double>(n);
    for (double& s : sd_) s = s > 0 ? std::sqrt(s) : 1.0;
    y_mean_ = 0;
    for (const double y : y_) y_mean_ += y / static_cast<double>(n);
    double var = 0;
    for (const double y : y_) var += (y - y_mean_) * (y - y_mean_) / static_cast<double>(n);
    y_sd_ = var > 0 ? std::sqrt(var) : 1.0;
    z_.clear();
    for (const auto& x : x_) z_.push_back(standardise(x));
    std::vector<double> dist;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) {
        double d2 = 0;
        for (std::size_t f = 0; f < d; ++f) d2 += (z_[i][f] - z_[j][f]) * (z_[i][f] - z_[j][f]);
        dist.push_back(std::sqrt(d2));
      }
    std::nth_element(dist.begin(), dist.begin() + static_cast<std::ptrdiff_t>(dist.size() / 2), dist.end());
    scale_ = dist[dist.size() / 2] > 0 ? dist[dist.size() / 2] : 1.0;
    // (K + lambda I) alpha = (y - mean) / sd by Cholesky; K + lambda I is symmetric positive definite.
    std::vector<double> a(n * n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) a[i * n + j] = kernel(z_[i], z_[j]) + (i == j ? ridge_ : 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      double s = a[j * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[j * n + k] * a[j * n + k];
      a[j * n + j] = std::sqrt(std::max(s, 1e-300));
      for (std::size_t i = j + 1; i < n; ++i) {
        double t = a[i * n + j];
        for (std::size_t k = 0; k < j; ++k) t -= a[i * n + k] * a[j * n + k];
        a[i * n + j] = t / a[j * n + j];
      }
    }
    alpha_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {  // L u = b
      double t = (y_[i] - y_mean_) / y_sd_;
      for (std::size_t k = 0; k < i; ++k) t -= a[i * n + k] * alpha_[k];
      alpha_[i] = t / a[i * n + i];
    }
    for (std::size_t i = n; i-- > 0;) {  // L^T alpha = u
      double t = alpha_[i];
      for (std::size_t k = i + 1; k < n; ++k) t -= a[k * n + i] * alpha_[k];
      alpha_[i] = t / a[i * n + i];
    }
    fitted_ = true;
  }

  std::size_t min_;
  double ridge_;
  std::vector<std::vector<double>> x_, z_;
  std::vector<double> y_, mean_, sd_, alpha_;
  double y_mean_ = 0, y_sd_ = 1, scale_ = 1;
  bool fitted_ = false;
};

}  // namespace hepgnn
