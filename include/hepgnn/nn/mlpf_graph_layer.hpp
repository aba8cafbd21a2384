#pragma once
/// @file mlpf_graph_layer.hpp
/// @brief hepgnn::mlpf_graph_layer: the GNN-LSH graph layer of MLPF (jpata/particleflow CombinedGraphLayer:
/// MessageBuildingLayerLSH + NodePairGaussianKernel + GHConvDense), with an explicit backward pass.
///
/// Per batch of events (graphs), with x the N x F element features:
///   x_d   = ELU(ffn_dist(x))         learned distance embedding; ffn_dist = Linear-ELU-(Linear-ELU)*(L-1)-Linear
///   bins: LSH on x_d (graph/lsh.hpp: argmax over [x_d R, -x_d R], stable sort by bin, chunks of bin_size nodes,
///         never across events)
///   A_ab  = clip(exp(-dist_mult * sqrt(clip(|x_d,a - x_d,b|^2, 1e-6, 1e6))), clip_value_low, 1) for a, b in the
///           same chunk (self pairs included); the distance is NOT squared, as in particleflow's pairwise_l2_dist
///           (Euclidean distance, clipped) followed by exp(-0.1 d); we take |a - b|^2 directly instead of the
///           expansion |a|^2 - 2 a.b + |b|^2 (same value, better rounding)
///   num_node_messages times (GHConvDense, no degree normalisation):
///     g = sigmoid(x W_t + b_t);  x = ELU(g * (A (x theta)) + (1 - g) * (x W_h))
///   the result is returned in the original node order (the binning permutation is undone).
/// Differences from particleflow: no padding of events to a multiple of bin_size (the last chunk of an event is
/// smaller; their padded elements are zero rows that take part in their bin), no layernorm or dropout, and the
/// LSH projection comes from lsh_options::seed rather than a stored codebook. Gradients reach ffn_dist through A
/// (the bin assignment itself is piecewise constant).
/// Option hash_dims = k > 0 (not in particleflow): the bins come from the first k input columns (coordinates the
/// caller keeps there, e.g. the calorimeter position of PF elements), the nodes of a bin ordered along column 0,
/// and with hash_kernel_width = w > 0 the kernel is multiplied by exp(-|h_a - h_b|^2 / (2 w^2)) over those columns.
/// A fresh learned embedding hashes PF elements by type (tracks and the clusters they hit almost never share a
/// chunk) and its kernel is nearly flat; this keeps the graph local from the first step.
/// Parameters: ffn_dist.<0,2,4,...>.{weight,bias}, message_passing_layers.<i>.{W_t,b_t,W_h,theta}
/// (W_* and theta are [in, out] and used as x W, as in particleflow).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/lsh.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/simd/gemm.hpp"

namespace hepgnn {

/// @brief MLPF GNN-LSH graph layer (see the file comment). Keeps the feature width.
template <class T, int Width = dynamic>
class mlpf_graph_layer {
 public:
  using scalar = T;
  static constexpr int in_width = Width;
  static constexpr int out_width = Width;

  /// @brief Configuration (particleflow names).
  struct options {
    int inout_dim = Width;            ///< feature width (input = output)
    int distance_dim = 128;           ///< width of the learned distance embedding
    int ffn_dist_hidden_dim = 128;    ///< hidden width of ffn_dist
    int ffn_dist_num_layers = 2;      ///< hidden layers of ffn_dist
    int num_node_messages = 2;        ///< GHConv layers
    index_t bin_size = 128;           ///< LSH chunk size
    std::uint64_t lsh_seed = 0;       ///< seed of the LSH projection
    double dist_mult = 0.1;           ///< kernel exp(-dist_mult * d)
    double clip_value_low = 0.0;      ///< kernel lower clip
    /// 0: LSH bins from the learned embedding x_d (MLPF). k > 0: bins from the first k columns of the input
    /// (coordinates the caller keeps there, e.g. the position at the calorimeter), nodes of a bin ordered along
    /// column 0, so that elements a PF algorithm would link share a chunk from the first step on
    int hash_dims = 0;
    /// with hash_dims > 0 and w > 0: the kernel is also multiplied by exp(-|h_a - h_b|^2 / (2 w^2)) over those
    /// columns, a locality prior (a fresh learned embedding gives a nearly flat kernel: messages would be chunk means)
    double hash_kernel_width = 0;
  };

