#pragma once
/// @file mpgan.hpp
/// @brief hepgnn::mpgan_generator: MPGAN's message-passing jet generator (Kansal et al., NeurIPS 2021,
/// arXiv:2106.11535), loading the published trained generators; and mpgan_to_jets, MPGAN's gen.py post-processing.
///
/// Generator (MPGAN's MPGenerator with mask_c, the published configuration):
///   - input: per jet, noise [num_particles, noise_features] and the multiplicity n in 1..num_particles;
///   - mask_c: particle p of a jet is real when the rank of its first noise feature (ascending) is <= n - 1;
///   - message passing (nn/mpgan_message_passing.hpp) on the fully connected jet with self loops, `iterations`
///     times: edge MLP on [h_i, h_j] with LeakyReLU after every layer, messages of padded particles zeroed (MPLayer
///     multiplies them by the mask: padded particles still receive), sum, node MLP on [m_i, h_i] with LeakyReLU
///     after every layer but the last of each iteration;
///   - tanh once, after the last iteration (MPNet._final_activation, not between iterations);
///   - output g_raw [num_particles, output_features + 1] per jet: the tanh'ed normalised (eta, phi, pt) and
///     mask - 0.5.
/// Parameter names are MPGAN's state dict: "mp_layers.<t>.fe.net.<l>.*", "mp_layers.<t>.fn.net.<l>.*", so the
/// trained generators load as `load_weights(g, torch_state_dict::load(".../mp_t/G_best_epoch.pt"))`.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/nn/mpgan_message_passing.hpp"

namespace hepgnn {

/// @brief Hyperparameters of mpgan_generator (defaults: the published MPGAN generators, args.txt of mp_g/q/t).
struct mpgan_generator_config {
  int num_particles = 30;                  ///< particles per jet (num_hits)
  int noise_features = 32;                 ///< noise per particle (latent_node_size)
  int hidden = 32;                         ///< node features between iterations (hidden_node_size)
  int output_features = 3;                 ///< eta_rel, phi_rel, pt_rel (before the mask column)
  int iterations = 2;                      ///< message-passing iterations (mp_iters_gen)
  std::vector<int> fe{96, 160, 192};       ///< edge MLP widths
  std::vector<int> fn{256, 256};           ///< node MLP hidden widths
  double negative_slope = 0.2;             ///< LeakyReLU slope (leaky_relu_alpha)
  std::uint64_t seed = 1;                  ///< weight initialisation

  /// @brief Every setting with the range a weight file may ask for (io/model_file.hpp).
  template <class F>
  void for_each_field(F&& f) {
    f("num_particles", num_particles, 1, 1 << 10);  // the graph is fully connected: N^2 edges per jet
    f("noise_features", noise_features, 1, 1 << 12);
    f("hidden", hidden, 1, 1 << 12);
    f("output_features", output_features, 1, 1 << 12);
    f("iterations", iterations, 1, 64);
    f("fe", fe, 1, 1 << 14);
    f("fn", fn, 1, 1 << 14);
    f("negative_slope", negative_slope, 1e-6, 1.0);
    f("seed", seed, 0, 9007199254740992.0);  // 2^53: exact in the metadata's double
  }
};

/// @brief MPGAN's generator (see the file comment). Inference is const; the workspace holds all buffers.
template <class T>
class mpgan_generator {
 public:
  using scalar = T;
  using block_type = mpgan_message_passing<T>;
  using config_type = mpgan_generator_config;
  using noise_type = matrix<T>;  ///< (B * num_particles) x noise_features
  static constexpr std::string_view family = "mpgan_generator";
  static constexpr int format_version = 1;

