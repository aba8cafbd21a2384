#pragma once
/// @file data_parallel.hpp
/// @brief hepgnn::data_parallel: one training step's gradients over the micro-shards of all ranks (dist/shard.hpp),
/// in a fast mode (one bucketed allreduce, the default) or a reproducible one (bit-identical at any rank count).
///
/// Each rank computes the gradients of its own micro-shards (the caller's `shard_gradient(shard)`, which adds
/// d(loss sum of the shard's items)/dw to the model's gradients and returns the loss sum and the item count);
/// data_parallel combines them so every rank ends the step holding the gradient of the mean loss over the global
/// batch, and the caller's optimizer then takes the same step on every rank.
///
/// - fast: a rank accumulates its shards in the model's gradients; the gradients travel in buckets (PyTorch
///   DDP's sizes: 1 MiB first, then 25 MiB, parameters in reverse visiting order, so the last layers' gradients,
///   finished first by a backward, go first), each an allreduce started as soon as it is packed and waited for in
///   order. The sum's rounding depends on the number of ranks (as in DDP and Horovod).
/// - reproducible: every micro-shard's gradient is computed alone, all of them are gathered on every rank, and
///   summed in shard order, in one process as on N ranks: the same bits at any rank count. It costs M/N times the
///   bytes of an allreduce, a pass over M gradients, and a zero_grad per micro-shard.
///
/// hepgnn's models compute their backward in one call, so no bucket can start before the backward ends; the
/// buckets overlap each other's packing, transfer and unpacking, not the backward.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/dist/communicator.hpp"
#include "hepgnn/dist/shard.hpp"
#include "hepgnn/dist/timeline.hpp"

namespace hepgnn {

enum class gradient_reduction { fast, reproducible };

/// @brief Options of data_parallel.
struct data_parallel_options {
  gradient_reduction mode = gradient_reduction::fast;
  std::size_t bucket_bytes = std::size_t{25} << 20;       ///< fast mode: bucket size after the first
  std::size_t first_bucket_bytes = std::size_t{1} << 20;  ///< fast mode: the first (smaller: starts sooner)
};

/// @brief What shard_gradient returns: the loss summed over the micro-shard's items, and how many items.
struct shard_loss {
  double loss_sum = 0;
  double items = 0;
};

/// @brief Data-parallel gradient reduction over the ranks of a communicator (see the file comment).
template <class T, communicator Comm>
class data_parallel {
 public:
  /// @param micro_shards M, fixed by the job (not by the rank count): see dist/shard.hpp.
  data_parallel(Comm& comm, int micro_shards, data_parallel_options o = {}, timeline* trace = nullptr)
      : comm_(comm), o_(o), trace_(trace), shards_(micro_shards),
        mine_(owned_shards(micro_shards, comm.rank(), comm.size())) {
    HEPGNN_CHECK(o.bucket_bytes >= sizeof(T) && o.first_bucket_bytes >= sizeof(T),
                 "data_parallel: bucket sizes must hold at least one value, got ", o.first_bucket_bytes, " and ",
                 o.bucket_bytes, " bytes");
  }

  int micro_shards() const { return shards_; }
  /// @brief The micro-shards this rank computes (and whose data it reads).
  const std::vector<int>& my_shards() const { return mine_; }
  int rank() const { return comm_.rank(); }
  int ranks() const { return comm_.size(); }

  /// @brief Rank 0's parameters and buffers (BatchNorm statistics) to every rank: call once before training.
  template <class Model>
  void broadcast_parameters(Model& model) {
    auto s = scope("broadcast", time_kind::communication);
    for_each_state(model, "", [&](const std::string&, auto p) { comm_.broadcast(p.value, static_cast<std::size_t>(p.size()), 0); });
  }

  /// @brief One step: zeroes the gradients, calls shard_gradient(s) for each of this rank's micro-shards and
  /// leaves the gradient of the global mean loss in the model on every rank; returns the global mean loss.
  template <class Model, class ShardGradient>
  double reduce_gradients(Model& model, ShardGradient&& shard_gradient) {
    collect(model);
    return o_.mode == gradient_reduction::fast ? fast_step(model, shard_gradient) : reproducible_step(model, shard_gradient);
  }

 private:
  struct param_view {
    T* grad;
    std::size_t n;
  };
  timeline::scoped scope(const char* name, time_kind k) { return timeline::scoped(trace_, name, k); }

  template <class Model>
  void collect(Model& model) {
    params_.clear();
    model.for_each_param("", [&](const std::string&, auto p) {
      params_.push_back({p.grad, static_cast<std::size_t>(p.size())});
    });
    total_ = 0;
    for (const auto& p : params_) total_ += p.n;
  }

  template <class ShardGradient>
  shard_loss run_shard(ShardGradient& shard_gradient, int s) {
    auto sc = scope("micro-shard", time_kind::compute);
    const shard_loss r = shard_gradient(s);
    HEPGNN_CHECK(r.items >= 0, "data_parallel: shard_gradient(", s, ") returned a negative item count ", r.items);
    return r;
  }

  void scale(double items) {
    HEPGNN_CHECK(items > 0, "data_parallel: the global batch has no items (every shard_gradient returned 0 items)");
    const T f = static_cast<T>(1.0 / items);
    for (const auto& p : params_)
      for (std::size_t i = 0; i < p.n; ++i) p.grad[i] *= f;
  }

