#pragma once
/// @file particlenet.hpp
/// @brief hepgnn::particlenet: JetNet's ParticleNet (the FPND network): three EdgeConv(mean) blocks on kNN graphs
/// with concatenation skips, global mean pool, fc1, ReLU, fc2. Loads JetNet's PyTorch weights by name.

#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace hepgnn {

/// @brief Hyperparameters of particlenet (defaults: JetNet's `_ParticleNet(30, 3)` with 5 classes).
struct particlenet_config {
  int num_features = 3;                   ///< node features (eta_rel, phi_rel, pt_rel)
  int coordinate_columns = 2;             ///< block 0 builds its kNN graph on the first columns (eta, phi)
  int k = 16;                             ///< neighbours per node, node itself excluded (knn_graph loop=False)
  std::vector<int> channels{64, 128, 256};  ///< edge-net width of each EdgeConv block
  int fc = 256;                           ///< fc1 width (the FPND activations)
  int classes = 5;
};

/// @brief JetNet's ParticleNet assembled from hepgnn blocks.
///
/// Block i: kNN graph (k, self excluded) within each jet, on (eta, phi) for block 0 and on all current
/// features after it; h = EdgeConv(mean) with edge net [Linear -> BatchNorm1d -> ReLU] x 3; x <- [h, x]
/// (block output in front). Then global mean pool per jet, fc1 (the FPND activation), ReLU, fc2 (logits;
/// dropout is identity in evaluation). Node widths 3 -> 67 -> 195 -> 451.
/// Names as JetNet's state_dict: "edge_nets.<i>.model.<j>.*", "fc1.0.*", "fc2.*" (the duplicate
/// "edge_convs.*" entries of the .pt file are not needed).
template <class T>
class particlenet {
 public:
  using scalar = T;
  using edge_net = sequential<T, dense<T>, batch_norm<T>, relu<T>, dense<T>, batch_norm<T>, relu<T>, dense<T>,
                              batch_norm<T>, relu<T>>;
  using conv_type = edge_conv<T, edge_net>;

  /// @brief Everything a call keeps (training forward: what backward needs); reusable across calls.
  struct cache {
    std::vector<matrix<T>> x;  ///< block inputs; x[blocks] is the last node matrix
    std::vector<matrix<T>> h;  ///< edge-conv outputs
    std::vector<graph> graphs;
    std::vector<typename conv_type::cache> conv;
    knn_workspace<T> knn;
    std::vector<index_t> argmax;
    matrix<T> pooled, act, act_relu, dx, dh, dpool, dact;
    no_cache nc;
  };

  explicit particlenet(rng& gen, particlenet_config cfg = {}) : cfg_(std::move(cfg)) {
    HEPGNN_CHECK(cfg_.num_features > 0 && cfg_.coordinate_columns > 0 && cfg_.coordinate_columns <= cfg_.num_features,
                 "particlenet: coordinate_columns must be in [1, num_features = ", cfg_.num_features, "], got ",
                 cfg_.coordinate_columns);
    HEPGNN_CHECK(cfg_.k > 0 && !cfg_.channels.empty(), "particlenet: k and the channel list must be positive / non-empty");
    int width = cfg_.num_features;
    for (int c : cfg_.channels) {
      convs_.emplace_back(edge_net(dense<T>(gen, 2 * width, c), batch_norm<T>(c), relu<T>(), dense<T>(gen, c, c),
                                   batch_norm<T>(c), relu<T>(), dense<T>(gen, c, c), batch_norm<T>(c), relu<T>()),
                          aggregation::mean);
      width += c;
    }
    fc1_ = dense<T>(gen, width, cfg_.fc);
    fc2_ = dense<T>(gen, cfg_.fc, cfg_.classes);
  }

  const particlenet_config& config() const { return cfg_; }
  /// @brief Node width after the last block (451 for JetNet).
  int node_width() const { return fc1_.in_features(); }
  conv_type& block(std::size_t i) { return convs_.at(i); }

