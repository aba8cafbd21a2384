#pragma once
/// @file sequential.hpp
/// @brief hepgnn::sequential: layers applied in order, composed and width-checked at compile time.

#include <array>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

namespace detail {

/// Instantiated for each pair of consecutive layers; a mismatch fails here, and the compiler's
/// "required from width_link<Prev, Next, ...>" line names both layers.
template <class Prev, class Next, int PrevOut>
struct width_link {
  static constexpr bool ok = PrevOut == dynamic || PrevOut == same_width || Next::in_width == dynamic ||
                             Next::in_width == same_width || PrevOut == Next::in_width;
  static_assert(ok,
                "hepgnn::sequential: width mismatch: the output width of layer Prev does not match the input width of "
                "layer Next (both are named in width_link<Prev, Next, ...> below)");
  static constexpr int out = Next::out_width == same_width ? PrevOut : Next::out_width;
};

template <int W, class Prev, class... Ls>
struct chain_width {
  static constexpr int value = W;
};
template <int W, class Prev, class Next, class... Ls>
struct chain_width<W, Prev, Next, Ls...> {
  static constexpr int value = chain_width<width_link<Prev, Next, W>::out, Next, Ls...>::value;
};

template <class L0, class... Ls>
struct first_layer {
  using type = L0;
};

}  // namespace detail

/// @brief Layers applied one after the other: y = L_n(...L_1(x)).
///
/// Widths are checked at compile time (a mismatch is a static_assert naming both layers); parameter names
/// are "<index>.<name>" as in torch.nn.Sequential, so a PyTorch state_dict of the same stack loads directly.
/// The cache owns the intermediate activations, so repeated calls with the same batch size do not allocate.
template <class T, class... Layers>
class sequential {
  static_assert(sizeof...(Layers) > 0, "hepgnn::sequential needs at least one layer");
  static_assert((std::is_same_v<T, typename Layers::scalar> && ...),
                "hepgnn::sequential: every layer must use the sequential's scalar type");
  static_assert((layer<Layers> && ...), "hepgnn::sequential: every element must satisfy the hepgnn::layer concept");
  static constexpr std::size_t n = sizeof...(Layers);

 public:
  using scalar = T;
  static constexpr int in_width = detail::first_layer<Layers...>::type::in_width;
  static constexpr int out_width =
      detail::chain_width<detail::first_layer<Layers...>::type::out_width, Layers...>::value;
  static_assert(out_width >= same_width, "instantiates the width check of every pair of layers");

  struct cache {
    std::tuple<typename Layers::cache...> layers;
    std::array<matrix<T>, n - 1> hidden;  ///< output of layer i for i < n - 1
    matrix<T> grad[2];                    ///< ping-pong buffers for backward
  };

  explicit sequential(Layers... layers) : layers_(std::move(layers)...) {}

  /// @brief The I-th layer.
  template <std::size_t I>
  auto& get() { return std::get<I>(layers_); }
  template <std::size_t I>
  const auto& get() const { return std::get<I>(layers_); }
  static constexpr std::size_t size() { return n; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) { run<true>(*this, x, y, c, std::make_index_sequence<n>{}); }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    run<false>(*this, x, y, c, std::make_index_sequence<n>{});
  }

  void backward(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    back<n - 1>(x, y, dy, c, dx);
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    visit([&](auto& l, const std::string& p) { l.for_each_param(p, f); }, prefix, std::make_index_sequence<n>{});
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    visit(
        [&](auto& l, const std::string& p) {
          if constexpr (has_buffers<std::remove_cvref_t<decltype(l)>>) l.for_each_buffer(p, f);
        },
        prefix, std::make_index_sequence<n>{});
  }

 private:
  template <std::size_t I>
  static const matrix<T>& input_of(const matrix<T>& x, const cache& c) {
    if constexpr (I == 0) return x; else return c.hidden[I - 1];
  }
  template <std::size_t I, class M, class C>
  static M& output_of(M& y, C& c) {
    if constexpr (I == n - 1) return y; else return c.hidden[I];
  }

  /// Self is sequential (training) or const sequential (inference): no const_cast needed.
  template <bool Train, class Self, std::size_t... I>
  static void run(Self& self, const matrix<T>& x, matrix<T>& y, cache& c, std::index_sequence<I...>) {
    (step<Train, I>(self, x, y, c), ...);
  }
  template <bool Train, std::size_t I, class Self>
  static void step(Self& self, const matrix<T>& x, matrix<T>& y, cache& c) {
    auto& l = std::get<I>(self.layers_);
    if constexpr (Train)
      l.forward(input_of<I>(x, c), output_of<I>(y, c), std::get<I>(c.layers));
    else
      std::as_const(l).infer(input_of<I>(x, c), output_of<I>(y, c), std::get<I>(c.layers));
  }

  template <std::size_t I>
  void back(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    // Layer I reads its output gradient from `dy` (last layer) or grad[I % 2] and writes grad[(I + 1) % 2].
    const matrix<T>& g_out = (I == n - 1) ? dy : c.grad[I % 2];
    matrix<T>* g_in = (I == 0) ? dx : &c.grad[(I + 1) % 2];
    std::get<I>(layers_).backward(input_of<I>(x, c), output_of<I>(y, std::as_const(c)), g_out,
                                  std::get<I>(c.layers), g_in);
    if constexpr (I > 0) back<I - 1>(x, y, dy, c, dx);
  }

  template <class V, std::size_t... I>
  void visit(V&& v, const std::string& prefix, std::index_sequence<I...>) {
    (v(std::get<I>(layers_), prefix + std::to_string(I) + "."), ...);
  }

  std::tuple<Layers...> layers_;
};

