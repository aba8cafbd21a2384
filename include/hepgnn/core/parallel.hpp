#pragma once
/// @file parallel.hpp
/// @brief hepgnn::parallel_for and its variants: OpenMP loops that are entered only when it is worth it, and the
/// one table of when that is (parallel_limits).
///
/// This header is the only place outside simd/ with OpenMP pragmas and omp_* calls (scripts/check_layering.py
/// checks it); code elsewhere states what may run in parallel and with which schedule, never how.
///
/// Why not `#pragma omp parallel for if (...)`: libgomp builds a thread team on the heap even when the if clause
/// is false (or only one thread is available), so small inputs (one jet, one event) would allocate on every call
/// and pay for the region. Here the small case is a plain loop. Results must not depend on the thread count, so
/// callers give each index its own output (or combine per-index partials in a fixed order afterwards).

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn {

/// @brief When loops go parallel: the library's thresholds (below them a loop stays on the calling thread, since
/// entering a parallel region costs microseconds and, with libgomp, a heap allocation) and chunk sizes of
/// dynamically scheduled loops. One table, so that tuning for a machine happens in one place. Thresholds count
/// the work of the whole loop in the unit named; none of them changes results, only where they are computed.
namespace parallel_limits {
/// Row loops over rows x features (also nn/aggregate.hpp's detail::parallel_min_work, which has the same value).
inline constexpr long min_work = 1L << 15;
/// kNN scans: sum over the scanned graphs of size^2 x dimension.
inline constexpr long knn_min_work = 1L << 15;
/// LSH projections: points x half the hash bits x dimension.
inline constexpr long lsh_projection_min_work = 1L << 18;
/// Row-chunked products (interaction network's edge and node blocks): rows x inner x outer width.
inline constexpr long chunked_product_min_work = 1L << 16;
/// Matrix products of simd/gemm.hpp: multiply-adds.
inline constexpr long gemm_min_flops = 1L << 21;
/// Chamfer distance: more graphs than this go parallel (one graph per index, static blocks).
inline constexpr long chamfer_min_graphs = 16;

/// Chunk of the dynamically scheduled kNN scan over points (one point per index).
inline constexpr long knn_scan_chunk = 64;
/// Chunk of the cell-grid kNN / radius search over the sorted points of one large graph.
inline constexpr long knn_grid_chunk = 256;
/// Chunk of the transport losses' loop over graphs (emd, sliced Wasserstein).
inline constexpr long transport_chunk = 4;
/// Chunk of the N-subjettiness loop over jets.
inline constexpr long nsubjettiness_chunk = 32;
/// Chunk of the toy jet generator's loop over jets.
inline constexpr long toy_jets_chunk = 16;
/// Chunk of the energy-flow-polynomial loop over jets (metrics/efp.hpp).
inline constexpr long efp_chunk = 16;
/// Generation metrics (metrics/generation.hpp, metrics/frechet.hpp): evaluation batches (FPD, KPD) and row blocks
/// of KPD's kernel sums go parallel from this many on; each writes its own slot, summed in order afterwards.
inline constexpr long metric_min_batches = 2;
}  // namespace parallel_limits

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

/// @brief Calls body(i) for every i in [0, n), handing out `chunk` consecutive indices at a time to the next free
/// thread (OpenMP schedule(dynamic, chunk)): for iterations of uneven cost, such as one graph, jet or event each.
/// Unlike parallel_for, this is one OpenMP loop whatever `parallel` says (a team of one thread when it is false,
/// or inside another region): `body` is compiled once, as in the `#pragma omp parallel for ... if (...)` loops
/// it replaced, so the compiler inlines into it as it did there. Meant for loops whose indices each do real work.
template <class Body>
void parallel_for_dynamic(long n, bool parallel, long chunk, Body&& body) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, chunk) if (parallel && n > 1)
  for (long i = 0; i < n; ++i) body(i);
#else
  (void)parallel, (void)chunk;
  for (long i = 0; i < n; ++i) body(i);
#endif
}

/// @brief parallel_for_dynamic with per-thread state: every thread that takes part calls `setup(thread)` once
/// (thread: 0 .. max_threads() - 1; 0 when the loop runs on one thread), which returns its state; then
/// body(i, state) for its share of the indices, and finish(state) at the end. For scratch buffers that a thread
/// reuses across indices (or borrows from a workspace slot and gives back).
///
/// Like parallel_for_dynamic, one OpenMP region whatever `parallel` says, so `body` is compiled once: with a
/// second, serial copy (as parallel_for has) GCC stopped inlining cell_grid::nearest into the cell-grid kNN's
/// body, which cost 3-6 % (bench_graph W1a/W1b, one thread).
template <class Setup, class Body, class Finish>
void parallel_for_with(long n, bool parallel, long chunk, Setup&& setup, Body&& body, Finish&& finish) {
#ifdef _OPENMP
#pragma omp parallel if (parallel && n > 1)
  {
    auto state = setup(omp_get_thread_num());
#pragma omp for schedule(dynamic, chunk)
    for (long i = 0; i < n; ++i) body(i, state);
    finish(state);
  }
#else
  (void)parallel, (void)chunk;
  auto state = setup(0);
  for (long i = 0; i < n; ++i) body(i, state);
  finish(state);
#endif
}

}  // namespace hepgnn
