#pragma once
/// @file eval_batches.hpp
/// @brief hepgnn::eval_batches: which rows of two samples each evaluation batch of a generation metric uses, and
/// JetNet's way of drawing them (uniformly, with replacement, as numpy's rng.choice(n, size)).

#include <cstdint>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Batch k uses rows first[k] of the first (real) sample and rows second[k] of the second (generated) one;
/// a row listed twice counts twice. Given explicitly, it makes a metric deterministic (tests, comparisons with
/// JetNet on the same subsets); draw_eval_batches() gives JetNet's random batches.
struct eval_batches {
  std::vector<std::vector<index_t>> first, second;

  int num_batches() const { return static_cast<int>(first.size()); }
  /// @brief Checks that there is at least one batch, both sides have as many batches, every batch lists at least
  /// one row, and every row is in range.
  void validate(const char* who, index_t n_first, index_t n_second) const {
    HEPGNN_CHECK(!first.empty() && first.size() == second.size(), who, ": eval batches need as many first as second ",
                 "lists and at least one, got ", first.size(), " and ", second.size());
    for (std::size_t k = 0; k < first.size(); ++k) {
      HEPGNN_CHECK(!first[k].empty() && !second[k].empty(), who, ": eval batch ", k, " is empty");
      for (index_t r : first[k])
        HEPGNN_CHECK(r >= 0 && r < n_first, who, ": eval batch ", k, " lists row ", r, " of the first sample, which has ",
                     n_first, " rows");
      for (index_t r : second[k])
        HEPGNN_CHECK(r >= 0 && r < n_second, who, ": eval batch ", k, " lists row ", r,
                     " of the second sample, which has ", n_second, " rows");
    }
  }
};

/// @brief num_batches batches of `size` rows drawn uniformly with replacement from each sample; per batch the
/// first sample's rows, then the second's, from one generator seeded with `seed` (JetNet's order of draws).
inline eval_batches draw_eval_batches(index_t n_first, index_t n_second, index_t size, int num_batches,
                                      std::uint64_t seed) {
  HEPGNN_CHECK(num_batches >= 1, "draw_eval_batches: num_batches must be >= 1, got ", num_batches);
  HEPGNN_CHECK(size >= 1, "draw_eval_batches: batch size must be >= 1, got ", size);
  HEPGNN_CHECK(n_first >= 1 && n_second >= 1, "draw_eval_batches: both samples need rows, got ", n_first, " and ",
               n_second);
  rng r(seed);
  eval_batches out;
  for (int k = 0; k < num_batches; ++k) {
    auto draw = [&](index_t n) {
      std::vector<index_t> rows(static_cast<std::size_t>(size));
      for (auto& x : rows) x = static_cast<index_t>(r.below(static_cast<std::uint64_t>(n)));
      return rows;
    };
    out.first.push_back(draw(n_first));
    out.second.push_back(draw(n_second));
  }
  return out;
}

}  // namespace hepgnn