/// @brief y = x + F(x). F must keep the width. Parameter names are F's own (no extra prefix).
template <class F>
class residual {
 public:
  using scalar = typename F::scalar;
  using T = scalar;
  static_assert(F::in_width == F::out_width || F::in_width == dynamic || F::out_width == dynamic ||
                    F::in_width == same_width,
                "hepgnn::residual: the wrapped layer must keep the width (in_width == out_width)");
  static constexpr int in_width = F::in_width == same_width ? same_width : F::in_width;
  static constexpr int out_width = F::out_width == same_width ? in_width : F::out_width;
  struct cache {
    typename F::cache inner;
    matrix<T> fx;
  };

  explicit residual(F f) : f_(std::move(f)) {}
  F& inner() { return f_; }
  const F& inner() const { return f_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    f_.forward(x, c.fx, c.inner);
    finish(x, c.fx, y);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    f_.infer(x, c.fx, c.inner);
    finish(x, c.fx, y);
  }
  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    f_.backward(x, c.fx, dy, c.inner, dx);
    if (dx) *dx += dy;
  }
  template <class V>
  void for_each_param(const std::string& prefix, V&& v) { f_.for_each_param(prefix, v); }
  template <class V>
  void for_each_buffer(const std::string& prefix, V&& v) requires has_buffers<F> { f_.for_each_buffer(prefix, v); }

 private:
  static void finish(const matrix<T>& x, const matrix<T>& fx, matrix<T>& y) {
    HEPGNN_CHECK(fx.rows() == x.rows() && fx.cols() == x.cols(), "residual: the wrapped layer maps ", x.rows(), " x ",
                 x.cols(), " to ", fx.rows(), " x ", fx.cols(), "; a residual needs the same shape");
    y.resize(x.rows(), x.cols());
    y = x + fx;
  }
  F f_;
};

namespace detail {
template <class... Ls>
constexpr int sum_widths() {
  if constexpr (((Ls::out_width >= 0) && ...)) return (Ls::out_width + ...); else return dynamic;
}
template <class... Ls>
constexpr int common_in_width() {
  int w = same_width;
  bool ok = true;
  ((Ls::in_width >= 0 ? (w >= 0 && w != Ls::in_width ? (ok = false) : (w = Ls::in_width, true)) : true), ...);
  return ok ? (w == same_width ? dynamic : w) : -3;
}
}  // namespace detail

/// @brief Parallel branches on the same input; outputs concatenated along the feature axis.
/// Children are named "0.", "1.", ...
template <class... Branches>
class concat {
  static constexpr std::size_t n = sizeof...(Branches);
  static_assert(detail::common_in_width<Branches...>() != -3,
                "hepgnn::concat: the branches must accept the same input width");

 public:
  using scalar = typename detail::first_layer<Branches...>::type::scalar;
  using T = scalar;
  static constexpr int in_width = detail::common_in_width<Branches...>();
  static constexpr int out_width = detail::sum_widths<Branches...>();
  struct cache {
    std::tuple<typename Branches::cache...> branches;
    std::array<matrix<T>, n> out, grad_out;
    matrix<T> grad_in;
  };

