#pragma once
// Ranks as threads of one process: a `communicator` (dist/communicator.hpp) for testing data-parallel code at 1 to
// N ranks without MPI (the MPI runs are in tests/mpi/). The allreduce sums over ranks in rank order, so its result
// does not depend on how the caller cuts buffers into buckets.
#include <barrier>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <thread>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/communicator.hpp"

namespace hepgnn_test {

class thread_rank {
 public:
  struct shared {
    explicit shared(int n) : ranks(n), sync(n), posted(static_cast<std::size_t>(n)) {}
    int ranks;
    std::barrier<> sync;
    std::vector<const void*> posted;
  };
  struct done {
    void wait() {}
  };
  thread_rank(shared& s, int rank) : s_(s), rank_(rank) {}
  int rank() const { return rank_; }
  int size() const { return s_.ranks; }

  template <class T>
  void allreduce_sum(T* data, std::size_t n) {
    post(data);
    std::vector<T> sum(n, T(0));
    for (int q = 0; q < s_.ranks; ++q) {
      const T* src = static_cast<const T*>(s_.posted[static_cast<std::size_t>(q)]);
      for (std::size_t i = 0; i < n; ++i) sum[i] += src[i];
    }
    s_.sync.arrive_and_wait();  // everyone has read every buffer
    std::copy(sum.begin(), sum.end(), data);
    s_.sync.arrive_and_wait();
  }
  template <class T>
  done start_allreduce_sum(T* data, std::size_t n) {
    allreduce_sum(data, n);
    return {};
  }
  template <class T>
  void broadcast(T* data, std::size_t n, int root) {
    post(data);
    if (rank_ != root) {
      const T* src = static_cast<const T*>(s_.posted[static_cast<std::size_t>(root)]);
      std::copy(src, src + n, data);
    }
    s_.sync.arrive_and_wait();
  }
  template <class T>
  void allgather(std::span<const T> mine, std::span<T> all) {
    HEPGNN_CHECK(all.size() == mine.size() * static_cast<std::size_t>(s_.ranks), "thread_rank::allgather: sizes");
    post(mine.data());
    for (int q = 0; q < s_.ranks; ++q) {
      const T* src = static_cast<const T*>(s_.posted[static_cast<std::size_t>(q)]);
      std::copy(src, src + mine.size(), all.data() + static_cast<std::size_t>(q) * mine.size());
    }
    s_.sync.arrive_and_wait();
  }
  void barrier() { s_.sync.arrive_and_wait(); }

 private:
  void post(const void* p) {
    s_.posted[static_cast<std::size_t>(rank_)] = p;
    s_.sync.arrive_and_wait();
  }
  shared& s_;
  int rank_;
};

static_assert(hepgnn::communicator<thread_rank>);

/// Runs body(rank) on `ranks` threads and rethrows the first exception (a throwing body must not leave the
/// others waiting: bodies here throw only before or after their collectives).
inline void run_thread_ranks(int ranks, const std::function<void(thread_rank&)>& body) {
  thread_rank::shared s(ranks);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      thread_rank me(s, r);
      try {
        body(me);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace hepgnn_test
