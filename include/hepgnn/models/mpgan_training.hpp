#pragma once
/// @file mpgan_training.hpp
/// @brief Training MPGAN (generator of models/mpgan.hpp, discriminator of models/mpgan_discriminator.hpp) as
/// MPGAN's train.py does, one minibatch step at a time; train/trainer.hpp's fit() runs the epochs. The step is
/// generic (gan_pair): EPiC-GAN's networks (models/epic_training.hpp) train through the same one.
///
/// One step on a minibatch of real jets (train_D, then train_G, num_critic = num_gen = 1):
///   1. D step: D(real) and D(G(z)) with z ~ N(0, 0.2^2) [B x 30 x 32] and mask_c conditioned on the
///      multiplicities of the real jets of the batch; G runs without gradients; LSGAN discriminator loss
///      mean((D(real) - 1)^2) + mean(D(fake)^2); RMSprop on D.
///   2. G step: fresh noise, the same multiplicities, D still in training mode (dropout on), LSGAN generator loss
///      mean((D(G(z)) - 1)^2) back through D into G; RMSprop on G (D's gradients of this pass are discarded: the
///      next D step zeroes them, as MPGAN's D_optimizer.zero_grad()).
/// Real jets enter D normalised as MPGAN's JetNet loader does: eta / eta_max, phi / phi_max, pt / pt_max - 0.5,
/// mask - 0.5 (padded particles all zero before), with the jet type's maxima (mpgan_feature_maxima) or the
/// sample's own (mpgan_training_data::from_jets without maxima). Learning rates per jet type from MPGAN's
/// setup_training (the args.txt of mp_g/q/t): gluon G 1e-5 / D 3e-5, light quark 0.5e-5 / 1.5e-5, top 2e-5 / 6e-5.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/loss/least_squares_gan.hpp"
#include "hepgnn/models/mpgan.hpp"
#include "hepgnn/models/mpgan_discriminator.hpp"
#include "hepgnn/optim/rmsprop.hpp"
#include "hepgnn/train/trainer.hpp"

namespace hepgnn {

/// @brief The largest |eta_rel|, |phi_rel| and pt_rel over the real particles of a sample (JetNet's
/// FeaturewiseLinearBounded without given maxima); 1 for a feature that is 0 throughout.
template <class T>
mpgan_feature_maxima mpgan_maxima_of(const jet_array<T>& jets) {
  jets.validate("mpgan_maxima_of: jets");
  double m[3] = {0, 0, 0};
  for (long r = 0; r < jets.particles.rows(); ++r)
    if (jets.particles(r, jet_col::mask) > T(0.5))
      for (int k = 0; k < 3; ++k) m[k] = std::max(m[k], std::abs(static_cast<double>(jets.particles(r, k))));
  for (double& v : m)
    if (v == 0) v = 1;
  return {m[0], m[1], m[2]};
}

/// @brief Real jets in the layout MPGAN's discriminator reads, with their multiplicities (the generator's
/// conditioning).
template <class T>
struct mpgan_training_data {
  matrix<T> x;                               ///< (num_jets * num_particles) x 4: eta, phi, pt - 0.5, mask - 0.5
  std::vector<std::int64_t> multiplicity;    ///< real particles per jet, 1..num_particles
  mpgan_feature_maxima maxima;               ///< the scale of each feature
  index_t num_particles = 0;

  std::size_t num_jets() const { return multiplicity.size(); }

