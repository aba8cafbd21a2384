#pragma once
/// @file loss.hpp
/// @brief The one shape of every hepgnn loss, and the gradient structs of the set losses.
///
///     value = loss(inputs..., const <name>_options& options = {}, <gradients>* grad = nullptr
///                  [, <name>_details* details = nullptr]);
///
/// - inputs: prediction first, then target(s). Set losses: (xa, [wa], ba, xb, [wb], bb) for a batch of graph
///   pairs, (xa, [wa], xb, [wb]) for one pair (weights omitted or empty: uniform), (a, b, M) for Sinkhorn on a
///   cost matrix.
/// - options: every setting of the loss (`{.delta = 0.5}`), checked on every call (hepgnn::error naming it).
/// - grad: computed only when non-null, and written (not added). Row losses: `matrix<T>` dL/dprediction. Set
///   losses: `set_gradients<T>` of sum_g value_g, laid out like the inputs; `cost_matrix_gradients<T>` for (a, b, M).
/// - value: T for row losses and single pairs; `vector<T>`, one per graph, for batched set losses.
/// - details: what is neither value nor gradient (transport plans, duals, iteration counts, nearest neighbours),
///   filled only when non-null; per graph, a single pair filling entry 0.

#include <type_traits>

#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief An optional output of a loss (grad, details): a plain pointer that takes no part in deducing T, so that
/// `nullptr` may be passed where T comes from the inputs.
template <class X>
using loss_output = std::type_identity_t<X>*;

/// @brief Gradients of a set loss: d(sum_g value_g) / d inputs, laid out like the inputs.
template <class T>
struct set_gradients {
  matrix<T> xa, xb;  ///< w.r.t. the coordinates
  vector<T> wa, wb;  ///< w.r.t. the weights as given (empty without weights, and from sliced_wasserstein)
};

/// @brief Gradients of a loss on a cost matrix M between histograms a and b.
template <class T>
struct cost_matrix_gradients {
  vector<T> a, b;  ///< w.r.t. the histograms as given
  matrix<T> M;     ///< w.r.t. the cost matrix
};

namespace detail {
/// @brief Sizes the set gradients like the inputs and zeroes them; the weight gradients only where weights were
/// given and the loss differentiates them (`weights`), empty otherwise.
template <class T>
void zero_set_gradients(set_gradients<T>& g, const matrix<T>& xa, const vector<T>& wa, const matrix<T>& xb,
                        const vector<T>& wb, bool weights = true) {
  g.xa.setZero(xa.rows(), xa.cols());
  g.xb.setZero(xb.rows(), xb.cols());
  g.wa.setZero(weights ? wa.size() : 0);
  g.wb.setZero(weights ? wb.size() : 0);
}
}  // namespace detail

}  // namespace hepgnn
