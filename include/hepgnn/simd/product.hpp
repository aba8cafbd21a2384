#pragma once
/// @file product.hpp
/// @brief y = x w^T for row-major feature matrices.
///
/// Matrices go to the register-blocked kernels of simd/gemm.hpp (AVX-512; Eigen elsewhere): no packing buffer
/// allocated per call, no zero fill of y, and one code path for the tens of rows of single-jet inference and the
/// tens of thousands of a training batch. Other Eigen expressions for w use Eigen's product.

#include <type_traits>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn {

/// @brief y = x * w^T (y resized to x.rows() x w.rows()).
template <class T, class W>
void multiply_transposed(const matrix<T>& x, const W& w, matrix<T>& y) {
  if constexpr (std::is_same_v<W, matrix<T>>) {
    simd::linear_forward(x, w, nullptr, y);
  } else {
    y.resize(x.rows(), w.rows());
    y.noalias() = x.lazyProduct(w.transpose());
  }
}

}  // namespace hepgnn
