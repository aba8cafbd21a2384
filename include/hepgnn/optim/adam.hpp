#pragma once
/// @file adam.hpp
/// @brief hepgnn::adam and hepgnn::adamw (PyTorch Adam / AdamW update rules, bias-corrected).

#include <cmath>

#include "hepgnn/optim/optimizer_state.hpp"

namespace hepgnn {

/// @brief Adam options (PyTorch names and defaults). decoupled = true is AdamW (weight decay applied to the
/// weights directly, lr * wd * w), false is Adam's L2 penalty added to the gradient.
struct adam_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;
};

/// @brief Adam / AdamW. step(model) updates every parameter the model visits from its gradient.
template <class T>
class adam {
 public:
  explicit adam(adam_options o = {}) : o_(o) {
    check_lr(o.lr);
    HEPGNN_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "adam: betas must be in [0, 1), got ",
                 o.beta1, ", ", o.beta2);
    // eps = 0 divides 0 by 0 for a parameter whose gradients are all zero (NaN weights).
    HEPGNN_CHECK(o.eps > 0 && std::isfinite(o.eps), "adam: eps must be finite and > 0, got ", o.eps);
    HEPGNN_CHECK(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "adam: weight_decay must be finite and >= 0, got ",
                 o.weight_decay);
  }
  double lr() const { return o_.lr; }
  void set_lr(double lr) {
    check_lr(lr);
    o_.lr = lr;
  }
  long steps() const { return t_; }
  /// @brief Sets the step count (the bias corrections depend on it), e.g. from a checkpoint.
  void set_steps(long t) {
    HEPGNN_CHECK(t >= 0, "adam::set_steps: t must be >= 0, got ", t);
    t_ = t;
  }
  /// @brief Visits the moments of every parameter of `model` as f(name, std::span<T>) ("exp_avg.<param>",
  /// "exp_avg_sq.<param>", PyTorch's names): what a checkpoint saves and restores.
  template <class Model, class F>
  void for_each_state(Model& model, F&& f) {
    m_.visit(model, "exp_avg", f);
    v_.visit(model, "exp_avg_sq", f);
  }

  template <class Model>
  void step(Model& model) {
    ++t_;
    const double c1 = 1 - std::pow(o_.beta1, static_cast<double>(t_));
    const double c2 = 1 - std::pow(o_.beta2, static_cast<double>(t_));
    const T b1 = static_cast<T>(o_.beta1), b2 = static_cast<T>(o_.beta2);
    const T step_size = static_cast<T>(o_.lr / c1), inv_sqrt_c2 = static_cast<T>(1 / std::sqrt(c2));
    const T eps = static_cast<T>(o_.eps), wd = static_cast<T>(o_.weight_decay), lr = static_cast<T>(o_.lr);
    m_.begin();
    v_.begin();
    model.for_each_param("", [&](const std::string& name, auto p) {
      T* m = m_.get(name, p.size()).data();
      T* v = v_.get(name, p.size()).data();
      T* w = p.value;
      const T* gr = p.grad;
      const std::int64_t n = p.size();
      if (o_.decoupled && wd != T(0))
        for (std::int64_t i = 0; i < n; ++i) w[i] -= lr * wd * w[i];
      for (std::int64_t i = 0; i < n; ++i) {
        const T g = (!o_.decoupled && wd != T(0)) ? gr[i] + wd * w[i] : gr[i];
        m[i] = b1 * m[i] + (T(1) - b1) * g;
        v[i] = b2 * v[i] + (T(1) - b2) * g * g;
        w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
      }
    });
  }

 private:
  static void check_lr(double lr) {
    HEPGNN_CHECK(lr >= 0 && std::isfinite(lr), "adam: lr must be >= 0 and finite, got ", lr);
  }
  adam_options o_;
  detail::slot_state<T> m_, v_;
  long t_ = 0;
};

/// @brief AdamW: Adam with decoupled weight decay (PyTorch default weight_decay 0.01).
template <class T>
class adamw : public adam<T> {
 public:
  explicit adamw(adam_options o = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2,
                                    .decoupled = true})
      : adam<T>((o.decoupled = true, o)) {}
};

}  // namespace hepgnn
