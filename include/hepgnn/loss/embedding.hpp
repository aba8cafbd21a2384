#pragma once
/// @file embedding.hpp
/// @brief Metric-learning losses on an embedding: the hinge loss on pairs of rows (the shape of loss/loss.hpp).

#include <cmath>
#include <span>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Pairs of rows (first[k], second[k]) of an embedding.
struct row_pairs {
  std::span<const index_t> first, second;
  std::size_t size() const { return first.size(); }
};

/// @brief Options of hepgnn::hinge_embedding_loss.
template <class T>
struct hinge_embedding_loss_options {
  T margin = 1;           ///< negatives closer than this are pushed apart; finite and > 0
  T negative_weight = 1;  ///< weight of the negative term, finite and >= 0
};

/// @brief Hinge embedding loss and its gradient (dL/demb, when grad is given): positive pairs contribute
/// |e_i - e_j|^2, negatives `negative_weight` * max(0, margin^2 - |e_i - e_j|^2); each term is a mean over its
/// pairs. Summed in double, pair by pair.
/// @throws hepgnn::error on a bad option or a pair out of range.
template <class T>
T hinge_embedding_loss(const matrix<T>& emb, row_pairs pos, row_pairs neg,
                       const hinge_embedding_loss_options<T>& options = {}, loss_output<matrix<T>> grad = nullptr) {
  const T margin = options.margin, negative_weight = options.negative_weight;
  HEPGNN_CHECK(margin > 0 && std::isfinite(static_cast<double>(margin)),
               "hinge_embedding_loss: margin must be > 0 and finite, got ", margin);
  HEPGNN_CHECK(negative_weight >= 0 && std::isfinite(static_cast<double>(negative_weight)),
               "hinge_embedding_loss: negative_weight must be >= 0 and finite, got ", negative_weight);
  const index_t n = static_cast<index_t>(emb.rows());
  for (const row_pairs* l : {&pos, &neg}) {
    HEPGNN_CHECK(l->first.size() == l->second.size(), "hinge_embedding_loss: a pair list has ", l->first.size(),
                 " first and ", l->second.size(), " second rows");
    for (std::size_t e = 0; e < l->size(); ++e)
      HEPGNN_CHECK(l->first[e] >= 0 && l->first[e] < n && l->second[e] >= 0 && l->second[e] < n,
                   "hinge_embedding_loss: pair ", e, " (", l->first[e], ", ", l->second[e], ") is out of range for ", n,
                   " embedded rows");
  }
  if (grad) grad->setZero(emb.rows(), emb.cols());
  double loss = 0;
  const T m2 = margin * margin;
  if (pos.size()) {
    const T w = T(1) / static_cast<T>(pos.size());
    for (std::size_t e = 0; e < pos.size(); ++e) {
      const auto d = (emb.row(pos.first[e]) - emb.row(pos.second[e])).eval();
      loss += static_cast<double>(w * d.squaredNorm());
      if (grad) grad->row(pos.first[e]) += T(2) * w * d, grad->row(pos.second[e]) -= T(2) * w * d;
    }
  }
  if (neg.size()) {
    const T w = negative_weight / static_cast<T>(neg.size());
    for (std::size_t e = 0; e < neg.size(); ++e) {
      const auto d = (emb.row(neg.first[e]) - emb.row(neg.second[e])).eval();
      const T d2 = d.squaredNorm();
      if (d2 >= m2) continue;
      loss += static_cast<double>(w * (m2 - d2));
      if (grad) grad->row(neg.first[e]) -= T(2) * w * d, grad->row(neg.second[e]) += T(2) * w * d;
    }
  }
  return static_cast<T>(loss);
}

}  // namespace hepgnn
