// W5 of shared/benchmarks/WORKLOADS.md in hepgnn: single-jet inference latency of a ParticleNet-Lite-like,
// BatchNorm-free network (two EdgeConv blocks with kNN, k = 7, mean aggregation, linear shortcut; mean pool;
// Linear-ReLU-Linear; softmax), one thread, batch size 1, written as one graph_sequential chain.
// Usage: compare_latency W5   prints `W5 hepgnn 1 <median_s>`; stderr: the output probabilities and the heap
// allocations counted (malloc and friends, see below) over the timed calls after warm-up (must be 0).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/columns.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/skips.hpp"
#include "rb.hpp"

// Counting allocator (shared with the allocation tests): every heap allocation of the process (operator new,
// Eigen's aligned_malloc, libgomp's memalign, ...) is counted; it replaces the preloaded jemalloc for this process,
// which matters only if something allocates per call.
#include "../../tests/support/count_allocations.hpp"

using namespace hepgnn;

namespace {

template <int In, int C>
using block_mlp = sequential<float, dense<float, 2 * In, C>, relu<float>, dense<float, C, C>, relu<float>,
                             dense<float, C, C>, relu<float>>;

/// A W5 block on the graph built before it: ReLU(EdgeConv_mean(x) + shortcut(x)), shortcut a Linear.
template <int In, int C>
using lite_block = add_branches<edge_conv<float, block_mlp<In, C>>, dense<float, In, C>>;

/// W5 as one chain. Input rows: (eta, phi) in columns 0-1, then the 7 features.
using lite_chain = graph_sequential<float, 9,
                                    knn_builder<7, metric::euclidean, 0, 2>,  // block 1: kNN on the coordinates
                                    columns<float, 2, 7>,                     // the features
                                    lite_block<7, 32>, relu<float>,
                                    knn_builder<7>,                           // block 2: kNN on block 1's output
                                    lite_block<32, 64>, relu<float>,
                                    global_pool_layer<float>,
                                    dense<float, 64, 128>, relu<float>,
                                    dense<float, 128, 2>>;

template <int In, int C>
lite_block<In, C> make_block(std::uint64_t seed) {
  block_mlp<In, C> m{dense<float, 2 * In, C>(), relu<float>(), dense<float, C, C>(), relu<float>(), dense<float, C, C>(),
                     relu<float>()};
  rb::init_linear(m.template get<0>(), seed);
  rb::init_linear(m.template get<2>(), seed + 2);
  rb::init_linear(m.template get<4>(), seed + 4);
  dense<float, In, C> shortcut;
  rb::init_linear(shortcut, seed + 6);
  return lite_block<In, C>(edge_conv<float, block_mlp<In, C>>(std::move(m), aggregation::mean), std::move(shortcut));
}

struct lite_net {
  lite_chain chain;
  lite_net() : chain(make()) {}
  static lite_chain make() {
    dense<float, 64, 128> fc1;
    dense<float, 128, 2> fc2;
    rb::init_linear(fc1, 5116);
    rb::init_linear(fc2, 5118);
    return lite_chain(knn_builder<7, metric::euclidean, 0, 2>(), columns<float, 2, 7>(), make_block<7, 32>(5100),
                      relu<float>(), knn_builder<7>(), make_block<32, 64>(5108), relu<float>(),
                      global_pool_layer<float>(aggregation::mean), std::move(fc1), relu<float>(), std::move(fc2));
  }
  struct buffers {
    lite_chain::cache chain;
    matrix<float> logits;
  };
  /// Probabilities (1 x 2) of one jet; x = [coordinates, features].
  void infer(const matrix<float>& x, const batch& b, matrix<float>& prob, buffers& c) const {
    chain.infer(x, b, c.logits, c.chain);
    prob.resize(c.logits.rows(), 2);
    for (Eigen::Index g = 0; g < c.logits.rows(); ++g) {
      const float m = c.logits.row(g).maxCoeff();
      prob.row(g) = (c.logits.row(g).array() - m).exp().matrix();
      prob.row(g) /= prob.row(g).sum();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W5";
#ifdef _OPENMP
  omp_set_num_threads(1);  // W5 is single-threaded by definition
#endif
  matrix<float> points(30, 2), features(30, 7);
  for (int j = 0; j < 30; ++j) {
    for (int t = 0; t < 2; ++t) points(j, t) = 0.4f * rb::upm1(501, std::uint64_t(2 * j + t));
    for (int c = 0; c < 7; ++c) features(j, c) = rb::upm1(502, std::uint64_t(7 * j + c));
  }
  matrix<float> x(30, 9);
  x << points, features;
  const lite_net net;
  lite_net::buffers c;
  const batch b = batch::single(30);
  matrix<float> prob;
  const long cold = hepgnn_test::allocation_count.load();
  net.infer(x, b, prob, c);
  const long first_call = hepgnn_test::allocation_count.load() - cold;  // > 0: shows the counter sees the buffers being sized
  for (int i = 1; i < 200; ++i) net.infer(x, b, prob, c);
  std::vector<double> t(2000), cpu(2000);
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const long before = hepgnn_test::allocation_count.load();
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double c0 = cpu_now();
    const auto a = std::chrono::steady_clock::now();
    net.infer(x, b, prob, c);
    t[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    cpu[i] = cpu_now() - c0;
  }
  std::sort(cpu.begin(), cpu.end());
  const long allocs = hepgnn_test::allocation_count.load() - before;
  std::sort(t.begin(), t.end());
  std::fprintf(stderr,
               "%s: probabilities %.6f %.6f; heap allocations: first call %ld, 2000 timed calls %ld; min %.3g us, "
               "max %.3g us; median thread CPU time %.3g us\n",
               w.c_str(), double(prob(0, 0)), double(prob(0, 1)), first_call, allocs, t.front() * 1e6,
               t.back() * 1e6, cpu[cpu.size() / 2] * 1e6);
  rb::report(w, "hepgnn", 1, t[t.size() / 2]);
  return allocs == 0 && first_call > 0 ? 0 : 1;
}
