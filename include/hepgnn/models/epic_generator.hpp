#pragma once
/// @file epic_generator.hpp
/// @brief hepgnn::epic_generator: EPiC-GAN's O(N) jet generator (Buhmann, Kasieczka, Thaler, arXiv:2301.08128;
/// EPiC_generator of uhh-pd-ml/EPiC-GAN's models.py) on the library's EPiC layers (nn/epic_layer.hpp).
///
/// Per jet, with multiplicity n (drawn by the caller, e.g. from the training sample's multiplicities):
///   - noise: per particle z_i (local_noise wide; the first n rows of the jet's num_particles are used) and per jet
///     z_g (latent wide), both N(0, 1) in EPiC-GAN;
///   - p_i = lrelu(W_l0 z_i + b),  g = lrelu(W_g1 lrelu(W_g0 z_g + b) + b)  (hidden and latent wide);
///   - `layers` EPiC layers, each followed by a skip to these inputs: g <- layer_g + g_0, p <- layer_p + p_0;
///   - out_i = W_out p_i + b (output_features wide, linear).
/// The output is MPGAN's g_raw layout (models/mpgan.hpp): (B * num_particles) x (output_features + 1), the first n
/// particles of each jet real (a set has no order: the position carries nothing), padded rows 0 with mask - 0.5 in
/// the last column. So mpgan_generated_jets and the GAN training of models/mpgan_training.hpp take it unchanged.
/// Only real particles are computed: the cost is O(n) per jet, (layers * 2 hidden^2 + ...) multiply-adds per
/// particle (multiply_adds()). Jets do not see each other, so infer runs the whole network on a few jets at a time
/// (about `infer_chunk_rows` real particles, jets in parallel over threads): their activations stay in cache
/// instead of streaming the whole batch through memory once per layer, with forward's results bit for bit.
/// Not taken from EPiC-GAN: weight normalisation (plain Linear layers here), the per-feature standardisation of
/// its data (the training data are MPGAN's scaled features), and the kernel density estimate of the multiplicity.

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/epic_layer.hpp"

namespace hepgnn {

/// @brief Hyperparameters of epic_generator (defaults: EPiC-GAN's start_training.py).
struct epic_generator_config {
  int num_particles = 30;       ///< particles per jet (n_points; 30 or 150 for JetNet)
  int local_noise = 3;          ///< noise per particle (latent_local)
  int latent = 10;              ///< global noise and global state width (latent)
  int hidden = 128;             ///< particle feature width (hid_d)
  int layers = 6;               ///< EPiC layers (equiv_layers_generator)
  int output_features = 3;      ///< eta_rel, phi_rel, pt_rel (feats)
  double negative_slope = 0.01;  ///< leaky ReLU slope (F.leaky_relu's default)
  double sum_scale = 1e-2;       ///< factor of the sum pools (EPiC-GAN's masked layers: sum_scale 1e-2)
  std::uint64_t seed = 1;       ///< weight initialisation

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("num_particles", num_particles, 1, 1 << 16);  // O(N): no quadratic cap
    f("local_noise", local_noise, 1, 1 << 12);
    f("latent", latent, 1, 1 << 12);
    f("hidden", hidden, 1, 1 << 12);
    f("layers", layers, 1, 64);
    f("output_features", output_features, 1, 1 << 12);
    f("negative_slope", negative_slope, 1e-6, 0.999);
    f("sum_scale", sum_scale, 1e-12, 1e12);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief The generator's noise: per particle and per jet.
template <class T>
struct epic_noise {
  matrix<T> local;   ///< (B * num_particles) x local_noise, jet by jet
  matrix<T> global;  ///< B x latent
};

/// @brief EPiC-GAN's generator (see the file comment). infer is const; the workspace holds all buffers.
template <class T>
class epic_generator {
 public:
  using scalar = T;
  using config_type = epic_generator_config;
  using noise_type = epic_noise<T>;
  static constexpr std::string_view family = "epic_generator";
  static constexpr int format_version = 1;

  /// @brief What forward, infer and backward use (one per thread).
  struct workspace {
    batch b;                          ///< the real particles of each jet
    std::vector<index_t> slots;       ///< row of each real particle in the B * num_particles layout
    matrix<T> z, zg;                  ///< local noise of the real particles; global noise
    matrix<T> p0, a0, g0;             ///< input projections (after their activations)
    std::vector<matrix<T>> g, p;      ///< input of layer l (g[layers], p[layers]: the last layer's, skips added)
    std::vector<matrix<T>> go, po;    ///< output of layer l before the skips
    std::vector<typename epic_layer<T>::cache> c;
    matrix<T> y, out;                 ///< output of the real particles; g_raw
    matrix<T> dy, dg, dp, dg_next, dp_next, dg0, dp0, dz, dtmp;  ///< backward buffers
    bool from_forward = false;        ///< the caches above are forward's (backward needs them)
    std::vector<long> chunk_starts;   ///< infer: first jet of each chunk, then B
    std::vector<workspace> per_thread;  ///< infer: one workspace per thread for its chunks
    std::vector<noise_type> chunk_noise;
    std::vector<std::vector<std::int64_t>> chunk_n;
  };

