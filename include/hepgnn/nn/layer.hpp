#pragma once
/// @file layer.hpp
/// @brief The layer contract (a C++20 concept) that dense layers, activations and compositions satisfy.

#include <concepts>
#include <string>

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Width marker for layers that keep the width of their input (activations, norms, dropout).
inline constexpr int same_width = -2;

/// @brief A row-wise layer: maps an N x in matrix to an N x out matrix.
///
/// Requires:
///  - `scalar`, the element type; `in_width` / `out_width`, compile-time widths (`dynamic` when set at
///    construction, `same_width` when the layer keeps its input width);
///  - `cache`, what a training forward records for backward; owned by the caller, reusable across calls;
///  - `forward(x, y, cache)`: training forward (batch statistics, dropout active); may update buffers such
///    as running statistics but never the weights;
///  - `infer(x, y, cache) const`: inference (eval mode); no allocation once `cache` and `y` have been used
///    with the same shapes;
///  - `backward(x, y, dy, cache, dx)`: with the x and y of the matching forward, ADDS dL/dparameters to the
///    gradients and writes dL/dx to *dx (skipped when dx is null);
///  - `for_each_param(prefix, f)`: calls f(name, parameter<scalar>) for every trainable tensor, names as in a
///    PyTorch state_dict (`weight`, `bias`, with `prefix` in front).
/// Ensures: y has x.rows() rows; gradients accumulate, so shared weights used twice get both contributions.
template <class L>
concept layer = requires(L& l, const L& cl, const matrix<typename L::scalar>& x, matrix<typename L::scalar>& y,
                         typename L::cache& c, matrix<typename L::scalar>* dx) {
  typename L::scalar;
  typename L::cache;
  { L::in_width } -> std::convertible_to<int>;
  { L::out_width } -> std::convertible_to<int>;
  l.forward(x, y, c);
  cl.infer(x, y, c);
  l.backward(x, y, x, c, dx);
  l.for_each_param(std::string{}, [](const std::string&, parameter<typename L::scalar>) {});
};

/// @brief A layer with no cache needs.
struct no_cache {};

}  // namespace hepgnn
