#pragma once
/// @file parameter.hpp
/// @brief hepgnn::parameter: a named view of one trainable tensor and its gradient, as visited by optimizers,
/// weight files and gradient checks.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief One trainable tensor: contiguous values, a gradient buffer of the same size, and its PyTorch shape.
/// Layers keep values and gradients as two row-major matrices of the same shape; `shape` is what a
/// PyTorch state_dict would say (e.g. {out, in} for a Linear weight, {out} for its bias).
template <class T>
struct parameter {
  T* value = nullptr;
  T* grad = nullptr;
  std::vector<std::int64_t> shape;

  /// @brief Number of scalars.
  std::int64_t size() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

/// @brief Makes a parameter view of a value/gradient matrix pair with the given PyTorch shape.
template <class T>
parameter<T> make_parameter(matrix<T>& value, matrix<T>& grad, std::vector<std::int64_t> shape) {
  HEPGNN_ASSERT(value.size() == grad.size());
  return {value.data(), grad.data(), std::move(shape)};
}

/// @brief Sets every gradient of a model (anything with for_each_param) to zero.
template <class Model>
void zero_grad(Model& model) {
  model.for_each_param("", [](const std::string&, auto p) { std::fill(p.grad, p.grad + p.size(), 0); });
}

/// @brief Models that also hold non-trainable state saved with the weights (BatchNorm running statistics).
template <class M>
concept has_buffers = requires(M& m) {
  m.for_each_buffer(std::string{}, [](const std::string&, parameter<typename M::scalar>) {});
};

/// @brief Visits parameters and then buffers (gradient pointer null): everything a weight file holds.
template <class Model, class F>
void for_each_state(Model& model, const std::string& prefix, F&& f) {
  model.for_each_param(prefix, f);
  if constexpr (has_buffers<Model>) model.for_each_buffer(prefix, f);
}

/// @brief Total number of trainable scalars of a model.
template <class Model>
std::int64_t parameter_count(Model& model) {
  std::int64_t n = 0;
  model.for_each_param("", [&](const std::string&, auto p) { n += p.size(); });
  return n;
}

}  // namespace hepgnn