  /// @brief One GHConvDense: gate, homogeneous (graph) and heterogeneous (self) maps.
  struct ghconv {
    matrix<T> W_t, b_t, W_h, theta;
    matrix<T> gW_t, gb_t, gW_h, gtheta;
  };

  /// @brief A thread's buffers for a chunk C of the backward: f = dF_C; p = P_C, then dP_C; a = dF_C P_C^T, then A_C^T.
  struct chunk_buffers {
    matrix<T> f, p, a;
  };

  /// @brief What forward keeps for backward.
  struct cache {
    std::vector<matrix<T>> ffn;  ///< ELU outputs of each ffn_dist Linear (the last is x_d)
    lsh_binning bins;
    lsh_workspace<T> lsh_ws;
    std::vector<long> a_off;     ///< start of chunk c's m x m kernel in a / sq
    std::vector<T> a, sq, da, s;  ///< s: locality factor of the kernel (hash_kernel_width > 0)
    std::vector<matrix<T>> xs, gate, fhom, fhet, p;  ///< per GHConv: input, gate, A(x theta), x W_h, x theta
    matrix<T> g, g2, dx, dfhom, dp, pc, fc, dxd, hx, wt;
    std::vector<chunk_buffers> chunk;  ///< backward: one per thread of parallel_for_with
    std::uint64_t forward_key = 0;     ///< fingerprint of the training forward's x and batch (0 after an infer)
  };

  mlpf_graph_layer(rng& gen, const options& o) : o_(checked(o)) {
    int w = o.inout_dim;
    for (int l = 0; l < o.ffn_dist_num_layers; ++l) {
      ffn_.emplace_back(gen, w, o.ffn_dist_hidden_dim);
      w = o.ffn_dist_hidden_dim;
    }
    ffn_.emplace_back(gen, w, o.distance_dim);
    // particleflow initialises these with torch.randn; scaled down here so a default layer is well conditioned
    const double s = 1.0 / std::sqrt(static_cast<double>(o.inout_dim));
    auto init = [&](matrix<T>& m, long r, long c, double scale) {
      m.resize(r, c);
      for (long i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(scale * gen.normal());
    };
    for (int l = 0; l < o.num_node_messages; ++l) {
      ghconv g;
      const long F = o.inout_dim;
      init(g.W_t, F, F, s);
      init(g.b_t, 1, F, s);
      init(g.W_h, F, F, s);
      init(g.theta, F, F, s);
      g.gW_t.setZero(F, F);
      g.gb_t.setZero(1, F);
      g.gW_h.setZero(F, F);
      g.gtheta.setZero(F, F);
      conv_.push_back(std::move(g));
    }
  }

  const options& config() const { return o_; }
  /// @brief Linear layer l of ffn_dist.
  dense<T>& ffn_dist(int l) { return ffn_[l]; }
  /// @brief GHConv layer i.
  ghconv& message_passing_layer(int i) { return conv_[i]; }

  /// @brief Training forward: y (N x inout_dim), original node order.
  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    run(x, b, y, c, "mlpf_graph_layer::forward");
    c.forward_key = forward_key(x, b);
  }
  /// @brief Inference (the LSH binning allocates its result; kernels and activations reuse the cache, so a later
  /// backward needs a new training forward).
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    c.forward_key = 0;
    run(x, b, y, c, "mlpf_graph_layer::infer");
  }

