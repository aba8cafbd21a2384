#pragma once
/// @file softplus_column.hpp
/// @brief hepgnn::softplus_column: softplus(v) = log(1 + e^v) on one column, the others unchanged (a decoder's
/// output whose column must stay positive, e.g. a constituent's pt).

#include <cmath>
#include <string>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Row-wise layer: y = x with softplus on column `column` (-1: y = x). No parameters; keeps the width.
template <class T>
class softplus_column {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  using cache = no_cache;

  explicit softplus_column(int column = -1) : col_(column) {
    HEPGNN_CHECK(column >= -1, "softplus_column: column must be -1 (none) or a column index, got ", column);
  }
  int column() const { return col_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { infer(x, y, c); }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const {
    HEPGNN_CHECK(col_ < x.cols(), "softplus_column: column ", col_, " is outside the ", x.cols(), " columns of x");
    y = x;
    if (col_ < 0) return;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const T v = x(i, col_);
      y(i, col_) = v > T(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));  // no overflow for large |v|
    }
  }
  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache&, matrix<T>* dx) {
    if (!dx) return;
    *dx = dy;
    if (col_ < 0) return;
    for (Eigen::Index i = 0; i < x.rows(); ++i) (*dx)(i, col_) *= T(1) / (T(1) + std::exp(-x(i, col_)));
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  int col_;
};

}  // namespace hepgnn
