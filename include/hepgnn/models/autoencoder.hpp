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
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/pooling.hpp"

namespace hepgnn {

/// @brief Where the bottleneck sits.
enum class ae_latent {
  pooled,       ///< one latent vector per jet (graph-level bottleneck)
  per_particle  ///< one latent vector per constituent (node-level bottleneck)
};

/// @brief Which constituent graph the encoder runs on.
enum class jet_graph { knn, fully_connected };

/// @brief Set loss used for training and as the anomaly score.
enum class set_loss_kind {
  chamfer,   ///< mean squared-distance Chamfer
  emd,       ///< exact EMD, uniform weights, cost |a - b|^beta (assignment for equal sizes)
  sinkhorn,  ///< entropic OT (Sinkhorn), uniform weights
  energy_emd ///< exact energy mover's distance: points (eta_rel, phi_rel) = columns 0, 1 weighted by pt =
             ///< column 2 (both sides normalised to 1), cost dR^beta; pt must be >= 0 (see graph_autoencoder)
};

/// @brief Reconstruction loss settings.
struct set_loss_options {
  set_loss_kind kind = set_loss_kind::chamfer;
  chamfer_options chamfer{};        ///< Chamfer settings (mean, squared Euclidean by default)
  double emd_beta = 2.0;            ///< EMD / Sinkhorn ground cost exponent (2: squared distance)
  double sinkhorn_reg = 0.01;       ///< Sinkhorn regularisation
  int sinkhorn_iterations = 200;    ///< Sinkhorn iteration cap
};

/// @brief Per-graph set loss between reconstructed and input constituents (same batch `b` for both);
/// when grad_recon is given, writes d(mean_g loss_g) / d recon there.
template <class T>
vector<T> reconstruction_loss(const matrix<T>& recon, const matrix<T>& x, const batch& b, const set_loss_options& o,
                              matrix<T>* grad_recon = nullptr) {
  HEPGNN_CHECK(recon.rows() == x.rows() && recon.cols() == x.cols(), "reconstruction_loss: recon must have the shape of x (",
               x.rows(), " x ", x.cols(), "), got ", recon.rows(), " x ", recon.cols());
  const index_t G = b.num_graphs();
  HEPGNN_CHECK(G > 0, "reconstruction_loss: need at least one jet in the batch");
  switch (o.kind) {
    case set_loss_kind::chamfer: {
      chamfer_cache cache;
      vector<T> l = chamfer(recon, b, x, b, o.chamfer, grad_recon ? &cache : nullptr);
      if (grad_recon) {
        const vector<T> d = vector<T>::Constant(G, T(1) / T(G));
        chamfer_backward(recon, b, x, b, d, cache, grad_recon, static_cast<matrix<T>*>(nullptr), o.chamfer);
      }
      return l;
    }
    case set_loss_kind::emd: {
      emd_options eo;
      eo.cost.beta = o.emd_beta;
      eo.gradient = grad_recon != nullptr;
      eo.keep_flow = false;
      auto r = emd(recon, vector<T>{}, b, x, vector<T>{}, b, eo);
      if (grad_recon) *grad_recon = r.grad_xa / T(G);
      return r.cost;
    }
    case set_loss_kind::sinkhorn: {
      sinkhorn_options so;
      so.reg = o.sinkhorn_reg;
      so.max_iterations = o.sinkhorn_iterations;
      so.cost.beta = o.emd_beta;
      so.gradient = grad_recon != nullptr;
      so.keep_plan = false;
      auto r = sinkhorn(recon, vector<T>{}, b, x, vector<T>{}, b, so);
      if (grad_recon) *grad_recon = r.grad_xa / T(G);
      return r.cost;
    }
    case set_loss_kind::energy_emd: {
      HEPGNN_CHECK(x.cols() >= 3, "reconstruction_loss (energy_emd): need columns eta_rel, phi_rel, pt_rel, got ",
                   x.cols());
      emd_options eo;
      eo.cost.beta = o.emd_beta;
      eo.gradient = grad_recon != nullptr;
      eo.keep_flow = false;
      const matrix<T> pa = recon.leftCols(2), pb = x.leftCols(2);
      const vector<T> wa = recon.col(2), wb = x.col(2);
      auto r = emd(pa, wa, b, pb, wb, b, eo);
      if (grad_recon) {
        grad_recon->setZero(recon.rows(), recon.cols());
        grad_recon->leftCols(2) = r.grad_xa / T(G);
        grad_recon->col(2) = r.grad_wa / T(G);
      }
      return r.cost;
    }
  }
  return {};
}

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
};

