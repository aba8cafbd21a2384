#pragma once
/// @file regression.hpp
/// @brief Regression losses with gradients: mean squared error and Huber (smooth L1), mean over all entries; the
/// shape of loss/loss.hpp.

#include <cmath>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::mse.
template <class T>
struct mse_options {
  const vector<T>* row_weights = nullptr;  ///< one weight per row, finite and >= 0 (0 masks a row); null: all 1
};

/// @brief Options of hepgnn::huber.
template <class T>
struct huber_options {
  T delta = 1;                             ///< quadratic below |d| = delta, linear beyond; finite and > 0
  const vector<T>* row_weights = nullptr;  ///< as in mse_options
};

namespace detail {
template <class T>
void check_pair(const matrix<T>& pred, const matrix<T>& target, const char* fn) {
  HEPGNN_CHECK(pred.rows() == target.rows() && pred.cols() == target.cols(), fn, ": pred is ", pred.rows(), " x ",
               pred.cols(), " but target is ", target.rows(), " x ", target.cols(), "; they must match");
}
template <class T>
void check_row_weights(const vector<T>* w, Eigen::Index rows, const char* fn) {
  if (!w) return;
  HEPGNN_CHECK(w->size() == rows, fn, ": row_weights must have one entry per row (", rows, "), got ", w->size());
  for (Eigen::Index r = 0; r < w->size(); ++r)
    HEPGNN_CHECK(std::isfinite(static_cast<double>((*w)(r))) && (*w)(r) >= T(0), fn, ": row_weights[", r,
                 "] must be finite and >= 0, got ", (*w)(r));
}
}  // namespace detail

/// @brief mean((pred - target)^2) (PyTorch MSELoss, reduction mean). With row_weights, each row's squared errors are
/// scaled by its weight and the sum is divided by the number of entries (a weight of 0 masks a row).
/// Writes dL/dpred into *grad unless it is null.
template <class T>
T mse(const matrix<T>& pred, const matrix<T>& target, const mse_options<T>& options = {},
      loss_output<matrix<T>> grad = nullptr) {
  const vector<T>* row_weights = options.row_weights;
  detail::check_pair(pred, target, "mse");
  detail::check_row_weights(row_weights, pred.rows(), "mse");
  const Eigen::Index n = pred.size();
  if (n == 0) {
    if (grad) grad->resize(pred.rows(), pred.cols());
    return T(0);
  }
  matrix<T> diff = pred - target;
  if (row_weights) {
    const T loss = (diff.array().square().colwise() * row_weights->array()).sum() / T(n);
    if (grad) *grad = (T(2) / T(n)) * (diff.array().colwise() * row_weights->array()).matrix();
    return loss;
  }
  const T loss = diff.squaredNorm() / T(n);
  if (grad) *grad = (T(2) / T(n)) * diff;
  return loss;
}

/// @brief Huber loss (PyTorch HuberLoss): 0.5 d^2 for |d| <= delta, delta (|d| - 0.5 delta) beyond; mean over entries.
/// Optional row_weights as in mse().
template <class T>
T huber(const matrix<T>& pred, const matrix<T>& target, const huber_options<T>& options = {},
        loss_output<matrix<T>> grad = nullptr) {
  const T delta = options.delta;
  const vector<T>* row_weights = options.row_weights;
  detail::check_pair(pred, target, "huber");
  detail::check_row_weights(row_weights, pred.rows(), "huber");
  HEPGNN_CHECK(delta > T(0) && std::isfinite(static_cast<double>(delta)), "huber: delta must be > 0 and finite, got ",
               delta);
  const Eigen::Index n = pred.size();
  if (grad) grad->resize(pred.rows(), pred.cols());
  if (n == 0) return T(0);
  double total = 0;
  for (Eigen::Index r = 0; r < pred.rows(); ++r) {
    const T w = row_weights ? (*row_weights)(r) : T(1);
    for (Eigen::Index c = 0; c < pred.cols(); ++c) {
      const T d = pred(r, c) - target(r, c), a = std::abs(d);
      total += static_cast<double>(w * (a <= delta ? T(0.5) * d * d : delta * (a - T(0.5) * delta)));
      if (grad) (*grad)(r, c) = w * (a <= delta ? d : delta * (d > 0 ? T(1) : T(-1))) / T(n);
    }
  }
  return static_cast<T>(total / static_cast<double>(n));
}

}  // namespace hepgnn
