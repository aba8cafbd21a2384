#pragma once
/// @file label_groups.hpp
/// @brief Nodes grouped by label (tracks, clusters, components): each group a span of one array, and labels
/// renumbered in order of first member.

#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"

namespace hepgnn {

/// @brief The members of each group (label >= 0; -1: none) as a span of one array, ascending within the group:
/// a counting sort of the labels (a vector per group would cost an allocation each). split() makes the tail of a
/// span a group of its own and shrink() drops a span's last members, so callers that cut groups need no copies.
class label_groups {
 public:
  /// @throws hepgnn::error naming `who` when a label is below -1.
  explicit label_groups(std::span<const index_t> labels, const char* who = "label_groups") {
    index_t count = 0;
    for (const index_t l : labels) {
      HEPGNN_CHECK(l >= -1, who, ": labels must be group numbers >= 0 or -1 (none), got ", l);
      count = std::max(count, l + 1);
    }
    begin_.assign(static_cast<std::size_t>(count) + 1, 0);
    for (const index_t l : labels)
      if (l >= 0) ++begin_[l + 1];
    std::partial_sum(begin_.begin(), begin_.end(), begin_.begin());
    size_.resize(static_cast<std::size_t>(count));
    for (index_t t = 0; t < count; ++t) size_[t] = begin_[t + 1] - begin_[t];
    begin_.pop_back();
    members_.resize(labels.size());
    std::vector<index_t> next(begin_);
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] >= 0) members_[next[labels[i]]++] = static_cast<index_t>(i);
  }
  /// @brief Number of groups: the largest label + 1, then one per split().
  index_t count() const { return static_cast<index_t>(size_.size()); }
  /// @brief Members of group t (mutable: callers may reorder them, e.g. before split()).
  std::span<index_t> operator[](index_t t) { return {members_.data() + begin_[t], static_cast<std::size_t>(size_[t])}; }
  std::span<const index_t> operator[](index_t t) const {
    return {members_.data() + begin_[t], static_cast<std::size_t>(size_[t])};
  }
  /// @brief Members [at, size) of group t become a new group (numbered count() before the call).
  void split(index_t t, index_t at) {
    begin_.push_back(begin_[t] + at);
    size_.push_back(size_[t] - at);
    size_[t] = at;
  }
  /// @brief Group t loses its last k members (they belong to no group).
  void shrink(index_t t, index_t k) { size_[t] -= k; }

 private:
  std::vector<index_t> members_, begin_, size_;
};

/// @brief Labels (in [0, count) or -1) with the groups of fewer than min_size members set to -1 and the others
/// renumbered 0, 1, ... in order of first member.
inline std::vector<index_t> compact_labels(std::span<const index_t> labels, index_t count, int min_size) {
  std::vector<index_t> size(static_cast<std::size_t>(count), 0), id(static_cast<std::size_t>(count), -1);
  for (auto l : labels)
    if (l >= 0) ++size[l];
  index_t next = 0;
  std::vector<index_t> out(labels.size(), -1);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const index_t l = labels[i];
    if (l < 0 || size[l] < min_size) continue;
    if (id[l] < 0) id[l] = next++;
    out[i] = id[l];
  }
  return out;
}

}  // namespace hepgnn
