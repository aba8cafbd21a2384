#pragma once
/// @file particlenet.hpp
/// @brief hepgnn::particlenet: JetNet's ParticleNet (the FPND network) as a graph_sequential: three EdgeConv(mean)
/// blocks on kNN graphs with concatenation skips, global mean pool, fc1, ReLU, fc2. Loads JetNet's weights by name.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/repeated.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/nn/skips.hpp"

namespace hepgnn {

/// @brief Hyperparameters of particlenet (defaults: JetNet's `_ParticleNet(30, 3)` with 5 classes).
struct particlenet_config {
  int num_features = 3;                   ///< node features (eta_rel, phi_rel, pt_rel)
  int coordinate_columns = 2;             ///< block 0 builds its kNN graph on the first columns (eta, phi)
  int k = 16;                             ///< neighbours per node, node itself excluded (knn_graph loop=False)
  std::vector<int> channels{64, 128, 256};  ///< edge-net width of each EdgeConv block
  int fc = 256;                           ///< fc1 width (the FPND activations)
  int classes = 5;
  std::uint64_t seed = 1;                 ///< weight initialisation

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("num_features", num_features, 1, 1 << 12);
    f("coordinate_columns", coordinate_columns, 1, 1 << 12);
    f("k", k, 1, 1 << 12);
    f("channels", channels, 1, 1 << 14);
    f("fc", fc, 1, 1 << 16);
    f("classes", classes, 1, 1 << 16);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief JetNet's ParticleNet as a chain of hepgnn elements.
///
/// Block i: kNN graph (k, self excluded) within each jet, on (eta, phi) for block 0 and on all current
/// features after it; h = EdgeConv(mean) with edge net [Linear -> BatchNorm1d -> ReLU] x 3; x <- [h, x]
/// (block output in front: concat_skip). Then global mean pool per jet, fc1 (the FPND activation), ReLU, fc2
/// (logits; dropout is identity in evaluation). Node widths 3 -> 67 -> 195 -> 451.
/// Names as JetNet's state_dict: "edge_nets.<i>.model.<j>.*", "fc1.0.*", "fc2.*" (the duplicate
/// "edge_convs.*" entries of the .pt file are not needed).
template <class T>
class particlenet {
 public:
  using scalar = T;
  using edge_net = sequential<T, dense<T>, batch_norm<T>, relu<T>, dense<T>, batch_norm<T>, relu<T>, dense<T>,
                              batch_norm<T>, relu<T>>;
  using conv_type = edge_conv<T, edge_net>;
  using block_type = concat_skip<knn_builder<>, conv_type>;
  using network = graph_sequential<T, dynamic, repeated<block_type>, global_pool_layer<T>, dense<T>, relu<T>, dense<T>>;
  using cache = typename network::cache;
  using config_type = particlenet_config;
  static constexpr std::string_view family = "particlenet";
  static constexpr int format_version = 1;

  /// @brief What inference writes: the chain's cache and the logits (reused across calls; one per thread).
  struct workspace {
    cache c;
    matrix<T> logits;
  };

  /// @brief Weights drawn from `cfg.seed`.
  explicit particlenet(const particlenet_config& cfg = {}) : cfg_(cfg), net_(make(cfg_)) {}
  /// @brief Weights drawn from `gen` (several models from one stream).
  particlenet(rng& gen, particlenet_config cfg) : cfg_(std::move(cfg)), net_(make(gen, cfg_)) {}
  explicit particlenet(rng& gen) : particlenet(gen, particlenet_config{}) {}

  const particlenet_config& config() const { return cfg_; }
  const network& net() const { return net_; }
  /// @brief Node width after the last block (451 for JetNet).
  int node_width() const { return fc1().in_features(); }
  conv_type& block(std::size_t i) { return blocks()[i].inner().template get<1>(); }

