#pragma once
/// @file element.hpp
/// @brief The one contract of chain elements: what an element reads (rows of nodes, edges or graphs; the graph; the
/// batch), what it writes, and the uniform forward / infer / backward calls a chain makes on it.
///
/// Five kinds of element satisfy it, each through its own concept:
///  - row-wise layers (hepgnn::layer: dense, activations, norms, mlp, sequential): act on each row, whatever the
///    rows stand for;
///  - graph layers (hepgnn::graph_layer: edge_conv, ...): read the current graph; node rows in, node rows out
///    (edge rows out, one per edge in CSR order, when the layer declares `output_rows = rows_of::edges`, as
///    interaction_network does); layers that take edge input features (hepgnn::edge_feature_layer) read the
///    context's edge features when it holds some;
///  - batch layers (hepgnn::batch_layer: dynamic_edge_conv, gravnet_conv, pooling, ...): read the batch; pooling
///    layers declare `output_rows = rows_of::graphs`;
///  - graph builders (graph_builder_element: knn_builder, ...): read node rows and the batch and set the current
///    graph for the elements after them; their output is their input, and their gradient passes through (the graph
///    is held fixed, as in PyTorch Geometric);
///  - blocks (chain_block: graph_sequential, concat_skip, residual_skip, repeated): take the whole context.

#include <concepts>
#include <string>
#include <type_traits>
#include <variant>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief What one row of a feature matrix stands for.
enum class rows_of { nodes, edges, graphs };

/// @brief Edge input features of a chain's current graph: E x F rows in its CSR edge order, of the chain's scalar
/// type, or none. Refers to the caller's matrix, which must outlive the calls that read it (backward included).
class edge_features_ref {
 public:
  edge_features_ref() = default;
  explicit edge_features_ref(const matrix<float>& m) : m_(&m) {}
  explicit edge_features_ref(const matrix<double>& m) : m_(&m) {}
  bool empty() const { return std::holds_alternative<std::monostate>(m_); }
  /// @brief Whether both refer to the same matrix (or both to none).
  bool same(const edge_features_ref& o) const { return m_ == o.m_; }
  /// @brief The features, or null when there are none; throws when they are of another scalar type than T.
  template <class T>
  const matrix<T>* get() const {
    if (empty()) return nullptr;
    const auto* p = std::get_if<const matrix<T>*>(&m_);
    HEPGNN_CHECK(p != nullptr, "chain_context: the edge features are of another scalar type than the chain's");
    return *p;
  }

 private:
  std::variant<std::monostate, const matrix<float>*, const matrix<double>*> m_;
};

/// @brief What an element may read besides its input rows. Blocks pass it on to their inner elements; a builder
/// inside a block sets the graph for the rest of that block only.
struct chain_context {
  const batch* b = nullptr;  ///< the disjoint union of graphs the node rows belong to (always set by a chain)
  const graph* g = nullptr;  ///< the current graph: the last builder's, or the one the caller gave
  /// Edge input features of g, given by the caller and read by edge_feature_layer elements; a graph builder
  /// clears them (they belong to the graph before it). Held fixed: backward computes no gradient for them.
  edge_features_ref edge_features{};
};

/// @brief The context an element saw in a forward (`seen`), with the caller's objects of that forward (`recorded`:
/// its batch, graph, edge features, possibly temporaries gone since) replaced by those given to the backward
/// (`given`, checked to hold the same content). Graphs a chain built itself, in its cache, are kept.
inline chain_context rebind_context(chain_context seen, const chain_context& recorded, const chain_context& given) {
  if (given.b && seen.b == recorded.b) seen.b = given.b;
  if (given.g && seen.g == recorded.g) seen.g = given.g;
  if (!given.edge_features.empty() && seen.edge_features.same(recorded.edge_features))
    seen.edge_features = given.edge_features;
  return seen;
}

/// @brief A graph builder: `build(x, b, g, workspace)` const writes the graph of the node rows x (per graph of b)
/// into g; `workspace<T>` is its reusable scratch. Declares `builds_graph = true`.
template <class E, class T>
concept graph_builder_element = requires(const E& e, const matrix<T>& x, const batch& b, graph& g,
                                         typename E::template workspace<T>& ws) {
  requires E::builds_graph;
  e.build(x, b, g, ws);
};

/// @brief A block: an element that takes the whole chain context (the compositions in graph_sequential.hpp).
/// Requires `scalar`, `cache`, `in_width`, `out_width`, `input_rows`/`output_rows` (rows_of), and
/// forward(x, ctx, y, c), infer(x, ctx, y, c) const, backward(x, ctx, y, dy, c, dx), for_each_param(prefix, f).
template <class E>
concept chain_block = requires(E& e, const E& ce, const matrix<typename E::scalar>& x, const chain_context& ctx,
                               matrix<typename E::scalar>& y, typename E::cache& c, matrix<typename E::scalar>* dx) {
  { E::input_rows } -> std::convertible_to<rows_of>;
  { E::output_rows } -> std::convertible_to<rows_of>;
  e.forward(x, ctx, y, c);
  ce.infer(x, ctx, y, c);
  e.backward(x, ctx, y, x, c, dx);
  e.for_each_param(std::string{}, [](const std::string&, parameter<typename E::scalar>) {});
};

