#pragma once
/// @file split_edge_network.hpp
/// @brief How edge_conv reads an edge network `sequential<T, dense, Rest...>`: the first dense is split over nodes
/// (edge_conv computes it as node terms plus a gather), and the rest, the tail, runs on edge matrices. What the
/// tail is made of decides the paths: row-local layers only (dense, activations) train in edge tiles; dense and
/// ReLU layers only run in the fused inference kernel, packed for simd::packed_product.

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/simd/packed_product.hpp"

namespace hepgnn::detail {

/// True for sequential<T, dense<T, I, O>, Rest...>: the first linear map can be split over nodes.
template <class NN>
struct split_first_dense : std::false_type {
  using tail = std::tuple<>;
};
template <class T, int I, int O, class... Rest>
struct split_first_dense<sequential<T, dense<T, I, O>, Rest...>> : std::true_type {
  using tail = std::tuple<Rest...>;
};

/// Runs layers 1..R of a sequential<T, dense, Rest...> on an edge matrix (the layers after the split dense).
template <class T, class Tail>
struct seq_tail;
template <class T, class... Rest>
struct seq_tail<T, std::tuple<Rest...>> {
  static constexpr std::size_t r = sizeof...(Rest);
  struct cache {
    std::tuple<typename Rest::cache...> layers;
    std::array<matrix<T>, r> out;  ///< output of tail layer k
    matrix<T> grad[2];
  };
  /// Output of the tail (the input itself when there is no tail layer).
  static const matrix<T>& result(const matrix<T>& in, const cache& c) {
    if constexpr (r == 0) return in; else return c.out[r - 1];
  }
  template <bool Train, class Seq>
  static void run(Seq& s, const matrix<T>& in, cache& c) {
    [&]<std::size_t... K>(std::index_sequence<K...>) { (step<Train, K>(s, in, c), ...); }
    (std::make_index_sequence<r>{});
  }
  template <bool Train, std::size_t K, class Seq>
  static void step(Seq& s, const matrix<T>& in, cache& c) {
    const matrix<T>& src = K == 0 ? in : c.out[K == 0 ? 0 : K - 1];
    auto& l = s.template get<K + 1>();
    if constexpr (Train)
      l.forward(src, c.out[K], std::get<K>(c.layers));
    else
      std::as_const(l).infer(src, c.out[K], std::get<K>(c.layers));
  }
  /// Backward through the tail: dout is the gradient of result(); writes the gradient of `in` to din.
  template <class Seq>
  static void back(Seq& s, const matrix<T>& in, const matrix<T>& dout, cache& c, matrix<T>& din) {
    if constexpr (r == 0) {
      din = dout;
    } else {
      back_step<r - 1>(s, in, dout, c, din);
    }
  }
  template <std::size_t K, class Seq>
  static void back_step(Seq& s, const matrix<T>& in, const matrix<T>& dout, cache& c, matrix<T>& din) {
    const matrix<T>& g_out = (K == r - 1) ? dout : c.grad[K % 2];
    matrix<T>& g_in = (K == 0) ? din : c.grad[(K + 1) % 2];
    const matrix<T>& x_k = K == 0 ? in : c.out[K == 0 ? 0 : K - 1];
    s.template get<K + 1>().backward(x_k, c.out[K], g_out, std::get<K>(c.layers), &g_in);
    if constexpr (K > 0) back_step<K - 1>(s, in, dout, c, din);
  }
};

/// Layers that act on each row independently in training too (so edge tiles can be trained separately).
template <class L>
struct row_local : std::false_type {};
template <class T, int I, int O>
struct row_local<dense<T, I, O>> : std::true_type {};
template <class T, class P>
struct row_local<activation<T, P>> : std::true_type {};
template <class Tail>
struct all_row_local;
template <class... Ls>
struct all_row_local<std::tuple<Ls...>> : std::bool_constant<(row_local<Ls>::value && ...)> {};

/// ReLU layers and dense layers: the edge-net tails the fused inference kernel runs.
template <class L>
struct is_relu_layer : std::false_type {};
template <class T>
struct is_relu_layer<activation<T, act::relu>> : std::true_type {};
template <class L>
struct is_dense_layer : std::false_type {};
template <class T, int I, int O>
struct is_dense_layer<dense<T, I, O>> : std::true_type {};

/// Layout of a dense/ReLU tail for the fused kernel: how many dense layers, whether a ReLU comes before the
/// first one (applied in the gather) and after each one (applied in the product's epilogue).
template <class Tail>
struct dense_relu_plan {
  static constexpr bool valid = false;
};
template <class... Ls>
struct dense_relu_plan<std::tuple<Ls...>> {
  static constexpr bool valid = ((is_dense_layer<Ls>::value || is_relu_layer<Ls>::value) && ...);
  static constexpr std::size_t denses = (std::size_t(is_dense_layer<Ls>::value) + ... + 0);
  static constexpr bool lead_relu = [] {
    constexpr bool d[] = {is_dense_layer<Ls>::value..., true};
    constexpr bool r[] = {is_relu_layer<Ls>::value..., false};
    for (std::size_t i = 0; !d[i]; ++i)
      if (r[i]) return true;
    return false;
  }();
  /// relu_after[j]: a ReLU follows dense j (before the next dense or the end).
  static constexpr std::array<bool, denses + 1> relu_after = [] {
    constexpr bool d[] = {is_dense_layer<Ls>::value..., false};
    constexpr bool r[] = {is_relu_layer<Ls>::value..., false};
    std::array<bool, denses + 1> out{};
    long j = -1;
    for (std::size_t i = 0; i < sizeof...(Ls); ++i) {
      if (d[i]) ++j;
      else if (r[i] && j >= 0) out[static_cast<std::size_t>(j)] = true;
    }
    return out;
  }();
};

/// [w^T; b] of a dense layer into wt ((in + 1) x simd_padded(out), zero padding).
template <class T, int I, int O>
void pack_dense(const dense<T, I, O>& d, matrix<T>& wt) {
  const long in = d.in_features(), out = d.out_features();
  const long np = simd::padded_width<T>(out);
  wt.resize(in + 1, np);
  wt.rightCols(np - out).setZero();
  wt.topLeftCorner(in, out) = d.weight().transpose();
  if (d.has_bias()) wt.row(in).head(out) = d.bias().row(0); else wt.row(in).head(out).setZero();
}

}  // namespace hepgnn::detail