  /// @brief From JetNet-layout jets (data/toy_jets.hpp, io/jetnet_npy.hpp's read_jetnet_npy), normalised by
  /// `maxima`; every jet needs at least one particle (mask_c draws 1..num_particles).
  static mpgan_training_data from_jets(const jet_array<T>& jets, const mpgan_feature_maxima& maxima) {
    jets.validate("mpgan_training_data: jets");
    HEPGNN_CHECK(jets.num_jets > 0, "mpgan_training_data: jets is empty");
    const double mx[3] = {maxima.eta, maxima.phi, maxima.pt};
    for (int k = 0; k < 3; ++k)
      HEPGNN_CHECK(std::isfinite(mx[k]) && mx[k] > 0, "mpgan_training_data: maxima must be finite and > 0, got (",
                   maxima.eta, ", ", maxima.phi, ", ", maxima.pt, ")");
    mpgan_training_data d;
    d.maxima = maxima;
    d.num_particles = jets.max_particles;
    d.x.resize(jets.particles.rows(), 4);
    d.multiplicity.resize(static_cast<std::size_t>(jets.num_jets));
    for (index_t j = 0; j < jets.num_jets; ++j) {
      const index_t n = jets.count(j);
      HEPGNN_CHECK(n >= 1, "mpgan_training_data: jet ", j, " has no particle (MPGAN's mask_c needs 1..",
                   jets.max_particles, ")");
      d.multiplicity[static_cast<std::size_t>(j)] = n;
      for (index_t i = 0; i < jets.max_particles; ++i) {
        const auto p = jets.row(j, i);
        auto q = d.x.row(static_cast<long>(j) * jets.max_particles + i);
        for (int k = 0; k < 3; ++k) q(k) = static_cast<T>(static_cast<double>(p(k)) / mx[k]);
        q(2) -= T(0.5);
        q(3) = p(jet_col::mask) - T(0.5);
      }
    }
    return d;
  }
  /// @brief As above with the sample's own maxima (mpgan_maxima_of).
  static mpgan_training_data from_jets(const jet_array<T>& jets) { return from_jets(jets, mpgan_maxima_of(jets)); }
};

/// @brief Generator output g_raw (B * N rows) as JetNet-layout jets: mpgan_to_jets' scaling and clipping, real
/// particles first in descending pt_rel, padding zero.
template <class T>
jet_array<T> mpgan_generated_jets(const matrix<T>& g_raw, const mpgan_feature_maxima& maxima, index_t num_particles) {
  HEPGNN_CHECK(num_particles > 0 && g_raw.rows() % num_particles == 0, "mpgan_generated_jets: g_raw has ",
               g_raw.rows(), " rows, expected a multiple of num_particles = ", num_particles);
  const matrix<T> p = mpgan_to_jets(g_raw, maxima);
  const index_t B = static_cast<index_t>(g_raw.rows() / num_particles);
  jet_array<T> jets = jet_array<T>::zeros(B, num_particles);
  std::vector<long> real;
  for (index_t q = 0; q < B; ++q) {
    real.clear();
    for (index_t i = 0; i < num_particles; ++i)
      if (g_raw(static_cast<long>(q) * num_particles + i, 3) > T(0)) real.push_back(i);
    std::stable_sort(real.begin(), real.end(), [&](long a, long b) {
      return p(static_cast<long>(q) * num_particles + a, 2) > p(static_cast<long>(q) * num_particles + b, 2);
    });
    for (std::size_t s = 0; s < real.size(); ++s) {
      auto r = jets.row(q, static_cast<index_t>(s));
      r.leftCols(3) = p.row(static_cast<long>(q) * num_particles + real[s]);
      r(jet_col::mask) = T(1);
    }
  }
  return jets;
}

/// @brief Training settings of a GAN pair (defaults: MPGAN's for top jets; epic() for EPiC-GAN's).
struct gan_training_config {
  double lr_gen = 2e-5;      ///< learning rate of the generator's optimizer (lr_gen)
  double lr_disc = 6e-5;     ///< learning rate of the discriminator's optimizer (lr_disc)
  double noise_std = 0.2;    ///< standard deviation of the generator's noise (MPGAN's sd)
  std::uint64_t seed = 1;    ///< noise and dropout draws

