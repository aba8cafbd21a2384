#pragma once
/// @file skips.hpp
/// @brief Skip connections as chain elements: concat_skip (y = [F(x), x]), residual_skip (y = x + F(x)),
/// carry_columns (y = F(x) with some input columns carried over its first columns), concat_branches
/// (y = [F(x), G(x), ...]) and add_branches (y = F(x) + G(x) + ..., e.g. ParticleNet's EdgeConv plus a linear
/// shortcut), where F, G are chains of elements that may build their own graphs.

#include <array>
#include <string>
#include <tuple>
#include <utility>

#include "hepgnn/nn/graph_sequential.hpp"

namespace hepgnn {

/// @brief y = [F(x), x]: the inner chain's output in front of its input, along the features (ParticleNet's and
/// DGCNN's concatenation skips). A builder inside F sets the graph for F only. Parameters "<i>." of F's elements.
template <class... Es>
class concat_skip {
 public:
  using scalar = typename detail::first_scalar<Es...>::type;
  using T = scalar;
  using inner_chain = graph_sequential<T, detail::first_in_width<T, Es...>(), Es...>;
  static_assert(inner_chain::output_rows == rows_of::nodes, "hepgnn::concat_skip: the inner chain must keep node rows");
  static constexpr int in_width = inner_chain::in_width;
  static constexpr int out_width =
      in_width >= 0 && inner_chain::out_width >= 0 ? inner_chain::out_width + in_width : dynamic;
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = rows_of::nodes;
  struct cache {
    typename inner_chain::cache inner;
    matrix<T> fx, dfx, dx;
  };

  concat_skip() requires(std::is_default_constructible_v<Es> && ...) = default;
  explicit concat_skip(Es... es) : inner_(std::move(es)...) {}
  inner_chain& inner() { return inner_; }
  const inner_chain& inner() const { return inner_; }

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    inner_.forward(x, ctx, c.fx, c.inner);
    join(x, c.fx, y);
  }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    inner_.infer(x, ctx, c.fx, c.inner);
    join(x, c.fx, y);
  }
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>&, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    const long w = c.fx.cols();
    c.dfx = dy.leftCols(w);
    inner_.backward(x, ctx, c.fx, c.dfx, c.inner, dx ? &c.dx : nullptr);
    if (dx) *dx = dy.rightCols(x.cols()) + c.dx;
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { inner_.for_each_param(prefix, f); }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) { inner_.for_each_buffer(prefix, f); }

 private:
  static void join(const matrix<T>& x, const matrix<T>& fx, matrix<T>& y) {
    HEPGNN_CHECK(fx.rows() == x.rows(), "concat_skip: the inner chain maps ", x.rows(), " rows to ", fx.rows());
    y.resize(x.rows(), fx.cols() + x.cols());
    y.leftCols(fx.cols()) = fx;
    y.rightCols(x.cols()) = x;
  }
  inner_chain inner_;
};

/// @brief y = x + F(x) for an inner chain F that keeps the width (ResNet / ParticleNet-style shortcut on node
/// features). A builder inside F sets the graph for F only. Parameters "<i>." of F's elements.
template <class... Es>
class residual_skip {
 public:
  using scalar = typename detail::first_scalar<Es...>::type;
  using T = scalar;
  using inner_chain = graph_sequential<T, detail::first_in_width<T, Es...>(), Es...>;
  static_assert(inner_chain::in_width < 0 || inner_chain::out_width < 0 ||
                    inner_chain::in_width == inner_chain::out_width,
                "hepgnn::residual_skip: the inner chain must keep the width");
  static_assert(inner_chain::output_rows == rows_of::nodes, "hepgnn::residual_skip: the inner chain must keep node rows");
  static constexpr int in_width = inner_chain::in_width;
  static constexpr int out_width = in_width >= 0 ? in_width : inner_chain::out_width;
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = rows_of::nodes;
  struct cache {
    typename inner_chain::cache inner;
    matrix<T> fx;
  };

