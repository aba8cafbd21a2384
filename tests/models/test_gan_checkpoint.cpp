// models/gan_checkpoint.hpp: a GAN pair stopped after a checkpoint and resumed from it ends with the same bits as
// one never stopped (the pair's noise generator is part of the checkpoint); without that generator it does not;
// a folder whose two files are at different steps is refused and changes nothing.
#include "support/doctest.hpp"

#include <string>
#include <vector>

#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/models/epic_training.hpp"
#include "hepgnn/models/gan_checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace hepgnn_test_gan_checkpoint {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

epic_gan<double> checkpoint_gan() {
  epic_generator_config g;
  g.num_particles = 10;
  g.hidden = 12;
  g.latent = 4;
  g.layers = 2;
  g.seed = 3;
  epic_discriminator_config d;
  d.num_particles = 10;
  d.hidden = 12;
  d.latent = 4;
  d.layers = 2;
  d.seed = 4;
  gan_training_config t = gan_training_config::epic();
  t.lr_gen = t.lr_disc = 1e-3;
  t.seed = 5;
  return epic_gan<double>(g, d, t);
}

std::vector<double> weights_of(epic_gan<double>& gan) {
  std::vector<double> v;
  gan.for_each_param("", [&](const std::string&, auto p) { v.insert(v.end(), p.value, p.value + p.size()); });
  return v;
}

struct stopped {};  // thrown after the checkpoint: the process "dies" there

fit_options options() {
  fit_options o;
  o.epochs = 2;
  o.batch_size = 16;
  o.seed = 9;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("gan checkpoint: a stopped and resumed pair trains to the same bits; without the noise state it does not") {
  rng gen(2);
  toy_jet_options jo;
  jo.max_particles = 10;
  const auto data = mpgan_training_data<double>::from_jets(make_toy_jets<double>(80, jet_kind::top, gen, jo));

  auto whole = checkpoint_gan();
  std::vector<gan_step_losses> log_whole;
  train_gan(whole, data, options(), &log_whole);  // 2 epochs x 5 steps
  REQUIRE(log_whole.size() == 10);

  hepgnn_test::temp_dir tmp("gan_ckpt");
  const auto folder = tmp / "pair";
  {
    auto first = checkpoint_gan();
    fit_options o = options();
    o.checkpoint_every = 7;  // inside the second epoch
    o.on_checkpoint = [&](const training_position& at) {
      if (at.global_step == 7) {
        save_gan_checkpoint(folder, first, at);
        throw stopped{};
      }
    };
    CHECK_THROWS_AS(train_gan(first, data, o), stopped);
  }
  auto resumed = checkpoint_gan();
  fit_options o = options();
  o.resume = load_gan_checkpoint(folder, resumed);
  CHECK(o.resume->global_step == 7);
  std::vector<gan_step_losses> log_resumed;
  train_gan(resumed, data, o, &log_resumed);
  REQUIRE(log_resumed.size() == 3);
  CHECK(weights_of(resumed) == weights_of(whole));
  CHECK(log_resumed.back().g_loss == log_whole.back().g_loss);

  // The same resume with each network's own checkpoint but a fresh noise generator: other bits.
  auto no_noise = checkpoint_gan();
  load_checkpoint(folder / "generator.ckpt", no_noise.generator(), no_noise.generator_optimizer());
  fit_options o2 = options();
  o2.resume = load_checkpoint(folder / "discriminator.ckpt", no_noise.discriminator(),
                              no_noise.discriminator_optimizer());
  train_gan(no_noise, data, o2);
  CHECK(weights_of(no_noise) != weights_of(whole));
}

TEST_CASE("gan checkpoint: caller generators round trip; a pair at two steps or a reserved name is refused") {
  rng gen(3);
  toy_jet_options jo;
  jo.max_particles = 10;
  const auto data = mpgan_training_data<double>::from_jets(make_toy_jets<double>(32, jet_kind::top, gen, jo));
  hepgnn_test::temp_dir tmp("gan_ckpt");
  const auto folder = tmp / "pair";
  auto gan = checkpoint_gan();
  rng eval(42);
  eval.uniform();
  training_position at;
  at.global_step = 1;
  save_gan_checkpoint(folder, gan, at, {{"eval", &eval}});
  const auto eval_state = eval.state();

  auto other = checkpoint_gan();
  rng eval2(1);
  CHECK(load_gan_checkpoint(folder, other, {{"eval", &eval2}}).global_step == 1);
  CHECK(eval2.state() == eval_state);
  CHECK_THROWS_WITH_AS(save_gan_checkpoint(folder, gan, at, {{"gan_pair.noise", &eval}}),
                       doctest::Contains("'gan_pair.noise' is the pair's own"), hepgnn::error);

  // The discriminator's file one step ahead (a run stopped between the two writes): refused, nothing changed.
  train_gan(gan, data, options());
  training_position later = at;
  later.global_step = 2;
  save_checkpoint(folder / "discriminator.ckpt", gan.discriminator(), gan.discriminator_optimizer(), later);
  auto target = checkpoint_gan();
  const auto before = weights_of(target);
  CHECK_THROWS_WITH_AS(load_gan_checkpoint(folder, target), doctest::Contains("but discriminator.ckpt at epoch"),
                       hepgnn::error);
  CHECK(weights_of(target) == before);
}

}  // namespace hepgnn_test_gan_checkpoint
