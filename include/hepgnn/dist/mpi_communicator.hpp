#pragma once
/// @file mpi_communicator.hpp
/// @brief hepgnn::mpi_communicator (the `communicator` of dist/communicator.hpp over MPI) and hepgnn::mpi_main,
/// which starts MPI and stops every rank with a clear message when one rank throws.
///
/// Part of the optional `hepgnn::mpi` CMake component (find_package(hepgnn CONFIG REQUIRED COMPONENTS mpi)),
/// which links MPI::MPI_CXX; nothing else in the library includes this header.

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <span>

#include "hepgnn/dist/communicator.hpp"

namespace hepgnn {

namespace mpi_detail {
template <class T>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else static_assert(sizeof(T) == 0, "mpi_communicator: float, double or std::int64_t buffers");
}

inline int checked_count(std::size_t n, const char* who) {
  HEPGNN_CHECK(n <= static_cast<std::size_t>(INT32_MAX), who, ": ", n,
               " values exceed MPI's int count; split the buffer");
  return static_cast<int>(n);
}
}  // namespace mpi_detail

/// @brief The ranks of an MPI communicator (MPI_COMM_WORLD by default). MPI must be initialised (mpi_main does).
class mpi_communicator {
 public:
  struct pending {
    MPI_Request request = MPI_REQUEST_NULL;
    void wait() { MPI_Wait(&request, MPI_STATUS_IGNORE); }
  };

  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    HEPGNN_CHECK(initialised, "mpi_communicator: MPI is not initialised (run the program through hepgnn::mpi_main, "
                              "or call MPI_Init first)");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm handle() const { return comm_; }

  template <class T>
  void allreduce_sum(T* data, std::size_t n) {
    MPI_Allreduce(MPI_IN_PLACE, data, mpi_detail::checked_count(n, "allreduce_sum"), mpi_detail::datatype<T>(),
                  MPI_SUM, comm_);
  }
  template <class T>
  pending start_allreduce_sum(T* data, std::size_t n) {
    pending p;
    MPI_Iallreduce(MPI_IN_PLACE, data, mpi_detail::checked_count(n, "start_allreduce_sum"),
                   mpi_detail::datatype<T>(), MPI_SUM, comm_, &p.request);
    return p;
  }
  template <class T>
  void broadcast(T* data, std::size_t n, int root) {
    HEPGNN_CHECK(root >= 0 && root < size_, "mpi_communicator::broadcast: root must be in [0, ", size_, "), got ", root);
    MPI_Bcast(data, mpi_detail::checked_count(n, "broadcast"), mpi_detail::datatype<T>(), root, comm_);
  }
  template <class T>
  void allgather(std::span<const T> mine, std::span<T> all) {
    HEPGNN_CHECK(all.size() == mine.size() * static_cast<std::size_t>(size_), "mpi_communicator::allgather: all must hold ",
                 mine.size(), " x ", size_, " values, got ", all.size());
    MPI_Allgather(mine.data(), mpi_detail::checked_count(mine.size(), "allgather"), mpi_detail::datatype<T>(),
                  all.data(), static_cast<int>(mine.size()), mpi_detail::datatype<T>(), comm_);
  }
  void barrier() { MPI_Barrier(comm_); }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

static_assert(communicator<mpi_communicator>);

/// @brief Runs `body(world)` on every rank between MPI_Init and MPI_Finalize and returns the exit code. When a
/// rank throws, it prints "rank R of N failed: ..." and aborts the job (MPI_Abort), so the other ranks, blocked in
/// a collective, stop instead of hanging. `thread_level`: what MPI_Init_thread is asked for (FUNNELED: only the
/// main thread calls MPI; run_search_mpi with more than two ranks needs MPI_THREAD_MULTIPLE); a lower level
/// provided than asked for throws.
inline int mpi_main(int& argc, char**& argv, const std::function<void(mpi_communicator&)>& body,
                    int thread_level = MPI_THREAD_FUNNELED) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, thread_level, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  try {
    HEPGNN_CHECK(provided >= thread_level || thread_level <= MPI_THREAD_FUNNELED, "mpi_main: MPI provides thread level ", provided, ", asked for ",
                 thread_level, " (this MPI library was built without that thread support)");
    mpi_communicator world;
    body(world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hepgnn: rank %d of %d failed: %s; aborting the other ranks\n", rank, size, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
  MPI_Finalize();
  return 0;
}

}  // namespace hepgnn
