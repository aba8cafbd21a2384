#pragma once
/// @file columns.hpp
/// @brief hepgnn::columns: the feature columns [First, First + Count) of each row (e.g. the features after the
/// coordinates a graph builder used).

#include <string>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Row-wise layer y = x[:, First : First + Count]; the gradient of the other columns is 0. No parameters.
template <class T, int First, int Count>
class columns {
  static_assert(First >= 0 && Count > 0, "hepgnn::columns: First must be >= 0 and Count > 0");

 public:
  using scalar = T;
  static constexpr int in_width = dynamic;
  static constexpr int out_width = Count;
  static constexpr int min_width = First + Count;  ///< checked against the chain's width at compile time
  using cache = no_cache;

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { infer(x, y, c); }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const {
    HEPGNN_CHECK(x.cols() >= First + Count, "columns: x must have at least ", First + Count, " columns, got ",
                 x.rows(), " x ", x.cols());
    y = x.middleCols(First, Count);
  }
  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache&, matrix<T>* dx) {
    if (!dx) return;
    dx->setZero(x.rows(), x.cols());
    dx->middleCols(First, Count) = dy;
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}
};

}  // namespace hepgnn