  // The ranks' load imbalance shows as "wait" (a barrier), the collective itself as "communication"; only
  // when a timeline records, since the barrier costs a round trip.
  void wait_for_ranks() {
    if (!trace_ || comm_.size() == 1) return;
    auto s = scope("wait for ranks", time_kind::wait);
    comm_.barrier();
  }

  template <class Model, class ShardGradient>
  double fast_step(Model& model, ShardGradient& shard_gradient) {
    zero_grad(model);
    double totals[2] = {0, 0};
    for (int s : mine_) {
      const shard_loss r = run_shard(shard_gradient, s);
      totals[0] += r.loss_sum;
      totals[1] += r.items;
    }
    if (comm_.size() > 1) {
      wait_for_ranks();
      auto sc = scope("allreduce", time_kind::communication);
      allreduce_buckets();
      comm_.allreduce_sum(totals, 2);
    }
    scale(totals[1]);
    return totals[0] / totals[1];
  }

  // Parameters in reverse order, cut into buckets; each packed and started, then all waited for and unpacked.
  void allreduce_buckets() {
    using request = decltype(comm_.start_allreduce_sum(static_cast<T*>(nullptr), std::size_t{0}));
    std::vector<request> pending;
    bucket_ranges_.clear();
    std::size_t p = params_.size(), limit = std::max<std::size_t>(1, o_.first_bucket_bytes / sizeof(T)), used = 0;
    std::size_t begin = p;  // bucket = params [end, begin) in reverse order
    fusion_.resize(total_);
    std::size_t offset = 0, bucket_start = 0;
    const auto flush = [&] {
      if (offset == bucket_start) return;
      pending.push_back(comm_.start_allreduce_sum(fusion_.data() + bucket_start, offset - bucket_start));
      bucket_ranges_.push_back({p, begin});
      bucket_start = offset;
      begin = p;
      used = 0;
      limit = std::max<std::size_t>(1, o_.bucket_bytes / sizeof(T));
    };
    while (p > 0) {
      const param_view& v = params_[p - 1];
      if (used > 0 && used + v.n > limit) flush();
      std::copy(v.grad, v.grad + v.n, fusion_.data() + offset);
      offset += v.n;
      used += v.n;
      --p;
    }
    flush();
    offset = 0;
    for (std::size_t b = 0; b < pending.size(); ++b) {
      pending[b].wait();
      const auto [lo, hi] = bucket_ranges_[b];
      for (std::size_t q = hi; q > lo; --q) {
        const param_view& v = params_[q - 1];
        std::copy(fusion_.data() + offset, fusion_.data() + offset + v.n, v.grad);
        offset += v.n;
      }
    }
  }

  template <class Model, class ShardGradient>
  double reproducible_step(Model& model, ShardGradient& shard_gradient) {
    const std::size_t n_ranks = static_cast<std::size_t>(comm_.size());
    const std::size_t per_rank = (static_cast<std::size_t>(shards_) + n_ranks - 1) / n_ranks;  // owned, padded
    const std::size_t block = total_;  // one micro-shard's gradients
    mine_buf_.assign(per_rank * block, T(0));
    std::vector<double> mine_loss(per_rank * 2, 0.0), all_loss(n_ranks * per_rank * 2);
    for (std::size_t k = 0; k < mine_.size(); ++k) {
      zero_grad(model);
      const shard_loss r = run_shard(shard_gradient, mine_[k]);
      T* out = mine_buf_.data() + k * block;
      auto sc = scope("pack", time_kind::communication);
      for (const auto& v : params_) out = std::copy(v.grad, v.grad + v.n, out);
      mine_loss[2 * k] = r.loss_sum;
      mine_loss[2 * k + 1] = r.items;
    }
    all_buf_.resize(n_ranks * per_rank * block);
    wait_for_ranks();
    {
      auto sc = scope("allgather", time_kind::communication);
      comm_.allgather(std::span<const T>(mine_buf_), std::span<T>(all_buf_));
      comm_.allgather(std::span<const double>(mine_loss), std::span<double>(all_loss));
    }
    // micro-shard s was computed by rank s % N as its (s / N)-th: sum in shard order, whatever N is
    const auto at = [&](std::size_t s) { return ((s % n_ranks) * per_rank + s / n_ranks); };
    auto sc = scope("ordered sum", time_kind::compute);
    const T* first = all_buf_.data() + at(0) * block;
    sum_.assign(first, first + total_);
    double loss = all_loss[2 * at(0)], items = all_loss[2 * at(0) + 1];
    for (std::size_t s = 1; s < static_cast<std::size_t>(shards_); ++s) {
      const T* g = all_buf_.data() + at(s) * block;
      for (std::size_t i = 0; i < total_; ++i) sum_[i] += g[i];
      loss += all_loss[2 * at(s)];
      items += all_loss[2 * at(s) + 1];
    }
    const T* in = sum_.data();
    for (const auto& v : params_) {
      std::copy(in, in + v.n, v.grad);
      in += v.n;
    }
    scale(items);
    return loss / items;
  }

  Comm& comm_;
  data_parallel_options o_;
  timeline* trace_;
  int shards_;
  std::vector<int> mine_;
  std::vector<param_view> params_;
  std::size_t total_ = 0;
  std::vector<T> fusion_, mine_buf_, all_buf_, sum_;
  std::vector<std::pair<std::size_t, std::size_t>> bucket_ranges_;
};

}  // namespace hepgnn
