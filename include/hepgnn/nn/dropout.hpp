#pragma once
/// @file dropout.hpp
/// @brief hepgnn::dropout: zeroes entries with probability p in training and scales the rest by 1/(1-p).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/layer.hpp"

namespace hepgnn {

/// @brief Inverted dropout (PyTorch Dropout). infer() is the identity. Seeded, so training runs are reproducible.
template <class T>
class dropout {
 public:
  using scalar = T;
  static constexpr int in_width = same_width;
  static constexpr int out_width = same_width;
  struct cache {
    matrix<T> mask;  ///< 0 or 1/(1-p)
  };

  explicit dropout(double p = 0.5, std::uint64_t seed = 0xD809) : p_(p), gen_(seed) {
    HEPGNN_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  }
  double p() const { return p_; }

  void forward(const matrix<T>& x, matrix<T>& y, cache& c) {
    c.mask.resize(x.rows(), x.cols());
    const T keep = static_cast<T>(1 / (1 - p_));
    for (Eigen::Index i = 0; i < x.size(); ++i) c.mask.data()[i] = gen_.uniform() < p_ ? T(0) : keep;
    y = x.cwiseProduct(c.mask);
  }
  void infer(const matrix<T>& x, matrix<T>& y, cache&) const { y = x; }
  void backward(const matrix<T>&, const matrix<T>&, const matrix<T>& dy, cache& c, matrix<T>* dx) {
    if (dx) *dx = dy.cwiseProduct(c.mask);
  }
  template <class F>
  void for_each_param(const std::string&, F&&) {}

 private:
  double p_;
  rng gen_;
};

/// @brief The mask of hashed_dropout as a function of the entry index: factor(k) is 0 when the hash of
/// (seed, stream, k), read as a uniform in [0, 1), is below p, else 1 / (1 - p). For loops that fuse the mask with
/// other element-wise work and must draw what hashed_dropout draws.
template <class T>
struct hashed_dropout_mask {
  hashed_dropout_mask(double p, std::uint64_t seed, std::uint64_t stream)
      : keep(static_cast<T>(1 / (1 - p))),
        threshold(static_cast<std::uint64_t>(std::ceil(p * 0x1.0p53))),  // u = bits * 2^-53 < p: dropped
        base(mix64(seed ^ mix64(stream + 0x6A09E667F3BCC909ULL))) {
    HEPGNN_CHECK(p >= 0 && p < 1, "hashed_dropout: p must be in [0, 1), got ", p);
  }
  /// Branch-free: half the entries drop at p = 0.5, a branch on each would be mispredicted half the time.
  T factor(std::uint64_t k) const { return static_cast<T>((mix64(base + k) >> 11) >= threshold) * keep; }

  T keep;
  std::uint64_t threshold, base;
};

/// @brief Inverted dropout drawn from a counter-based hash, for layers that redo their masks in backward instead
/// of storing them: entry k of `m` is multiplied by hashed_dropout_mask(p, seed, stream).factor(k). The same call
/// on a gradient applies the same mask (d(dropout)/dx is the mask itself). The draw of an entry depends on nothing
/// but (seed, stream, k).
template <class T>
void hashed_dropout(matrix<T>& m, double p, std::uint64_t seed, std::uint64_t stream) {
  const hashed_dropout_mask<T> mask(p, seed, stream);
  T* v = m.data();
  const long size = m.size(), block = 1L << 14, blocks = (size + block - 1) / block;
  parallel_for(blocks, size >= parallel_limits::min_work, [&](long q) {  // each entry its own draw: any order
    for (long k = q * block, e = std::min(size, k + block); k < e; ++k) v[k] *= mask.factor(static_cast<std::uint64_t>(k));
  });
}

}  // namespace hepgnn
