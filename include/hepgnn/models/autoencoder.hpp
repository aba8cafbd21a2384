#pragma once
/// @file autoencoder.hpp
/// @brief Jet autoencoders for anomaly detection (particle graph autoencoders): an EdgeConv encoder on a kNN
/// or fully connected constituent graph, a pooled (per jet) or per-particle latent bottleneck, a decoder back
/// to constituents, trained with a set loss (Chamfer, exact EMD or Sinkhorn); the anomaly score of a jet is
/// its reconstruction loss. A dense autoencoder on flattened constituents is the baseline.
///
/// Data flow of graph_autoencoder (N packed constituents of G jets, F features):
///   x (N x F) -> EdgeConv(F -> H) -> EdgeConv(H -> H) -> h (N x H)
///   pooled:       pool_g(h) (G x H) -> MLP -> z (G x L) -> MLP -> G x (P F) -> first n_g slots of jet g -> N x F
///   per-particle: MLP(h) -> z (N x L) -> EdgeConv(L -> H) -> MLP -> N x F
/// The pooled bottleneck has to describe the whole jet with L numbers; with L small it cannot copy its input,
/// so jets unlike the training sample (extra prongs) reconstruct worse.

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/loss/reconstruction.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/slot_unpack.hpp"
#include "hepgnn/nn/softplus_column.hpp"

namespace hepgnn {

/// @brief Where the bottleneck sits.
enum class ae_latent {
  pooled,       ///< one latent vector per jet (graph-level bottleneck)
  per_particle  ///< one latent vector per constituent (node-level bottleneck)
};

/// @brief Which constituent graph the encoder runs on.
enum class jet_graph { knn, fully_connected };

/// @brief Settings of graph_autoencoder.
struct graph_autoencoder_options {
  int features = 3;                 ///< F: (eta_rel, phi_rel, pt_rel) by default
  int hidden = 32;                  ///< H: EdgeConv / MLP width
  int latent = 4;                   ///< L: bottleneck width (per jet or per particle)
  index_t max_particles = 30;       ///< P: decoder slots (pooled latent)
  ae_latent latent_mode = ae_latent::pooled;
  jet_graph graph_kind = jet_graph::knn;
  int k = 8;                        ///< kNN neighbours (in (eta_rel, phi_rel), delta-R metric)
  aggregation edge_aggr = aggregation::mean;  ///< EdgeConv aggregation
  aggregation pool_aggr = aggregation::mean;  ///< jet-level pooling (pooled latent)
  int positive_column = 2;          ///< output column passed through softplus (pt >= 0); -1: none
  std::uint64_t seed = 1;           ///< weight initialisation (the constructor from options alone)

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("features", features, 2, 1 << 12);
    f("hidden", hidden, 1, 1 << 14);
    f("latent", latent, 1, 1 << 14);
    f("max_particles", max_particles, 1, 1 << 14);
    f("latent_mode", latent_mode, 0, 1);
    f("graph_kind", graph_kind, 0, 1);
    f("k", k, 1, 1 << 12);
    f("edge_aggr", edge_aggr, 0, 2);
    f("pool_aggr", pool_aggr, 0, 2);
    f("positive_column", positive_column, -1, (1 << 12) - 1);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief The particle graph autoencoder (see the file comment), as one of two chains chosen by latent_mode.
/// Parameters: "encoder.0.nn.*", "encoder.1.nn.*" (EdgeConv edge networks), "to_latent.*", "decoder.*" (MLPs,
/// pooled) or "decoder_conv.nn.*", "decoder.*" (per-particle).
template <class T>
class graph_autoencoder {
 public:
  using scalar = T;
  using conv = edge_conv<T, mlp<T>>;
  /// EdgeConv, EdgeConv, pool per jet, MLP to the latent, MLP to P slots, slots to constituents, softplus(pt).
  using pooled_net = graph_sequential<T, dynamic, conv, conv, global_pool_layer<T>, mlp<T>, mlp<T>, slot_unpack<T>,
                                      softplus_column<T>>;
  /// EdgeConv, EdgeConv, MLP to the latent per particle, EdgeConv, MLP to the features, softplus(pt).
  using per_particle_net = graph_sequential<T, dynamic, conv, conv, mlp<T>, conv, mlp<T>, softplus_column<T>>;

  /// @brief Training and inference buffers (owned by the caller).
  struct cache {
    typename pooled_net::cache pooled;
    typename per_particle_net::cache per_particle;
  };

  using config_type = graph_autoencoder_options;
  static constexpr std::string_view family = "graph_autoencoder";
  static constexpr int format_version = 1;

