#pragma once
/// @file gradient_check.hpp
/// @brief Finite-difference gradient checks (central differences), used by every layer and loss test.

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Outcome of a gradient check: the worst entry, measured as |analytic - numeric| / max(1, |numeric|).
struct gradient_check_result {
  double max_error = 0;
  std::string worst;  ///< which tensor and entry was worst
  double analytic = 0, numeric = 0;
  /// @brief Merges another result, keeping the worst.
  void merge(const gradient_check_result& o) {
    if (o.max_error > max_error) *this = o;
  }
};

/// @brief Compares `analytic[i]` with the central difference of loss() in values[i], for i < n.
/// loss() must recompute the loss from the current values (values are perturbed in place and restored).
template <class T, class Loss>
gradient_check_result check_gradient(T* values, const T* analytic, std::int64_t n, Loss&& loss,
                                     const std::string& name = "x", double step = 1e-6) {
  gradient_check_result r;
  for (std::int64_t i = 0; i < n; ++i) {
    const T saved = values[i];
    const double h = step * std::max(1.0, std::abs(static_cast<double>(saved)));
    values[i] = static_cast<T>(saved + h);
    const double up = static_cast<double>(loss());
    values[i] = static_cast<T>(saved - h);
    const double down = static_cast<double>(loss());
    values[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double err = std::abs(static_cast<double>(analytic[i]) - numeric) / std::max(1.0, std::abs(numeric));
    if (err > r.max_error || i == 0) {
      if (err >= r.max_error) r = {err, name + "[" + std::to_string(i) + "]", static_cast<double>(analytic[i]), numeric};
    }
  }
  return r;
}

/// @brief Checks an input gradient: `analytic` must be dloss/dx for the current x.
template <class T, class Loss>
gradient_check_result check_input_gradient(matrix<T>& x, const matrix<T>& analytic, Loss&& loss,
                                           const std::string& name = "x", double step = 1e-6) {
  HEPGNN_CHECK(x.rows() == analytic.rows() && x.cols() == analytic.cols(), "check_input_gradient: ", name, " is ",
               x.rows(), " x ", x.cols(), " but its gradient is ", analytic.rows(), " x ", analytic.cols());
  return check_gradient(x.data(), analytic.data(), x.size(), loss, name, step);
}

/// @brief Checks every parameter gradient of a model.
/// `loss()` recomputes the loss; `backward()` must zero the gradients and fill them for the current weights.
template <class Model, class Loss, class Backward>
gradient_check_result check_parameter_gradients(Model& model, Loss&& loss, Backward&& backward, double step = 1e-6) {
  backward();
  gradient_check_result worst;
  model.for_each_param("", [&](const std::string& name, auto p) {
    using T = std::remove_pointer_t<decltype(p.value)>;
    std::vector<T> analytic(p.grad, p.grad + p.size());
    worst.merge(check_gradient(p.value, analytic.data(), p.size(), loss, name, step));
  });
  return worst;
}

}  // namespace hepgnn
