#pragma once
/// @file dynamic_edge_conv.hpp
/// @brief hepgnn::dynamic_edge_conv: EdgeConv on the kNN graph rebuilt in the layer's input feature space, per
/// graph of a batch (PyTorch Geometric DynamicEdgeConv).

#include <string>
#include <utility>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/edge_conv.hpp"

namespace hepgnn {

/// @brief DynamicEdgeConv: edge_conv on the k-nearest-neighbour graph of x itself (rebuilt every call, per graph
/// of the batch; PyG counts the node among its own k neighbours, include_self = true).
///
/// The graph is piecewise constant in x, so the gradient w.r.t. x is edge_conv's with the graph held fixed
/// (as in PyG). Parameters "nn.<name>" as PyG's DynamicEdgeConv.nn.
template <class T, class NN>
class dynamic_edge_conv {
 public:
  using conv_type = edge_conv<T, NN>;
  using scalar = T;
  static constexpr int in_width = conv_type::in_width;
  static constexpr int out_width = conv_type::out_width;
  struct cache {
    graph g;  ///< the kNN graph of the last call
    knn_workspace<T> knn;
    typename conv_type::cache conv;
    std::uint64_t forward_batch = 0;  ///< fingerprint of the training forward's batch
  };

  /// @brief `nn` maps 2F -> F'; `k` neighbours (self included unless include_self is false); PyG default max.
  dynamic_edge_conv(NN nn, int k, aggregation aggr = aggregation::max, bool include_self = true)
      : conv_(std::move(nn), aggr), k_(k), include_self_(include_self) {
    HEPGNN_CHECK(k > 0, "dynamic_edge_conv: k must be positive, got ", k);
  }

  conv_type& conv() { return conv_; }
  NN& nn() { return conv_.nn(); }
  int k() const { return k_; }

  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) {
    build(x, b, c);
    c.forward_batch = fingerprint(b);
    conv_.forward(x, c.g, y, c.conv);
  }
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    build(x, b, c);
    conv_.infer(x, c.g, y, c.conv);
  }
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    b.validate_offsets("dynamic_edge_conv::backward");
    check_same_forward(c.forward_batch, fingerprint(b), "dynamic_edge_conv::backward", "batch");
    conv_.backward(x, c.g, y, dy, c.conv, dx);
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    conv_.for_each_param(prefix, f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) requires has_buffers<NN> {
    conv_.for_each_buffer(prefix, f);
  }

 private:
  void build(const matrix<T>& x, const batch& b, cache& c) const {
    b.validate_offsets("dynamic_edge_conv");
    HEPGNN_CHECK(b.num_nodes() == x.rows(), "dynamic_edge_conv: the batch covers ", b.num_nodes(),
                 " nodes but x has ", x.rows(), " rows");
    check_finite(x, "dynamic_edge_conv: input x");
    build_knn_graph(x, b, k_, include_self_, c.g, c.knn);
  }

  conv_type conv_;
  int k_;
  bool include_self_;
};

}  // namespace hepgnn