  /// @brief MPGAN's learning rates for a jet type (setup_training, as in the args.txt of mp_g/q/t).
  static gan_training_config for_jet_type(mpgan_jet_type type) {
    gan_training_config c;
    switch (type) {
      case mpgan_jet_type::gluon: c.lr_gen = 1e-5, c.lr_disc = 3e-5; break;
      case mpgan_jet_type::light_quark: c.lr_gen = 0.5e-5, c.lr_disc = 1.5e-5; break;
      case mpgan_jet_type::top: c.lr_gen = 2e-5, c.lr_disc = 6e-5; break;
    }
    return c;
  }
  /// @brief EPiC-GAN's start_training.py: Adam learning rates 1e-4 for both networks, noise N(0, 1).
  static gan_training_config epic() {
    gan_training_config c;
    c.lr_gen = 1e-4;
    c.lr_disc = 1e-4;
    c.noise_std = 1;
    return c;
  }
};
/// @brief The name MPGAN's training used first.
using mpgan_training_config = gan_training_config;

/// @brief What one step measured (losses before the updates they drive).
struct gan_step_losses {
  double d_loss = 0;       ///< mean((D(real) - 1)^2) + mean(D(fake)^2)
  double d_real = 0;       ///< mean D(real)
  double d_fake = 0;       ///< mean D(fake) in the D step
  double g_loss = 0;       ///< mean((D(G(z)) - 1)^2) in the G step
};
using mpgan_step_losses = gan_step_losses;

/// @brief A jet generator and a discriminator with their optimizers and the generator of noise and dropout
/// draws: the state a least-squares GAN training run carries from step to step, for any pair of families that
/// share MPGAN's jet layout (g_raw: (B * num_particles) x (features + 1), last column mask - 0.5):
///   Generator:     noise_type, draw_noise(jets, std, rng&, noise_type&), infer / forward(noise, multiplicities,
///                  workspace&) -> g_raw, backward(noise, dg_raw, workspace&, noise_type* or nullptr);
///   Discriminator: forward(x, workspace&, rng& dropout), backward(x, dscore, workspace&, matrix* dx);
///   Optimizer:     constructed from {.lr = ...}, step(model).
/// mpgan_gan (RMSprop, as MPGAN) and epic_gan (models/epic_training.hpp: Adam, as EPiC-GAN) are this class.
template <class Generator, class Discriminator, class Optimizer>
class gan_pair {
 public:
  using T = typename Generator::scalar;
  using generator_type = Generator;
  using discriminator_type = Discriminator;

  explicit gan_pair(const typename Generator::config_type& g = {}, const typename Discriminator::config_type& d = {},
                    const gan_training_config& t = {})
      : G_(g), D_(d), cfg_(checked(g, d, t)), opt_g_({.lr = t.lr_gen}), opt_d_({.lr = t.lr_disc}), gen_(t.seed) {}

  Generator& generator() { return G_; }
  const Generator& generator() const { return G_; }
  Discriminator& discriminator() { return D_; }
  const Discriminator& discriminator() const { return D_; }
  Optimizer& generator_optimizer() { return opt_g_; }
  Optimizer& discriminator_optimizer() { return opt_d_; }
  const gan_training_config& config() const { return cfg_; }
  /// The pair's noise and dropout draws: a checkpoint saves it (models/gan_checkpoint.hpp), so a resumed run
  /// draws what an uninterrupted one would.
  rng& noise_generator() { return gen_; }

  /// @brief One D step and one G step (see the file comment) on the real jets `items` of `data`.
  gan_step_losses train_step(const mpgan_training_data<T>& data, std::span<const std::size_t> items) {
    const long N = G_.config().num_particles, B = static_cast<long>(items.size());
    HEPGNN_CHECK(B > 0, who(), "::train_step: items is empty (one real jet per entry expected)");
    HEPGNN_CHECK(data.num_particles == N && D_.config().num_particles == N && data.x.cols() == 4, who(),
                 "::train_step: data has ", data.num_particles, " particles per jet, the generator ", N,
                 " and the discriminator ", D_.config().num_particles, "; they must agree");
    real_.resize(B * N, 4);
    n_.resize(static_cast<std::size_t>(B));
    for (long q = 0; q < B; ++q) {
      const std::size_t j = items[static_cast<std::size_t>(q)];
      HEPGNN_CHECK(j < data.num_jets(), who(), "::train_step: item ", j, " is outside the ", data.num_jets(),
                   " jets of data");
      real_.middleRows(q * N, N) = data.x.middleRows(static_cast<long>(j) * N, N);
      n_[static_cast<std::size_t>(q)] = data.multiplicity[j];
    }
    gan_step_losses out;
    // D step
    zero_grad(D_);
    const matrix<T> d_real = D_.forward(real_, ws_real_, gen_);
    G_.draw_noise(B, cfg_.noise_std, gen_, noise_);
    fake_ = G_.infer(noise_, n_, ws_g_);
    const matrix<T> d_fake = D_.forward(fake_, ws_fake_, gen_);
    lsgan_gradients<T> gd;
    out.d_loss = static_cast<double>(lsgan_discriminator_loss(d_real, d_fake, {}, &gd));
    out.d_real = static_cast<double>(d_real.mean());
    out.d_fake = static_cast<double>(d_fake.mean());
    D_.backward(real_, gd.real, ws_real_, nullptr);
    D_.backward(fake_, gd.fake, ws_fake_, nullptr);
    opt_d_.step(D_);
    // G step: fresh noise, the same multiplicities
    zero_grad(G_);
    G_.draw_noise(B, cfg_.noise_std, gen_, noise_);
    fake_ = G_.forward(noise_, n_, ws_g_);
    const matrix<T>& d_gen = D_.forward(fake_, ws_fake_, gen_);
    out.g_loss = static_cast<double>(lsgan_generator_loss(d_gen, {}, &dscore_));
    D_.backward(fake_, dscore_, ws_fake_, &dfake_);
    G_.backward(noise_, dfake_, ws_g_, nullptr);
    opt_g_.step(G_);
    return out;
  }

