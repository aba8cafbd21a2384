#pragma once
/// @file communicator.hpp
/// @brief What data-parallel training needs from a group of processes, and the group of one.
///
/// `data_parallel` is written against the `communicator` concept, so the same training code runs in one process
/// (`single_process`, no dependency) and on MPI ranks (`mpi_communicator` in dist/mpi_communicator.hpp, from the
/// optional `hepgnn::mpi` CMake component). Buffers are contiguous and of one of float, double or std::int64_t.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief A started nonblocking collective: wait() returns when its buffers may be read.
template <class R>
concept pending_collective = requires(R& r) { r.wait(); };

/// @brief The collectives of data-parallel training. Every rank calls the same collectives in the same order.
///  - allreduce_sum(data, n): element-wise sum over ranks, result on every rank (in place);
///  - start_allreduce_sum(data, n): the same, nonblocking; returns a pending_collective;
///  - broadcast(data, n, root): root's values to every rank;
///  - allgather(mine, all): rank r's `mine` (the same size on every rank) lands at all[r * mine.size() ...];
///  - barrier().
template <class C>
concept communicator = requires(C& c, float* f, double* d, std::int64_t* i, std::size_t n) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.allreduce_sum(f, n);
  c.allreduce_sum(d, n);
  c.allreduce_sum(i, n);
  { c.start_allreduce_sum(f, n) } -> pending_collective;
  c.broadcast(f, n, 0);
  c.broadcast(d, n, 0);
  c.broadcast(i, n, 0);
  c.allgather(std::span<const float>(f, n), std::span<float>(f, n));
  c.allgather(std::span<const double>(d, n), std::span<double>(d, n));
  c.barrier();
};

/// @brief The group of one process: every collective is the identity (training code needs no special case).
class single_process {
 public:
  struct done {
    void wait() {}
  };
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T>
  void allreduce_sum(T*, std::size_t) {}
  template <class T>
  done start_allreduce_sum(T*, std::size_t) {
    return {};
  }
  template <class T>
  void broadcast(T*, std::size_t, int root) {
    HEPGNN_CHECK(root == 0, "single_process::broadcast: root must be 0 (one rank), got ", root);
  }
  template <class T>
  void allgather(std::span<const T> mine, std::span<T> all) {
    HEPGNN_CHECK(all.size() == mine.size(), "single_process::allgather: all must hold ", mine.size(),
                 " values (one rank), got ", all.size());
    if (all.data() != mine.data())
      for (std::size_t i = 0; i < mine.size(); ++i) all[i] = mine[i];
  }
  void barrier() {}
};

static_assert(communicator<single_process>);

}  // namespace hepgnn
