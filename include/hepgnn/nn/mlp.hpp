#pragma once
/// @file mlp.hpp
/// @brief hepgnn::mlp: a multilayer perceptron whose depth, widths and activation are chosen at run time
/// (for loaded configurations and hyperparameter scans); the compile-time alternative is sequential<...>.

#include <initializer_list>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn {

/// @brief Activation chosen at run time.
enum class activation_kind { none, relu, leaky_relu, elu, gelu, silu, tanh, sigmoid };

namespace detail {
template <class T, class V>
decltype(auto) with_activation(activation_kind k, V&& v) {
  switch (k) {
    case activation_kind::relu: return v(act::relu{});
    case activation_kind::leaky_relu: return v(act::leaky_relu{});
    case activation_kind::elu: return v(act::elu{});
    case activation_kind::gelu: return v(act::gelu{});
    case activation_kind::silu: return v(act::silu{});
    case activation_kind::tanh: return v(act::tanh{});
    case activation_kind::sigmoid: return v(act::sigmoid{});
    case activation_kind::none: break;
  }
  return v(act::relu{});  // unreachable for `none`: callers skip it
}
}  // namespace detail

/// @brief Options of an mlp.
struct mlp_options {
  activation_kind activation = activation_kind::relu;
  bool activate_last = false;  ///< apply the activation after the last linear layer too
  /// Inverted dropout after every hidden layer's activation (not after the last layer), in forward() only
  /// (MLPF's ffn: Linear, act, [norm], Dropout, Linear). 0: none, and forward() is infer().
  double dropout = 0;
  std::uint64_t dropout_seed = 0;  ///< with `calls` of the cache, what the masks are drawn from
};

/// @brief widths = {in, h1, ..., out}: Linear(in, h1), act, Linear(h1, h2), act, ..., Linear(.., out) [, act].
/// Parameter names follow torch.nn.Sequential with the activations counted: "0.weight", "2.weight", ...
/// With options::dropout p > 0, forward() drops the entries of every hidden output with probability p (hashed_dropout:
/// the masks are redrawn in backward from a seed kept in the cache, not stored); the k-th forward through a cache
/// draws from (dropout_seed, k), so a fresh cache reproduces the masks (what a finite-difference check needs).
template <class T>
class mlp {
 public:
  using scalar = T;
  static constexpr int in_width = dynamic;
  static constexpr int out_width = dynamic;
  /// Per linear layer i: pre[i] = x W^T + b and post[i] = its activation. A ReLU is fused into the product
  /// (pre[i] stays empty), and the last layer writes y directly when it has no activation (post[n-1] empty).
  struct cache {
    std::vector<matrix<T>> pre, post;
    matrix<T> grad[3];  ///< [0], [1]: linear-layer input gradients (alternating); [2]: pre-activation gradient
    std::vector<matrix<T>> drop;  ///< dropped hidden outputs where post[i] must stay intact for the activation's VJP
    std::uint64_t calls = 0;      ///< training forwards with dropout through this cache
    std::uint64_t seed = 0;       ///< the masks' seed of the last forward
    bool dropped = false;         ///< the last pass applied dropout
  };

  mlp(rng& gen, std::vector<int> widths, mlp_options o = {}) : o_(o) {
    HEPGNN_CHECK(widths.size() >= 2, "mlp: widths needs at least {in, out}, got ", widths.size(), " entries");
    HEPGNN_CHECK(o.dropout >= 0 && o.dropout < 1, "mlp: options.dropout must be in [0, 1), got ", o.dropout);
    for (std::size_t i = 0; i + 1 < widths.size(); ++i) layers_.emplace_back(gen, widths[i], widths[i + 1]);
  }
  mlp(rng& gen, std::initializer_list<int> widths, mlp_options o = {}) : mlp(gen, std::vector<int>(widths), o) {}

  int in_features() const { return layers_.front().in_features(); }
  int out_features() const { return layers_.back().out_features(); }
  std::size_t depth() const { return layers_.size(); }
  dense<T>& linear(std::size_t i) { return layers_[i]; }
  const dense<T>& linear(std::size_t i) const { return layers_[i]; }
  activation_kind activation() const { return o_.activation; }
  double dropout_rate() const { return o_.dropout; }

