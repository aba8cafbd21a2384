#pragma once
/// @file slot_unpack.hpp
/// @brief hepgnn::slot_unpack: from one row per graph holding P slots of F features (G x P F, a set decoder's
/// output) to one row per node (N x F): node i of graph g takes slot i. Slots beyond a graph's size are unused.

#include <string>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/nn/element.hpp"

namespace hepgnn {

/// @brief Graph rows of P x F slots -> node rows of F features (a batch layer; no parameters). The gradient of an
/// unused slot is 0.
template <class T>
class slot_unpack {
 public:
  using scalar = T;
  static constexpr int in_width = dynamic;
  static constexpr int out_width = dynamic;
  static constexpr rows_of input_rows = rows_of::graphs;
  static constexpr rows_of output_rows = rows_of::nodes;
  using cache = no_cache;

  /// @brief F features per slot.
  explicit slot_unpack(int features) : f_(features) {
    HEPGNN_CHECK(features > 0, "slot_unpack: features must be positive, got ", features);
  }

  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const { infer(x, b, y, c); }
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache&) const {
    check(x, b, "slot_unpack");
    y.resize(b.num_nodes(), f_);
    for (index_t j = 0; j < b.num_graphs(); ++j)
      for (index_t i = 0; i < b.size(j); ++i)
        for (int c = 0; c < f_; ++c) y(b.begin(j) + i, c) = x(j, i * f_ + c);
  }
  void backward(const matrix<T>& x, const batch& b, const matrix<T>&, const matrix<T>& dy, cache&, matrix<T>* dx) {
    check(x, b, "slot_unpack::backward");
    HEPGNN_CHECK(dy.rows() == b.num_nodes() && dy.cols() == f_, "slot_unpack::backward: dy must be ", b.num_nodes(),
                 " x ", f_, ", got ", dy.rows(), " x ", dy.cols());
    if (!dx) return;
    dx->setZero(x.rows(), x.cols());
    for (index_t j = 0; j < b.num_graphs(); ++j)
      for (index_t i = 0; i < b.size(j); ++i)
        for (int c = 0; c < f_; ++c) (*dx)(j, i * f_ + c) = dy(b.begin(j) + i, c);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  void check(const matrix<T>& x, const batch& b, const char* who) const {
    HEPGNN_CHECK(x.rows() == b.num_graphs() && x.cols() % f_ == 0, who, ": x must have one row per graph (",
                 b.num_graphs(), ") of P x ", f_, " slot features, got ", x.rows(), " x ", x.cols());
    for (index_t j = 0; j < b.num_graphs(); ++j)
      HEPGNN_CHECK(b.size(j) * f_ <= x.cols(), who, ": graph ", j, " has ", b.size(j), " nodes, more than the ",
                   x.cols() / f_, " slots");
  }
  int f_;
};

}  // namespace hepgnn