  /// @brief Logits (G x classes) for the jets of x (rows = particles, batch b), held in `ws`. Evaluation mode
  /// (BatchNorm running statistics).
  const matrix<T>& infer(const matrix<T>& x, const batch& b, workspace& ws) const {
    infer(x, b, ws.logits, ws.c);
    return ws.logits;
  }
  /// @brief fc1's output (G x fc, the FPND features) of the last infer() with `ws`.
  static const matrix<T>& activations(const workspace& ws) { return network::template output<2>(ws.c); }

  /// @brief The chain element's inference (the model nests in other chains as a batch layer).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& logits, cache& c) const {
    check(x, b);
    net_.infer(x, b, logits, c);
  }

  /// @brief Training forward (BatchNorm batch statistics over the edges of the whole batch).
  void forward(const matrix<T>& x, const batch& b, matrix<T>& logits, cache& c) {
    check(x, b);
    net_.forward(x, b, logits, c);
  }

  /// @brief Backward of the matching forward: adds parameter gradients, writes dL/dx (kNN graphs held fixed).
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& logits, const matrix<T>& dlogits, cache& c,
                matrix<T>* dx) {
    net_.backward(x, b, logits, dlogits, c, dx);
  }

  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < blocks().count(); ++i) block(i).nn().for_each_param(edge_net_prefix(prefix, i), f);
    fc1().for_each_param(prefix + "fc1.0.", f);
    net_.template get<4>().for_each_param(prefix + "fc2.", f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < blocks().count(); ++i) block(i).nn().for_each_buffer(edge_net_prefix(prefix, i), f);
  }

 private:
  static std::string edge_net_prefix(const std::string& prefix, std::size_t i) {
    return prefix + "edge_nets." + std::to_string(i) + ".model.";
  }
  repeated<block_type>& blocks() { return net_.template get<0>(); }
  const dense<T>& fc1() const { return net_.template get<2>(); }
  dense<T>& fc1() { return net_.template get<2>(); }

  void check(const matrix<T>& x, const batch& b) const {
    check_cols(x, cfg_.num_features, "particlenet: particle features x");
    HEPGNN_CHECK(b.num_nodes() == x.rows(), "particlenet: the batch covers ", b.num_nodes(), " particles but x has ",
                 x.rows(), " rows");
    check_finite(x, "particlenet: particle features x");
  }

  static network make(const particlenet_config& cfg) {
    rng gen(cfg.seed);
    return make(gen, cfg);
  }
  static network make(rng& gen, const particlenet_config& cfg) {
    HEPGNN_CHECK(cfg.num_features > 0 && cfg.coordinate_columns > 0 && cfg.coordinate_columns <= cfg.num_features,
                 "particlenet: coordinate_columns must be in [1, num_features = ", cfg.num_features, "], got ",
                 cfg.coordinate_columns);
    HEPGNN_CHECK(cfg.k > 0 && !cfg.channels.empty(), "particlenet: k and the channel list must be positive / non-empty");
    check_config(cfg, "particlenet");  // and the bounds a weight file may ask for
    std::vector<block_type> blocks;
    int width = cfg.num_features;
    for (int c : cfg.channels) {
      // Block 0 searches (eta, phi); later blocks all current features.
      knn_builder<> knn(cfg.k, 0, blocks.empty() ? cfg.coordinate_columns : -1);
      blocks.emplace_back(knn, conv_type(edge_net(dense<T>(gen, 2 * width, c), batch_norm<T>(c), relu<T>(),
                                                  dense<T>(gen, c, c), batch_norm<T>(c), relu<T>(), dense<T>(gen, c, c),
                                                  batch_norm<T>(c), relu<T>()),
                                         aggregation::mean));
      width += c;
    }
    dense<T> fc1(gen, width, cfg.fc);
    dense<T> fc2(gen, cfg.fc, cfg.classes);
    return network(repeated<block_type>(std::move(blocks)), global_pool_layer<T>(aggregation::mean), std::move(fc1),
                   relu<T>(), std::move(fc2));
  }

  particlenet_config cfg_;
  network net_;
};

}  // namespace hepgnn