  /// Real particles per chunk of jets that infer runs through the whole network at once (whole jets). Smaller
  /// chunks pay more for the per-chunk global products and bookkeeping, larger ones leave the cache
  /// (docs/jet_generation.md: 1024-2048 fastest at hidden 128).
  static constexpr long infer_chunk_rows = 1024;

  explicit epic_generator(const epic_generator_config& cfg = {}) : epic_generator(checked(cfg), rng(cfg.seed)) {}

  const epic_generator_config& config() const { return cfg_; }

  /// @brief Multiply-adds of one generated jet with n real particles (the whole forward).
  double multiply_adds(long n) const {
    const double H = cfg_.hidden, L = cfg_.latent;
    double per_jet = H * L + L * H, per_particle = cfg_.local_noise * H + H * cfg_.output_features;
    for (const auto& l : layers_) {
      per_jet += static_cast<double>(l.macs_per_jet());
      per_particle += static_cast<double>(l.macs_per_particle());
    }
    return per_jet + per_particle * static_cast<double>(n);
  }

  /// @brief Fills z with noise for `jets` jets, N(0, std^2): local (row by row), then global.
  void draw_noise(long jets, double std, rng& gen, noise_type& z) const {
    z.local.resize(jets * cfg_.num_particles, cfg_.local_noise);
    z.global.resize(jets, cfg_.latent);
    for (long k = 0; k < z.local.size(); ++k) z.local.data()[k] = static_cast<T>(gen.normal(0, std));
    for (long k = 0; k < z.global.size(); ++k) z.global.data()[k] = static_cast<T>(gen.normal(0, std));
  }

  /// @brief g_raw ((B * num_particles) x (output_features + 1)) for noise and nparticles (B multiplicities in
  /// 1..num_particles); chunks of jets in parallel (see the file comment), equal to forward's at any thread count.
  const matrix<T>& infer(const noise_type& noise, const std::vector<std::int64_t>& nparticles, workspace& ws) const {
    const char* who = "epic_generator::infer";
    check_input(noise, nparticles, who);
    const long N = cfg_.num_particles, F = cfg_.output_features;
    const auto B = static_cast<long>(nparticles.size());
    ws.from_forward = false;
    ws.chunk_starts.clear();
    long rows = 0;
    for (long q = 0; q < B; ++q) {
      if (rows == 0) ws.chunk_starts.push_back(q);
      rows += nparticles[static_cast<std::size_t>(q)];
      if (rows >= infer_chunk_rows) rows = 0;
    }
    ws.chunk_starts.push_back(B);
    const long chunks = static_cast<long>(ws.chunk_starts.size()) - 1;
    const auto threads = static_cast<std::size_t>(max_threads());
    if (ws.per_thread.size() < threads) ws.per_thread.resize(threads);
    if (ws.chunk_noise.size() < threads) ws.chunk_noise.resize(threads);
    if (ws.chunk_n.size() < threads) ws.chunk_n.resize(threads);
    ws.out.resize(B * N, F + 1);
    parallel_for<loop_schedule::dynamic_single>(chunks, chunks > 1, [&](long k) {
      const auto t = static_cast<std::size_t>(thread_index());
      const long q0 = ws.chunk_starts[static_cast<std::size_t>(k)], q1 = ws.chunk_starts[static_cast<std::size_t>(k) + 1];
      noise_type& z = ws.chunk_noise[t];
      z.local = noise.local.middleRows(q0 * N, (q1 - q0) * N);
      z.global = noise.global.middleRows(q0, q1 - q0);
      ws.chunk_n[t].assign(nparticles.begin() + q0, nparticles.begin() + q1);
      run(z, ws.chunk_n[t], ws.per_thread[t], false);
      ws.out.middleRows(q0 * N, (q1 - q0) * N) = ws.per_thread[t].out;
    });
    return ws.out;
  }
  /// @brief Training forward (the same computation; the workspace keeps what backward needs).
  const matrix<T>& forward(const noise_type& noise, const std::vector<std::int64_t>& nparticles,
                           workspace& ws) const {
    check_input(noise, nparticles, "epic_generator::forward");
    run(noise, nparticles, ws, true);
    ws.from_forward = true;
    return ws.out;
  }

