// W1 (exact kNN graph) with FAISS IndexFlatL2 (Debian libfaiss-dev), the brute-force anchor:
// `compare_knn_faiss W1a|W1b|W1c|W1d`. Timed: index construction + search of k+1 neighbours per point (self dropped)
// per graph; FAISS threads itself with OpenMP. Prints `<workload> faiss <threads> <median_seconds>`.
// W1b (10^10 distances) takes tens of seconds per repetition, so it runs with the minimum of repetitions.
#include <faiss/IndexFlat.h>

#include <cstdio>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rb.hpp"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string id = argv[1];
  int graphs = 1, per = 0, d = 0;
  std::uint64_t seed = 0;
  if (id == "W1a") per = 10000, d = 3, seed = 101;
  else if (id == "W1b") per = 100000, d = 3, seed = 102;
  else if (id == "W1c") per = 10000, d = 16, seed = 103;
  else if (id == "W1d") graphs = 512, per = 64, d = 2, seed = 104;
  else return 2;
  const int k = 16;
  const std::size_t n = static_cast<std::size_t>(graphs) * per;
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = rb::u01(seed, i);
  std::vector<float> dist(static_cast<std::size_t>(per) * (k + 1));
  std::vector<faiss::Index::idx_t> found(static_cast<std::size_t>(per) * (k + 1));
  std::vector<std::int64_t> ids(n * k);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const double t = rb::median_seconds(
      [&] {
        for (int g = 0; g < graphs; ++g) {
          const float* xg = x.data() + static_cast<std::size_t>(g) * per * d;
          faiss::IndexFlatL2 index(d);
          index.add(per, xg);
          index.search(per, xg, k + 1, dist.data(), found.data());
          for (int i = 0; i < per; ++i) {  // drop the point itself (FAISS may rank an exact duplicate first)
            int out = 0;
            for (int j = 0; j <= k && out < k; ++j)
              if (found[static_cast<std::size_t>(i) * (k + 1) + j] != i)
                ids[(static_cast<std::size_t>(g) * per + i) * k + out++] = g * per + found[static_cast<std::size_t>(i) * (k + 1) + j];
          }
        }
      },
      id == "W1b" ? 1 : 7, id == "W1b" ? 0.0 : 1.0);
  rb::report(id, "faiss", threads, t);
}
