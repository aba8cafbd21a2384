#pragma once
/// @file batch_norm.hpp
/// @brief hepgnn::batch_norm: per-feature normalisation over the rows (PyTorch BatchNorm1d on an N x F input).

#include <cmath>
#include <string>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Training forward normalises with the batch statistics and updates running_mean / running_var
/// (momentum, unbiased variance, as PyTorch); infer() uses the running statistics (eval mode).
/// Parameters `weight`, `bias` [F]; buffers `running_mean`, `running_var` [F], `num_batches_tracked` [].
template <class T, int Width = dynamic>
class batch_norm {
 public:
  using scalar = T;
  static constexpr int in_width = Width;
  static constexpr int out_width = Width;
  struct cache {
    matrix<T> xhat;
    row_vector<T> rstd;
    row_vector<T> scale, shift;  ///< inference: running statistics folded into one affine map per feature
  };

  explicit batch_norm(int width = Width, T eps = T(1e-5), T momentum = T(0.1)) : eps_(eps), momentum_(momentum) {
    HEPGNN_CHECK(width > 0, "batch_norm: width must be positive (pass it when Width is dynamic), got ", width);
    HEPGNN_CHECK(eps > 0 && std::isfinite(eps), "batch_norm: eps must be finite and > 0, got ", eps);
    HEPGNN_CHECK(momentum >= 0 && momentum <= 1, "batch_norm: momentum must be in [0, 1], got ", momentum);
    weight_ = matrix<T>::Ones(1, width);
    bias_ = matrix<T>::Zero(1, width);
    weight_grad_ = matrix<T>::Zero(1, width);
    bias_grad_ = matrix<T>::Zero(1, width);
    running_mean_ = matrix<T>::Zero(1, width);
    running_var_ = matrix<T>::Ones(1, width);
    tracked_ = matrix<T>::Zero(1, 1);
  }
  int width() const { return static_cast<int>(weight_.cols()); }
  matrix<T>& weight() { return weight_; }
  matrix<T>& bias() { return bias_; }
  matrix<T>& running_mean() { return running_mean_; }
  matrix<T>& running_var() { return running_var_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    check_cols(x, width(), "batch_norm: input x");
    const Eigen::Index n = x.rows();
    HEPGNN_CHECK(n > 1, "batch_norm: training needs more than one row per batch, got ", n);
    const row_vector<T> mean = x.colwise().mean();
    c.xhat = x.rowwise() - mean;
    const row_vector<T> var = c.xhat.array().square().colwise().sum().matrix() / T(n);
    c.rstd = (var.array() + eps_).rsqrt().matrix();
    c.xhat.array().rowwise() *= c.rstd.array();
    y.resize(n, x.cols());
    y = ((c.xhat.array().rowwise() * weight_.row(0).array()).rowwise() + bias_.row(0).array()).matrix();
    running_mean_.row(0) = (T(1) - momentum_) * running_mean_.row(0) + momentum_ * mean;
    running_var_.row(0) = (T(1) - momentum_) * running_var_.row(0) + momentum_ * var * (T(n) / T(n - 1));
    tracked_(0, 0) += T(1);
  }

  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    check_cols(x, width(), "batch_norm: input x");
    c.scale.resize(width());
    c.shift.resize(width());
    c.scale.array() = weight_.row(0).array() * (running_var_.row(0).array() + eps_).rsqrt();
    c.shift.array() = bias_.row(0).array() - running_mean_.row(0).array() * c.scale.array();
    y.resize(x.rows(), x.cols());
    for (Eigen::Index r = 0; r < x.rows(); ++r) y.row(r).array() = x.row(r).array() * c.scale.array() + c.shift.array();
  }

  void backward(const matrix<T>&, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    const Eigen::Index n = c.xhat.rows();
    check_shape(dy, n, width(), "batch_norm: output gradient dy");
    const row_vector<T> sum_dy = dy.colwise().sum();
    const row_vector<T> sum_dy_xhat = (dy.array() * c.xhat.array()).colwise().sum().matrix();
    weight_grad_.row(0) += sum_dy_xhat;
    bias_grad_.row(0) += sum_dy;
    if (!dx) return;
    // dx = weight * rstd / n * (n dy - sum(dy) - xhat sum(dy xhat)), per feature
    const row_vector<T> k = (weight_.row(0).array() * c.rstd.array() / T(n)).matrix();
    dx->resize(n, width());
    *dx = ((((dy.array() * T(n)).rowwise() - sum_dy.array()) - (c.xhat.array().rowwise() * sum_dy_xhat.array()))
               .rowwise() *
           k.array())
              .matrix();
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    f(prefix + "weight", make_parameter(weight_, weight_grad_, {weight_.cols()}));
    f(prefix + "bias", make_parameter(bias_, bias_grad_, {bias_.cols()}));
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    f(prefix + "running_mean", parameter<T>{running_mean_.data(), nullptr, {running_mean_.cols()}});
    f(prefix + "running_var", parameter<T>{running_var_.data(), nullptr, {running_var_.cols()}});
    f(prefix + "num_batches_tracked", parameter<T>{tracked_.data(), nullptr, {}});
  }

 private:
  matrix<T> weight_, bias_, weight_grad_, bias_grad_, running_mean_, running_var_, tracked_;
  T eps_, momentum_;
};

}  // namespace hepgnn
