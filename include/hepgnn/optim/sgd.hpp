#pragma once
/// @file sgd.hpp
/// @brief hepgnn::sgd: stochastic gradient descent with momentum, Nesterov and L2 weight decay (PyTorch SGD rules).

#include <cmath>

#include "hepgnn/optim/optimizer_state.hpp"

namespace hepgnn {

/// @brief SGD options (PyTorch names and defaults, dampening 0).
struct sgd_options {
  double lr = 1e-2;
  double momentum = 0;
  bool nesterov = false;
  double weight_decay = 0;
};

/// @brief SGD. step(model) updates every parameter the model visits from its gradient.
template <class T>
class sgd {
 public:
  explicit sgd(sgd_options o = {}) : o_(o) {
    HEPGNN_CHECK(o.lr >= 0, "sgd: lr must be >= 0, got ", o.lr);
    HEPGNN_CHECK(o.momentum >= 0, "sgd: momentum must be >= 0, got ", o.momentum);
    HEPGNN_CHECK(!o.nesterov || o.momentum > 0, "sgd: nesterov needs momentum > 0");
  }
  double lr() const { return o_.lr; }
  void set_lr(double lr) { o_.lr = lr; }
  long steps() const { return t_; }
  /// @brief Sets the step count (the first step with momentum starts the buffer), e.g. from a checkpoint.
  void set_steps(long t) {
    HEPGNN_CHECK(t >= 0, "sgd::set_steps: t must be >= 0, got ", t);
    t_ = t;
  }
  /// @brief Visits the momentum buffer of every parameter as f("momentum_buffer.<param>", std::span<T>).
  template <class Model, class F>
  void for_each_state(Model& model, F&& f) {
    if (o_.momentum > 0) state_.visit(model, "momentum_buffer", f);
  }

  template <class Model>
  void step(Model& model) {
    state_.begin();
    model.for_each_param("", [&](const std::string& name, auto p) {
      auto* buf = o_.momentum > 0 ? &state_.get(name, p.size()) : nullptr;
      for (std::int64_t i = 0; i < p.size(); ++i) {
        T g = p.grad[i] + static_cast<T>(o_.weight_decay) * p.value[i];
        if (buf) {
          T& b = (*buf)[i];
          b = t_ == 0 ? g : static_cast<T>(o_.momentum) * b + g;
          g = o_.nesterov ? g + static_cast<T>(o_.momentum) * b : b;
        }
        p.value[i] -= static_cast<T>(o_.lr) * g;
      }
    });
    ++t_;
  }

 private:
  sgd_options o_;
  detail::slot_state<T> state_;
  long t_ = 0;
};

}  // namespace hepgnn
