// W1 (exact kNN graph, ../shared/benchmarks/WORKLOADS.md) in hepgnn: `compare_knn W1a|W1b|W1c|W1d [--check]`.
// Prints `<workload> hepgnn <threads> <median_seconds>`; checks the ids against an exact float64 brute force
// (all queries with --check, else 2000 sampled queries) and exits 1 on a mismatch.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/graph/knn.hpp"
#include "rb.hpp"

namespace {
struct workload {
  const char* id;
  int graphs, points, d, k;
  std::uint64_t seed;
};
constexpr workload workloads[] = {{"W1a", 1, 10000, 3, 16, 101},
                                  {"W1b", 1, 100000, 3, 16, 102},
                                  {"W1c", 1, 10000, 16, 16, 103},
                                  {"W1d", 512, 64, 2, 16, 104}};

// Exact neighbours of node i: float64 squared distances, ties to the lower index.
std::vector<hepgnn::index_t> exact_row(const hepgnn::matrix<float>& x, const workload& w, hepgnn::index_t i) {
  const hepgnn::index_t g0 = (i / w.points) * w.points;
  std::vector<std::pair<double, hepgnn::index_t>> c;
  for (hepgnn::index_t j = g0; j < g0 + w.points; ++j) {
    if (j == i) continue;
    double s = 0;
    for (int t = 0; t < w.d; ++t) s += (double(x(i, t)) - double(x(j, t))) * (double(x(i, t)) - double(x(j, t)));
    c.emplace_back(s, j);
  }
  std::partial_sort(c.begin(), c.begin() + w.k, c.end());
  std::vector<hepgnn::index_t> out;
  for (int r = 0; r < w.k; ++r) out.push_back(c[r].second);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s W1a|W1b|W1c|W1d [--check]\n", argv[0]);
    return 2;
  }
  const std::string id = argv[1];
  const bool full_check = argc > 2 && std::strcmp(argv[2], "--check") == 0;
  const workload* w = nullptr;
  for (const auto& c : workloads)
    if (id == c.id) w = &c;
  if (!w) {
    std::fprintf(stderr, "unknown workload %s\n", id.c_str());
    return 2;
  }
  const hepgnn::index_t n = w->graphs * w->points;
  hepgnn::matrix<float> x(n, w->d);
  for (hepgnn::index_t i = 0; i < n; ++i)
    for (int c = 0; c < w->d; ++c) x(i, c) = rb::u01(w->seed, static_cast<std::uint64_t>(i) * w->d + c);
  const auto b = hepgnn::batch::uniform(w->graphs, w->points);

  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  hepgnn::neighbour_list<float> nl;
  const double t = rb::median_seconds([&] { nl = hepgnn::knn(x, w->k, b); });
  rb::report(id, "hepgnn", threads, t);

  const hepgnn::index_t queries = full_check ? n : std::min<hepgnn::index_t>(n, 2000);
  long bad = 0;
  for (hepgnn::index_t q = 0; q < queries; ++q) {
    const hepgnn::index_t i = full_check ? q : static_cast<hepgnn::index_t>(rb::randint(999, q, n));
    const auto ref = exact_row(x, *w, i);
    const auto row = nl.of(i);
    if (!std::equal(ref.begin(), ref.end(), row.begin(), row.end())) ++bad;
  }
  if (bad) {
    std::fprintf(stderr, "%s: %ld of %d checked rows differ from the float64 brute force\n", id.c_str(), bad, queries);
    return 1;
  }
  std::fprintf(stderr, "%s: %d rows match the float64 brute force\n", id.c_str(), queries);
  return 0;
}
