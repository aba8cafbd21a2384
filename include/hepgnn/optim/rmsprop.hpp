#pragma once
/// @file rmsprop.hpp
/// @brief hepgnn::rmsprop: PyTorch's RMSprop update rule (torch.optim.RMSprop), with momentum and the centered
/// variant. MPGAN trains both of its networks with it at the defaults and its per-type learning rates.

#include <cmath>

#include "hepgnn/optim/optimizer_state.hpp"

namespace hepgnn {

/// @brief RMSprop options (PyTorch names and defaults).
struct rmsprop_options {
  double lr = 1e-2;
  double alpha = 0.99;        ///< smoothing of the running mean of squared gradients
  double eps = 1e-8;          ///< added to the root (outside the square root, as PyTorch)
  double weight_decay = 0;    ///< L2 penalty added to the gradient
  double momentum = 0;        ///< momentum of the scaled step (0: none)
  bool centered = false;      ///< divide by the running variance estimate (mean of squares - square of means)
};

/// @brief RMSprop. Per entry, with g the gradient (+ weight_decay w):
///   v = alpha v + (1 - alpha) g^2;  centered: m = alpha m + (1 - alpha) g, v~ = v - m^2, else v~ = v;
///   d = g / (sqrt(v~) + eps);  momentum: b = momentum b + d, w -= lr b;  else w -= lr d.
/// State starts at zero, as PyTorch's.
template <class T>
class rmsprop {
 public:
  explicit rmsprop(rmsprop_options o = {}) : o_(o) {
    check_lr(o.lr);
    HEPGNN_CHECK(o.alpha >= 0 && o.alpha <= 1, "rmsprop: alpha must be in [0, 1], got ", o.alpha);
    // eps = 0 divides 0 by 0 for a parameter whose gradients are all zero (NaN weights).
    HEPGNN_CHECK(o.eps > 0 && std::isfinite(o.eps), "rmsprop: eps must be finite and > 0, got ", o.eps);
    HEPGNN_CHECK(o.weight_decay >= 0 && std::isfinite(o.weight_decay),
                 "rmsprop: weight_decay must be finite and >= 0, got ", o.weight_decay);
    HEPGNN_CHECK(o.momentum >= 0 && std::isfinite(o.momentum), "rmsprop: momentum must be finite and >= 0, got ",
                 o.momentum);
  }
  double lr() const { return o_.lr; }
  void set_lr(double lr) {
    check_lr(lr);
    o_.lr = lr;
  }
  const rmsprop_options& options() const { return o_; }
  long steps() const { return t_; }
  /// @brief Sets the step count, e.g. from a checkpoint.
  void set_steps(long t) {
    HEPGNN_CHECK(t >= 0, "rmsprop::set_steps: t must be >= 0, got ", t);
    t_ = t;
  }
  /// @brief Visits the state of every parameter of `model` as f(name, std::span<T>) (PyTorch's names:
  /// "square_avg.<param>", with "grad_avg.<param>" when centered and "momentum_buffer.<param>" with momentum).
  template <class Model, class F>
  void for_each_state(Model& model, F&& f) {
    square_avg_.visit(model, "square_avg", f);
    if (o_.centered) grad_avg_.visit(model, "grad_avg", f);
    if (o_.momentum > 0) momentum_.visit(model, "momentum_buffer", f);
  }

  template <class Model>
  void step(Model& model) {
    ++t_;
    const T alpha = static_cast<T>(o_.alpha), one_minus = T(1) - alpha;
    const T eps = static_cast<T>(o_.eps), wd = static_cast<T>(o_.weight_decay), lr = static_cast<T>(o_.lr);
    const T mom = static_cast<T>(o_.momentum);
    square_avg_.begin();
    grad_avg_.begin();
    momentum_.begin();
    model.for_each_param("", [&](const std::string& name, auto p) {
      const std::int64_t n = p.size();
      T* v = square_avg_.get(name, n).data();
      T* m = o_.centered ? grad_avg_.get(name, n).data() : nullptr;
      T* b = o_.momentum > 0 ? momentum_.get(name, n).data() : nullptr;
      T* w = p.value;
      const T* gr = p.grad;
      for (std::int64_t i = 0; i < n; ++i) {
        const T g = wd != T(0) ? gr[i] + wd * w[i] : gr[i];
        v[i] = alpha * v[i] + one_minus * g * g;
        T var = v[i];
        if (m) {
          m[i] = alpha * m[i] + one_minus * g;
          var -= m[i] * m[i];
        }
        const T d = g / (std::sqrt(var) + eps);
        if (b) {
          b[i] = mom * b[i] + d;
          w[i] -= lr * b[i];
        } else {
          w[i] -= lr * d;
        }
      }
    });
  }

 private:
  static void check_lr(double lr) {
    HEPGNN_CHECK(lr >= 0 && std::isfinite(lr), "rmsprop: lr must be >= 0 and finite, got ", lr);
  }
  rmsprop_options o_;
  detail::slot_state<T> square_avg_, grad_avg_, momentum_;
  long t_ = 0;
};

}  // namespace hepgnn