  residual_skip() requires(std::is_default_constructible_v<Es> && ...) = default;
  explicit residual_skip(Es... es) : inner_(std::move(es)...) {}
  inner_chain& inner() { return inner_; }
  const inner_chain& inner() const { return inner_; }

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    inner_.forward(x, ctx, c.fx, c.inner);
    add(x, c.fx, y);
  }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    inner_.infer(x, ctx, c.fx, c.inner);
    add(x, c.fx, y);
  }
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>&, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    inner_.backward(x, ctx, c.fx, dy, c.inner, dx);
    if (dx) *dx += dy;
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { inner_.for_each_param(prefix, f); }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) { inner_.for_each_buffer(prefix, f); }

 private:
  static void add(const matrix<T>& x, const matrix<T>& fx, matrix<T>& y) {
    HEPGNN_CHECK(fx.rows() == x.rows() && fx.cols() == x.cols(), "residual_skip: the inner chain maps ", x.rows(),
                 " x ", x.cols(), " to ", fx.rows(), " x ", fx.cols(), "; a residual needs the same shape");
    y.resize(x.rows(), x.cols());
    y = x + fx;
  }
  inner_chain inner_;
};

/// @brief y = F(x) with its first `count` columns replaced by the input's columns [from, from + count): coordinates
/// carried over a chain F that mixes them (MLPF keeps the calorimeter position in its first hidden channels). Those
/// output columns take no gradient from F; their gradient goes to the input columns they came from. A builder inside
/// F sets the graph for F only. Parameters "<i>." of F's elements.
template <class... Es>
class carry_columns {
 public:
  using scalar = typename detail::first_scalar<Es...>::type;
  using T = scalar;
  using inner_chain = graph_sequential<T, detail::first_in_width<T, Es...>(), Es...>;
  static_assert(inner_chain::output_rows == rows_of::nodes, "hepgnn::carry_columns: the inner chain must keep node rows");
  static constexpr int in_width = inner_chain::in_width;
  static constexpr int out_width = inner_chain::out_width;
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = rows_of::nodes;
  struct cache {
    typename inner_chain::cache inner;
    matrix<T> replaced;  ///< training forward: F's output columns that were replaced (backward passes F its output)
    matrix<T> fx, dfx;
  };

  /// @brief count 0: y = F(x).
  carry_columns(int from, int count, Es... es) : inner_(std::move(es)...), from_(from), count_(count) {
    HEPGNN_CHECK(from >= 0 && count >= 0, "carry_columns: from and count must be >= 0, got ", from, ", ", count);
  }
  inner_chain& inner() { return inner_; }
  const inner_chain& inner() const { return inner_; }

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    inner_.forward(x, ctx, y, c.inner);
    check(x, y);
    c.replaced = y.leftCols(count_);
    y.leftCols(count_) = x.middleCols(from_, count_);
  }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    inner_.infer(x, ctx, y, c.inner);
    check(x, y);
    y.leftCols(count_) = x.middleCols(from_, count_);
  }
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    if (count_ == 0) {
      inner_.backward(x, ctx, y, dy, c.inner, dx);
      return;
    }
    HEPGNN_CHECK(c.replaced.rows() == y.rows() && c.replaced.cols() == count_,
                 "carry_columns::backward: call forward with this input first");
    c.fx = y;
    c.fx.leftCols(count_) = c.replaced;
    c.dfx = dy;
    c.dfx.leftCols(count_).setZero();
    inner_.backward(x, ctx, c.fx, c.dfx, c.inner, dx);
    if (dx) dx->middleCols(from_, count_) += dy.leftCols(count_);
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { inner_.for_each_param(prefix, f); }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) { inner_.for_each_buffer(prefix, f); }

 private:
  void check(const matrix<T>& x, const matrix<T>& y) const {
    HEPGNN_CHECK(x.cols() >= from_ + count_ && y.cols() >= count_, "carry_columns: copies input columns [", from_,
                 ", ", from_ + count_, ") over the first ", count_, " output columns, but the input is ", x.rows(),
                 " x ", x.cols(), " and the inner chain's output ", y.rows(), " x ", y.cols());
  }
  inner_chain inner_;
  int from_, count_;
};

