#pragma once
/// @file graph_layer.hpp
/// @brief The contracts (C++20 concepts) of message-passing layers: layers that read a graph, and layers that
/// build their own graph per graph of a batch.

#include <concepts>
#include <string>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/fingerprint.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief A layer on node features that takes the graph explicitly (edge_conv, interaction network, ...).
///
/// Requires:
///  - `scalar`, `cache` (owned by the caller, reusable across calls), `in_width` / `out_width` (`dynamic` when
///    set at construction);
///  - `forward(x, g, y, cache)`: training forward; x is N x in with N == g.num_nodes; writes y (N x out) and
///    what backward needs into the cache;
///  - `infer(x, g, y, cache) const`: inference; no heap allocation once `cache` and `y` have been used with the
///    same shapes and edge count;
///  - `backward(x, g, y, dy, cache, dx)`: with the x, g, y of the matching forward, ADDS dL/dparameters to the
///    gradients and writes dL/dx to *dx (skipped when dx is null);
///  - `for_each_param(prefix, f)`: parameters by PyTorch (Geometric) state_dict names.
/// Ensures: y.rows() == g.num_nodes (g.num_edges() for a layer that declares `output_rows = rows_of::edges`, e.g.
/// interaction_network: one row per edge in CSR order); bad shapes throw hepgnn::error; results do not depend on
/// the thread count.
template <class L>
concept graph_layer = requires(L& l, const L& cl, const matrix<typename L::scalar>& x, const graph& g,
                               matrix<typename L::scalar>& y, typename L::cache& c,
                               matrix<typename L::scalar>* dx) {
  typename L::scalar;
  typename L::cache;
  { L::in_width } -> std::convertible_to<int>;
  { L::out_width } -> std::convertible_to<int>;
  l.forward(x, g, y, c);
  cl.infer(x, g, y, c);
  l.backward(x, g, y, x, c, dx);
  l.for_each_param(std::string{}, [](const std::string&, parameter<typename L::scalar>) {});
};

/// @brief A graph layer that also reads edge input features: E x F rows in the graph's CSR edge order (e.g.
/// interaction_network's edge_attr).
///
/// Requires, besides graph_layer: `forward(x, g, edge_features, y, cache)`, `infer(x, g, edge_features, y, cache)
/// const` and `backward(x, g, edge_features, y, dy, cache, dx, d_edge_features)` (d_edge_features: dL/dfeatures,
/// skipped when null). A chain calls these when its context holds edge features (chain_context::edge_features),
/// the plain graph_layer calls otherwise.
template <class L>
concept edge_feature_layer =
    graph_layer<L> && requires(L& l, const L& cl, const matrix<typename L::scalar>& x, const graph& g,
                               const matrix<typename L::scalar>& ef, matrix<typename L::scalar>& y,
                               typename L::cache& c, matrix<typename L::scalar>* dx) {
      l.forward(x, g, ef, y, c);
      cl.infer(x, g, ef, y, c);
      l.backward(x, g, ef, y, x, c, dx, dx);
    };

/// @brief A layer that builds its own graph inside every graph of a batch (dynamic_edge_conv, gravnet_conv,
/// the MLPF graph layer): the same contract as graph_layer with a `const batch&` in place of the graph.
/// x has b.num_nodes() rows; nodes of different graphs never exchange messages.
template <class L>
concept batch_layer = requires(L& l, const L& cl, const matrix<typename L::scalar>& x, const batch& b,
                               matrix<typename L::scalar>& y, typename L::cache& c,
                               matrix<typename L::scalar>* dx) {
  typename L::scalar;
  typename L::cache;
  { L::in_width } -> std::convertible_to<int>;
  { L::out_width } -> std::convertible_to<int>;
  l.forward(x, b, y, c);
  cl.infer(x, b, y, c);
  l.backward(x, b, y, x, c, dx);
  l.for_each_param(std::string{}, [](const std::string&, parameter<typename L::scalar>) {});
};

/// @brief Throws unless x has one row per node of g and g's CSR arrays are consistent (graph::validate: O(N + E)
/// integer compares, negligible next to the E x F message work; it is what keeps a wrong graph from reading out of
/// bounds).
template <class T>
void check_graph_input(const matrix<T>& x, const graph& g, const char* who) {
  g.validate(who);
  HEPGNN_CHECK(x.rows() == g.num_nodes, who, ": x must have one row per graph node (", g.num_nodes, "), got ",
               x.rows(), " x ", x.cols());
}

/// @brief What a graph layer's forward records and its backward compares (core/fingerprint.hpp): the input rows
/// and the graph they were passed on.
template <class T>
std::uint64_t forward_key(const matrix<T>& x, const graph& g) {
  return fingerprint(x) ^ mix64(fingerprint(g));
}
/// @brief The same for a layer over a batch (which builds its graph itself).
template <class T>
std::uint64_t forward_key(const matrix<T>& x, const batch& b) {
  return fingerprint(x) ^ mix64(fingerprint(b) + 1);
}

}  // namespace hepgnn
