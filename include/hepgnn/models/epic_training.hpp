#pragma once
/// @file epic_training.hpp
/// @brief Training EPiC-GAN (models/epic_generator.hpp, models/epic_discriminator.hpp) with the GAN step that
/// MPGAN's training uses (gan_pair of models/mpgan_training.hpp): one least-squares D step, then one G step,
/// per minibatch, through train/trainer.hpp's fit().
///
/// As EPiC-GAN's training.py (GAN_type LSGAN): Adam (beta1 0.9) for both networks at lr 1e-4
/// (gan_training_config::epic()), noise N(0, 1), LSGAN targets 1 (real) and 0 (fake) on the discriminator's
/// unbounded score. EPiC-GAN halves both losses (0.5 * mean(...)); Adam's steps do not change when a loss is
/// scaled (up to eps), so the library's least-squares losses (loss/least_squares_gan.hpp) are used unscaled.
/// EPiC-GAN batches jets of equal multiplicity together (no padding); here a batch mixes multiplicities and
/// only real particles are computed, which is the same computation per jet.

#include "hepgnn/models/epic_discriminator.hpp"
#include "hepgnn/models/epic_generator.hpp"
#include "hepgnn/models/mpgan_training.hpp"
#include "hepgnn/optim/adam.hpp"

namespace hepgnn {

/// @brief EPiC-GAN's generator and discriminator with their Adam optimizers.
template <class T>
using epic_gan = gan_pair<epic_generator<T>, epic_discriminator<T>, adam<T>>;

}  // namespace hepgnn
