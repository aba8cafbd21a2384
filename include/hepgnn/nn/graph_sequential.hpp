#pragma once
/// @file graph_sequential.hpp
/// @brief hepgnn::graph_sequential: a model written flat, input to output, from graph builders, graph layers,
/// pooling and row-wise layers, with forward, infer, backward and parameter names derived from its elements. Skips
/// are elements too (nn/skips.hpp: concat_skip, residual_skip, add_branches; nn/repeated.hpp).
///
/// ```cpp
/// using edge_net = sequential<float, dense<float, 6, 64>, relu<float>, dense<float, 64, 64>, relu<float>>;
/// using tagger = graph_sequential<float, 3,
///     knn_builder<16, metric::delta_r, 0, 2>,     // kNN in (eta, phi)
///     edge_conv<float, edge_net>,
///     global_pool_layer<float>,                   // nodes -> jets
///     dense<float, 64, 2>>;
/// ```
/// Widths and rows are checked at compile time for every chain (a mismatch names the element and the width it is
/// given, in chain_link<Element, Width, ...>); the batch says which nodes form a graph.

#include <array>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/core/fingerprint.hpp"
#include "hepgnn/nn/element.hpp"

namespace hepgnn {

namespace detail {

/// Instantiated for every element of every chain: element Next receives rows of width Width.
template <class Next, int Width, rows_of Rows, class T>
struct chain_link {
  using tr = element_traits<Next, T>;
  static_assert(Width == dynamic || Width == same_width || tr::in_width == dynamic || tr::in_width == same_width ||
                    Width == tr::in_width,
                "hepgnn::graph_sequential: width mismatch: element Next does not take rows of the width the chain "
                "gives it (both named in chain_link<Next, Width, ...> below)");
  static_assert(!tr::fixed_input_rows || tr::input_rows != rows_of::nodes || Rows == rows_of::nodes,
                "hepgnn::graph_sequential: element Next reads the graph or the batch, but the rows before it are no "
                "longer nodes (a pooling or an edge-output layer comes before it)");
  static_assert(!tr::fixed_input_rows || tr::input_rows == rows_of::nodes || Rows == tr::input_rows,
                "hepgnn::graph_sequential: element Next reads rows of another kind (graphs or edges) than the chain "
                "gives it");
  static constexpr int min_width = [] {
    if constexpr (requires { Next::min_width; }) return Next::min_width; else return 0;
  }();
  static_assert(Width < 0 || Width >= min_width,
                "hepgnn::graph_sequential: element Next reads columns beyond the width of its input");
  static constexpr int out = tr::out_width == same_width ? Width : tr::out_width;
  static constexpr rows_of rows = tr::output_rows(Rows);
};

template <class T, int W, rows_of R, class... Es>
struct chain_walk {
  static constexpr int width = W;
  static constexpr rows_of rows = R;
};
template <class T, int W, rows_of R, class E, class... Es>
struct chain_walk<T, W, R, E, Es...> {
  using link = chain_link<E, W, R, T>;
  using rest = chain_walk<T, link::out, link::rows, Es...>;
  static constexpr int width = rest::width;
  static constexpr rows_of rows = rest::rows;
};

/// The input width of a chain that does not state one: that of its first element with a width of its own.
template <class T, class... Es>
constexpr int first_in_width() {
  int w = same_width;
  ((w == same_width ? (w = element_traits<Es, T>::in_width, 0) : 0), ...);
  return w == same_width ? dynamic : w;
}

template <class E>
concept has_scalar = requires { typename E::scalar; };
/// True when E has no scalar type (a builder) or has T.
template <class E, class T>
constexpr bool scalar_is() {
  if constexpr (has_scalar<E>) return std::is_same_v<typename E::scalar, T>; else return true;
}

template <class... Es>
struct first_scalar;
template <class E, class... Es>
  requires has_scalar<E>
struct first_scalar<E, Es...> {
  using type = typename E::scalar;
};
template <class E, class... Es>
  requires(!has_scalar<E>)
struct first_scalar<E, Es...> {
  using type = typename first_scalar<Es...>::type;
};

}  // namespace detail

/// @brief Elements applied in order to node rows, carrying the batch and the current graph (see element.hpp).
///
/// Requires: x has one row per node of the batch (and In columns unless In is dynamic); a graph layer comes after
/// a graph builder, or the caller gives a graph (forward with a chain_context). Ensures: y has one row per node,
/// edge or graph, as the last element leaves them; backward adds every element's parameter gradients (graphs held
/// fixed); parameter names are "<index>.<name>" as in torch.nn.Sequential (builders count as modules without
/// parameters). infer() is const: the cache is the only state it writes, so one model serves many threads.
template <class T, int In, class... Es>
class graph_sequential {
  static_assert(sizeof...(Es) > 0, "hepgnn::graph_sequential needs at least one element");
  static constexpr std::size_t n = sizeof...(Es);
  using walk = detail::chain_walk<T, In, rows_of::nodes, Es...>;
  template <std::size_t I>
  using elem = std::tuple_element_t<I, std::tuple<Es...>>;
  template <std::size_t I>
  using traits = element_traits<elem<I>, T>;
  static_assert((detail::scalar_is<Es, T>() && ...),
                "hepgnn::graph_sequential: every layer must use the chain's scalar type");