namespace detail {
/// What concat_branches and add_branches share: the branches, their caches, outputs and contexts, parameter names
/// "<branch>.<name>", running every branch on the same input, and summing the branches' input gradients. The
/// derived class combines the outputs (forward) and splits the output gradient (backward).
template <class... Bs>
class parallel_branches {
 protected:
  static constexpr std::size_t n = sizeof...(Bs);
  using T = typename first_scalar<Bs...>::type;

 public:
  struct cache {
    std::tuple<typename element_traits<Bs, T>::cache...> branches;
    std::array<matrix<T>, n> out;
    matrix<T> dout, dx;
  };

  parallel_branches() requires(std::is_default_constructible_v<Bs> && ...) = default;
  explicit parallel_branches(Bs... bs) : branches_(std::move(bs)...) {}
  template <std::size_t I>
  auto& get() { return std::get<I>(branches_); }
  template <std::size_t I>
  const auto& get() const { return std::get<I>(branches_); }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (element_traits<Bs, T>::for_each_param(std::get<I>(branches_), prefix + std::to_string(I) + ".", f), ...);
    }(std::make_index_sequence<n>{});
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (element_traits<Bs, T>::for_each_buffer(std::get<I>(branches_), prefix + std::to_string(I) + ".", f), ...);
    }(std::make_index_sequence<n>{});
  }

 protected:
  /// Every branch on x (forward when Train, else infer): c.out[i] is branch i's output.
  template <bool Train, class Self>
  static void run_branches(Self& self, const matrix<T>& x, const chain_context& ctx, cache& c) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (one<Train, I>(self, x, ctx, c), ...); }
    (std::make_index_sequence<n>{});
  }
  /// Every branch's backward (on the block's context: every branch saw it) with output gradient dy_of(c, I); dx
  /// (unless null) = the sum of their input gradients.
  template <class DyOf>
  void backward_branches(const matrix<T>& x, const chain_context& ctx, cache& c, DyOf&& dy_of, matrix<T>* dx) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((element_traits<Bs, T>::backward(std::get<I>(branches_), x, ctx, c.out[I], dy_of(c, I),
                                        std::get<I>(c.branches), dx ? (I == 0 ? dx : &c.dx) : nullptr),
        (I > 0 && dx ? (*dx += c.dx, 0) : 0)),
       ...);
    }(std::make_index_sequence<n>{});
  }

 private:
  template <bool Train, std::size_t I, class Self>
  static void one(Self& self, const matrix<T>& x, const chain_context& ctx, cache& c) {
    using tr = element_traits<std::tuple_element_t<I, std::tuple<Bs...>>, T>;
    chain_context local = ctx;
    if constexpr (Train) tr::forward(std::get<I>(self.branches_), x, local, c.out[I], std::get<I>(c.branches));
    else tr::infer(std::get<I>(self.branches_), x, local, c.out[I], std::get<I>(c.branches));
  }
  std::tuple<Bs...> branches_;
};
}  // namespace detail

/// @brief y = [B_0(x), B_1(x), ...]: branches on the same input whose outputs are concatenated along the features
/// (JumpingKnowledge's "cat"; MLPF's heads read [inputs, hidden state]). A branch is any element; for several
/// elements in a branch, make it a graph_sequential. Parameters "<branch>.<name>".
template <class... Bs>
class concat_branches : public detail::parallel_branches<Bs...> {
  using base = detail::parallel_branches<Bs...>;
  using base::n;
  static_assert(n >= 2, "hepgnn::concat_branches needs at least two branches");

