#pragma once
/// @file reconstruction.hpp
/// @brief The reconstruction loss of the jet autoencoders (models/autoencoder.hpp): one set loss per jet between
/// reconstructed and input constituents, also the anomaly score. The shape of loss/loss.hpp.


#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/loss.hpp"
#include "hepgnn/loss/sinkhorn.hpp"

namespace hepgnn {

/// @brief Set loss used for training and as the anomaly score.
enum class set_loss_kind {
  chamfer,   ///< mean squared-distance Chamfer
  emd,       ///< exact EMD, uniform weights, cost |a - b|^beta (assignment for equal sizes)
  sinkhorn,  ///< entropic OT (Sinkhorn), uniform weights
  energy_emd ///< exact energy mover's distance: points (eta_rel, phi_rel) = columns 0, 1 weighted by pt =
             ///< column 2 (both sides normalised to 1), cost dR^beta; pt must be >= 0 (see graph_autoencoder)
};

/// @brief Options of hepgnn::reconstruction_loss.
struct reconstruction_loss_options {
  set_loss_kind kind = set_loss_kind::chamfer;
  chamfer_options chamfer{};        ///< Chamfer settings (mean, squared Euclidean by default)
  double emd_beta = 2.0;            ///< EMD / Sinkhorn ground cost exponent (2: squared distance)
  double sinkhorn_reg = 0.01;       ///< Sinkhorn regularisation
  int sinkhorn_iterations = 200;    ///< Sinkhorn iteration cap
};

/// @brief Per-jet set loss between reconstructed (`recon`) and input constituents `x` (the same batch `b` for
/// both); `grad` gets d(mean_g loss_g) / d recon, the gradient a training step on the batch's mean loss needs.
template <class T>
vector<T> reconstruction_loss(const matrix<T>& recon, const matrix<T>& x, const batch& b,
                              const reconstruction_loss_options& options = {}, loss_output<matrix<T>> grad = nullptr) {
  HEPGNN_CHECK(recon.rows() == x.rows() && recon.cols() == x.cols(), "reconstruction_loss: recon must have the shape of x (",
               x.rows(), " x ", x.cols(), "), got ", recon.rows(), " x ", recon.cols());
  const index_t G = b.num_graphs();
  HEPGNN_CHECK(G > 0, "reconstruction_loss: need at least one jet in the batch");
  set_gradients<T> g;
  set_gradients<T>* want = grad ? &g : nullptr;
  switch (options.kind) {
    case set_loss_kind::chamfer: {
      // the mean's 1 / G scales each pair's gradient weights (not the summed gradient afterwards: other rounding)
      vector<T> l = detail::chamfer_batched(recon, b, x, b, options.chamfer, want, nullptr, T(1) / T(G));
      if (grad) *grad = std::move(g.xa);
      return l;
    }
    case set_loss_kind::emd: {
      emd_options eo;
      eo.cost.beta = options.emd_beta;
      vector<T> l = emd(recon, b, x, b, eo, want);
      if (grad) *grad = g.xa / T(G);
      return l;
    }
    case set_loss_kind::sinkhorn: {
      sinkhorn_options so;
      so.reg = options.sinkhorn_reg;
      so.max_iterations = options.sinkhorn_iterations;
      so.cost.beta = options.emd_beta;
      vector<T> l = sinkhorn(recon, b, x, b, so, want);
      if (grad) *grad = g.xa / T(G);
      return l;
    }
    case set_loss_kind::energy_emd: {
      HEPGNN_CHECK(x.cols() >= 3, "reconstruction_loss (energy_emd): need columns eta_rel, phi_rel, pt_rel, got ",
                   x.cols());
      emd_options eo;
      eo.cost.beta = options.emd_beta;
      const matrix<T> pa = recon.leftCols(2), pb = x.leftCols(2);
      const vector<T> wa = recon.col(2), wb = x.col(2);
      vector<T> l = emd(pa, wa, b, pb, wb, b, eo, want);
      if (grad) {
        grad->setZero(recon.rows(), recon.cols());
        grad->leftCols(2) = g.xa / T(G);
        grad->col(2) = g.wa / T(G);
      }
      return l;
    }
  }
  return {};
}

}  // namespace hepgnn