  /// @brief Adds parameter gradients for dout (the gradient of g_raw; its mask column and padded rows have
  /// none); writes dL/dnoise when dnoise is not null (0 on padded rows). Call forward first.
  void backward(const noise_type& noise, const matrix<T>& dout, workspace& ws, noise_type* dnoise) {
    const long F = cfg_.output_features, R = ws.b.num_nodes(), layers = cfg_.layers;
    HEPGNN_CHECK(ws.from_forward && noise.local.rows() == ws.out.rows() && ws.slots.size() == static_cast<std::size_t>(R),
                 "epic_generator::backward: call forward with this noise first (infer keeps nothing for backward)");
    check_shape(dout, ws.out.rows(), F + 1, "epic_generator::backward: output gradient dout");
    no_cache none;
    ws.dy.resize(R, F);
    for (long r = 0; r < R; ++r) ws.dy.row(r) = dout.row(ws.slots[static_cast<std::size_t>(r)]).leftCols(F);
    out_.backward(ws.p[layers], ws.y, ws.dy, none, &ws.dp);
    ws.dg.setZero(ws.b.num_graphs(), cfg_.latent);
    ws.dg0.setZero(ws.b.num_graphs(), cfg_.latent);
    ws.dp0.setZero(R, cfg_.hidden);
    for (long l = layers; l-- > 0;) {
      ws.dg0 += ws.dg;  // the skips to the input projections
      ws.dp0 += ws.dp;
      layers_[l].backward(ws.b, ws.g[l], ws.p[l], ws.go[l], ws.po[l], ws.dg, ws.dp, ws.c[l], ws.dg_next, ws.dp_next);
      ws.dg.swap(ws.dg_next);
      ws.dp.swap(ws.dp_next);
    }
    ws.dg0 += ws.dg;  // layer 0 reads them too
    ws.dp0 += ws.dp;
    const epic_layer<T>& act = layers_.front();
    act.activation_gradient(ws.p0, ws.dp0, ws.dp0);
    local0_.backward(ws.z, ws.p0, ws.dp0, none, dnoise ? &ws.dz : nullptr);
    act.activation_gradient(ws.g0, ws.dg0, ws.dg0);
    global1_.backward(ws.a0, ws.g0, ws.dg0, none, &ws.dtmp);
    act.activation_gradient(ws.a0, ws.dtmp, ws.dtmp);
    global0_.backward(ws.zg, ws.a0, ws.dtmp, none, dnoise ? &dnoise->global : nullptr);
    if (dnoise) {
      dnoise->local.setZero(noise.local.rows(), noise.local.cols());
      for (long r = 0; r < R; ++r) dnoise->local.row(ws.slots[static_cast<std::size_t>(r)]) = ws.dz.row(r);
    }
  }

  /// @brief Visits the parameters: "local_0.*", "global_0.*", "global_1.*", "layers.<l>.<epic_layer name>",
  /// "local_1.*" (EPiC-GAN's module names).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    local0_.for_each_param(prefix + "local_0.", f);
    global0_.for_each_param(prefix + "global_0.", f);
    global1_.for_each_param(prefix + "global_1.", f);
    for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l].for_each_param(prefix + "layers." + std::to_string(l) + ".", f);
    out_.for_each_param(prefix + "local_1.", f);
  }

 private:
  // The weights in order from one stream (the temporary lives until the constructor returns).
  epic_generator(const epic_generator_config& cfg, rng&& gen)
      : cfg_(cfg),
        local0_(gen, cfg.local_noise, cfg.hidden),
        global0_(gen, cfg.latent, cfg.hidden),
        global1_(gen, cfg.hidden, cfg.latent),
        out_(gen, cfg.hidden, cfg.output_features) {
    for (int l = 0; l < cfg.layers; ++l) layers_.emplace_back(gen, cfg.hidden, cfg.latent, cfg.negative_slope, cfg.sum_scale);
  }

  static epic_generator_config checked(const epic_generator_config& cfg) {
    check_config(cfg, "epic_generator");
    return cfg;
  }

