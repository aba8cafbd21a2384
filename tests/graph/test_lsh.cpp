// LSH binning and approximate kNN (graph/lsh.hpp).
#include "support/doctest.hpp"

#include <limits>

#include <algorithm>
#include <numeric>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/core/rng.hpp"
#include "hepgnn/graph/lsh.hpp"

namespace hepgnn_test_lsh {  // this file's names, apart from the other files of its unity build

using hepgnn::batch;
using hepgnn::index_t;
using hepgnn::matrix;

namespace {
matrix<float> clustered(index_t n, int d, int clusters, std::uint64_t seed) {
  hepgnn::rng r(seed);
  matrix<float> centres(clusters, d), x(n, d);
  for (int j = 0; j < clusters; ++j)
    for (int c = 0; c < d; ++c) centres(j, c) = static_cast<float>(r.uniform(-5, 5));
  for (index_t i = 0; i < n; ++i) {
    const auto j = static_cast<int>(r.below(static_cast<std::uint64_t>(clusters)));
    for (int c = 0; c < d; ++c) x(i, c) = static_cast<float>(centres(j, c) + 0.3 * r.normal());
  }
  return x;
}
}  // namespace

TEST_CASE("lsh_bins: a stable permutation cut into chunks that never span graphs") {
  const auto x = clustered(1000, 4, 10, 1);
  const auto b = batch::from_sizes({300, 0, 1, 699});
  hepgnn::lsh_options opt;
  opt.bin_size = 64;
  opt.seed = 42;
  const auto bins = hepgnn::lsh_bins(x, b, opt);
  // permutation and its inverse
  std::vector<index_t> sorted = bins.permutation;
  std::sort(sorted.begin(), sorted.end());
  std::vector<index_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  for (index_t i = 0; i < 1000; ++i) CHECK(bins.permutation[bins.position[i]] == i);
  // per graph: positions stay in the graph, bins ascending, ids ascending within a bin (stable)
  for (index_t g = 0; g < b.num_graphs(); ++g)
    for (index_t p = b.begin(g); p < b.end(g); ++p) {
      const index_t i = bins.permutation[p];
      CHECK((i >= b.begin(g) && i < b.end(g)));
      if (p + 1 < b.end(g)) {
        const index_t j = bins.permutation[p + 1];
        CHECK((bins.bin[i] < bins.bin[j] || (bins.bin[i] == bins.bin[j] && i < j)));
      }
    }
  // chunks: bin_size each, except the last of a graph; boundaries include every graph boundary
  CHECK(bins.chunk_offsets.front() == 0);
  CHECK(bins.chunk_offsets.back() == 1000);
  CHECK(bins.num_chunks() == 5 + 1 + 11);
  for (index_t g = 0; g < b.num_graphs(); ++g)
    if (b.size(g) > 0)
      CHECK(std::find(bins.chunk_offsets.begin(), bins.chunk_offsets.end(), b.begin(g)) != bins.chunk_offsets.end());
  // automatic n_bins: even, >= 2; every bin index in range
  for (index_t v : bins.bin) CHECK((v >= 0 && v < 12));  // 2 * ceil(699 / 64 / 2) = 12
  // argmax of [xR, -xR] is invariant to positive scaling and flips half-way under negation
  const matrix<float> scaled = x * 3.0f, negated = -x;
  const auto bs = hepgnn::lsh_bins(scaled, b, opt), bn = hepgnn::lsh_bins(negated, b, opt);
  int same = 0, flipped = 0;
  for (index_t i = 0; i < 1000; ++i) {
    same += bs.bin[i] == bins.bin[i];
    flipped += bn.bin[i] == (bins.bin[i] + 6) % 12;
  }
  CHECK(same >= 995);  // rounding may move exact ties only
  CHECK(flipped >= 995);
  // seeded: same seed same bins, another seed other bins
  CHECK(hepgnn::lsh_bins(x, b, opt).bin == bins.bin);
  opt.seed = 43;
  CHECK(hepgnn::lsh_bins(x, b, opt).bin != bins.bin);
}

TEST_CASE("lsh_knn with one chunk per graph is exact; recall on clustered data rises with rounds") {
  const auto x = clustered(600, 3, 6, 2);
  const auto b = batch::from_sizes({250, 350});
  hepgnn::lsh_options big;
  big.bin_size = 400;
  const auto exact = hepgnn::knn(x, 8, b);
  const auto one = hepgnn::lsh_knn(x, 8, b, big);
  CHECK(one.indices == exact.indices);
  CHECK(one.distances == exact.distances);
  CHECK(hepgnn::knn_recall(exact, exact) == 1.0);

  const auto y = clustered(8000, 8, 250, 3);  // clusters of ~32: a chunk holds a few whole clusters
  const auto by = batch::single(8000);
  const auto ex = hepgnn::knn(y, 16, by);
  hepgnn::lsh_options opt;
  opt.bin_size = 128;
  opt.seed = 105;
  const auto r1 = hepgnn::lsh_knn(y, 16, by, opt);
  opt.rounds = 3;
  const auto r3 = hepgnn::lsh_knn(y, 16, by, opt);
  const double rec1 = hepgnn::knn_recall(r1, ex), rec3 = hepgnn::knn_recall(r3, ex);
  MESSAGE("recall@16 on clustered 8000 x 8: 1 round ", rec1, ", 3 rounds ", rec3);
  // random chunks of 128 out of 8000 would find ~1.6 % of the neighbours; chunks of a bin hold whole clusters
  // except where a bin is cut between two chunks (its order inside a bin is by node id, as in MLPF)
  CHECK(rec1 > 0.3);
  CHECK(rec3 > rec1 + 0.1);
  // centring: a cloud far from the origin hashes almost all to one bin unless the graph mean is subtracted
  const matrix<float> far = y.array() + 50.0f;
  hepgnn::lsh_options plain;
  plain.bin_size = 128;
  plain.seed = 105;
  auto centred = plain;
  centred.center = true;
  const double rec_far = hepgnn::knn_recall(hepgnn::lsh_knn(far, 16, by, plain), ex);
  const double rec_centred = hepgnn::knn_recall(hepgnn::lsh_knn(far, 16, by, centred), ex);
  MESSAGE("recall@16 shifted by +50: plain ", rec_far, ", centred ", rec_centred);
  CHECK(rec_centred > rec_far + 0.1);
  // every reported neighbour is a true distance, sorted, no duplicates, no self
  for (index_t i = 0; i < 8000; ++i) {
    const auto row = r3.of(i);
    CHECK(row.size() == 16);
    std::vector<index_t> u(row.begin(), row.end());
    std::sort(u.begin(), u.end());
    CHECK(std::adjacent_find(u.begin(), u.end()) == u.end());
    for (std::size_t r = 0; r < row.size(); ++r) {
      CHECK(row[r] != i);
      CHECK(r3.distances[i * 16 + r] == hepgnn::metric::euclidean::squared(y.row(i).data(), y.row(row[r]).data(), 8));
      if (r) CHECK(r3.distances[i * 16 + r - 1] <= r3.distances[i * 16 + r]);
    }
  }
#ifdef _OPENMP
  omp_set_num_threads(1);
  const auto t1 = hepgnn::lsh_knn(y, 16, by, opt);
  omp_set_num_threads(2);
  const auto t2 = hepgnn::lsh_knn(y, 16, by, opt);
  CHECK(t1.indices == t2.indices);
  CHECK(t1.indices == r3.indices);
#endif
}

TEST_CASE("lsh_chunk_graph connects chunk members") {
  const auto x = clustered(256, 2, 4, 4);
  hepgnn::lsh_options opt;
  opt.bin_size = 32;
  const auto g = hepgnn::lsh_chunk_graph(x, batch::single(256), opt);
  g.validate();
  CHECK(g.num_edges() == 256 * 31);
  const auto bins = hepgnn::lsh_bins(x, batch::single(256), opt);
  for (index_t c = 0; c < bins.num_chunks(); ++c)
    for (index_t p = bins.chunk_offsets[c]; p < bins.chunk_offsets[c + 1]; ++p) {
      const index_t i = bins.permutation[p];
      const auto in = g.incoming(i);
      for (index_t q = bins.chunk_offsets[c]; q < bins.chunk_offsets[c + 1]; ++q)
        if (q != p) CHECK(std::binary_search(in.begin(), in.end(), bins.permutation[q]));
    }
  opt.rounds = 2;
  opt.include_self = true;
  const auto g2 = hepgnn::lsh_chunk_graph(x, batch::single(256), opt);
  CHECK(g2.num_edges() > g.num_edges());
  matrix<float> empty(0, 2);
  CHECK(hepgnn::lsh_knn(empty, 3, batch::single(0)).num_nodes() == 0);
}

TEST_CASE("lsh_bins_into reuses its storage and equals lsh_bins") {
  hepgnn::lsh_options opt;
  opt.bin_size = 32;
  opt.seed = 3;
  hepgnn::lsh_binning out;
  hepgnn::lsh_workspace<float> ws;
  for (int n : {400, 150, 400}) {  // shrinking then growing again must not leave stale entries
    CAPTURE(n);
    const auto x = clustered(n, 4, 5, static_cast<std::uint64_t>(n));
    const auto b = batch::from_sizes({n / 2, n - n / 2});
    for (int round : {0, 1}) {
      const auto fresh = hepgnn::lsh_bins(x, b, opt, round);
      hepgnn::lsh_bins_into(x, b, opt, round, out, ws);
      CHECK(out.permutation == fresh.permutation);
      CHECK(out.position == fresh.position);
      CHECK(out.bin == fresh.bin);
      CHECK(out.chunk_offsets == fresh.chunk_offsets);
    }
  }
  opt.bin_size = -1;
  CHECK_THROWS_WITH_AS(hepgnn::lsh_bins_into(clustered(10, 2, 1, 1), batch::single(10), opt, 0, out, ws),
                       doctest::Contains("lsh_bins_into: bin_size must be positive, got -1"), hepgnn::error);
}

TEST_CASE("lsh rejects bad input") {
  auto x = clustered(50, 3, 2, 5);
  hepgnn::lsh_options opt;
  opt.bin_size = 0;
  CHECK_THROWS_WITH_AS(hepgnn::lsh_knn(x, 4, batch::single(50), opt),
                       doctest::Contains("lsh_knn: bin_size must be positive, got 0"), hepgnn::error);
  opt.bin_size = 16;
  opt.n_bins = 3;
  CHECK_THROWS_WITH_AS(hepgnn::lsh_bins(x, batch::single(50), opt),
                       doctest::Contains("n_bins must be 0 (automatic) or an even number >= 2, got 3"), hepgnn::error);
  opt.n_bins = 0;
  opt.rounds = 0;
  CHECK_THROWS_WITH_AS(hepgnn::lsh_knn(x, 4, batch::single(50), opt), doctest::Contains("rounds must be >= 1"),
                       hepgnn::error);
  opt.rounds = 1;
  CHECK_THROWS_WITH_AS(hepgnn::lsh_knn(x, 0, batch::single(50), opt), doctest::Contains("lsh_knn: k must be positive"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::lsh_knn(x, 4, batch::single(49), opt), doctest::Contains("cover 49 nodes"),
                       hepgnn::error);
  x(3, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(hepgnn::lsh_chunk_graph(x, batch::single(50), opt),
                       doctest::Contains("lsh_chunk_graph: points must be finite"), hepgnn::error);
  const auto e = hepgnn::knn(clustered(5, 2, 1, 6), 2);
  const auto f = hepgnn::knn(clustered(6, 2, 1, 6), 2);
  CHECK_THROWS_WITH_AS(hepgnn::knn_recall(e, f), doctest::Contains("knn_recall: approx has 5 nodes but exact has 6"),
                       hepgnn::error);
}

TEST_CASE("lsh_knn: bin_size at and beyond 2^30 is one bin per graph (no 32-bit overflow)") {
  hepgnn::rng g(6);
  matrix<float> x(40, 3);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(g.normal());
  const batch b = batch::from_sizes({25, 15});
  const auto big = hepgnn::lsh_knn(x, 4, b, {.bin_size = index_t{1} << 30});
  const auto huge = hepgnn::lsh_knn(x, 4, b, {.bin_size = std::numeric_limits<index_t>::max()});
  const auto exact = hepgnn::knn(x, 4, b);  // one bin per graph: LSH is exact
  CHECK(big.indices == exact.indices);
  CHECK(huge.indices == exact.indices);
}

}  // namespace hepgnn_test_lsh
