#pragma once
/// @file clip.hpp
/// @brief Gradient-norm clipping (PyTorch clip_grad_norm_, L2 norm over all parameters).

#include <cmath>
#include <string>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief Scales all gradients so their global L2 norm is at most max_norm; returns the norm before clipping.
template <class Model>
double clip_grad_norm(Model& model, double max_norm) {
  HEPGNN_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  double sq = 0;
  model.for_each_param("", [&](const std::string&, auto p) {
    for (std::int64_t i = 0; i < p.size(); ++i) sq += static_cast<double>(p.grad[i]) * static_cast<double>(p.grad[i]);
  });
  const double norm = std::sqrt(sq);
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1)
    model.for_each_param("", [&](const std::string&, auto p) {
      using T = std::remove_pointer_t<decltype(p.grad)>;
      for (std::int64_t i = 0; i < p.size(); ++i) p.grad[i] *= static_cast<T>(scale);
    });
  return norm;
}

}  // namespace hepgnn
