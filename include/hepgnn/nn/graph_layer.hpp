#pragma once
/// @file graph_layer.hpp
/// @brief The contracts (C++20 concepts) of message-passing layers: layers that read a graph, and layers that
/// build their own graph per graph of a batch.

#include <concepts>
#include <string>

#include "hepgnn/core/batch.hpp"
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
/// Ensures: y.rows() == g.num_nodes; bad shapes throw hepgnn::error; results do not depend on the thread count.
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

/// @brief Throws unless x has one row per node of g and g's CSR arrays are consistent (O(N + E) integer
/// compares, negligible next to the E x F message work; it is what keeps a wrong graph from reading out of bounds).
template <class T>
void check_graph_input(const matrix<T>& x, const graph& g, const char* who) {
  HEPGNN_CHECK(g.offsets.size() == static_cast<std::size_t>(g.num_nodes) + 1, who, ": graph offsets must have num_nodes + 1 = ",
               g.num_nodes + 1, " entries, got ", g.offsets.size());
  HEPGNN_CHECK(g.offsets.back() == g.num_edges(), who, ": graph offsets end at ", g.offsets.back(), " but it has ",
               g.num_edges(), " edges");
  HEPGNN_CHECK(x.rows() == g.num_nodes, who, ": x must have one row per graph node (", g.num_nodes, "), got ",
               x.rows(), " x ", x.cols());
  HEPGNN_CHECK(g.offsets.front() == 0, who, ": graph offsets[0] must be 0, got ", g.offsets.front());
  for (index_t i = 0; i < g.num_nodes; ++i)
    HEPGNN_CHECK(g.offsets[i] <= g.offsets[i + 1], who, ": graph offsets must be non-decreasing at node ", i);
  const index_t n = g.num_nodes;
  bool ok = true;
  for (index_t s : g.sources) ok &= (s >= 0) & (s < n);
  if (!ok)
    for (std::size_t e = 0; e < g.sources.size(); ++e)
      HEPGNN_CHECK(g.sources[e] >= 0 && g.sources[e] < n, who, ": graph sources[", e, "] = ", g.sources[e],
                   " is out of range [0, ", n, ") (a graph of another batch?)");
}

}  // namespace hepgnn