/// @brief How a chain drives element E with scalar T: its kind, widths, rows and cache, and the uniform calls.
template <class E, class T>
struct element_traits {
  static constexpr bool builder = graph_builder_element<E, T>;
  static constexpr bool block = !builder && chain_block<E>;
  static constexpr bool on_graph = !builder && !block && graph_layer<E>;
  static constexpr bool on_batch = !builder && !block && !on_graph && batch_layer<E>;
  static constexpr bool row_wise = !builder && !block && !on_graph && !on_batch && layer<E>;
  /// A graph layer that reads the context's edge features when it holds some.
  static constexpr bool reads_edge_features = on_graph && edge_feature_layer<E>;
  static_assert(builder || block || on_graph || on_batch || row_wise,
                "hepgnn: a chain element must be a layer (hepgnn::layer), a graph layer (hepgnn::graph_layer), a batch "
                "layer (hepgnn::batch_layer), a graph builder (graph_builder_element) or a block (chain_block); see "
                "include/hepgnn/nn/element.hpp");

  struct builder_cache {
    graph g;
    typename E::template workspace<T> ws;
  };
  template <class X, bool B>
  struct cache_of {
    using type = typename X::cache;
  };
  template <class X>
  struct cache_of<X, true> {
    using type = builder_cache;
  };
  using cache = typename cache_of<E, builder>::type;

  static constexpr int in_width = [] {
    if constexpr (builder) return same_width; else return int(E::in_width);
  }();
  static constexpr int out_width = [] {
    if constexpr (builder) return same_width; else return int(E::out_width);
  }();

  /// The rows the element reads, when it cares: its `input_rows` if it declares them (blocks always do; a layer
  /// that turns graph rows back into node rows declares graphs); else nodes for everything that reads a graph or
  /// batch. Row-wise layers take any rows.
  static constexpr bool fixed_input_rows = !builder && (block || requires { E::input_rows; } || !row_wise);
  static constexpr rows_of input_rows = [] {
    if constexpr (!builder && requires { E::input_rows; }) return rows_of(E::input_rows); else return rows_of::nodes;
  }();
  /// The rows it writes, given the rows it reads.
  static constexpr rows_of output_rows(rows_of in) {
    if constexpr (row_wise || builder) {
      return in;
    } else if constexpr (block) {
      return E::output_rows;
    } else if constexpr (requires { E::output_rows; }) {
      return E::output_rows;
    } else {
      return rows_of::nodes;
    }
  }

  template <bool Train>
  static void run(E& e, const matrix<T>& x, chain_context& ctx, matrix<T>& y, cache& c) {
    if constexpr (Train) forward(e, x, ctx, y, c); else infer(e, x, ctx, y, c);
  }
  static void forward(E& e, const matrix<T>& x, chain_context& ctx, matrix<T>& y, cache& c) {
    if constexpr (builder) infer(e, x, ctx, y, c);
    if constexpr (block) e.forward(x, ctx, y, c);
    if constexpr (reads_edge_features) {
      if (const matrix<T>* ef = ctx.edge_features.template get<T>()) e.forward(x, graph_of(ctx), *ef, y, c);
      else e.forward(x, graph_of(ctx), y, c);
    } else if constexpr (on_graph) {
      e.forward(x, graph_of(ctx), y, c);
    }
    if constexpr (on_batch) e.forward(x, *ctx.b, y, c);
    if constexpr (row_wise) e.forward(x, y, c);
  }
  static void infer(const E& e, const matrix<T>& x, chain_context& ctx, matrix<T>& y, cache& c) {
    if constexpr (builder) {
      e.build(x, *ctx.b, c.g, c.ws);
      ctx.g = &c.g;
      ctx.edge_features = {};
    }
    if constexpr (block) e.infer(x, ctx, y, c);
    if constexpr (reads_edge_features) {
      if (const matrix<T>* ef = ctx.edge_features.template get<T>()) e.infer(x, graph_of(ctx), *ef, y, c);
      else e.infer(x, graph_of(ctx), y, c);
    } else if constexpr (on_graph) {
      e.infer(x, graph_of(ctx), y, c);
    }
    if constexpr (on_batch) e.infer(x, *ctx.b, y, c);
    if constexpr (row_wise) e.infer(x, y, c);
  }
  /// Adds parameter gradients; writes dL/dx to *dx unless dx is null. Builders are not called (identity).
  static void backward(E& e, const matrix<T>& x, const chain_context& ctx, const matrix<T>& y, const matrix<T>& dy,
                       cache& c, matrix<T>* dx) {
    if constexpr (block) e.backward(x, ctx, y, dy, c, dx);
    if constexpr (reads_edge_features) {  // the edge features are held fixed: no gradient for them
      if (const matrix<T>* ef = ctx.edge_features.template get<T>())
        e.backward(x, graph_of(ctx), *ef, y, dy, c, dx, nullptr);
      else
        e.backward(x, graph_of(ctx), y, dy, c, dx);
    } else if constexpr (on_graph) {
      e.backward(x, graph_of(ctx), y, dy, c, dx);
    }
    if constexpr (on_batch) e.backward(x, *ctx.b, y, dy, c, dx);
    if constexpr (row_wise) e.backward(x, y, dy, c, dx);
  }
  template <class F>
  static void for_each_param(E& e, const std::string& prefix, F&& f) {
    if constexpr (!builder) e.for_each_param(prefix, f);
  }
  template <class F>
  static void for_each_buffer(E& e, const std::string& prefix, F&& f) {
    if constexpr (!builder && has_buffers<E>) e.for_each_buffer(prefix, f);
  }

 private:
  static const graph& graph_of(const chain_context& ctx) {
    HEPGNN_CHECK(ctx.g != nullptr, "graph_sequential: a graph layer has no graph: put a graph builder (knn_builder, "
                                   "...) before it or give the chain a graph");
    return *ctx.g;
  }
};

}  // namespace hepgnn