  /// Training forward: infer() plus dropout (options::dropout).
  void forward(const matrix<T>& x, matrix<T>& y, cache& c) const {
    if (o_.dropout > 0) c.seed = mix64(o_.dropout_seed ^ mix64(c.calls++ + 0xA54FF53A5F1D36F1ULL));
    run(x, y, c, o_.dropout > 0);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const { run(x, y, c, false); }

  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    const std::size_t n = layers_.size();
    check_shape(dy, x.rows(), out_features(), "mlp: output gradient dy");
    no_cache nc;
    const matrix<T>* g = &dy;
    for (std::size_t j = n; j-- > 0;) {
      matrix<T>& gpre = c.grad[2];
      if (fused_relu(j) && j == n - 1) {  // inner ReLUs are applied by the next layer's input gradient
        gpre = (c.post[j].array() > T(0)).select(g->array(), T(0));
        g = &gpre;
      } else if (activated(j) && !fused_relu(j)) {
        detail::with_activation<T>(o_.activation, [&](auto p) {
          using P = decltype(p);
          hepgnn::activation<T, P>().backward(c.pre[j], c.post[j], *g, nc, &gpre);
        });
        g = &gpre;
      }
      matrix<T>* gin = j == 0 ? dx : &c.grad[j % 2];
      dense<T>& l = layers_[j];
      simd::linear_backward(input(x, c, j), *g, l.weight(), l.weight_grad(),
                            l.has_bias() ? l.bias_grad().data() : nullptr, gin,
                            j > 0 && fused_relu(j - 1) ? &c.post[j - 1] : nullptr);
      // the dropout mask is its own derivative: redraw it onto the gradient of the dropped output
      if (j > 0 && c.dropped) hashed_dropout(*gin, o_.dropout, c.seed, j - 1);
      g = gin;
    }
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i].for_each_param(prefix + std::to_string(2 * i) + ".", f);
  }

 private:
  void run(const matrix<T>& x, matrix<T>& y, cache& c, bool drop) const {
    check_cols(x, in_features(), "mlp: input x");
    const std::size_t n = layers_.size();
    c.pre.resize(n);
    c.post.resize(n);
    c.dropped = drop;
    if (drop) c.drop.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const matrix<T>& in = input(x, c, i);
      const dense<T>& l = layers_[i];
      const T* b = l.has_bias() ? l.bias().data() : nullptr;
      if (fused_relu(i)) {
        simd::linear_forward(in, l.weight(), b, c.post[i], true);
      } else if (activated(i)) {
        // the activation runs on each block of rows the product finishes (in cache, on every thread)
        const long N = l.out_features();
        c.post[i].resize(in.rows(), N);
        detail::with_activation<T>(o_.activation, [&](auto p) {
          using P = decltype(p);
          const T a = static_cast<T>(act::default_parameter<P>());
          simd::linear_forward(in, l.weight(), b, c.pre[i], false, [&](long m0, long m1) {
            act::apply<P>(c.pre[i].data() + m0 * N, c.post[i].data() + m0 * N, (m1 - m0) * N, a);
          });
        });
      } else if (i + 1 < n) {  // activation_kind::none
        simd::linear_forward(in, l.weight(), b, c.post[i]);
      } else {
        simd::linear_forward(in, l.weight(), b, y);
        return;
      }
      if (drop && i + 1 < n) {
        if (own_drop_buffer(i)) {
          c.drop[i] = c.post[i];
          hashed_dropout(c.drop[i], o_.dropout, c.seed, i);
        } else {  // ReLU or no activation: the VJP does not need the undropped output
          hashed_dropout(c.post[i], o_.dropout, c.seed, i);
        }
      }
    }
    y = c.post[n - 1];
  }

  // layer i's input: x, or the previous output (dropped, when dropout kept it apart)
  const matrix<T>& input(const matrix<T>& x, const cache& c, std::size_t i) const {
    if (i == 0) return x;
    return c.dropped && own_drop_buffer(i - 1) ? c.drop[i - 1] : c.post[i - 1];
  }
  // a non-ReLU activation's VJP reads its output: dropout then writes a copy
  bool own_drop_buffer(std::size_t i) const { return activated(i) && !fused_relu(i); }
  bool activated(std::size_t i) const {
    return o_.activation != activation_kind::none && (i + 1 < layers_.size() || o_.activate_last);
  }
  bool fused_relu(std::size_t i) const { return activated(i) && o_.activation == activation_kind::relu; }
  std::vector<dense<T>> layers_;
  mlp_options o_;
};

}  // namespace hepgnn
