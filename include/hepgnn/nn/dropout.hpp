#pragma once
/// @file dropout.hpp
/// @brief hepgnn::dropout: zeroes entries with probability p in training and scales the rest by 1/(1-p).

#include <string>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Inverted dropout (PyTorch Dropout). infer() is the identity. Seeded, so training runs are reproducible.
template <class T>
class dropout {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  struct cache {
    matrix<T> mask;  ///< 0 or 1/(1-p)
  };

  explicit dropout(double p = 0.5, std::uint64_t seed = 0xD809) : p_(p), gen_(seed) {
    HEPGNN_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  }
  double p() const { return p_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    c.mask.resize(x.rows(), x.cols());
    const T keep = static_cast<T>(1 / (1 - p_));
    for (Eigen::Index i = 0; i < x.size(); ++i) c.mask.data()[i] = gen_.uniform() < p_ ? T(0) : keep;
    y = x.cwiseProduct(c.mask);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const { y = x; }
  void backward(const matrix<T>&, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    if (dx) *dx = dy.cwiseProduct(c.mask);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  double p_;
  rng gen_;
};

}  // namespace hepgnn
