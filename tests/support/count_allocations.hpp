#pragma once
// Counts every heap allocation of the executable: Eigen, operator new and libgomp (which uses memalign for its
// thread teams) all end in malloc, calloc, realloc or the aligned allocators, so those are defined here (glibc's
// __libc_* underneath; free too, so a preloaded allocator never sees a pointer it did not make). Include from
// exactly one translation unit per executable (tests and benchmarks/compare/latency.cpp). Sanitizer builds replace malloc themselves; there counting is off (count_allocations_enabled).
#include <atomic>
#include <cstdlib>
#if defined(__x86_64__) || defined(__i386__)
#include <mm_malloc.h>  // its posix_memalign declaration first (clang 14 rejects it after the noexcept one below)
#endif

#if defined(__SANITIZE_ADDRESS__)
#define HEPGNN_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEPGNN_COUNT_MALLOC 0
#endif
#endif
#ifndef HEPGNN_COUNT_MALLOC
#define HEPGNN_COUNT_MALLOC 1
#endif

namespace hepgnn_test {
inline std::atomic<long> allocation_count{0};
inline constexpr bool count_allocations_enabled = HEPGNN_COUNT_MALLOC;
}  // namespace hepgnn_test

#if HEPGNN_COUNT_MALLOC
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) noexcept {
  hepgnn_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) noexcept {
  hepgnn_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) noexcept {
  hepgnn_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) noexcept {
  hepgnn_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept { return memalign(alignment, n); }
int posix_memalign(void** p, std::size_t alignment, std::size_t n) noexcept {
  *p = memalign(alignment, n);
  return *p ? 0 : 12;  // ENOMEM
}
void free(void* p) noexcept { __libc_free(p); }
}
#endif