  /// @brief What infer and backward use (one per thread; buffers reused for batches of the same size).
  struct workspace {
    typename block_type::cache c;
    batch b;
    std::vector<T> mask;  ///< 1 real, 0 padded, per particle
    std::vector<long> order;  ///< mask_c's sort buffer (kept: inference allocates nothing after warm-up)
    matrix<T> y;          ///< message-passing output before tanh
    matrix<T> out;        ///< g_raw
    bool from_forward = false;  ///< c and y are forward's (backward needs them)
    /// infer: a chunk of jets on one thread (its noise rows, mask and the block's buffers)
    struct chunk {
      typename block_type::cache c;
      batch b;
      std::vector<T> mask;
      matrix<T> z, y;
    };
    std::vector<chunk> per_thread;
  };

  /// Particle pairs (edges, self loops included) per chunk of whole jets that infer runs through the message
  /// passing at once: the edge activations of a chunk stay in cache instead of the batch's streaming through memory
  /// once per edge layer, and chunks run in parallel. Jets do not see each other: results equal forward's.
  static constexpr long infer_chunk_pairs = 4096;

  explicit mpgan_generator(const mpgan_generator_config& cfg = {}) : cfg_(checked(cfg)), mp_(make(cfg_)) {}

  const mpgan_generator_config& config() const { return cfg_; }
  /// @brief The message-passing block (MPGAN's mp_layers).
  const block_type& message_passing() const { return mp_; }

  /// @brief Fills z with noise for `jets` jets, N(0, std^2) (MPGAN's sd: 0.2), row by row.
  void draw_noise(long jets, double std, rng& gen, noise_type& z) const {
    z.resize(jets * cfg_.num_particles, cfg_.noise_features);
    for (long k = 0; k < z.size(); ++k) z.data()[k] = static_cast<T>(gen.normal(0, std));
  }

  /// @brief g_raw ((B * num_particles) x (output_features + 1)) for noise ((B * num_particles) x noise_features, jet
  /// by jet) and nparticles (B multiplicities in 1..num_particles).
  /// Chunks of jets in parallel (infer_chunk_pairs), equal to forward's at any thread count.
  const matrix<T>& infer(const matrix<T>& noise, const std::vector<std::int64_t>& nparticles, workspace& ws) const {
    prepare(noise, nparticles, ws, "mpgan_generator::infer");
    ws.from_forward = false;
    const long N = cfg_.num_particles, B = static_cast<long>(nparticles.size()), F = cfg_.output_features;
    const long per_chunk = std::max(1L, infer_chunk_pairs / (N * N)), chunks = (B + per_chunk - 1) / per_chunk;
    const auto threads = static_cast<std::size_t>(max_threads());
    if (ws.per_thread.size() < threads) ws.per_thread.resize(threads);
    ws.out.resize(B * N, F + 1);
    parallel_for<loop_schedule::dynamic_single>(chunks, chunks > 1, [&](long k) {
      auto& t = ws.per_thread[static_cast<std::size_t>(thread_index())];
      const long q0 = k * per_chunk, jets = std::min(B, q0 + per_chunk) - q0;
      if (t.b.num_graphs() != jets || t.b.num_nodes() != jets * N) t.b = batch::uniform(jets, N);
      t.z = noise.middleRows(q0 * N, jets * N);
      t.mask.assign(ws.mask.begin() + q0 * N, ws.mask.begin() + (q0 + jets) * N);
      mp_.infer(t.z, t.b, t.y, t.c, &t.mask);
      write_out(t.y, t.mask.data(), ws.out.middleRows(q0 * N, jets * N));
    });
    return ws.out;
  }

  /// @brief Training forward (the same computation, keeping what backward needs).
  const matrix<T>& forward(const matrix<T>& noise, const std::vector<std::int64_t>& nparticles, workspace& ws) const {
    prepare(noise, nparticles, ws, "mpgan_generator::forward");
    mp_.forward(noise, ws.b, ws.y, ws.c, &ws.mask);
    ws.out.resize(ws.y.rows(), cfg_.output_features + 1);
    write_out(ws.y, ws.mask.data(), ws.out.middleRows(0, ws.out.rows()));
    ws.from_forward = true;
    return ws.out;
  }