  /// Throws unless noise and nparticles fit this generator (shapes, multiplicities, finite real noise).
  void check_input(const noise_type& noise, const std::vector<std::int64_t>& nparticles, const char* who) const {
    const long N = cfg_.num_particles;
    const auto B = static_cast<long>(nparticles.size());
    HEPGNN_CHECK(B > 0, who, ": nparticles is empty (one multiplicity per jet expected)");
    HEPGNN_CHECK(noise.local.rows() == B * N && noise.local.cols() == cfg_.local_noise, who,
                 ": noise.local must be (B * ", N, ") x ", cfg_.local_noise, " = ", B * N, " x ", cfg_.local_noise,
                 " for B = ", B, " jets (nparticles.size()), got ", noise.local.rows(), " x ", noise.local.cols());
    HEPGNN_CHECK(noise.global.rows() == B && noise.global.cols() == cfg_.latent, who, ": noise.global must be B x ",
                 cfg_.latent, " = ", B, " x ", cfg_.latent, ", got ", noise.global.rows(), " x ", noise.global.cols());
    for (long q = 0; q < B; ++q) {
      const std::int64_t n = nparticles[static_cast<std::size_t>(q)];
      HEPGNN_CHECK(n >= 1 && n <= N, who, ": nparticles[", q, "] = ", n, " is outside 1..", N);
      for (long i = 0; i < n; ++i)
        for (long k = 0; k < noise.local.cols(); ++k)
          HEPGNN_CHECK(std::isfinite(noise.local(q * N + i, k)), who, ": the noise of a real particle holds a ",
                       "non-finite value (", noise.local(q * N + i, k), ") in jet ", q);
    }
    for (long k = 0; k < noise.global.size(); ++k)
      HEPGNN_CHECK(std::isfinite(noise.global.data()[k]), who, ": the global noise of a jet holds a non-finite ",
                   "value (", noise.global.data()[k], ")");
  }

  /// The network on checked input; `keep` keeps every layer's cache for backward (forward), else layers share
  /// one cache and two particle buffers (infer's chunks: less memory, so it stays in cache).
  void run(const noise_type& noise, const std::vector<std::int64_t>& nparticles, workspace& ws, bool keep) const {
    const long N = cfg_.num_particles, F = cfg_.output_features, layers = cfg_.layers;
    const auto B = static_cast<long>(nparticles.size());
    std::vector<index_t> sizes(static_cast<std::size_t>(B));
    for (long q = 0; q < B; ++q) sizes[static_cast<std::size_t>(q)] = static_cast<index_t>(nparticles[static_cast<std::size_t>(q)]);
    ws.b = batch::from_sizes(sizes);
    const long R = ws.b.num_nodes();
    ws.slots.resize(static_cast<std::size_t>(R));
    ws.z.resize(R, cfg_.local_noise);
    for (long q = 0; q < B; ++q)
      for (index_t i = ws.b.begin(q); i < ws.b.end(q); ++i) {
        const long slot = q * N + (i - ws.b.begin(q));
        ws.slots[static_cast<std::size_t>(i)] = static_cast<index_t>(slot);
        ws.z.row(i) = noise.local.row(slot);
      }
    ws.zg = noise.global;
    no_cache none;
    const epic_layer<T>& act = layers_.front();
    local0_.infer(ws.z, ws.p0, none);
    act.activate(ws.p0);
    global0_.infer(ws.zg, ws.a0, none);
    act.activate(ws.a0);
    global1_.infer(ws.a0, ws.g0, none);
    act.activate(ws.g0);
    const auto slots = static_cast<std::size_t>(keep ? layers + 1 : 2);
    ws.g.resize(slots);
    ws.p.resize(slots);
    ws.go.resize(slots - 1);
    ws.po.resize(slots - 1);
    ws.c.resize(slots - 1);
    ws.g[0] = ws.g0;
    ws.p[0] = ws.p0;
    for (long l = 0; l < layers; ++l) {
      const auto in = static_cast<std::size_t>(keep ? l : l % 2), next = static_cast<std::size_t>(keep ? l + 1 : (l + 1) % 2),
                 own = static_cast<std::size_t>(keep ? l : 0);
      layers_[l].forward(ws.b, ws.g[in], ws.p[in], ws.go[own], ws.po[own], ws.c[own]);
      ws.g[next] = ws.go[own] + ws.g0;
      ws.p[next] = ws.po[own] + ws.p0;
    }
    out_.infer(ws.p[keep ? layers : layers % 2], ws.y, none);
    ws.out.setZero(B * N, F + 1);
    ws.out.col(F).setConstant(T(-0.5));
    for (long r = 0; r < R; ++r) {
      auto o = ws.out.row(ws.slots[static_cast<std::size_t>(r)]);
      o.leftCols(F) = ws.y.row(r);
      o(F) = T(0.5);
    }
  }

  epic_generator_config cfg_;
  dense<T> local0_, global0_, global1_, out_;
  std::vector<epic_layer<T>> layers_;
};

}  // namespace hepgnn