  /// @brief Adds parameter gradients for dy (N x inout_dim); writes dL/dx when dx is not null.
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    const long n = x.rows(), F = o_.inout_dim;
    const int L = o_.num_node_messages;
    check_same_forward(c.forward_key, forward_key(x, b), "mlpf_graph_layer::backward", "input x or batch");
    HEPGNN_CHECK(static_cast<int>(c.xs.size()) == L + 1 && c.xs[0].rows() == n &&
                     c.bins.permutation.size() == static_cast<std::size_t>(n),
                 "mlpf_graph_layer::backward: call forward with this batch (", n, " nodes) first");
    check_shape(dy, n, F, "mlpf_graph_layer::backward: output gradient dy");
    const auto& perm = c.bins.permutation;
    const index_t nchunks = c.bins.num_chunks();
    const bool parallel = n * F >= parallel_limits::min_work;
    c.da.assign(c.a.size(), T(0));
    c.chunk.resize(static_cast<std::size_t>(max_threads()));
    c.g = dy;  // dL/d(output of layer l)
    // Weight gradients sum over the nodes in an order fixed by the data (simd::add_weight_gradient), input
    // gradients are products of simd/gemm.hpp, and each chunk is handled by one thread: the result does not depend
    // on the thread count.
    for (int l = L - 1; l >= 0; --l) {
      auto& cv = conv_[l];
      const matrix<T>& xin = c.xs[l];
      const matrix<T>& yl = c.xs[l + 1];
      // dO = dY * ELU'(O)
      c.g = (yl.array() > T(0)).select(c.g, c.g.array() * (yl.array() + T(1)));
      const auto& G = c.gate[l];
      // gate
      c.g2 = (c.g.array() * (c.fhom[l].array() - c.fhet[l].array()) * G.array() * (T(1) - G.array())).matrix();
      simd::add_weight_gradient(c.g2, xin, cv.gW_t);
      add_column_sums(c.g2, cv.gb_t.row(0));
      c.wt = cv.W_t.transpose();
      simd::multiply(c.g2, c.wt, c.dx);
      // heterogeneous part
      c.g2 = (c.g.array() * (T(1) - G.array())).matrix();
      simd::add_weight_gradient(c.g2, xin, cv.gW_h);
      c.wt = cv.W_h.transpose();
      simd::multiply(c.g2, c.wt, c.dx, true);
      // homogeneous part: fhom_C = A_C P_C, so dA_C += dF_C P_C^T and dP_C = A_C^T dF_C
      c.dfhom = (c.g.array() * G.array()).matrix();
      c.dp.setZero(n, F);
      parallel_for_with(
          nchunks, parallel, 1, [&](int t) { return &c.chunk[static_cast<std::size_t>(t)]; },
          [&](long ch, chunk_buffers* cb) {
            const long p0 = c.bins.chunk_offsets[ch], m = c.bins.chunk_offsets[ch + 1] - p0;
            Eigen::Map<const matrix<T>> A(c.a.data() + c.a_off[ch], m, m);
            Eigen::Map<matrix<T>> dA(c.da.data() + c.a_off[ch], m, m);
            cb->f.resize(m, F);
            cb->p.resize(m, F);
            for (long r = 0; r < m; ++r) {
              cb->f.row(r) = c.dfhom.row(perm[p0 + r]);
              cb->p.row(r) = c.p[l].row(perm[p0 + r]);
            }
            simd::linear_forward(cb->f, cb->p, nullptr, cb->a);  // dF_C P_C^T
            dA += cb->a;
            cb->a = A.transpose();
            simd::multiply(cb->a, cb->f, cb->p);  // dP_C
            for (long r = 0; r < m; ++r) c.dp.row(perm[p0 + r]) = cb->p.row(r);
          },
          [](chunk_buffers*) {});
      simd::add_weight_gradient(c.dp, xin, cv.gtheta);
      c.wt = cv.theta.transpose();
      simd::multiply(c.dp, c.wt, c.dx, true);
      c.g.swap(c.dx);
    }
    // kernel -> distance embedding (a chunk's pairs touch only its own nodes: one thread per chunk)
    const matrix<T>& xd = c.ffn.back();
    const long D = xd.cols();
    c.dxd.setZero(n, D);
    const T k = static_cast<T>(o_.dist_mult), low = static_cast<T>(o_.clip_value_low);
    parallel_for<loop_schedule::dynamic_single>(nchunks, n * D >= parallel_limits::min_work, [&](long ch) {
      const long p0 = c.bins.chunk_offsets[ch], m = c.bins.chunk_offsets[ch + 1] - p0;
      for (long r = 0; r < m; ++r)
        for (long q = 0; q < m; ++q) {
          const long idx = c.a_off[ch] + r * m + q;
          const T sq = c.sq[idx];
          if (!(sq > T(1e-6) && sq < T(1e6))) continue;  // distance clipped: no gradient
          const T raw = std::exp(-k * std::sqrt(sq));
          if (raw < low) continue;  // kernel clipped: no gradient
          const T dsq = c.da[idx] * raw * (c.s.empty() ? T(1) : c.s[idx]) * (-k) / (T(2) * std::sqrt(sq));
          const index_t i = perm[p0 + r], j = perm[p0 + q];
          for (long f = 0; f < D; ++f) {
            const T v = T(2) * dsq * (xd(i, f) - xd(j, f));
            c.dxd(i, f) += v;
            c.dxd(j, f) -= v;
          }
        }
    });
    // ffn_dist backward (every Linear followed by ELU)
    for (std::size_t l = ffn_.size(); l-- > 0;) {
      const matrix<T>& out = c.ffn[l];
      c.dxd = (out.array() > T(0)).select(c.dxd, c.dxd.array() * (out.array() + T(1)));
      const matrix<T>& in = l == 0 ? x : c.ffn[l - 1];
      const bool need_dx = l > 0 || dx;
      simd::linear_backward(in, c.dxd, ffn_[l].weight(), ffn_[l].weight_grad(), ffn_[l].bias_grad().data(),
                            need_dx ? &c.g2 : nullptr);
      if (need_dx) c.dxd.swap(c.g2);
    }
    if (dx) {
      *dx = c.g + c.dxd;
      // locality factor s_ab = exp(-|h_a - h_b|^2 / (2 w^2)) over the hash columns: dA_ab/dh_a = -A_ab (h_a - h_b) / w^2
      if (!c.s.empty()) {
        const T m2 = static_cast<T>(-1 / (o_.hash_kernel_width * o_.hash_kernel_width));
        for (index_t ch = 0; ch < nchunks; ++ch) {
          const long p0 = c.bins.chunk_offsets[ch], m = c.bins.chunk_offsets[ch + 1] - p0;
          for (long r = 0; r < m; ++r)
            for (long q = 0; q < m; ++q) {
              const long idx = c.a_off[ch] + r * m + q;
              const T v = m2 * c.da[idx] * c.a[idx];
              const index_t i = perm[p0 + r], j = perm[p0 + q];
              for (long f = 0; f < o_.hash_dims; ++f) {
                const T d = v * (c.hx(i, f) - c.hx(j, f));
                (*dx)(i, f) += d;
                (*dx)(j, f) -= d;
              }
            }
        }
      }
    }
    (void)b;
    (void)y;
  }

  /// @brief Visits ffn_dist.<2l>.{weight,bias} and message_passing_layers.<i>.{W_t,b_t,W_h,theta}.
  template <class Fn>
  void for_each_param(const std::string& prefix, Fn&& f) {
    for (std::size_t l = 0; l < ffn_.size(); ++l) ffn_[l].for_each_param(prefix + "ffn_dist." + std::to_string(2 * l) + ".", f);
    for (std::size_t i = 0; i < conv_.size(); ++i) {
      const std::string p = prefix + "message_passing_layers." + std::to_string(i) + ".";
      auto& g = conv_[i];
      f(p + "W_t", make_parameter(g.W_t, g.gW_t, {g.W_t.rows(), g.W_t.cols()}));
      f(p + "b_t", make_parameter(g.b_t, g.gb_t, {g.b_t.cols()}));
      f(p + "W_h", make_parameter(g.W_h, g.gW_h, {g.W_h.rows(), g.W_h.cols()}));
      f(p + "theta", make_parameter(g.theta, g.gtheta, {g.theta.rows(), g.theta.cols()}));
    }
  }

 private:
  static const options& checked(const options& o) {
    HEPGNN_CHECK(o.inout_dim > 0 && o.distance_dim > 0 && o.ffn_dist_hidden_dim > 0 && o.ffn_dist_num_layers >= 1 &&
                     o.num_node_messages >= 1 && o.bin_size > 0,
                 "mlpf_graph_layer: inout_dim, distance_dim, ffn_dist_hidden_dim, ffn_dist_num_layers, "
                 "num_node_messages and bin_size must be positive, got ",
                 o.inout_dim, ", ", o.distance_dim, ", ", o.ffn_dist_hidden_dim, ", ", o.ffn_dist_num_layers, ", ",
                 o.num_node_messages, ", ", o.bin_size);
    HEPGNN_CHECK(o.hash_dims >= 0 && o.hash_dims <= o.inout_dim, "mlpf_graph_layer: hash_dims must be in [0, inout_dim = ",
                 o.inout_dim, "], got ", o.hash_dims);
    HEPGNN_CHECK(width_accepts(Width, o.inout_dim), "mlpf_graph_layer: runtime width ", o.inout_dim,
                 " contradicts the compile-time width ", Width);
    HEPGNN_CHECK(o.hash_kernel_width >= 0, "mlpf_graph_layer: hash_kernel_width must be >= 0, got ",
                 o.hash_kernel_width);
    HEPGNN_CHECK(o.dist_mult > 0, "mlpf_graph_layer: dist_mult must be > 0, got ", o.dist_mult);
    return o;
  }

  // Orders the nodes of every bin by column 0 of h (ties by id): a bin larger than a chunk is then cut into
  // slices of h-space rather than into arbitrary subsets. Chunks are unchanged (they depend on graph sizes only).
  static void order_bins_along_first_column(const matrix<T>& h, const batch& b, lsh_binning& bins) {
    auto& perm = bins.permutation;
    for (index_t g = 0; g < b.num_graphs(); ++g) {
      std::sort(perm.begin() + b.begin(g), perm.begin() + b.end(g), [&](index_t i, index_t j) {
        if (bins.bin[i] != bins.bin[j]) return bins.bin[i] < bins.bin[j];
        return h(i, 0) != h(j, 0) ? h(i, 0) < h(j, 0) : i < j;
      });
    }
    for (std::size_t p = 0; p < perm.size(); ++p) bins.position[perm[p]] = static_cast<index_t>(p);
  }

  static void elu(matrix<T>& m) { m = (m.array() > T(0)).select(m, m.array().unaryExpr([](T v) { return std::expm1(v); })); }

  void run(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c, const char* who) const {
    check_cols(x, o_.inout_dim, who);
    HEPGNN_CHECK(b.num_nodes() == x.rows(), who, ": the batch covers ", b.num_nodes(), " nodes but x has ", x.rows(),
                 " rows");
    b.validate(static_cast<index_t>(x.rows()));
    check_finite(x, who);
    const long n = x.rows(), F = o_.inout_dim;
    // distance embedding
    c.ffn.resize(ffn_.size());
    for (std::size_t l = 0; l < ffn_.size(); ++l) {
      const matrix<T>& in = l == 0 ? x : c.ffn[l - 1];
      multiply_transposed(in, ffn_[l].weight(), c.ffn[l]);
      c.ffn[l].rowwise() += ffn_[l].bias().row(0);
      elu(c.ffn[l]);
    }
    const matrix<T>& xd = c.ffn.back();
    lsh_options lo;
    lo.bin_size = o_.bin_size;
    lo.seed = o_.lsh_seed;
    if (o_.hash_dims > 0) {
      c.hx = x.leftCols(o_.hash_dims);
      lsh_bins_into(c.hx, b, lo, 0, c.bins, c.lsh_ws);
      order_bins_along_first_column(c.hx, b, c.bins);
    } else {
      lsh_bins_into(xd, b, lo, 0, c.bins, c.lsh_ws);
    }
    const auto& perm = c.bins.permutation;
    const index_t nchunks = c.bins.num_chunks();
    c.a_off.resize(static_cast<std::size_t>(nchunks) + 1);
    c.a_off[0] = 0;
    for (index_t ch = 0; ch < nchunks; ++ch) {
      const long m = c.bins.chunk_offsets[ch + 1] - c.bins.chunk_offsets[ch];
      c.a_off[ch + 1] = c.a_off[ch] + m * m;
    }
    c.a.resize(static_cast<std::size_t>(c.a_off.back()));
    c.sq.resize(c.a.size());
    const bool local = o_.hash_dims > 0 && o_.hash_kernel_width > 0;
    c.s.resize(local ? c.a.size() : 0);
    const T inv2w2 = local ? static_cast<T>(0.5 / (o_.hash_kernel_width * o_.hash_kernel_width)) : T(0);
    const T k = static_cast<T>(o_.dist_mult), low = static_cast<T>(o_.clip_value_low);
    const long D = xd.cols();
    parallel_for<loop_schedule::dynamic_single>(nchunks, n * D >= detail::parallel_min_work, [&](long ch) {
      const long p0 = c.bins.chunk_offsets[ch], m = c.bins.chunk_offsets[ch + 1] - p0;
      for (long r = 0; r < m; ++r) {
        const T* xa = xd.data() + long(perm[p0 + r]) * D;
        for (long q = 0; q < m; ++q) {
          const T* xb = xd.data() + long(perm[p0 + q]) * D;
          T sq = 0;
          for (long f = 0; f < D; ++f) sq += (xa[f] - xb[f]) * (xa[f] - xb[f]);
          const long idx = c.a_off[ch] + r * m + q;
          c.sq[idx] = sq;
          const T d = std::sqrt(std::clamp(sq, T(1e-6), T(1e6)));
          c.a[idx] = std::clamp(std::exp(-k * d), low, T(1));
          if (local) {
            T sh = 0;
            for (long f = 0; f < o_.hash_dims; ++f) {
              const T dh = c.hx(perm[p0 + r], f) - c.hx(perm[p0 + q], f);
              sh += dh * dh;
            }
            c.s[idx] = std::exp(-inv2w2 * sh);
            c.a[idx] *= c.s[idx];
          }
        }
      }
    });
    // GHConv layers
    const int L = o_.num_node_messages;
    c.xs.resize(L + 1);
    c.gate.resize(L);
    c.fhom.resize(L);
    c.fhet.resize(L);
    c.p.resize(L);
    c.xs[0] = x;
    for (int l = 0; l < L; ++l) {
      const auto& cv = conv_[l];
      const matrix<T>& xin = c.xs[l];
      // through simd/gemm.hpp: no per-call packing buffers or thread teams from Eigen's GEMM
      simd::multiply(xin, cv.theta, c.p[l]);
      simd::multiply(xin, cv.W_h, c.fhet[l]);
      simd::multiply(xin, cv.W_t, c.gate[l]);
      c.gate[l].rowwise() += cv.b_t.row(0);
      c.gate[l] = (T(1) / (T(1) + (-c.gate[l].array()).exp())).matrix();
      c.fhom[l].resize(n, F);
      // chunk buffers sized once for the largest chunk (chunks differ in size; resizing per chunk would allocate)
      long largest = 0;
      for (index_t ch = 0; ch < nchunks; ++ch)
        largest = std::max<long>(largest, c.bins.chunk_offsets[ch + 1] - c.bins.chunk_offsets[ch]);
      c.pc.resize(largest, F);
      c.fc.resize(largest, F);
      for (index_t ch = 0; ch < nchunks; ++ch) {
        const long p0 = c.bins.chunk_offsets[ch], m = c.bins.chunk_offsets[ch + 1] - p0;
        Eigen::Map<const matrix<T>> A(c.a.data() + c.a_off[ch], m, m);
        Eigen::Map<matrix<T>> pc(c.pc.data(), m, F), fc(c.fc.data(), m, F);
        for (long r = 0; r < m; ++r) pc.row(r) = c.p[l].row(perm[p0 + r]);
        fc.noalias() = A.lazyProduct(pc);
        for (long r = 0; r < m; ++r) c.fhom[l].row(perm[p0 + r]) = fc.row(r);
      }
      c.xs[l + 1] = (c.gate[l].array() * c.fhom[l].array() + (T(1) - c.gate[l].array()) * c.fhet[l].array()).matrix();
      elu(c.xs[l + 1]);
    }
    y = c.xs[L];
  }

  options o_;
  std::vector<dense<T>> ffn_;
  std::vector<ghconv> conv_;
};

}  // namespace hepgnn
