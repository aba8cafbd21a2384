#pragma once
/// @file classification.hpp
/// @brief Classification losses with gradients w.r.t. the logits: binary cross entropy with logits, binary focal,
/// softmax cross entropy (class weights) and softmax focal loss. All mean-reduced, numerically stable in the logits;
/// the shape of loss/loss.hpp.

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of hepgnn::bce_with_logits.
template <class T>
struct bce_with_logits_options {
  T pos_weight = 1;  ///< weight of the positive term (PyTorch's pos_weight), finite and >= 0
};

/// @brief Options of hepgnn::binary_focal_loss.
template <class T>
struct binary_focal_loss_options {
  T gamma = 2;      ///< focusing exponent, finite and >= 0 (0: alpha-weighted BCE)
  T alpha = 0.25;   ///< weight of the positive class (1 - alpha for the negative), <= 1; negative: no weighting
};

/// @brief Options of hepgnn::focal_loss.
template <class T>
struct focal_loss_options {
  T gamma = 2;                                    ///< focusing exponent, finite and >= 0 (0: cross_entropy)
  const std::vector<T>* class_weights = nullptr;  ///< one weight per class, finite and >= 0 (null: all 1)
};

/// @brief Options of hepgnn::cross_entropy.
template <class T>
struct cross_entropy_options {
  const std::vector<T>* class_weights = nullptr;  ///< one weight per class, finite and >= 0 (null: all 1)
};

namespace detail {
template <class T>
T softplus(T x) {  // log(1 + e^x) without overflow
  return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
template <class T>
T sigmoid(T x) {
  return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}
template <class T>
void check_binary(const matrix<T>& logits, const matrix<T>& targets, const char* fn) {
  HEPGNN_CHECK(logits.rows() == targets.rows() && logits.cols() == targets.cols(), fn, ": logits are ", logits.rows(),
               " x ", logits.cols(), " but targets are ", targets.rows(), " x ", targets.cols(), "; they must match");
  for (Eigen::Index i = 0; i < targets.size(); ++i)
    HEPGNN_CHECK(targets.data()[i] >= T(0) && targets.data()[i] <= T(1), fn, ": targets must be in [0, 1], got ",
                 targets.data()[i], " at entry ", i);
}
template <class T>
void check_labels(const matrix<T>& logits, std::span<const index_t> labels, const std::vector<T>* class_weights,
                  const char* fn) {
  HEPGNN_CHECK(static_cast<Eigen::Index>(labels.size()) == logits.rows(), fn, ": expected one label per logits row (",
               logits.rows(), "), got ", labels.size());
  HEPGNN_CHECK(logits.cols() >= 1, fn, ": logits need at least one class column");
  for (std::size_t i = 0; i < labels.size(); ++i)
    HEPGNN_CHECK(labels[i] >= 0 && labels[i] < logits.cols(), fn, ": labels[", i, "] = ", labels[i],
                 " is out of range [0, ", logits.cols(), ")");
  if (!class_weights) return;
  HEPGNN_CHECK(static_cast<Eigen::Index>(class_weights->size()) == logits.cols(), fn,
               ": class_weights must have one entry per class (", logits.cols(), "), got ", class_weights->size());
  for (std::size_t k = 0; k < class_weights->size(); ++k)
    HEPGNN_CHECK(std::isfinite(static_cast<double>((*class_weights)[k])) && (*class_weights)[k] >= T(0), fn,
                 ": class_weights[", k, "] must be finite and >= 0, got ", (*class_weights)[k]);
}
}  // namespace detail

/// @brief Binary cross entropy on logits (PyTorch BCEWithLogitsLoss, mean):
/// -[pos_weight * y log s(z) + (1 - y) log(1 - s(z))]. Targets in [0, 1]. Writes dL/dlogits into *grad unless null.
template <class T>
T bce_with_logits(const matrix<T>& logits, const matrix<T>& targets, const bce_with_logits_options<T>& options = {},
                  loss_output<matrix<T>> grad = nullptr) {
  detail::check_binary(logits, targets, "bce_with_logits");
  const T pos_weight = options.pos_weight;
  HEPGNN_CHECK(std::isfinite(static_cast<double>(pos_weight)) && pos_weight >= T(0),
               "bce_with_logits: pos_weight must be finite and >= 0, got ", pos_weight);
  const Eigen::Index n = logits.size();
  if (grad) grad->resize(logits.rows(), logits.cols());
  if (n == 0) return T(0);
  double total = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const T z = logits.data()[i], y = targets.data()[i];
    // -log s(z) = softplus(-z), -log(1 - s(z)) = softplus(z)
    total += static_cast<double>(pos_weight * y * detail::softplus(-z) + (T(1) - y) * detail::softplus(z));
    if (grad) {
      const T s = detail::sigmoid(z);
      grad->data()[i] = (pos_weight * y * (s - T(1)) + (T(1) - y) * s) / T(n);
    }
  }
  return static_cast<T>(total / static_cast<double>(n));
}