  /// @brief What infer(x, b, workspace) writes: the jets' graph, the chain's cache and the reconstruction.
  struct workspace {
    graph g;
    cache c;
    matrix<T> recon;
  };

  /// @brief Weights drawn from `o.seed`.
  explicit graph_autoencoder(const graph_autoencoder_options& o = {}) : o_(check(o)), net_(make(o_)) {}
  /// @brief Weights drawn from `gen`.
  graph_autoencoder(rng& gen, const graph_autoencoder_options& o) : o_(check(o)), net_(make(gen, o_)) {}
  explicit graph_autoencoder(rng& gen) : graph_autoencoder(gen, graph_autoencoder_options{}) {}

  const graph_autoencoder_options& options() const { return o_; }
  const graph_autoencoder_options& config() const { return o_; }

  /// @brief The constituent graph of packed jets x (N x F, columns 0, 1 = eta_rel, phi_rel) in batch b.
  graph build_graph(const matrix<T>& x, const batch& b) const {
    HEPGNN_CHECK(x.cols() == o_.features && o_.features >= 2, "graph_autoencoder::build_graph: x must be N x ",
                 o_.features, " with eta_rel, phi_rel first, got ", x.rows(), " x ", x.cols());
    b.validate(static_cast<index_t>(x.rows()));
    if (o_.graph_kind == jet_graph::fully_connected) return fully_connected(b);
    const matrix<T> coords = x.leftCols(2);
    return knn_graph<metric::delta_r, 2>(coords, o_.k, b);
  }

  /// @brief Reconstructs x (N x F packed jets in batch b, graph g from build_graph): recon has x's shape.
  void forward(const matrix<T>& x, const graph& g, const batch& b, matrix<T>& recon, cache& c) {
    check_input(x, b, "graph_autoencoder::forward");
    std::visit([&](auto& net) { net.forward(x, chain_context{&b, &g}, recon, cache_of(net, c)); }, net_);
  }

  /// @brief Reconstruction of x (N x F packed jets in batch b), held in `ws`; builds the graph itself.
  const matrix<T>& infer(const matrix<T>& x, const batch& b, workspace& ws) const {
    ws.g = build_graph(x, b);
    infer(x, ws.g, b, ws.recon, ws.c);
    return ws.recon;
  }

  /// @brief Inference on a given graph (no parameter gradients needed afterwards).
  void infer(const matrix<T>& x, const graph& g, const batch& b, matrix<T>& recon, cache& c) const {
    check_input(x, b, "graph_autoencoder::infer");
    std::visit([&](const auto& net) { net.infer(x, chain_context{&b, &g}, recon, cache_of(net, c)); }, net_);
  }

  /// @brief The decoder's output before the softplus of positive_column, from the last call with cache c.
  const matrix<T>& decoder_output(const cache& c) const {
    if (o_.latent_mode == ae_latent::pooled) return pooled_net::template output<5>(c.pooled);
    return per_particle_net::template output<4>(c.per_particle);
  }

  /// @brief Adds the parameter gradients of a loss with d loss / d recon = drecon (after forward on the same x).
  void backward(const matrix<T>& x, const graph& g, const batch& b, const matrix<T>& recon, const matrix<T>& drecon,
                cache& c) {
    HEPGNN_CHECK(drecon.rows() == recon.rows() && drecon.cols() == recon.cols(),
                 "graph_autoencoder::backward: drecon must have the shape of recon (", recon.rows(), " x ",
                 recon.cols(), "), got ", drecon.rows(), " x ", drecon.cols());
    std::visit([&](auto& net) { net.backward(x, chain_context{&b, &g}, recon, drecon, cache_of(net, c), nullptr); },
               net_);
  }