  /// @brief Logits (G x classes) for the jets of x (rows = particles, batch b); `activations` (optional) gets
  /// fc1's output (G x fc, the FPND features). Evaluation mode (BatchNorm running statistics).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& logits, cache& c, matrix<T>* activations = nullptr) const {
    const_cast<particlenet*>(this)->template run<false>(x, b, logits, c);
    if (activations) *activations = c.act;
  }

  /// @brief Training forward (BatchNorm batch statistics over the edges of the whole batch).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& logits, cache& c) { run<true>(x, b, logits, c); }

  /// @brief Backward of the matching forward: adds parameter gradients, writes dL/dx (kNN graphs held fixed).
  void backward(const matrix<T>&, const batch& b, const matrix<T>& logits, const matrix<T>& dlogits, cache& c,
                matrix<T>* dx) {
    HEPGNN_CHECK(dlogits.rows() == logits.rows() && dlogits.cols() == logits.cols() && c.x.size() == convs_.size() + 1,
                 "particlenet::backward: dlogits must be ", logits.rows(), " x ", logits.cols(), " after a forward, got ",
                 dlogits.rows(), " x ", dlogits.cols());
    fc2_.backward(c.act_relu, logits, dlogits, c.nc, &c.dact);
    relu<T>().backward(c.act, c.act_relu, c.dact, c.nc, &c.dpool);
    fc1_.backward(c.pooled, c.act, c.dpool, c.nc, &c.dact);
    global_pool_backward(b, aggregation::mean, c.dact, &c.argmax, c.dx);  // dL/d x[last]
    for (std::size_t i = convs_.size(); i-- > 0;) {
      const long w = c.h[i].cols();
      c.dh = c.dx.leftCols(w);
      matrix<T> dprev = c.dx.rightCols(c.dx.cols() - w);
      matrix<T> dconv;
      convs_[i].backward(c.x[i], c.graphs[i], c.h[i], c.dh, c.conv[i], &dconv);
      c.dx = dprev + dconv;
    }
    if (dx) *dx = c.dx;
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < convs_.size(); ++i)
      convs_[i].nn().for_each_param(prefix + "edge_nets." + std::to_string(i) + ".model.", f);
    fc1_.for_each_param(prefix + "fc1.0.", f);
    fc2_.for_each_param(prefix + "fc2.", f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < convs_.size(); ++i)
      convs_[i].nn().for_each_buffer(prefix + "edge_nets." + std::to_string(i) + ".model.", f);
  }

 private:
  template <bool Train>
  void run(const matrix<T>& x, const batch& b, matrix<T>& logits, cache& c) {
    check_cols(x, cfg_.num_features, "particlenet: particle features x");
    HEPGNN_CHECK(b.num_nodes() == x.rows(), "particlenet: the batch covers ", b.num_nodes(), " particles but x has ",
                 x.rows(), " rows");
    check_finite(x, "particlenet: particle features x");
    const std::size_t n = convs_.size();
    c.x.resize(n + 1);
    c.h.resize(n);
    c.graphs.resize(n);
    c.conv.resize(n);
    c.x[0] = x;
    for (std::size_t i = 0; i < n; ++i) {
      const matrix<T>& xi = c.x[i];
      build_knn_graph(xi, b, cfg_.k, false, c.graphs[i], c.knn, 0, i == 0 ? cfg_.coordinate_columns : xi.cols());
      if constexpr (Train)
        convs_[i].forward(xi, c.graphs[i], c.h[i], c.conv[i]);
      else
        convs_[i].infer(xi, c.graphs[i], c.h[i], c.conv[i]);
      matrix<T>& next = c.x[i + 1];
      next.resize(xi.rows(), c.h[i].cols() + xi.cols());
      next.leftCols(c.h[i].cols()) = c.h[i];
      next.rightCols(xi.cols()) = xi;
    }
    global_pool(c.x[n], b, aggregation::mean, c.pooled);
    fc1_.infer(c.pooled, c.act, c.nc);
    relu<T>().infer(c.act, c.act_relu, c.nc);
    fc2_.infer(c.act_relu, logits, c.nc);
  }

  static rng& seed_rng() {
    static thread_local rng gen(1);
    return gen;
  }

  particlenet_config cfg_;
  std::vector<conv_type> convs_;
  dense<T> fc1_{seed_rng(), 1, 1}, fc2_{seed_rng(), 1, 1};
};

}  // namespace hepgnn
