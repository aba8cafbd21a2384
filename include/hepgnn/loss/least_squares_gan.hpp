#pragma once
/// @file least_squares_gan.hpp
/// @brief The least-squares GAN losses (Mao et al. 2017) as MPGAN trains with them (loss "ls" of its train.py):
/// discriminator mean((D(real) - 1)^2) + mean(D(fake)^2), generator mean((D(fake) - 1)^2), each mean over the batch
/// (PyTorch MSELoss against labels of ones and zeros, no 1/2 factors). The shape of loss/loss.hpp.

#include <cmath>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/loss/loss.hpp"

namespace hepgnn {

/// @brief Options of the least-squares GAN losses: the targets of real and fake scores (MPGAN: 1 and 0, no label
/// smoothing).
template <class T>
struct lsgan_options {
  T real_label = 1;  ///< target of D on real jets (and of the generator's loss), finite
  T fake_label = 0;  ///< target of D on generated jets, finite
};

/// @brief Gradients of lsgan_discriminator_loss with respect to its two score matrices.
template <class T>
struct lsgan_gradients {
  matrix<T> real, fake;
};

namespace detail {
template <class T>
void check_lsgan(const matrix<T>& scores, const lsgan_options<T>& o, const char* fn, const char* name) {
  HEPGNN_CHECK(scores.rows() > 0 && scores.cols() == 1, fn, ": ", name, " must be B x 1 (one score per jet, B >= 1), got ",
               scores.rows(), " x ", scores.cols());
  HEPGNN_CHECK(std::isfinite(static_cast<double>(o.real_label)) && std::isfinite(static_cast<double>(o.fake_label)), fn,
               ": real_label and fake_label must be finite, got ", o.real_label, ", ", o.fake_label);
}
}  // namespace detail

/// @brief Discriminator loss mean((real_scores - real_label)^2) + mean((fake_scores - fake_label)^2); the two
/// batches may differ in size. Writes d/d(real_scores) and d/d(fake_scores) into *grad unless it is null.
template <class T>
T lsgan_discriminator_loss(const matrix<T>& real_scores, const matrix<T>& fake_scores,
                           const lsgan_options<T>& options = {}, loss_output<lsgan_gradients<T>> grad = nullptr) {
  detail::check_lsgan(real_scores, options, "lsgan_discriminator_loss", "real_scores");
  detail::check_lsgan(fake_scores, options, "lsgan_discriminator_loss", "fake_scores");
  const T nr = static_cast<T>(real_scores.rows()), nf = static_cast<T>(fake_scores.rows());
  const matrix<T> dr = real_scores.array() - options.real_label;
  const matrix<T> df = fake_scores.array() - options.fake_label;
  if (grad) {
    grad->real = (T(2) / nr) * dr;
    grad->fake = (T(2) / nf) * df;
  }
  return dr.squaredNorm() / nr + df.squaredNorm() / nf;
}

/// @brief Generator loss mean((fake_scores - real_label)^2). Writes d/d(fake_scores) into *grad unless it is null.
template <class T>
T lsgan_generator_loss(const matrix<T>& fake_scores, const lsgan_options<T>& options = {},
                       loss_output<matrix<T>> grad = nullptr) {
  detail::check_lsgan(fake_scores, options, "lsgan_generator_loss", "fake_scores");
  const T nf = static_cast<T>(fake_scores.rows());
  const matrix<T> df = fake_scores.array() - options.real_label;
  if (grad) *grad = (T(2) / nf) * df;
  return df.squaredNorm() / nf;
}

}  // namespace hepgnn