 public:
  using scalar = T;
  static constexpr int in_width = In;
  static constexpr int out_width = walk::width;
  static constexpr rows_of input_rows = rows_of::nodes;
  static constexpr rows_of output_rows = walk::rows;
  static_assert(out_width >= same_width, "instantiates the width and row checks of every element");

  /// @brief What a call keeps: every element's cache and output, and the context each element saw.
  struct cache {
    std::tuple<typename element_traits<Es, T>::cache...> elements;
    std::array<matrix<T>, n> out;       ///< output of element i (unused for builders and the last element)
    std::array<chain_context, n> seen;  ///< context of element i in the last call (its graph, for backward)
    batch whole;                        ///< the single graph of a call with a graph and no batch
    matrix<T> grad[2];
    std::uint64_t forward_x = 0;        ///< fingerprint of the training forward's x (0 after an infer)
    std::uint64_t forward_context = 0;  ///< ... and of its batch and graph
    chain_context forward_ctx;          ///< the caller's context of the training forward (rebound by backward)
  };

  graph_sequential() requires(std::is_default_constructible_v<Es> && ...) = default;
  explicit graph_sequential(Es... es) : elements_(std::move(es)...) {}

  /// @brief The I-th element.
  template <std::size_t I>
  auto& get() { return std::get<I>(elements_); }
  template <std::size_t I>
  const auto& get() const { return std::get<I>(elements_); }
  static constexpr std::size_t size() { return n; }
  /// @brief Output of element I < size() - 1 in the last call (e.g. an embedding or a hidden activation).
  template <std::size_t I>
  static const matrix<T>& output(const cache& c) {
    static_assert(I + 1 < n && !traits<I>::builder, "hepgnn::graph_sequential::output: the last element writes y");
    return c.out[I];
  }

  /// @brief Training forward over the graphs of b.
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) { forward(x, check(x, b), y, c); }
  /// @brief Training forward on a given graph (one graph over all rows of x).
  void forward(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) { forward(x, whole(x, g, c), y, c); }
  /// @brief Training forward on a given graph with its edge input features (E x F, CSR edge order), read by the
  /// layers that take them (edge_feature_layer) until a graph builder replaces the graph.
  void forward(const matrix<T>& x, const graph& g, const matrix<T>& edge_features, matrix<T>& y, cache& c) {
    forward(x, whole(x, g, edge_features, c), y, c);
  }
  /// @brief Training forward with a context (the caller's batch and, optionally, graph and edge features).
  void forward(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) {
    run<true>(*this, x, ctx, y, c, std::make_index_sequence<n>{});
    c.forward_x = fingerprint(x);
    c.forward_context = context_key(ctx);
    c.forward_ctx = ctx;
  }

  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const { infer(x, check(x, b), y, c); }
  void infer(const matrix<T>& x, const graph& g, matrix<T>& y, cache& c) const { infer(x, whole(x, g, c), y, c); }
  void infer(const matrix<T>& x, const graph& g, const matrix<T>& edge_features, matrix<T>& y, cache& c) const {
    infer(x, whole(x, g, edge_features, c), y, c);
  }
  void infer(const matrix<T>& x, const chain_context& ctx, matrix<T>& y, cache& c) const {
    c.forward_x = 0;  // the elements' caches now hold this call
    run<false>(*this, x, ctx, y, c, std::make_index_sequence<n>{});
  }