/// @brief Binary focal loss on logits (Lin et al. 2017, torchvision sigmoid_focal_loss, mean):
/// alpha_t (1 - p_t)^gamma * BCE, with p_t = p for y = 1 and 1 - p otherwise; alpha < 0 disables the alpha term.
template <class T>
T binary_focal_loss(const matrix<T>& logits, const matrix<T>& targets,
                    const binary_focal_loss_options<T>& options = {}, loss_output<matrix<T>> grad = nullptr) {
  detail::check_binary(logits, targets, "binary_focal_loss");
  const T gamma = options.gamma, alpha = options.alpha;
  HEPGNN_CHECK(std::isfinite(static_cast<double>(gamma)) && gamma >= T(0),
               "binary_focal_loss: gamma must be >= 0 and finite, got ", gamma);
  HEPGNN_CHECK(alpha <= T(1), "binary_focal_loss: alpha must be <= 1 (negative: no class weighting), got ", alpha);
  const Eigen::Index n = logits.size();
  if (grad) grad->resize(logits.rows(), logits.cols());
  if (n == 0) return T(0);
  double total = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const T z = logits.data()[i], y = targets.data()[i];
    const T p = detail::sigmoid(z);
    const T ce = y * detail::softplus(-z) + (T(1) - y) * detail::softplus(z);
    const T pt = p * y + (T(1) - p) * (T(1) - y);
    const T a = alpha >= T(0) ? alpha * y + (T(1) - alpha) * (T(1) - y) : T(1);
    const T m = T(1) - pt;
    const T mg = gamma == T(0) ? T(1) : std::pow(m, gamma);
    total += static_cast<double>(a * mg * ce);
    if (grad) {
      // d/dz: dce/dz = p - y; dpt/dz = (2y - 1) p (1 - p); d(m^g)/dz = -g m^(g-1) dpt/dz
      const T dce = p - y;
      const T dpt = (T(2) * y - T(1)) * p * (T(1) - p);
      const T dmg = gamma == T(0) ? T(0) : -gamma * (m > T(0) ? std::pow(m, gamma - T(1)) : T(0)) * dpt;
      grad->data()[i] = a * (dmg * ce + mg * dce) / T(n);
    }
  }
  return static_cast<T>(total / static_cast<double>(n));
}

/// @brief Softmax focal loss (multi-class, as MLPF trains its classifier): l_i = -w_{y} (1 - p_y)^gamma log p_y,
/// normalised like cross_entropy (gamma = 0 gives exactly cross_entropy).
template <class T>
T focal_loss(const matrix<T>& logits, std::span<const index_t> labels, const focal_loss_options<T>& options = {},
             loss_output<matrix<T>> grad = nullptr) {
  const T gamma = options.gamma;
  const std::vector<T>* class_weights = options.class_weights;
  detail::check_labels(logits, labels, class_weights, gamma == T(0) ? "cross_entropy" : "focal_loss");
  HEPGNN_CHECK(std::isfinite(static_cast<double>(gamma)) && gamma >= T(0),
               "focal_loss: gamma must be >= 0 and finite, got ", gamma);
  const Eigen::Index n = logits.rows(), c = logits.cols();
  if (grad) grad->resize(n, c);
  if (n == 0) return T(0);
  double total = 0, norm = 0;
  std::vector<T> p(static_cast<std::size_t>(c));
  for (Eigen::Index i = 0; i < n; ++i) {
    const index_t y = labels[i];
    const T w = class_weights ? (*class_weights)[y] : T(1);
    norm += static_cast<double>(w);
    const T mx = logits.row(i).maxCoeff();
    T sum = 0;
    for (Eigen::Index k = 0; k < c; ++k) sum += (p[k] = std::exp(logits(i, k) - mx));
    const T logsum = std::log(sum);
    for (Eigen::Index k = 0; k < c; ++k) p[k] /= sum;
    const T logp = logits(i, y) - mx - logsum, py = p[y], m = T(1) - py;
    const T mg = gamma == T(0) ? T(1) : std::pow(m, gamma);
    total += static_cast<double>(-w * mg * logp);
    if (grad) {
      // l = -w m^g log p_y. dl/dz_k = -w [ d(m^g)/dz_k log p_y + m^g dlogp_y/dz_k ],
      // dlogp_y/dz_k = [k=y] - p_k, dm/dz_k = -p_y ([k=y] - p_k).
      const T dmg_dm = gamma == T(0) ? T(0) : gamma * (m > T(0) ? std::pow(m, gamma - T(1)) : T(0));
      for (Eigen::Index k = 0; k < c; ++k) {
        const T dlogp = (k == y ? T(1) : T(0)) - p[k];
        (*grad)(i, k) = -w * (dmg_dm * (-py * dlogp) * logp + mg * dlogp);
      }
    }
  }
  if (norm <= 0) {
    if (grad) grad->setZero();
    return T(0);
  }
  if (grad) *grad /= static_cast<T>(norm);
  return static_cast<T>(total / norm);
}

/// @brief Softmax cross entropy (PyTorch CrossEntropyLoss with class weights, mean = sum_i w_{y_i} l_i / sum_i w_{y_i}).
template <class T>
T cross_entropy(const matrix<T>& logits, std::span<const index_t> labels, const cross_entropy_options<T>& options = {},
                loss_output<matrix<T>> grad = nullptr) {
  return focal_loss(logits, labels, {.gamma = T(0), .class_weights = options.class_weights}, grad);
}

}  // namespace hepgnn
