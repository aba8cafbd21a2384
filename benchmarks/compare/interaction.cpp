// W3 of WORKLOADS.md: interaction-network edge classifier (Exa.TrkX style) in hepgnn.
// Usage: compare_interaction W3/forward | W3/train   (threads from OMP_NUM_THREADS)
// Prints `<workload> hepgnn <threads> <median_seconds>`; a checksum line goes to stderr (compare with interaction.py).
// REFBENCH_CPU_TIME=1 applies the same median rule to process CPU time (a loaded machine; not the MEASURING.md rule;
// compare only with interaction.py run the same way).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/loss/classification.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "rb.hpp"

int main(int argc, char** argv) {
  using T = float;
  const std::string w = argc > 1 ? argv[1] : "W3/forward";
  if (w != "W3/forward" && w != "W3/train") {
    std::fprintf(stderr, "unknown workload %s (W3/forward, W3/train)\n", w.c_str());
    return 2;
  }
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const hepgnn::index_t n = 20000, ne = 200000;
  hepgnn::matrix<T> x(n, 3);
  for (long i = 0; i < n * 3; ++i) x.data()[i] = rb::u01(301, i);
  std::vector<hepgnn::index_t> src(ne), dst(ne);
  for (long e = 0; e < ne; ++e) {
    src[e] = static_cast<hepgnn::index_t>(rb::randint(302, e, n));
    dst[e] = static_cast<hepgnn::index_t>(rb::randint(303, e, n));
    if (dst[e] == src[e]) dst[e] = (dst[e] + 1) % n;
  }
  const hepgnn::graph g = hepgnn::graph::from_edges(n, src, dst);
  const auto pos = hepgnn::graph::csr_position(n, dst);
  hepgnn::matrix<T> labels(ne, 1);
  for (long e = 0; e < ne; ++e) labels(pos[e], 0) = rb::u01(304, e) < 0.5f ? T(1) : T(0);

  hepgnn::rng gen(1);
  hepgnn::interaction_network<T, 3, 64>::options o;
  o.iterations = 4;
  o.shared_weights = true;
  hepgnn::interaction_network<T, 3, 64> net(gen, o);
  std::uint64_t seed = 3100;
  for (auto* d : {&net.node_encoder(0), &net.node_encoder(1), &net.edge_encoder(0), &net.edge_encoder(1),
                  &net.edge_network(0, 0), &net.edge_network(0, 1), &net.node_network(0, 0), &net.node_network(0, 1),
                  &net.output(0), &net.output(1)}) {
    rb::init_linear(*d, seed);
    seed += 2;
  }

  decltype(net)::cache c;
  hepgnn::matrix<T> y, grad;
  double seconds = 0;
  if (w == "W3/forward") {
    seconds = rb::median_seconds([&] { net.infer(x, g, y, c); });
  } else {
    seconds = rb::median_seconds([&] {
      hepgnn::zero_grad(net);
      net.forward(x, g, y, c);
      hepgnn::bce_with_logits(y, labels, {}, &grad);
      net.backward(x, g, y, grad, c, nullptr);
    });
  }
  net.forward(x, g, y, c);
  const T loss = hepgnn::bce_with_logits(y, labels, {}, &grad);
  hepgnn::zero_grad(net);
  net.backward(x, g, y, grad, c, nullptr);
  double gsum = 0;
  net.for_each_param("", [&](const std::string&, hepgnn::parameter<T> p) {
    for (long i = 0; i < p.size(); ++i) gsum += std::abs(static_cast<double>(p.grad[i]));
  });
  std::fprintf(stderr, "W3 check hepgnn: loss %.6f sum(logits) %.4f sum|grad| %.6f\n", static_cast<double>(loss),
               static_cast<double>(y.cast<double>().sum()), gsum);
  rb::report(w, "hepgnn", threads, seconds);
}