  /// @brief With the x and y of the matching forward: adds parameter gradients, writes dL/dx unless dx is null.
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    backward(x, chain_context{&b, nullptr}, y, dy, c, dx);
  }
  void backward(const matrix<T>& x, const graph& g, const matrix<T>& y, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    backward(x, chain_context{&c.whole, &g}, y, dy, c, dx);
  }
  /// Edge features are held fixed (no gradient for them), as graphs are.
  void backward(const matrix<T>& x, const graph& g, const matrix<T>& edge_features, const matrix<T>& y,
                const matrix<T>& dy, cache& c, matrix<T>* dx) {
    backward(x, chain_context{&c.whole, &g, edge_features_ref(edge_features)}, y, dy, c, dx);
  }
  /// The batch and graph of ctx (when given) must hold the forward's content: backward reuses what the forward built
  /// on them, and reads them from ctx (the forward's may have been temporaries).
  void backward(const matrix<T>& x, const chain_context& ctx, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    HEPGNN_CHECK(dy.rows() == y.rows() && dy.cols() == y.cols(), "graph_sequential::backward: dy must have the shape "
                 "of y (", y.rows(), " x ", y.cols(), "), got ", dy.rows(), " x ", dy.cols());
    check_same_forward(c.forward_x, fingerprint(x), "graph_sequential::backward", "input x");
    if (ctx.b) check_same_forward(c.forward_context, context_key(ctx), "graph_sequential::backward", "batch or graph");
    back<n - 1>(x, y, dy, c, ctx.b ? ctx : c.forward_ctx, dx);
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    each([&](auto& e, auto i) { traits<decltype(i)::value>::for_each_param(e, prefix + std::to_string(i()) + ".", f); });
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    each([&](auto& e, auto i) { traits<decltype(i)::value>::for_each_buffer(e, prefix + std::to_string(i()) + ".", f); });
  }

 private:
  static std::uint64_t context_key(const chain_context& ctx) {
    return mix64(ctx.b ? fingerprint(*ctx.b) : 0) ^ (ctx.g ? fingerprint(*ctx.g) : 0);
  }
  static chain_context check(const matrix<T>& x, const batch& b) {
    if constexpr (In >= 0) check_cols(x, In, "graph_sequential: input x");
    b.validate(static_cast<index_t>(x.rows()));
    return {&b, nullptr};
  }
  static chain_context whole(const matrix<T>& x, const graph& g, cache& c) {
    if constexpr (In >= 0) check_cols(x, In, "graph_sequential: input x");
    check_graph_input(x, g, "graph_sequential");
    c.whole.node_offsets.assign({0, g.num_nodes});
    return {&c.whole, &g};
  }
  static chain_context whole(const matrix<T>& x, const graph& g, const matrix<T>& edge_features, cache& c) {
    chain_context ctx = whole(x, g, c);
    check_rows(edge_features, g.num_edges(), "graph_sequential: edge_features (one row per edge of the graph)");
    ctx.edge_features = edge_features_ref(edge_features);
    return ctx;
  }

  template <std::size_t I>
  static const matrix<T>& input_of(const matrix<T>& x, const matrix<T>& y, const cache& c) {
    if constexpr (I == 0) return x; else return output_of<I - 1>(x, y, c);
  }
  /// Builders pass their input on; the last element writes y.
  template <std::size_t I>
  static const matrix<T>& output_of(const matrix<T>& x, const matrix<T>& y, const cache& c) {
    if constexpr (traits<I>::builder) return input_of<I>(x, y, c);
    else if constexpr (I == n - 1) return y;
    else return c.out[I];
  }

  template <bool Train, class Self, std::size_t... I>
  static void run(Self& self, const matrix<T>& x, chain_context ctx, matrix<T>& y, cache& c,
                  std::index_sequence<I...>) {
    (step<Train, I>(self, x, ctx, y, c), ...);
  }
  template <bool Train, std::size_t I, class Self>
  static void step(Self& self, const matrix<T>& x, chain_context& ctx, matrix<T>& y, cache& c) {
    using tr = traits<I>;
    c.seen[I] = ctx;
    matrix<T>& out = I == n - 1 ? y : c.out[I];
    if constexpr (Train)
      tr::forward(std::get<I>(self.elements_), input_of<I>(x, y, c), ctx, out, std::get<I>(c.elements));
    else
      tr::infer(std::get<I>(self.elements_), input_of<I>(x, y, c), ctx, out, std::get<I>(c.elements));
    if constexpr (tr::builder && I == n - 1) y = input_of<I>(x, y, c);
  }

  /// True when an element before I has parameters or an input gradient to pass on (anything but a builder).
  template <std::size_t I>
  static constexpr bool layers_before() {
    return [&]<std::size_t... K>(std::index_sequence<K...>) { return (!traits<K>::builder || ...); }
    (std::make_index_sequence<I>{});
  }

  template <std::size_t I>
  void back(const matrix<T>& x, const matrix<T>& y, const matrix<T>& dout, cache& c, const chain_context& given,
            matrix<T>* dx) {
    using tr = traits<I>;
    if constexpr (tr::builder) {
      if constexpr (I == 0) {
        if (dx) *dx = dout;
      } else {
        back<I - 1>(x, y, dout, c, given, dx);
      }
    } else if constexpr (!layers_before<I>()) {
      // Only builders (no gradient of their own) before I: the input gradient of I is dL/dx.
      tr::backward(std::get<I>(elements_), input_of<I>(x, y, c), rebind_context(c.seen[I], c.forward_ctx, given),
                   output_of<I>(x, y, c), dout, std::get<I>(c.elements), dx);
    } else {
      matrix<T>* din = &dout == &c.grad[0] ? &c.grad[1] : &c.grad[0];
      tr::backward(std::get<I>(elements_), input_of<I>(x, y, c), rebind_context(c.seen[I], c.forward_ctx, given),
                   output_of<I>(x, y, c), dout, std::get<I>(c.elements), din);
      back<I - 1>(x, y, *din, c, given, dx);
    }
  }

  template <class V>
  void each(V&& v) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (v(std::get<I>(elements_), std::integral_constant<std::size_t, I>{}), ...); }
    (std::make_index_sequence<n>{});
  }

  std::tuple<Es...> elements_;
};

}  // namespace hepgnn