/// @brief The particle graph autoencoder (see the file comment). Parameters:
/// "encoder.0.nn.*", "encoder.1.nn.*" (EdgeConv edge networks), "to_latent.*", "decoder.*" (MLPs, pooled) or
/// "decoder_conv.nn.*", "decoder.*" (per-particle).
template <class T>
class graph_autoencoder {
 public:
  using scalar = T;
  using conv = edge_conv<T, mlp<T>>;

  /// @brief Training and inference buffers (owned by the caller).
  struct cache {
    matrix<T> h1, h2, pooled, z, out, dz_in;
    typename conv::cache c1, c2, c3;
    typename mlp<T>::cache m_latent, m_dec;
    std::vector<index_t> pool_argmax;
    matrix<T> d_out, d_z, d_pooled, d_h2, d_h1, d_h3, h3;
    matrix<T> raw, d_raw;  ///< decoder output before the softplus of positive_column, and its gradient
  };

  graph_autoencoder(rng& gen, const graph_autoencoder_options& o = {})
      : o_(check(o)),
        enc1_(mlp<T>(gen, {2 * o.features, o.hidden, o.hidden}, {.activate_last = true}), o.edge_aggr),
        enc2_(mlp<T>(gen, {2 * o.hidden, o.hidden, o.hidden}, {.activate_last = true}), o.edge_aggr),
        to_latent_(gen, {o.hidden, o.hidden, o.latent}),
        dec_conv_(mlp<T>(gen, {2 * (o.latent_mode == ae_latent::pooled ? 1 : o.latent), o.hidden},
                         {.activate_last = true}),
                  o.edge_aggr),
        decoder_(gen, o.latent_mode == ae_latent::pooled
                          ? std::vector<int>{o.latent, o.hidden, 2 * o.hidden, o.max_particles * o.features}
                          : std::vector<int>{o.hidden, o.hidden, o.features}) {}

