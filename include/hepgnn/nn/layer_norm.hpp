#pragma once
/// @file layer_norm.hpp
/// @brief hepgnn::layer_norm: per-row normalisation over the features (PyTorch LayerNorm over the last axis).

#include <cmath>
#include <string>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief y = (x - mean_row) / sqrt(var_row + eps) * weight + bias. Parameters `weight`, `bias` [F].
template <class T, int Width = dynamic>
class layer_norm {
 public:
  using scalar = T;
  static constexpr int in_width = Width;
  static constexpr int out_width = Width;
  struct cache {
    matrix<T> xhat;
    vector<T> rstd;
  };

  explicit layer_norm(int width = Width, T eps = T(1e-5)) : eps_(eps) {
    HEPGNN_CHECK(eps > 0 && std::isfinite(eps), "layer_norm: eps must be finite and > 0, got ", eps);
    HEPGNN_CHECK(width > 0, "layer_norm: width must be positive (pass it when Width is dynamic), got ", width);
    weight_ = matrix<T>::Ones(1, width);
    bias_ = matrix<T>::Zero(1, width);
    weight_grad_ = matrix<T>::Zero(1, width);
    bias_grad_ = matrix<T>::Zero(1, width);
  }
  int width() const { return static_cast<int>(weight_.cols()); }
  matrix<T>& weight() { return weight_; }
  matrix<T>& bias() { return bias_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const { run(x, y, c); }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const { run(x, y, c); }

  void backward(const matrix<T>&, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    const Eigen::Index n = c.xhat.rows(), f = c.xhat.cols();
    check_shape(dy, n, f, "layer_norm: output gradient dy");
    weight_grad_.row(0) += (dy.array() * c.xhat.array()).colwise().sum().matrix();
    add_column_sums(dy, bias_grad_.row(0));
    if (!dx) return;
    dx->resize(n, f);
    for (Eigen::Index r = 0; r < n; ++r) {
      const auto g = (dy.row(r).array() * weight_.row(0).array()).eval();
      const T mg = g.mean(), mgx = (g * c.xhat.row(r).array()).mean();
      dx->row(r) = (c.rstd(r) * (g - mg - c.xhat.row(r).array() * mgx)).matrix();
    }
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "weight", make_parameter(weight_, weight_grad_, {weight_.cols()}));
    f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
  }

 private:
  void run(const matrix<T>& x, matrix<T>& y, cache& c) const {
    check_cols(x, width(), "layer_norm: input x");
    const Eigen::Index n = x.rows();
    c.xhat.resize(n, x.cols());
    c.rstd.resize(n);
    y.resize(n, x.cols());
    for (Eigen::Index r = 0; r < n; ++r) {
      const T mean = x.row(r).mean();
      const T var = (x.row(r).array() - mean).square().mean();
      c.rstd(r) = T(1) / std::sqrt(var + eps_);
      c.xhat.row(r) = (x.row(r).array() - mean) * c.rstd(r);
      y.row(r) = (c.xhat.row(r).array() * weight_.row(0).array() + bias_.row(0).array()).matrix();
    }
  }
  matrix<T> weight_, bias_, weight_grad_, bias_grad_;
  T eps_;
};

}  // namespace hepgnn