  explicit concat(Branches... b) : branches_(std::move(b)...) {}
  template <std::size_t I>
  auto& get() { return std::get<I>(branches_); }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    each([&](auto& b, auto I) { b.forward(x, c.out[I], std::get<I>(c.branches)); });
    join(x, y, c);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache& c) const {
    each(*this, [&](auto& b, auto I) { b.infer(x, c.out[I], std::get<I>(c.branches)); });
    join(x, y, c);
  }
  void backward(const matrix<T>& x, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    if (dx) *dx = matrix<T>::Zero(x.rows(), x.cols());
    Eigen::Index col = 0;
    each([&](auto& b, auto I) {
      const auto w = c.out[I].cols();
      c.grad_out[I] = dy.middleCols(col, w);
      col += w;
      b.backward(x, c.out[I], c.grad_out[I], std::get<I>(c.branches), dx ? &c.grad_in : nullptr);
      if (dx) *dx += c.grad_in;
    });
  }
  template <class V>
  void for_each_param(const std::string& prefix, V&& v) {
    each([&](auto& b, auto I) { b.for_each_param(prefix + std::to_string(I()) + ".", v); });
  }

 private:
  template <class V>
  void each(V&& v) { each(*this, v); }
  template <class Self, class V>
  static void each(Self& self, V&& v) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (v(std::get<I>(self.branches_), std::integral_constant<std::size_t, I>{}), ...); }
    (std::make_index_sequence<n>{});
  }
  static void join(const matrix<T>& x, matrix<T>& y, cache& c) {
    Eigen::Index w = 0;
    for (auto& o : c.out) w += o.cols();
    y.resize(x.rows(), w);
    Eigen::Index col = 0;
    for (auto& o : c.out) {
      y.middleCols(col, o.cols()) = o;
      col += o.cols();
    }
  }
  std::tuple<Branches...> branches_;
};

/// @brief Several output heads on the same input, kept separate (e.g. class logits and a regression).
/// Not a layer in a sequential (it has several outputs); put it last. Children are named "0.", "1.", ...
template <class... Heads>
class heads {
  static constexpr std::size_t n = sizeof...(Heads);

 public:
  using scalar = typename detail::first_layer<Heads...>::type::scalar;
  using T = scalar;
  using outputs = std::array<matrix<T>, n>;
  struct cache {
    std::tuple<typename Heads::cache...> heads;
    matrix<T> grad_in;
  };

  explicit heads(Heads... h) : heads_(std::move(h)...) {}
  template <std::size_t I>
  auto& get() { return std::get<I>(heads_); }
  static constexpr std::size_t size() { return n; }

  void forward(const matrix<T>& x, outputs& y, cache& c) {
    each([&](auto& h, auto I) { h.forward(x, y[I], std::get<I>(c.heads)); });
  }
  void infer(const matrix<T>& x, outputs& y, cache& c) const {
    each(*this, [&](auto& h, auto I) { h.infer(x, y[I], std::get<I>(c.heads)); });
  }
  /// @brief dy[i] is the gradient of head i's output (an empty matrix skips that head).
  void backward(const matrix<T>& x, const outputs& y, const outputs& dy, cache& c, matrix<T>* dx) {
    if (dx) *dx = matrix<T>::Zero(x.rows(), x.cols());
    each([&](auto& h, auto I) {
      if (dy[I].size() == 0) return;
      h.backward(x, y[I], dy[I], std::get<I>(c.heads), dx ? &c.grad_in : nullptr);
      if (dx) *dx += c.grad_in;
    });
  }
  template <class V>
  void for_each_param(const std::string& prefix, V&& v) {
    each([&](auto& h, auto I) { h.for_each_param(prefix + std::to_string(I()) + ".", v); });
  }

 private:
  template <class V>
  void each(V&& v) { each(*this, v); }
  template <class Self, class V>
  static void each(Self& self, V&& v) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (v(std::get<I>(self.heads_), std::integral_constant<std::size_t, I>{}), ...); }
    (std::make_index_sequence<n>{});
  }
  std::tuple<Heads...> heads_;
};

}  // namespace hepgnn
