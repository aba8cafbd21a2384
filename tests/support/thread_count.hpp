#pragma once
// Thread-count tests: run a piece of a test at a given OpenMP thread count, whatever OMP_NUM_THREADS says (ctest runs
// with OMP_NUM_THREADS=1), and compare training at several counts bit for bit. Without OpenMP every count runs on
// the one thread there is, so the comparisons hold trivially.
#include "support/doctest.hpp"

#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn_test {

/// f() with `threads` OpenMP threads; the previous count is restored afterwards (also when f throws).
template <class F>
decltype(auto) at_threads(int threads, F&& f) {
#ifdef _OPENMP
  struct restore {
    int n;
    ~restore() { omp_set_num_threads(n); }
  } saved{omp_get_max_threads()};
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  return std::forward<F>(f)();
}

/// What a few training steps leave: the last output and input gradient, the last parameter gradients and the
/// parameters after the steps (by name, in visiting order).
template <class T>
struct training_trace {
  hepgnn::matrix<T> y, dx;
  std::vector<std::pair<std::string, std::vector<T>>> grads, params;
};

/// `steps` steps of plain SGD (zero_grad, forward, backward with the fixed output gradient dy, w -= lr dw) on a copy
/// of `layer`, a layer taking a context (graph or batch): forward(x, ctx, y, c), backward(x, ctx, y, dy, c, &dx).
template <class T, class Layer, class Context>
training_trace<T> train_steps(Layer layer, const hepgnn::matrix<T>& x, const Context& ctx, const hepgnn::matrix<T>& dy,
                              int steps, T lr = T(0.01)) {
  training_trace<T> t;
  typename Layer::cache c;
  for (int s = 0; s < steps; ++s) {
    hepgnn::zero_grad(layer);
    layer.forward(x, ctx, t.y, c);
    layer.backward(x, ctx, t.y, dy, c, &t.dx);
    layer.for_each_param("", [&](const std::string&, hepgnn::parameter<T> p) {
      for (std::int64_t i = 0; i < p.size(); ++i) p.value[i] -= lr * p.grad[i];
    });
  }
  layer.for_each_param("", [&](const std::string& name, hepgnn::parameter<T> p) {
    t.grads.emplace_back(name, std::vector<T>(p.grad, p.grad + p.size()));
    t.params.emplace_back(name, std::vector<T>(p.value, p.value + p.size()));
  });
  return t;
}

/// CHECKs that two traces are the same bits, naming the parameter that differs.
template <class T>
void check_same_training(const training_trace<T>& a, const training_trace<T>& b) {
  CHECK(a.y == b.y);
  CHECK(a.dx == b.dx);
  REQUIRE(a.grads.size() == b.grads.size());
  for (std::size_t k = 0; k < a.grads.size(); ++k) {
    CAPTURE(a.grads[k].first);
    CHECK(a.grads[k].second == b.grads[k].second);
    CHECK(a.params[k].second == b.params[k].second);
  }
}

}  // namespace hepgnn_test
