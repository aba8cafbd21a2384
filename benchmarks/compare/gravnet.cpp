// W7 (issue 21's anchors) in hepgnn: one GravNetConv layer with PyTorch Geometric's semantics, sized as in CMS
// particle-flow reconstruction (MLPF): 4 events x 2048 elements, F_in = 64, space_dimensions 4,
// propagate_dimensions 22, k = 40 (self included), F_out = 64.
//   s = lin_s(x), h = lin_h(x), N(i) = 40 nearest in s within i's event, w_ij = exp(-10 |s_i - s_j|^2),
//   y_i = lin_out1(x_i) + lin_out2([mean_j w_ij h_j, max_j w_ij h_j])
// Inputs: x[i][c] = s(701, 64 i + c); Linear seeds lin_s 711, lin_h 713, lin_out1 715 (no bias), lin_out2 717
// (rb.hpp / WORKLOADS.md rules).
// Usage: compare_gravnet W7/{infer,train}   (infer: forward without gradients; train: forward + backward of
// loss = y.sum(), gradients w.r.t. x and every weight). Prints `<workload> hepgnn <threads> <median_s>`; the
// checksum goes to stderr. With HEPGNN_COMPARE_DUMP=DIR the output (and for train dx and the weight gradients)
// and the neighbour ids go to DIR as raw float32 / int32 files, which gravnet.py compares element by element.
#include <cstdio>
#include <cstdlib>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/nn/gravnet_conv.hpp"
#include "rb.hpp"

using namespace hepgnn;

namespace {
constexpr int G = 4, NPG = 2048, F = 64, S = 4, P = 22, OUT = 64, K = 40;

void dump(const std::string& dir, const std::string& name, const float* p, long count) {
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(p, sizeof(float), static_cast<std::size_t>(count), f) != static_cast<std::size_t>(count)) {
    std::fprintf(stderr, "compare_gravnet: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}
}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "W7/infer";
  if (w != "W7/infer" && w != "W7/train") {
    std::fprintf(stderr, "usage: compare_gravnet W7/{infer,train}\n");
    return 2;
  }
  const bool train = w == "W7/train";
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const long n = long(G) * NPG;
  matrix<float> x(n, F);
  for (long i = 0; i < n; ++i)
    for (int c = 0; c < F; ++c) x(i, c) = rb::upm1(701, std::uint64_t(i) * F + c);
  const batch b = batch::uniform(G, NPG);
  rng gen(1);
  gravnet_conv<float>::options o;
  o.in_channels = F;
  o.out_channels = OUT;
  o.space_dimensions = S;
  o.propagate_dimensions = P;
  o.k = K;
  gravnet_conv<float> conv(gen, o);
  rb::init_linear(conv.lin_s(), 711);
  rb::init_linear(conv.lin_h(), 713);
  rb::init_linear(conv.lin_out1(), 715);
  rb::init_linear(conv.lin_out2(), 717);
  gravnet_conv<float>::cache c;
  matrix<float> y, dx;
  const matrix<float> dy = matrix<float>::Ones(n, OUT);
  auto step = [&] {
    if (train) {
      zero_grad(conv);
      conv.forward(x, b, y, c);
      conv.backward(x, b, y, dy, c, &dx);
    } else {
      conv.infer(x, b, y, c);
    }
  };
  const double s = rb::median_seconds(step);
  std::fprintf(stderr, "%s checksum: sum %.7g sum|.| %.7g out[0][:4] %.7g %.7g %.7g %.7g\n", w.c_str(), double(y.sum()),
               double(y.cwiseAbs().sum()), double(y(0, 0)), double(y(0, 1)), double(y(0, 2)), double(y(0, 3)));
  if (train) {
    std::fprintf(stderr, "%s gradients: sum|dx| %.7g", w.c_str(), double(dx.cwiseAbs().sum()));
    conv.for_each_param("", [&](const std::string& name, auto p) {
      double a = 0;
      for (long q = 0; q < p.size(); ++q) a += std::abs(double(p.grad[q]));
      std::fprintf(stderr, ", sum|d %s| %.7g", name.c_str(), a);
    });
    std::fprintf(stderr, "\n");
  }
  if (const char* dir = std::getenv("HEPGNN_COMPARE_DUMP")) {
    const std::string tag = train ? "W7_train_" : "W7_infer_";
    dump(dir, tag + "y.f32", y.data(), y.size());
    // neighbour ids (incoming edges of i), k per node
    std::vector<std::int32_t> nb(c.g.sources.begin(), c.g.sources.end());
    if (static_cast<long>(nb.size()) != n * K) {
      std::fprintf(stderr, "compare_gravnet: %zu edges, expected %ld\n", nb.size(), n * K);
      return 1;
    }
    dump(dir, tag + "neighbours.i32", reinterpret_cast<const float*>(nb.data()), n * K);
    if (train) {
      dump(dir, tag + "dx.f32", dx.data(), dx.size());
      conv.for_each_param("", [&](const std::string& name, auto p) { dump(dir, tag + "d_" + name + ".f32", p.grad, p.size()); });
    }
  }
  rb::report(w, "hepgnn", threads, s);
}