  /// @brief Adds parameter gradients for dout (the gradient of g_raw; its mask column has none: the mask is
  /// piecewise constant in the noise); writes dL/dnoise when dnoise is not null. Call forward first.
  void backward(const matrix<T>& noise, const matrix<T>& dout, workspace& ws, matrix<T>* dnoise) {
    const int F = cfg_.output_features;
    check_shape(dout, ws.out.rows(), F + 1, "mpgan_generator::backward: output gradient dout");
    HEPGNN_CHECK(ws.from_forward && noise.rows() == ws.out.rows(),
                 "mpgan_generator::backward: call forward with this noise first (infer keeps nothing for backward)");
    // d tanh(y) = 1 - tanh(y)^2
    const matrix<T> dy = (dout.leftCols(F).array() * (T(1) - ws.out.leftCols(F).array().square())).matrix();
    mp_.backward(noise, ws.b, ws.y, dy, ws.c, dnoise);
  }

  /// @brief Visits the parameters with MPGAN's names ("mp_layers.<t>.fe.net.<l>.weight", ...).
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    mp_.for_each_param(prefix + "mp_layers.", [&](const std::string& name, auto p) {
      std::string n = name;
      for (const char* part : {".fe.", ".fn."})  // the block's "<t>.fe.<l>." is MPGAN's "<t>.fe.net.<l>."
        if (const auto k = n.find(part, prefix.size() + 10); k != std::string::npos) {
          n.insert(k + 4, "net.");
          break;
        }
      f(n, p);
    });
  }

  /// @brief The mask_c mask of one jet: 1 for the n particles with the smallest first noise feature (ties by
  /// position; MPGAN's argsort of continuous noise has none), 0 for the others. `order`: scratch, kept by the caller.
  static void mask_c(const T* first_feature, long stride, long count, std::int64_t n, T* mask,
                     std::vector<long>& order) {
    order.resize(static_cast<std::size_t>(count));
    std::iota(order.begin(), order.end(), 0L);
    std::stable_sort(order.begin(), order.end(),
                     [&](long a, long b) { return first_feature[a * stride] < first_feature[b * stride]; });
    for (long r = 0; r < count; ++r) mask[order[static_cast<std::size_t>(r)]] = r < n ? T(1) : T(0);
  }

 private:
  static mpgan_generator_config checked(const mpgan_generator_config& cfg) {
    check_config(cfg, "mpgan_generator");
    HEPGNN_CHECK(!cfg.fe.empty() && !cfg.fn.empty(), "mpgan_generator: fe and fn must each name at least one width");
    return cfg;
  }

  static block_type make(const mpgan_generator_config& cfg) {
    rng gen(cfg.seed);
    typename block_type::options o;
    o.in = cfg.noise_features;
    o.hidden = cfg.hidden;
    o.out = cfg.output_features;
    o.iterations = cfg.iterations;
    o.fe_widths = cfg.fe;
    o.fn_widths = cfg.fn;
    o.pos_dims = 0;  // MPGAN's generators: pos_diffs False
    o.sum = true;
    o.negative_slope = cfg.negative_slope;
    o.final_activation = false;  // fn's last layer is linear (LinearNet final_linear); tanh follows, in write_out()
    o.message_first = true;      // MPLayer's node input is [m_i, h_i]: MPGAN's weights load unchanged
    return block_type(gen, o);
  }

