#pragma once
/// @file shard.hpp
/// @brief Sharded data for data-parallel training: a fixed number of micro-shards, owned round-robin by ranks.
///
/// The rule (the same at any rank count, which is what makes the reproducible mode possible):
///  - the training data is split into M micro-shards, M chosen by the job and independent of the rank count
///    (split_round_robin: item i of a list of files or events goes to micro-shard i % M; contiguous_rows: the
///    rows of one large file in M contiguous blocks);
///  - rank r of N owns micro-shards r, r + N, r + 2N, ... and reads only their files (N need not divide M: a rank
///    with one more micro-shard does a little more work per step);
///  - each step takes one micro-batch of b items from every micro-shard, so a global batch is M * b items;
///  - an epoch has ceil(max_s n_s / b) steps; a micro-shard with fewer items wraps around its own order (as
///    PyTorch's DistributedSampler pads), so every item is seen at least once per epoch and steps stay uniform;
///  - every micro-shard is shuffled per epoch by a seed derived from (seed, epoch, shard): every rank knows every
///    order without communication.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"

namespace hepgnn {

/// @brief Item i of n goes to micro-shard i % shards; returns the items of each micro-shard in order.
inline std::vector<std::vector<std::size_t>> split_round_robin(std::size_t n, int shards) {
  HEPGNN_CHECK(shards >= 1, "split_round_robin: shards must be >= 1, got ", shards);
  HEPGNN_CHECK(n >= static_cast<std::size_t>(shards), "split_round_robin: ", n, " items cannot fill ", shards,
               " micro-shards (each needs at least one item)");
  std::vector<std::vector<std::size_t>> out(static_cast<std::size_t>(shards));
  for (std::size_t i = 0; i < n; ++i) out[i % static_cast<std::size_t>(shards)].push_back(i);
  return out;
}

/// @brief Rows [first, first + count) of micro-shard `shard` when one file's n rows are cut into `shards`
/// contiguous blocks (the first n % shards blocks one row longer): what a rank reads of a shared .npy file
/// (io/npy_rows.hpp), so the reads stay sequential.
struct row_range {
  std::size_t first = 0, count = 0;
};
inline row_range contiguous_rows(std::size_t n, int shards, int shard) {
  HEPGNN_CHECK(shards >= 1 && shard >= 0 && shard < shards, "contiguous_rows: shard must be in [0, ", shards, "), got ",
               shard);
  HEPGNN_CHECK(n >= static_cast<std::size_t>(shards), "contiguous_rows: ", n, " rows cannot fill ", shards,
               " micro-shards (each needs at least one row)");
  const auto m = static_cast<std::size_t>(shards), s = static_cast<std::size_t>(shard);
  const std::size_t base = n / m, extra = n % m;
  return {s * base + std::min(s, extra), base + (s < extra ? 1 : 0)};
}

/// @brief The micro-shards rank `rank` of `ranks` owns: rank, rank + ranks, ...
inline std::vector<int> owned_shards(int shards, int rank, int ranks) {
  HEPGNN_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "owned_shards: rank must be in [0, ranks), got rank ", rank,
               " of ", ranks);
  HEPGNN_CHECK(shards >= ranks, "owned_shards: ", shards, " micro-shards for ", ranks,
               " ranks would leave a rank without data; use at least as many micro-shards as ranks");
  std::vector<int> out;
  for (int s = rank; s < shards; s += ranks) out.push_back(s);
  return out;
}

/// @brief Which items of each micro-shard every step of every epoch uses (see the file comment for the rule).
class micro_shard_sampler {
 public:
  /// @param shard_sizes items in each micro-shard (all > 0); @param micro_batch items per micro-shard per step.
  micro_shard_sampler(std::vector<std::size_t> shard_sizes, std::size_t micro_batch, std::uint64_t seed,
                      bool shuffle = true)
      : sizes_(std::move(shard_sizes)), b_(micro_batch), seed_(seed), shuffle_(shuffle), orders_(sizes_.size()),
        order_epoch_(sizes_.size(), 0) {
    HEPGNN_CHECK(!sizes_.empty(), "micro_shard_sampler: shard_sizes is empty (need at least one micro-shard)");
    HEPGNN_CHECK(b_ >= 1, "micro_shard_sampler: micro_batch must be >= 1, got ", b_);
    for (std::size_t s = 0; s < sizes_.size(); ++s)
      HEPGNN_CHECK(sizes_[s] > 0, "micro_shard_sampler: micro-shard ", s, " is empty (every shard needs an item)");
  }
  int shards() const { return static_cast<int>(sizes_.size()); }
  std::size_t micro_batch() const { return b_; }
  /// @brief Items per global batch (every micro-shard's micro-batch).
  std::size_t global_batch() const { return b_ * sizes_.size(); }
  std::size_t steps_per_epoch() const {
    const std::size_t longest = *std::max_element(sizes_.begin(), sizes_.end());
    return (longest + b_ - 1) / b_;
  }

  /// @brief The items (indices into micro-shard `shard`) of step `step` (from 0) of epoch `epoch` (from 1).
  std::vector<std::size_t> items(int epoch, std::size_t step, int shard) const {
    HEPGNN_CHECK(epoch >= 1, "micro_shard_sampler::items: epoch counts from 1, got ", epoch);
    HEPGNN_CHECK(step < steps_per_epoch(), "micro_shard_sampler::items: step must be < ", steps_per_epoch(), ", got ",
                 step);
    HEPGNN_CHECK(shard >= 0 && shard < shards(), "micro_shard_sampler::items: shard must be in [0, ", shards(),
                 "), got ", shard);
    const auto& order = order_of(epoch, shard);
    std::vector<std::size_t> out(b_);
    for (std::size_t i = 0; i < b_; ++i) out[i] = order[(step * b_ + i) % order.size()];
    return out;
  }

 private:
  const std::vector<std::size_t>& order_of(int epoch, int shard) const {
    const auto s = static_cast<std::size_t>(shard);
    if (order_epoch_[s] != epoch) {
      auto& o = orders_[s];
      o.resize(sizes_[s]);
      std::iota(o.begin(), o.end(), std::size_t{0});
      if (shuffle_) {
        rng gen(mix64(seed_ ^ mix64(static_cast<std::uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(shard))));
        gen.shuffle(o);
      }
      order_epoch_[s] = epoch;
    }
    return orders_[s];
  }
  std::vector<std::size_t> sizes_;
  std::size_t b_;
  std::uint64_t seed_;
  bool shuffle_;
  mutable std::vector<std::vector<std::size_t>> orders_;
  mutable std::vector<int> order_epoch_;
};

}  // namespace hepgnn