  /// @brief Visits the parameters (see the class comment for the names).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    std::visit(
        [&](auto& net) {
          net.template get<0>().for_each_param(prefix + "encoder.0.", f);
          net.template get<1>().for_each_param(prefix + "encoder.1.", f);
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(net)>, pooled_net>) {
            net.template get<3>().for_each_param(prefix + "to_latent.", f);
            net.template get<4>().for_each_param(prefix + "decoder.", f);
          } else {
            net.template get<2>().for_each_param(prefix + "to_latent.", f);
            net.template get<3>().for_each_param(prefix + "decoder_conv.", f);
            net.template get<4>().for_each_param(prefix + "decoder.", f);
          }
        },
        net_);
  }

 private:
  static const graph_autoencoder_options& check(const graph_autoencoder_options& o) {
    HEPGNN_CHECK(o.features >= 2 && o.hidden > 0 && o.latent > 0 && o.max_particles > 0 && o.k > 0,
                 "graph_autoencoder: need features >= 2 and hidden, latent, max_particles, k > 0, got features=",
                 o.features, ", hidden=", o.hidden, ", latent=", o.latent, ", max_particles=", o.max_particles,
                 ", k=", o.k);
    HEPGNN_CHECK(o.positive_column >= -1 && o.positive_column < o.features,
                 "graph_autoencoder: positive_column must be -1 or a column index below features=", o.features,
                 ", got ", o.positive_column);
    check_config(o, "graph_autoencoder");  // and the bounds a weight file may ask for
    return o;
  }
  static std::variant<pooled_net, per_particle_net> make(const graph_autoencoder_options& o) {
    rng gen(o.seed);
    return make(gen, o);
  }
  /// Both variants draw their weights in the same order (encoder, to_latent, decoder EdgeConv, decoder), so a seed
  /// gives the same encoder whichever latent is chosen.
  static std::variant<pooled_net, per_particle_net> make(rng& gen, const graph_autoencoder_options& o) {
    const bool pooled = o.latent_mode == ae_latent::pooled;
    conv enc1(mlp<T>(gen, {2 * o.features, o.hidden, o.hidden}, {.activate_last = true}), o.edge_aggr);
    conv enc2(mlp<T>(gen, {2 * o.hidden, o.hidden, o.hidden}, {.activate_last = true}), o.edge_aggr);
    mlp<T> to_latent(gen, {o.hidden, o.hidden, o.latent});
    conv dec_conv(mlp<T>(gen, {2 * (pooled ? 1 : o.latent), o.hidden}, {.activate_last = true}), o.edge_aggr);
    mlp<T> decoder(gen, pooled ? std::vector<int>{o.latent, o.hidden, 2 * o.hidden, o.max_particles * o.features}
                               : std::vector<int>{o.hidden, o.hidden, o.features});
    if (pooled)
      return pooled_net(std::move(enc1), std::move(enc2), global_pool_layer<T>(o.pool_aggr), std::move(to_latent),
                        std::move(decoder), slot_unpack<T>(o.features), softplus_column<T>(o.positive_column));
    return per_particle_net(std::move(enc1), std::move(enc2), std::move(to_latent), std::move(dec_conv),
                            std::move(decoder), softplus_column<T>(o.positive_column));
  }
  static typename pooled_net::cache& cache_of(const pooled_net&, cache& c) { return c.pooled; }
  static typename per_particle_net::cache& cache_of(const per_particle_net&, cache& c) { return c.per_particle; }

  void check_input(const matrix<T>& x, const batch& b, const char* who) const {
    HEPGNN_CHECK(x.cols() == o_.features, who, ": x must have ", o_.features, " columns, got ", x.cols());
    b.validate(static_cast<index_t>(x.rows()));
    if (o_.latent_mode == ae_latent::pooled)
      for (index_t j = 0; j < b.num_graphs(); ++j)
        HEPGNN_CHECK(b.size(j) <= o_.max_particles, who, ": jet ", j, " has ", b.size(j),
                     " constituents, more than the decoder's max_particles = ", o_.max_particles);
  }

  graph_autoencoder_options o_;
  std::variant<pooled_net, per_particle_net> net_;
};

/// @brief Settings of dense_autoencoder.
struct dense_autoencoder_options {
  int features = 3;            ///< F
  index_t max_particles = 30;  ///< P: input is the flattened P x F slots (zero padded)
  int hidden = 64;             ///< width of the hidden layers
  int latent = 4;              ///< bottleneck width
  std::uint64_t seed = 1;      ///< weight initialisation (the constructor from options alone)

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("features", features, 1, 1 << 12);
    f("max_particles", max_particles, 1, 1 << 14);
    f("hidden", hidden, 1, 1 << 14);
    f("latent", latent, 1, 1 << 14);
    f("seed", seed, 0, 9007199254740992.0);
  }
};

/// @brief Baseline: MLP autoencoder on the flattened, zero-padded constituent slots (G x P F). Parameters
/// "encoder.*", "decoder.*".
template <class T>
class dense_autoencoder {
 public:
  using scalar = T;
  struct cache {
    matrix<T> z, dz;
    typename mlp<T>::cache e, d;
  };
  using config_type = dense_autoencoder_options;
  static constexpr std::string_view family = "dense_autoencoder";
  static constexpr int format_version = 1;

  /// @brief What infer(flat, workspace) writes.
  struct workspace {
    cache c;
    matrix<T> recon;
  };