  /// @brief Generated jets (JetNet layout, data's scale) for the given multiplicities (e.g. those of a sample).
  jet_array<T> generate(const std::vector<std::int64_t>& multiplicities, const mpgan_feature_maxima& maxima,
                        rng& noise_gen) const {
    typename Generator::noise_type z;
    G_.draw_noise(static_cast<long>(multiplicities.size()), cfg_.noise_std, noise_gen, z);
    typename Generator::workspace ws;
    return mpgan_generated_jets(G_.infer(z, multiplicities, ws), maxima,
                                static_cast<index_t>(G_.config().num_particles));
  }

  /// @brief Visits both networks' parameters ("generator.<name>", "discriminator.<name>"); fit(model, ...)
  /// checks them for non-finite values after every step.
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    G_.for_each_param(prefix + "generator.", f);
    D_.for_each_param(prefix + "discriminator.", f);
  }

 private:
  /// "mpgan_gan", "epic_gan": the family's first word, as users name the pair.
  static std::string who() {
    const std::string_view f = Generator::family;
    return std::string(f.substr(0, f.find('_'))) + "_gan";
  }

  static gan_training_config checked(const typename Generator::config_type& g,
                                     const typename Discriminator::config_type& d, const gan_training_config& t) {
    HEPGNN_CHECK(g.num_particles == d.num_particles && g.output_features == d.input_features, who(), ": the ",
                 "generator writes ", g.num_particles, " x ", g.output_features, " but the discriminator reads ",
                 d.num_particles, " x ", d.input_features);
    HEPGNN_CHECK(std::isfinite(t.noise_std) && t.noise_std > 0, who(), ": noise_std must be finite and > 0, got ",
                 t.noise_std);
    return t;
  }

  Generator G_;
  Discriminator D_;
  gan_training_config cfg_;
  Optimizer opt_g_, opt_d_;
  rng gen_;
  typename Generator::workspace ws_g_;
  typename Discriminator::workspace ws_real_, ws_fake_;
  typename Generator::noise_type noise_;
  matrix<T> real_, fake_, dscore_, dfake_;
  std::vector<std::int64_t> n_;
};

/// @brief MPGAN's generator and discriminator with their RMSprop optimizers (MPGAN's train.py).
template <class T>
using mpgan_gan = gan_pair<mpgan_generator<T>, mpgan_discriminator<T>, rmsprop<T>>;

/// @brief Trains `gan` on `data` through fit(): each minibatch of real jets is one train_step; the loss fit
/// reports (and its progress line shows) is the discriminator's. `log`, when given, receives every step's losses.
template <class G, class D, class O>
fit_history train_gan(gan_pair<G, D, O>& gan, const mpgan_training_data<typename G::scalar>& data,
                      const fit_options& options, std::vector<gan_step_losses>* log = nullptr) {
  return fit(gan, data.num_jets(), options, [&](std::span<const std::size_t> items) {
    const gan_step_losses l = gan.train_step(data, items);
    if (log) log->push_back(l);
    return l.d_loss;
  });
}

/// @brief train_gan for MPGAN (its first name).
template <class T>
fit_history train_mpgan(mpgan_gan<T>& gan, const mpgan_training_data<T>& data, const fit_options& options,
                        std::vector<gan_step_losses>* log = nullptr) {
  return train_gan(gan, data, options, log);
}

}  // namespace hepgnn
