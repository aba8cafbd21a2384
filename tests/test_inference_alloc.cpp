// The inference path allocates nothing once the caller's cache and output have seen the shapes (DESIGN.md 4).
// Eigen allocates with malloc, so this executable counts malloc itself (glibc's __libc_malloc underneath).
// Sanitizer builds replace malloc themselves; there the check is skipped.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

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

#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"

namespace {
std::atomic<long> allocations{0};
}
#if HEPGNN_COUNT_MALLOC
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
}
#endif

using namespace hepgnn;
using T = float;
using M = matrix<T>;

namespace {
template <class Model>
long allocations_per_call(const Model& model, const M& x) {
  typename Model::cache c;
  M y;
  model.infer(x, y, c);  // warm-up sizes every buffer
  const long before = allocations.load();
  for (int i = 0; i < 10; ++i) model.infer(x, y, c);
  return allocations.load() - before;
}
}  // namespace

TEST_CASE("sequential, residual, norms and mlp infer without allocating after warm-up") {
  if (!HEPGNN_COUNT_MALLOC) {
    MESSAGE("skipped: malloc is replaced by the sanitizer in this build");
    return;
  }
  rng g(1);
  using block = sequential<T, dense<T, 7, 32>, relu<T>, layer_norm<T>, dense<T, 32, 32>, gelu<T>>;
  sequential<T, block, residual<sequential<T, dense<T, 32, 32>, tanh_layer<T>>>, batch_norm<T>, dense<T, 32, 2>> model{
      block{dense<T, 7, 32>{g}, relu<T>{}, layer_norm<T>{32}, dense<T, 32, 32>{g}, gelu<T>{}},
      residual<sequential<T, dense<T, 32, 32>, tanh_layer<T>>>{sequential<T, dense<T, 32, 32>, tanh_layer<T>>{dense<T, 32, 32>{g}, tanh_layer<T>{}}},
      batch_norm<T>{32}, dense<T, 32, 2>{g}};
  const M x = M::Random(30, 7);  // one jet of 30 particles
  CHECK(allocations_per_call(model, x) == 0);
  mlp<T> m(g, {7, 64, 64, 3});
  CHECK(allocations_per_call(m, x) == 0);
  // the counter works: a fresh cache allocates
  const long before = allocations.load();
  decltype(model)::cache fresh;
  M y;
  model.infer(x, y, fresh);
  CHECK(allocations.load() > before);
}
