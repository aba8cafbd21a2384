#pragma once
/// @file gan_checkpoint.hpp
/// @brief Training checkpoints of a GAN pair (models/mpgan_training.hpp's gan_pair: MPGAN, EPiC-GAN): both
/// networks, both optimizers, the pair's noise/dropout generator and fit()'s position, from which train_gan resumes
/// with the same bits as a run never interrupted.
///
/// A pair is two models with two optimizers (two learning rates); io/checkpoint.hpp saves one of each per file, so
/// the checkpoint is a folder: discriminator.ckpt, then generator.ckpt (which also holds the noise generator and any
/// caller generators). Each file is written atomically; a crash between the two leaves them at different steps,
/// which load_gan_checkpoint refuses by name rather than resuming a mismatched pair.

#include <filesystem>
#include <string>

#include "hepgnn/io/checkpoint.hpp"
#include "hepgnn/models/mpgan_training.hpp"

namespace hepgnn {

/// @brief Saves `gan` and `at` into the folder `dir` (created if absent); `rngs` are further generators of the
/// caller (e.g. the one that draws evaluation noise), saved with the pair's own.
template <class G, class D, class O>
void save_gan_checkpoint(const std::filesystem::path& dir, gan_pair<G, D, O>& gan, const training_position& at,
                         checkpoint_rngs rngs = {}) {
  HEPGNN_CHECK(!rngs.contains("gan_pair.noise"), "save_gan_checkpoint: the rng name 'gan_pair.noise' is the pair's own");
  std::filesystem::create_directories(dir);
  save_checkpoint(dir / "discriminator.ckpt", gan.discriminator(), gan.discriminator_optimizer(), at);
  rngs["gan_pair.noise"] = &gan.noise_generator();
  save_checkpoint(dir / "generator.ckpt", gan.generator(), gan.generator_optimizer(), at, rngs);
}

/// @brief Restores what save_gan_checkpoint wrote into `gan` and `rngs`, and returns the position to pass as
/// fit_options::resume. Refuses (hepgnn::error) files of other networks or optimizers, damaged files, and a pair
/// whose two files are at different positions.
template <class G, class D, class O>
training_position load_gan_checkpoint(const std::filesystem::path& dir, gan_pair<G, D, O>& gan,
                                      checkpoint_rngs rngs = {}) {
  HEPGNN_CHECK(!rngs.contains("gan_pair.noise"), "load_gan_checkpoint: the rng name 'gan_pair.noise' is the pair's own");
  // Load into copies first: a refused pair leaves `gan` as it was.
  G g = gan.generator();
  D d = gan.discriminator();
  O og = gan.generator_optimizer(), od = gan.discriminator_optimizer();
  rng noise = gan.noise_generator();
  checkpoint_rngs mine = rngs;
  std::map<std::string, rng> copies;
  for (auto& [name, gen] : mine) {
    HEPGNN_CHECK(gen, "load_gan_checkpoint: rng '", name, "' is null");
    gen = &copies.emplace(name, *gen).first->second;
  }
  mine["gan_pair.noise"] = &noise;
  const training_position a = load_checkpoint(dir / "generator.ckpt", g, og, mine);
  const training_position b = load_checkpoint(dir / "discriminator.ckpt", d, od);
  HEPGNN_CHECK(a.epoch == b.epoch && a.next_item == b.next_item && a.global_step == b.global_step,
               "load_gan_checkpoint('", dir.string(), "'): generator.ckpt is at epoch ", a.epoch, ", step ",
               a.global_step, " but discriminator.ckpt at epoch ", b.epoch, ", step ", b.global_step,
               " (a run stopped between the two writes): resume from an earlier checkpoint folder");
  gan.generator() = std::move(g);
  gan.discriminator() = std::move(d);
  gan.generator_optimizer() = std::move(og);
  gan.discriminator_optimizer() = std::move(od);
  gan.noise_generator() = noise;
  for (auto& [name, gen] : rngs) *gen = copies.at(name);
  return a;
}

}  // namespace hepgnn
