#pragma once
/// @file interaction_network_weights.hpp
/// @brief The weights of hepgnn::interaction_network: its Linear layers by PyTorch name, and the transposed
/// blocks of them that the blocked products take, named by what they multiply.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/interaction_network_blocks.hpp"

namespace hepgnn {

/// @brief Two Linear layers named "0." and "2." (torch.nn.Sequential(Linear, ReLU, Linear[, ReLU])).
template <class T>
struct two_layer_mlp {
  dense<T> first;   ///< "0."
  dense<T> second;  ///< "2."

  /// @brief Linear(in, hidden), Linear(hidden, out), PyTorch default initialisation from gen in that order.
  static two_layer_mlp make(rng& gen, int in, int hidden, int out) {
    dense<T> a(gen, in, hidden);
    dense<T> b(gen, hidden, out);
    return {std::move(a), std::move(b)};
  }
  /// @brief Visits "<prefix>0.weight", "<prefix>0.bias", "<prefix>2.weight", "<prefix>2.bias".
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    first.for_each_param(prefix + "0.", f);
    second.for_each_param(prefix + "2.", f);
  }
};

/// @brief The parameters of an interaction network: node and edge encoders, the edge and node networks (one set,
/// or one per iteration), the output head.
template <class T>
struct interaction_weights {
  two_layer_mlp<T> node_encoder, edge_encoder;
  std::vector<two_layer_mlp<T>> edge_networks, node_networks;
  two_layer_mlp<T> output;
  bool shared = true;  ///< one edge and node network for every iteration

  /// @brief Builds the layers from gen in the order node encoder, edge encoder, edge network(s), node network(s),
  /// output head. node_in: the node network's input width (h and the aggregations).
  interaction_weights(rng& gen, int in, int edge_in, int hidden, int node_in, int out, int iterations, bool shared_sets)
      : node_encoder(two_layer_mlp<T>::make(gen, in, hidden, hidden)),
        edge_encoder(two_layer_mlp<T>::make(gen, 2 * in + edge_in, hidden, hidden)),
        edge_networks(make_sets(gen, shared_sets, iterations, 3 * hidden, hidden)),
        node_networks(make_sets(gen, shared_sets, iterations, node_in, hidden)),
        output(two_layer_mlp<T>::make(gen, hidden, hidden, out)),
        shared(shared_sets) {}

  /// @brief The edge (node) network of iteration t.
  const two_layer_mlp<T>& edge_network(int t) const { return edge_networks[set_of(t)]; }
  two_layer_mlp<T>& edge_network(int t) { return edge_networks[set_of(t)]; }
  const two_layer_mlp<T>& node_network(int t) const { return node_networks[set_of(t)]; }
  two_layer_mlp<T>& node_network(int t) { return node_networks[set_of(t)]; }

  /// @brief node_encoder.{0,2}, edge_encoder.{0,2}, edge_network[.<t>].{0,2}, node_network[.<t>].{0,2},
  /// output.{0,2} (.weight/.bias); the iteration index only without shared weights.
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    node_encoder.for_each_param(prefix + "node_encoder.", f);
    edge_encoder.for_each_param(prefix + "edge_encoder.", f);
    if (shared) {
      edge_networks[0].for_each_param(prefix + "edge_network.", f);
      node_networks[0].for_each_param(prefix + "node_network.", f);
    } else {
      for (std::size_t t = 0; t < edge_networks.size(); ++t)
        edge_networks[t].for_each_param(prefix + "edge_network." + std::to_string(t) + ".", f);
      for (std::size_t t = 0; t < node_networks.size(); ++t)
        node_networks[t].for_each_param(prefix + "node_network." + std::to_string(t) + ".", f);
    }
    output.for_each_param(prefix + "output.", f);
  }

 private:
  std::size_t set_of(int t) const { return shared ? 0 : static_cast<std::size_t>(t); }
  static std::vector<two_layer_mlp<T>> make_sets(rng& gen, bool shared_sets, int iterations, int in, int hidden) {
    std::vector<two_layer_mlp<T>> v;
    const int sets = shared_sets ? 1 : std::max(1, iterations);
    for (int t = 0; t < sets; ++t) v.push_back(two_layer_mlp<T>::make(gen, in, hidden, hidden));
    return v;
  }
};

/// @brief The transposed weight blocks of one call's products. The first Linear of the edge encoder and of the
/// edge network is split by input block, so the source and destination parts are node-level products gathered
/// per edge and only the edge part (attr_e, e) is an edge-level product; the node network's first Linear is split
/// into its h and aggregation parts.
template <class T>
struct interaction_products {
  product_weight<T> node_enc_first, node_enc_second;            ///< node encoder
  product_weight<T> edge_enc_src, edge_enc_dst, edge_enc_attr;  ///< edge encoder's first Linear: x_src, x_dst, attr
  product_weight<T> edge_enc_second;                            ///< edge encoder's second Linear
  product_weight<T> edge_src, edge_dst, edge_e;                 ///< edge network's first Linear: h_src, h_dst, e
  product_weight<T> edge_second;                                ///< edge network's second Linear
  product_weight<T> node_h, node_agg;                           ///< node network's first Linear: h, [a(, s)]
  product_weight<T> node_second;                                ///< node network's second Linear
  product_weight<T> head_first;                                 ///< output head's first Linear
};

}  // namespace hepgnn