 public:
  using scalar = typename detail::first_scalar<Bs...>::type;
  using T = scalar;
  using typename base::cache;
  static constexpr int in_width = detail::first_in_width<T, Bs...>();
  static constexpr int out_width = ((element_traits<Bs, T>::out_width >= 0) && ...)
                                       ? (element_traits<Bs, T>::out_width + ...)
                                       : dynamic;
  static_assert(((element_traits<Bs, T>::output_rows(rows_of::nodes) == rows_of::nodes) && ...),
                "hepgnn::concat_branches: every branch must keep node rows");
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = rows_of::nodes;
  using base::base;

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) { run<true>(*this, x, ctx, y, c); }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    run<false>(*this, x, ctx, y, c);
  }
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>&, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    long col = 0;  // branch i's columns of dy follow those of the branches before it (called in branch order)
    this->backward_branches(x, ctx, c, [&](cache& cc, std::size_t i) -> const matrix<T>& {
      cc.dout = dy.middleCols(col, cc.out[i].cols());
      col += cc.out[i].cols();
      return cc.dout;
    }, dx);
  }

 private:
  template <bool Train, class Self>
  static void run(Self& self, const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    base::template run_branches<Train>(self, x, ctx, c);
    long width = 0;
    for (std::size_t i = 0; i < n; ++i) {
      HEPGNN_CHECK(c.out[i].rows() == c.out[0].rows(), "concat_branches: branch ", i, " gives ", c.out[i].rows(),
                   " rows, branch 0 gives ", c.out[0].rows());
      width += c.out[i].cols();
    }
    y.resize(c.out[0].rows(), width);
    long col = 0;
    for (std::size_t i = 0; i < n; ++i) {
      y.middleCols(col, c.out[i].cols()) = c.out[i];
      col += c.out[i].cols();
    }
  }
};

/// @brief y = B_0(x) + B_1(x) + ...: branches on the same input whose outputs (of one shape) are summed (ParticleNet's
/// block: EdgeConv(x) + shortcut(x), then a ReLU after it). A branch is any element; for several elements in a
/// branch, make it a graph_sequential. Parameters "<branch>.<name>".
template <class... Bs>
class add_branches : public detail::parallel_branches<Bs...> {
  using base = detail::parallel_branches<Bs...>;
  using base::n;
  static_assert(n >= 2, "hepgnn::add_branches needs at least two branches");

 public:
  using scalar = typename detail::first_scalar<Bs...>::type;
  using T = scalar;
  using typename base::cache;
  static constexpr int in_width = detail::first_in_width<T, Bs...>();
  static constexpr int out_width = [] {
    int w = dynamic;
    ((element_traits<Bs, T>::out_width >= 0 ? (w = element_traits<Bs, T>::out_width, 0) : 0), ...);
    return w;
  }();
  static_assert(((element_traits<Bs, T>::out_width < 0 || element_traits<Bs, T>::out_width == out_width) && ...),
                "hepgnn::add_branches: every branch must give the same output width");
  static_assert(((element_traits<Bs, T>::in_width < 0 || in_width < 0 || element_traits<Bs, T>::in_width == in_width) &&
                 ...),
                "hepgnn::add_branches: every branch must take the same input width");
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = rows_of::nodes;
  using base::base;

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) { run<true>(*this, x, ctx, y, c); }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    run<false>(*this, x, ctx, y, c);
  }
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>&, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    this->backward_branches(x, ctx, c, [&](cache&, std::size_t) -> const matrix<T>& { return dy; }, dx);
  }

 private:
  template <bool Train, class Self>
  static void run(Self& self, const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    base::template run_branches<Train>(self, x, ctx, c);
    for (std::size_t i = 1; i < n; ++i)
      HEPGNN_CHECK(c.out[i].rows() == c.out[0].rows() && c.out[i].cols() == c.out[0].cols(), "add_branches: branch ",
                   i, " gives ", c.out[i].rows(), " x ", c.out[i].cols(), ", branch 0 gives ", c.out[0].rows(), " x ",
                   c.out[0].cols());
    y.resize(c.out[0].rows(), c.out[0].cols());
    y.noalias() = c.out[0] + c.out[1];  // one pass for the common two branches
    for (std::size_t i = 2; i < n; ++i) y += c.out[i];
  }
};

}  // namespace hepgnn
