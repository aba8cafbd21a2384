#pragma once
/// @file parallel.hpp
/// @brief hepgnn::parallel_for: an OpenMP loop that is entered only when it is worth it.
///
/// Why not `#pragma omp parallel for if (...)`: libgomp builds a thread team on the heap even when the if clause
/// is false (or only one thread is available), so small inputs (one jet, one event) would allocate on every call
/// and pay for the region. Here the small case is a plain loop. Results must not depend on the thread count, so
/// callers give each index its own output (or combine per-index partials in a fixed order afterwards).

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn {

/// @brief Threads a parallel_for may use (1 without OpenMP): the size of per-thread scratch arrays.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// @brief Index of the calling thread inside a parallel_for (0 outside one, and without OpenMP).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// @brief How parallel_for hands out indices: contiguous static blocks, or one index at a time (uneven work).
enum class loop_schedule { static_blocks, dynamic_single };

/// @brief Calls body(i) for every i in [0, n): across OpenMP threads when `parallel` holds and more than one
/// thread is available, otherwise in order on the calling thread.
template <loop_schedule S = loop_schedule::static_blocks, class Body>
void parallel_for(long n, bool parallel, Body&& body) {
#ifdef _OPENMP
  if (parallel && n > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
    if constexpr (S == loop_schedule::static_blocks) {
#pragma omp parallel for schedule(static)
      for (long i = 0; i < n; ++i) body(i);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
      for (long i = 0; i < n; ++i) body(i);
    }
    return;
  }
#else
  (void)parallel;
#endif
  for (long i = 0; i < n; ++i) body(i);
}

}  // namespace hepgnn