  /// @brief Weights drawn from `o.seed`.
  explicit dense_autoencoder(const dense_autoencoder_options& o = {}) : dense_autoencoder(o, rng(o.seed)) {}
  /// @brief Weights drawn from `gen`.
  dense_autoencoder(rng& gen, const dense_autoencoder_options& o)
      : o_((check_config(o, "dense_autoencoder"), o)),
        encoder_(gen, {static_cast<int>(o.max_particles) * o.features, o.hidden, o.hidden, o.latent}),
        decoder_(gen, {o.latent, o.hidden, o.hidden, static_cast<int>(o.max_particles) * o.features}) {}
  explicit dense_autoencoder(rng& gen) : dense_autoencoder(gen, dense_autoencoder_options{}) {}

  const dense_autoencoder_options& options() const { return o_; }
  const dense_autoencoder_options& config() const { return o_; }

  /// @brief Flattened slots of jets [first, first + n): G x (P F) rows, padding zero; also the real counts.
  void flatten(const jet_array<T>& jets, index_t first, index_t n, matrix<T>& flat, std::vector<index_t>& counts) const {
    HEPGNN_CHECK(jets.max_particles == o_.max_particles, "dense_autoencoder::flatten: jets have ", jets.max_particles,
                 " slots, the model expects ", o_.max_particles);
    HEPGNN_CHECK(first >= 0 && n >= 0 && n <= jets.num_jets - first, "dense_autoencoder::flatten: jets [", first, ", ",
                 static_cast<long long>(first) + n, ") out of range for ", jets.num_jets, " jets");
    const int f = o_.features;
    flat.setZero(n, o_.max_particles * f);
    counts.resize(static_cast<std::size_t>(n));
    for (index_t j = 0; j < n; ++j) {
      counts[j] = jets.count(first + j);
      for (index_t i = 0; i < counts[j]; ++i)
        for (int c = 0; c < f; ++c) flat(j, i * f + c) = jets.row(first + j, i)(c);
    }
  }

  void forward(const matrix<T>& flat, matrix<T>& recon, cache& c) {
    encoder_.forward(flat, c.z, c.e);
    decoder_.forward(c.z, recon, c.d);
  }
  void infer(const matrix<T>& flat, matrix<T>& recon, cache& c) const {
    encoder_.infer(flat, c.z, c.e);
    decoder_.infer(c.z, recon, c.d);
  }
  /// @brief Reconstruction of the flattened slots, held in `ws`.
  const matrix<T>& infer(const matrix<T>& flat, workspace& ws) const {
    infer(flat, ws.recon, ws.c);
    return ws.recon;
  }
  void backward(const matrix<T>& flat, const matrix<T>& recon, const matrix<T>& drecon, cache& c) {
    decoder_.backward(c.z, recon, drecon, c.d, &c.dz);
    encoder_.backward(flat, c.z, c.dz, c.e, nullptr);
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    encoder_.for_each_param(prefix + "encoder.", f);
    decoder_.for_each_param(prefix + "decoder.", f);
  }

  /// @brief Per-jet mean squared error over the real slots (F n_g values); with grad, d(mean_g loss_g)/d recon.
  std::vector<double> masked_mse(const matrix<T>& recon, const matrix<T>& flat, const std::vector<index_t>& counts,
                                 matrix<T>* grad = nullptr) const {
    HEPGNN_CHECK(recon.rows() == flat.rows() && recon.cols() == flat.cols() &&
                     counts.size() == static_cast<std::size_t>(flat.rows()),
                 "dense_autoencoder::masked_mse: recon (", recon.rows(), " x ", recon.cols(), "), flat (", flat.rows(),
                 " x ", flat.cols(), ") and counts (", counts.size(), ") must match");
    const int f = o_.features;
    const Eigen::Index G = flat.rows();
    std::vector<double> l(static_cast<std::size_t>(G), 0.0);
    if (grad) grad->setZero(recon.rows(), recon.cols());
    for (Eigen::Index j = 0; j < G; ++j) {
      const index_t m = counts[j] * f;
      if (m == 0) continue;
      for (index_t q = 0; q < m; ++q) {
        const T d = recon(j, q) - flat(j, q);
        l[j] += static_cast<double>(d * d);
        if (grad) (*grad)(j, q) = T(2) * d / T(m) / T(G);
      }
      l[j] /= m;
    }
    return l;
  }

 private:
  dense_autoencoder(const dense_autoencoder_options& o, rng&& gen) : dense_autoencoder(gen, o) {}

  dense_autoencoder_options o_;
  mlp<T> encoder_, decoder_;
};

}  // namespace hepgnn
