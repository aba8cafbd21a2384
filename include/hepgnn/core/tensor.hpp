#pragma once
/// @file tensor.hpp
/// @brief Feature matrices (row-major Eigen, one row per node/edge/graph), widths and shape checks.

// GCC 12 warns "may be used uninitialized" inside its AVX-512 intrinsic headers wherever they are inlined
// (GCC bug 105593), hundreds of times per user translation unit compiled with -Wall. Diagnostic pragmas follow
// the warning's location, so silencing the headers' text here (Eigen includes them first) silences only them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop
#else
#include <Eigen/Core>
#endif
#include <cmath>
#include <cstdint>
#include <string_view>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief Width sentinel: the width is set at construction instead of at compile time (Eigen's convention).
inline constexpr int dynamic = -1;

/// @brief Node, edge and graph indices. 32 bits: halves index bandwidth in gathers; 2^31 edges is ample per batch.
using index_t = std::int32_t;

/// @brief Row-major feature matrix: rows are items (nodes, edges, graphs), columns are features.
template <class T>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// @brief Column vector (per-item scalars such as edge scores or labels).
template <class T>
using vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// @brief Row vector (per-feature parameters such as a bias).
template <class T>
using row_vector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

/// @brief Read-only view of a row-major matrix held elsewhere (user buffers are not copied).
template <class T>
using matrix_view = Eigen::Map<const matrix<T>>;

/// @brief True when a compile-time width W accepts the runtime width w.
constexpr bool width_accepts(int W, long w) { return W == dynamic || W == w; }

/// @brief target += column sums of m (target is a 1 x m.cols() row).
/// Why not `m.colwise().sum()`: on a row-major matrix Eigen walks each column with a stride of one row, one pass
/// over the whole matrix per column; adding whole rows reads it once, contiguously (30x faster on 32768 x 128).
template <class Derived, class Target>
void add_column_sums(const Eigen::MatrixBase<Derived>& m, Eigen::MatrixBase<Target>&& target) {
  HEPGNN_ASSERT(target.size() == m.cols());
  for (Eigen::Index r = 0; r < m.rows(); ++r) target.derived() += m.row(r);
}
template <class Derived, class Target>
void add_column_sums(const Eigen::MatrixBase<Derived>& m, Eigen::MatrixBase<Target>& target) {
  add_column_sums(m, std::move(target));
}

/// @brief Throws unless x has `cols` columns (any count when cols == dynamic).
template <class Derived>
void check_cols(const Eigen::MatrixBase<Derived>& x, long cols, std::string_view what) {
  HEPGNN_CHECK(cols == dynamic || x.cols() == cols, what, ": expected ", cols, " columns (features), got ",
               x.rows(), " x ", x.cols());
}

/// @brief Throws unless x has `rows` rows.
template <class Derived>
void check_rows(const Eigen::MatrixBase<Derived>& x, long rows, std::string_view what) {
  HEPGNN_CHECK(x.rows() == rows, what, ": expected ", rows, " rows, got ", x.rows(), " x ", x.cols());
}

/// @brief Throws unless x has exactly the given shape.
template <class Derived>
void check_shape(const Eigen::MatrixBase<Derived>& x, long rows, long cols, std::string_view what) {
  HEPGNN_CHECK(x.rows() == rows && (cols == dynamic || x.cols() == cols), what, ": expected shape ", rows, " x ",
               cols, ", got ", x.rows(), " x ", x.cols());
}

/// @brief Throws unless every entry of x is finite (names the first offending row and column).
template <class Derived>
void check_finite(const Eigen::MatrixBase<Derived>& x, std::string_view what) {
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      HEPGNN_CHECK(std::isfinite(static_cast<double>(x(r, c))), what, ": non-finite value ", x(r, c), " at row ", r,
                   ", column ", c);
}

}  // namespace hepgnn
