// W2 of shared/benchmarks/WORKLOADS.md in hepgnn: EdgeConv (PyG semantics) on the exact W1d kNN graph
// (512 graphs x 64 nodes, k = 16), F_in = 64, h = ReLU(Linear2(ReLU(Linear1([x_i, x_j - x_i])))), mean or max.
// Usage: compare_edge_conv W2/{infer,train}/{mean,max}   (prints `<workload> hepgnn <threads> <median_s>`;
// the reference checksum (sum, sum |.|, out[0][:4]) and the peak resident memory go to stderr).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/resource.h>
#include <vector>
#include <algorithm>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "rb.hpp"

using namespace hepgnn;
/// Peak resident set size of this process so far (getrusage), MiB.
double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

using net = sequential<float, dense<float, 128, 64>, relu<float>, dense<float, 64, 64>, relu<float>>;

/// The exact W1d graph: 16 nearest (self excluded) within each 64-node graph, squared distances in double,
/// ties to the lower index, nearest first (edge e = 16 i + r).
graph w1d_graph() {
  const index_t n = 512 * 64;
  matrix<double> pts(n, 2);
  for (index_t i = 0; i < n; ++i)
    for (int c = 0; c < 2; ++c) pts(i, c) = rb::u01(104, std::uint64_t(i) * 2 + c);
  graph g;
  knn_workspace<double> ws;
  build_knn_graph(pts, batch::uniform(512, 64), 16, false, g, ws);
  return g;
}

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W2/infer/max";
  const bool train = w.find("/train/") != std::string::npos;
  const aggregation a = w.find("mean") != std::string::npos ? aggregation::mean : aggregation::max;
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const graph g = w1d_graph();
  matrix<float> x(g.num_nodes, 64);
  for (index_t i = 0; i < g.num_nodes; ++i)
    for (int c = 0; c < 64; ++c) x(i, c) = rb::upm1(201, std::uint64_t(i) * 64 + c);
  net nn{dense<float, 128, 64>(), relu<float>(), dense<float, 64, 64>(), relu<float>()};
  rb::init_linear(nn.get<0>(), 211);
  rb::init_linear(nn.get<2>(), 213);
  const char* tile = std::getenv("HEPGNN_W2_TILE");  // tile-size experiments (edges per fused tile)
  edge_conv<float, net> conv(nn, a, tile ? std::atoi(tile) : 256);
  edge_conv<float, net>::cache c;
  matrix<float> y, dx;
  const matrix<float> dy = matrix<float>::Ones(g.num_nodes, 64);
  // Process CPU time per call as well (stderr): on a loaded machine it is the steadier number at 1 thread.
  std::vector<double> cpu;
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  auto step = [&] {
    const double a = cpu_now();
    if (train) {
      zero_grad(conv);
      conv.forward(x, g, y, c);
      conv.backward(x, g, y, dy, c, &dx);
    } else {
      conv.infer(x, g, y, c);
    }
    cpu.push_back(cpu_now() - a);
  };
  const double setup_rss = max_rss_mib();  // inputs, graph and weights: before the first call
  const double s = rb::median_seconds(step);
  std::fprintf(stderr, "%s hepgnn: max RSS %.1f MiB (%.1f MiB before the first call)\n", w.c_str(), max_rss_mib(),
               setup_rss);
  std::sort(cpu.begin(), cpu.end());
  std::fprintf(stderr, "%s: median process CPU time per call %.4g s (%d threads)\n", w.c_str(), cpu[cpu.size() / 2], threads);
  std::fprintf(stderr, "%s checksum: sum %.6g sum|.| %.6g out[0][:4] %.6g %.6g %.6g %.6g\n", w.c_str(), double(y.sum()),
               double(y.cwiseAbs().sum()), double(y(0, 0)), double(y(0, 1)), double(y(0, 2)), double(y(0, 3)));
  if (!train) {
    // The GEMM floor: the edge-level Linear2 alone (E x 64 by 64 x 64, Eigen) in the same 256-row tiles.
    matrix<float> a = matrix<float>::Random(256, 64), out(256, 64);
    const matrix<float> wt = nn.get<2>().weight().transpose();
    cpu.clear();
    const long reps = g.num_edges() / 256;
    auto gemm = [&] {
      const double t0 = cpu_now();
      for (long r = 0; r < reps; ++r) {
        out.noalias() = a * wt;
        a(r % 256, 0) = out(0, 0);  // keep the products dependent
      }
      cpu.push_back(cpu_now() - t0);
    };
    rb::median_seconds(gemm, 7, 0.3);
    std::sort(cpu.begin(), cpu.end());
    const double flop = 2.0 * g.num_edges() * 64 * 64;
    std::fprintf(stderr, "%s: GEMM floor (edge Linear2 only, %.2f GFLOP) %.4g s CPU = %.1f GFLOP/s\n", w.c_str(),
                 flop * 1e-9, cpu[cpu.size() / 2], flop * 1e-9 / cpu[cpu.size() / 2]);
  }
  rb::report(w, "hepgnn", threads, s);
}
