// W1 (exact kNN graph) with nanoflann's k-d tree (Debian libnanoflann-dev, header only), the reference point
// for hepgnn's cell list: `compare_knn_nanoflann W1a|W1b|W1d` (d = 2, 3 only, as in MEASURING.md).
// Timed: tree construction per graph + k+1 searches per point (self dropped), OpenMP over queries.
// Prints `<workload> nanoflann <threads> <median_seconds>`.
#include <nanoflann.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rb.hpp"

namespace {
struct cloud {  // nanoflann dataset adaptor over a row-major float array
  const float* x;
  std::size_t n;
  int d;
  std::size_t kdtree_get_point_count() const { return n; }
  float kdtree_get_pt(std::size_t i, std::size_t c) const { return x[i * d + c]; }
  template <class B>
  bool kdtree_get_bbox(B&) const { return false; }
};
using tree = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<float, cloud>, cloud, -1, std::uint32_t>;
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string id = argv[1];
  int graphs = 1, per = 0, d = 0;
  std::uint64_t seed = 0;
  if (id == "W1a") per = 10000, d = 3, seed = 101;
  else if (id == "W1b") per = 100000, d = 3, seed = 102;
  else if (id == "W1d") graphs = 512, per = 64, d = 2, seed = 104;
  else {
    std::fprintf(stderr, "%s: nanoflann runs W1a, W1b, W1d only\n", id.c_str());
    return 0;
  }
  const int k = 16;
  const std::size_t n = static_cast<std::size_t>(graphs) * per;
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = rb::u01(seed, i);
  std::vector<std::int32_t> ids(n * k);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const double t = rb::median_seconds([&] {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (graphs > 1)
#endif
    for (int g = 0; g < graphs; ++g) {
      cloud c{x.data() + static_cast<std::size_t>(g) * per * d, static_cast<std::size_t>(per), d};
      tree index(d, c, nanoflann::KDTreeSingleIndexAdaptorParams(10));
      index.buildIndex();
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 256) if (graphs == 1)
#endif
      for (int i = 0; i < per; ++i) {
        std::uint32_t idx[k + 1];
        float dist[k + 1];
        const auto found = index.knnSearch(c.x + static_cast<std::size_t>(i) * d, k + 1, idx, dist);
        int r = 0;
        for (std::size_t j = 0; j < found && r < k; ++j)
          if (static_cast<int>(idx[j]) != i) ids[(static_cast<std::size_t>(g) * per + i) * k + r++] = g * per + idx[j];
      }
    }
  });
  rb::report(id, "nanoflann", threads, t);
  return 0;
}
