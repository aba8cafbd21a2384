#pragma once
/// @file product.hpp
/// @brief y = x w^T for row-major feature matrices, choosing between Eigen's blocked GEMM and its
/// coefficient-based product by size.
///
/// Why: Eigen's GEMM (with OpenMP) allocates a packing buffer and may fork threads on every call; for the small
/// products of single-jet inference (tens of rows) that costs more than the arithmetic and breaks the
/// "no allocation per inference call" rule. The coefficient-based (lazy) product is vectorised, allocation-free
/// and faster there. Large products keep the blocked GEMM, whose per-call buffer is amortised.

#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Row count up to which products use the allocation-free coefficient-based kernel.
inline constexpr Eigen::Index small_product_rows = 128;

/// @brief y = x * w^T (y resized to x.rows() x w.rows()).
template <class T, class W>
void multiply_transposed(const matrix<T>& x, const W& w, matrix<T>& y) {
  y.resize(x.rows(), w.rows());
  if (x.rows() <= small_product_rows)
    y.noalias() = x.lazyProduct(w.transpose());
  else
    y.noalias() = x * w.transpose();
}

}  // namespace hepgnn