  void prepare(const matrix<T>& noise, const std::vector<std::int64_t>& nparticles, workspace& ws,
               const char* who) const {
    const long N = cfg_.num_particles;
    const auto B = static_cast<long>(nparticles.size());
    HEPGNN_CHECK(B > 0, who, ": nparticles is empty (one multiplicity per jet expected)");
    HEPGNN_CHECK(noise.rows() == B * N && noise.cols() == cfg_.noise_features, who, ": noise must be (B * ",
                 N, ") x ", cfg_.noise_features, " = ", B * N, " x ", cfg_.noise_features, " for B = ", B,
                 " jets (nparticles.size()), got ", noise.rows(), " x ", noise.cols());
    for (long q = 0; q < B; ++q)
      HEPGNN_CHECK(nparticles[static_cast<std::size_t>(q)] >= 1 && nparticles[static_cast<std::size_t>(q)] <= N, who,
                   ": nparticles[", q, "] = ", nparticles[static_cast<std::size_t>(q)], " is outside 1..", N);
    for (long k = 0; k < noise.size(); ++k)
      HEPGNN_CHECK(std::isfinite(noise.data()[k]), who, ": noise holds a non-finite value (", noise.data()[k],
                   ") at row ", k / noise.cols(), ", column ", k % noise.cols());
    if (ws.b.num_graphs() != B || ws.b.num_nodes() != B * N) ws.b = batch::uniform(B, N);
    ws.mask.resize(static_cast<std::size_t>(B * N));
    for (long q = 0; q < B; ++q)
      mask_c(noise.data() + q * N * noise.cols(), noise.cols(), N, nparticles[static_cast<std::size_t>(q)],
             ws.mask.data() + q * N, ws.order);
  }

  /// g_raw rows: tanh of the message passing's output, then mask - 0.5.
  template <class Rows>
  void write_out(const matrix<T>& y, const T* mask, Rows&& out) const {
    const int F = cfg_.output_features;
    out.leftCols(F) = y.array().tanh().matrix();
    for (long r = 0; r < y.rows(); ++r) out(r, F) = mask[r] - T(0.5);
  }

  mpgan_generator_config cfg_;
  block_type mp_;
};

/// @brief The jet types of MPGAN's trained generators (JetNet: gluon, light quark, top).
enum class mpgan_jet_type { gluon, light_quark, top };

/// @brief Per-type maxima of (eta_rel, phi_rel, pt_rel) that MPGAN's gen.py multiplies by (its feature_maxes, the
/// JetNet training-set maxima, hard-coded there rather than read from args.txt).
struct mpgan_feature_maxima {
  double eta = 1, phi = 1, pt = 1;
  static mpgan_feature_maxima of(mpgan_jet_type type) {
    switch (type) {
      case mpgan_jet_type::gluon: return {1.4532885551452637, 0.520724892616272, 0.8537549376487732};
      case mpgan_jet_type::light_quark: return {1.6211985349655151, 0.4568111002445221, 0.8896132111549377};
      case mpgan_jet_type::top: return {1.4242753982543945, 0.4949831962585449, 0.8774275183677673};
    }
    return {};
  }
};

/// @brief MPGAN's gen.py post-processing of g_raw (rows: particles; columns: eta, phi, pt, mask - 0.5) into jets
/// (rows: particles; columns: eta_rel, phi_rel, pt_rel): pt + 0.5, each feature times its maximum, padded
/// particles (mask column < 0.5) and negative pt set to 0. Arithmetic in T, as gen.py's in the tensor's dtype.
template <class T>
matrix<T> mpgan_to_jets(const matrix<T>& g_raw, const mpgan_feature_maxima& maxima) {
  HEPGNN_CHECK(g_raw.cols() == 4, "mpgan_to_jets: g_raw must have 4 columns (eta, phi, pt, mask - 0.5), got ",
               g_raw.cols());
  const T m[3] = {static_cast<T>(maxima.eta), static_cast<T>(maxima.phi), static_cast<T>(maxima.pt)};
  const T shift[3] = {T(0), T(0), T(0.5)};
  matrix<T> jets(g_raw.rows(), 3);
  for (long r = 0; r < g_raw.rows(); ++r) {
    const bool real = g_raw(r, 3) >= T(0.5);
    for (int k = 0; k < 3; ++k) jets(r, k) = real ? (g_raw(r, k) + shift[k]) * m[k] : T(0);
    if (jets(r, 2) < T(0)) jets(r, 2) = T(0);
  }
  return jets;
}

/// @brief As above with the maxima of a jet type.
template <class T>
matrix<T> mpgan_to_jets(const matrix<T>& g_raw, mpgan_jet_type type) {
  return mpgan_to_jets(g_raw, mpgan_feature_maxima::of(type));
}

}  // namespace hepgnn