  const graph_autoencoder_options& options() const { return o_; }

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
    enc1_.forward(x, g, c.h1, c.c1);
    enc2_.forward(c.h1, g, c.h2, c.c2);
    if (o_.latent_mode == ae_latent::pooled) {
      global_pool(c.h2, b, o_.pool_aggr, c.pooled, &c.pool_argmax);
      to_latent_.forward(c.pooled, c.z, c.m_latent);
      decoder_.forward(c.z, c.out, c.m_dec);
      unpack_slots(c.out, b, c.raw);
    } else {
      to_latent_.forward(c.h2, c.z, c.m_latent);
      dec_conv_.forward(c.z, g, c.h3, c.c3);
      decoder_.forward(c.h3, c.raw, c.m_dec);
    }
    positive(c.raw, recon);
  }

  /// @brief Inference (no parameter gradients needed afterwards).
  void infer(const matrix<T>& x, const graph& g, const batch& b, matrix<T>& recon, cache& c) const {
    check_input(x, b, "graph_autoencoder::infer");
    enc1_.infer(x, g, c.h1, c.c1);
    enc2_.infer(c.h1, g, c.h2, c.c2);
    if (o_.latent_mode == ae_latent::pooled) {
      global_pool(c.h2, b, o_.pool_aggr, c.pooled);
      to_latent_.infer(c.pooled, c.z, c.m_latent);
      decoder_.infer(c.z, c.out, c.m_dec);
      unpack_slots(c.out, b, c.raw);
    } else {
      to_latent_.infer(c.h2, c.z, c.m_latent);
      dec_conv_.infer(c.z, g, c.h3, c.c3);
      decoder_.infer(c.h3, c.raw, c.m_dec);
    }
    positive(c.raw, recon);
  }

  /// @brief Adds the parameter gradients of a loss with d loss / d recon = drecon (after forward on the same x).
  void backward(const matrix<T>& x, const graph& g, const batch& b, const matrix<T>& recon, const matrix<T>& drecon,
                cache& c) {
    HEPGNN_CHECK(drecon.rows() == recon.rows() && drecon.cols() == recon.cols(),
                 "graph_autoencoder::backward: drecon must have the shape of recon (", recon.rows(), " x ",
                 recon.cols(), "), got ", drecon.rows(), " x ", drecon.cols());
    c.d_raw = drecon;
    if (o_.positive_column >= 0) {
      const int pc = o_.positive_column;
      for (Eigen::Index i = 0; i < c.raw.rows(); ++i) c.d_raw(i, pc) *= sigmoid(c.raw(i, pc));
    }
    if (o_.latent_mode == ae_latent::pooled) {
      pack_slot_grad(c.d_raw, b, c.out.cols(), c.d_out);
      decoder_.backward(c.z, c.out, c.d_out, c.m_dec, &c.d_z);
      to_latent_.backward(c.pooled, c.z, c.d_z, c.m_latent, &c.d_pooled);
      global_pool_backward(b, o_.pool_aggr, c.d_pooled, &c.pool_argmax, c.d_h2);
    } else {
      decoder_.backward(c.h3, c.raw, c.d_raw, c.m_dec, &c.d_h3);
      dec_conv_.backward(c.z, g, c.h3, c.d_h3, c.c3, &c.d_z);
      to_latent_.backward(c.h2, c.z, c.d_z, c.m_latent, &c.d_h2);
    }
    enc2_.backward(c.h1, g, c.h2, c.d_h2, c.c2, &c.d_h1);
    enc1_.backward(x, g, c.h1, c.d_h1, c.c1, nullptr);
  }

  /// @brief Visits the parameters (see the class comment for the names).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    enc1_.for_each_param(prefix + "encoder.0.", f);
    enc2_.for_each_param(prefix + "encoder.1.", f);
    to_latent_.for_each_param(prefix + "to_latent.", f);
    if (o_.latent_mode == ae_latent::per_particle) dec_conv_.for_each_param(prefix + "decoder_conv.", f);
    decoder_.for_each_param(prefix + "decoder.", f);
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
    return o;
  }
  static T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }
  /// recon = raw with softplus(v) = log(1 + e^v) on positive_column (stable for large |v|).
  void positive(const matrix<T>& raw, matrix<T>& recon) const {
    recon = raw;
    if (o_.positive_column < 0) return;
    const int pc = o_.positive_column;
    for (Eigen::Index i = 0; i < raw.rows(); ++i) {
      const T v = raw(i, pc);
      recon(i, pc) = v > T(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
    }
  }
  void check_input(const matrix<T>& x, const batch& b, const char* who) const {
    HEPGNN_CHECK(x.cols() == o_.features, who, ": x must have ", o_.features, " columns, got ", x.cols());
    b.validate(static_cast<index_t>(x.rows()));
    if (o_.latent_mode == ae_latent::pooled)
      for (index_t j = 0; j < b.num_graphs(); ++j)
        HEPGNN_CHECK(b.size(j) <= o_.max_particles, who, ": jet ", j, " has ", b.size(j),
                     " constituents, more than the decoder's max_particles = ", o_.max_particles);
  }
  /// Decoder slots (G x P F) -> the first n_g constituents of each jet (N x F).
  void unpack_slots(const matrix<T>& out, const batch& b, matrix<T>& recon) const {
    const int f = o_.features;
    recon.resize(b.num_nodes(), f);
    for (index_t j = 0; j < b.num_graphs(); ++j)
      for (index_t i = 0; i < b.size(j); ++i)
        for (int c = 0; c < f; ++c) recon(b.begin(j) + i, c) = out(j, i * f + c);
  }
  void pack_slot_grad(const matrix<T>& drecon, const batch& b, Eigen::Index cols, matrix<T>& d_out) const {
    const int f = o_.features;
    d_out.setZero(b.num_graphs(), cols);
    for (index_t j = 0; j < b.num_graphs(); ++j)
      for (index_t i = 0; i < b.size(j); ++i)
        for (int c = 0; c < f; ++c) d_out(j, i * f + c) = drecon(b.begin(j) + i, c);
  }

  graph_autoencoder_options o_;
  conv enc1_, enc2_;
  mlp<T> to_latent_;
  conv dec_conv_;  // per-particle decoder only
  mlp<T> decoder_;
};

/// @brief Settings of dense_autoencoder.
struct dense_autoencoder_options {
  int features = 3;            ///< F
  index_t max_particles = 30;  ///< P: input is the flattened P x F slots (zero padded)
  int hidden = 64;             ///< width of the hidden layers
  int latent = 4;              ///< bottleneck width
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
  dense_autoencoder(rng& gen, const dense_autoencoder_options& o = {})
      : o_(o),
        encoder_(gen, {static_cast<int>(o.max_particles) * o.features, o.hidden, o.hidden, o.latent}),
        decoder_(gen, {o.latent, o.hidden, o.hidden, static_cast<int>(o.max_particles) * o.features}) {}

  const dense_autoencoder_options& options() const { return o_; }

  /// @brief Flattened slots of jets [first, first + n): G x (P F) rows, padding zero; also the real counts.
  void flatten(const jet_array<T>& jets, index_t first, index_t n, matrix<T>& flat, std::vector<index_t>& counts) const {
    HEPGNN_CHECK(jets.max_particles == o_.max_particles, "dense_autoencoder::flatten: jets have ", jets.max_particles,
                 " slots, the model expects ", o_.max_particles);
    HEPGNN_CHECK(first >= 0 && n >= 0 && first + n <= jets.num_jets, "dense_autoencoder::flatten: jets [", first, ", ",
                 first + n, ") out of range for ", jets.num_jets, " jets");
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
  dense_autoencoder_options o_;
  mlp<T> encoder_, decoder_;
};

}  // namespace hepgnn
