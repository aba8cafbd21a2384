// W8 (issue 21's anchors) in hepgnn: global pooling of a batch of jets (PyTorch Geometric's global_mean_pool,
// global_max_pool, global_add_pool): 256 jets of 30-100 particles (n_g = 30 + int(802, g; 71), 16,614 rows in
// all), 64 features x[i][c] = s(801, 64 i + c) (rb.hpp / WORKLOADS.md rules). Output 256 x 64.
// Usage: compare_pooling W8/{infer,train}/{mean,max,sum}   (infer: forward; train: forward + backward of
// loss = y.sum(), the gradient w.r.t. x). Prints `<workload> hepgnn <threads> <median_s>`; the checksum goes to
// stderr. With HEPGNN_COMPARE_DUMP=DIR, y (and for train dx) go to DIR as raw float32, for pooling.py.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/pooling.hpp"
#include "rb.hpp"

using namespace hepgnn;

namespace {
constexpr int G = 256, F = 64;

void dump(const std::string& dir, const std::string& name, const matrix<float>& m) {
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(m.data(), sizeof(float), static_cast<std::size_t>(m.size()), f) != static_cast<std::size_t>(m.size())) {
    std::fprintf(stderr, "compare_pooling: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}
}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W8/infer/mean";
  const bool train = w.rfind("W8/train/", 0) == 0;
  if (!train && w.rfind("W8/infer/", 0) != 0) {
    std::fprintf(stderr, "usage: compare_pooling W8/{infer,train}/{mean,max,sum}\n");
    return 2;
  }
  const std::string an = w.substr(9);
  if (an != "mean" && an != "max" && an != "sum") {
    std::fprintf(stderr, "usage: compare_pooling W8/{infer,train}/{mean,max,sum}\n");
    return 2;
  }
  const aggregation a = an == "mean" ? aggregation::mean : an == "max" ? aggregation::max : aggregation::sum;
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::vector<index_t> sizes(G);
  for (int g = 0; g < G; ++g) sizes[g] = 30 + static_cast<index_t>(rb::randint(802, g, 71));
  const batch b = batch::from_sizes(sizes);
  const long n = b.num_nodes();
  matrix<float> x(n, F);
  for (long i = 0; i < n; ++i)
    for (int c = 0; c < F; ++c) x(i, c) = rb::upm1(801, std::uint64_t(i) * F + c);
  matrix<float> y, dx;
  std::vector<index_t> argmax;
  const matrix<float> dy = matrix<float>::Ones(G, F);
  auto step = [&] {
    if (train) {
      global_pool(x, b, a, y, &argmax);
      global_pool_backward(b, a, dy, &argmax, dx);
    } else {
      global_pool(x, b, a, y);
    }
  };
  const double s = rb::median_seconds(step);
  std::fprintf(stderr, "%s checksum (%ld rows): sum %.7g sum|.| %.7g out[0][:4] %.7g %.7g %.7g %.7g\n", w.c_str(), n,
               double(y.sum()), double(y.cwiseAbs().sum()), double(y(0, 0)), double(y(0, 1)), double(y(0, 2)),
               double(y(0, 3)));
  if (const char* dir = std::getenv("HEPGNN_COMPARE_DUMP")) {
    const std::string tag = "W8_" + std::string(train ? "train_" : "infer_") + an + "_";
    dump(dir, tag + "y.f32", y);
    if (train) dump(dir, tag + "dx.f32", dx);
  }
  rb::report(w, "hepgnn", threads, s);
}
