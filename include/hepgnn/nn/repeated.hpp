#pragma once
/// @file repeated.hpp
/// @brief hepgnn::repeated: one element applied n times in sequence, each copy with its own parameters, n chosen
/// at run time (e.g. from a config's channel list).

#include <string>
#include <vector>

#include "hepgnn/nn/element.hpp"

namespace hepgnn {

/// @brief The element B applied `count` times in sequence, each copy with its own parameters (a
/// torch.nn.ModuleList run in a loop; the count is a run-time choice, e.g. from a config; no copies: y = x). B's
/// widths must agree with themselves (in == out) unless they are dynamic. Parameters "<copy>.<name>".
template <class B>
class repeated {
  using tr = element_traits<B, typename B::scalar>;
  static_assert(!tr::builder, "hepgnn::repeated: repeat a layer or a block, not a graph builder");
  static_assert(tr::in_width < 0 || tr::out_width < 0 || tr::in_width == tr::out_width,
                "hepgnn::repeated: the repeated element must keep the width");

 public:
  using scalar = typename B::scalar;
  using T = scalar;
  static constexpr int in_width = tr::in_width;
  static constexpr int out_width = tr::in_width >= 0 ? tr::in_width : tr::out_width;
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = tr::output_rows(rows_of::nodes);
  struct cache {
    std::vector<typename tr::cache> copies;
    std::vector<matrix<T>> out;  ///< output of copy i < count - 1
    matrix<T> grad[2];
  };

  repeated() = default;
  explicit repeated(std::vector<B> copies) : copies_(std::move(copies)) {}
  std::size_t count() const { return copies_.size(); }
  B& operator[](std::size_t i) { return copies_.at(i); }
  const B& operator[](std::size_t i) const { return copies_.at(i); }

  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) { run<true>(*this, x, ctx, y, c); }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    run<false>(*this, x, ctx, y, c);
  }
  /// Every copy saw the block's context: backward hands each the one it is given (the caller's, at backward).
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    HEPGNN_CHECK(c.copies.size() == copies_.size(), "repeated::backward: call forward first");
    if (copies_.empty()) {
      if (dx) *dx = dy;
      return;
    }
    const matrix<T>* dout = &dy;
    for (std::size_t i = copies_.size(); i-- > 0;) {
      matrix<T>* din = i == 0 ? dx : (dout == &c.grad[0] ? &c.grad[1] : &c.grad[0]);
      tr::backward(copies_[i], i == 0 ? x : c.out[i - 1], ctx, i + 1 == copies_.size() ? y : c.out[i], *dout,
                   c.copies[i], din);
      dout = din;
    }
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < copies_.size(); ++i) tr::for_each_param(copies_[i], prefix + std::to_string(i) + ".", f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < copies_.size(); ++i) tr::for_each_buffer(copies_[i], prefix + std::to_string(i) + ".", f);
  }

 private:
  template <bool Train, class Self>
  static void run(Self& self, const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    const std::size_t m = self.copies_.size();
    c.copies.resize(m);
    c.out.resize(m > 0 ? m - 1 : 0);
    if (m == 0) y = x;
    for (std::size_t i = 0; i < m; ++i) {
      chain_context local = ctx;
      matrix<T>& out = i + 1 == m ? y : c.out[i];
      const matrix<T>& in = i == 0 ? x : c.out[i - 1];
      if constexpr (Train) tr::forward(self.copies_[i], in, local, out, c.copies[i]);
      else tr::infer(self.copies_[i], in, local, out, c.copies[i]);
    }
  }
  std::vector<B> copies_;
};

}  // namespace hepgnn
