// W4 of ../shared/benchmarks/WORKLOADS.md in hepgnn: exact EMD (W4a-n30/n64/n128), Sinkhorn (W4b-n64) and
// Chamfer forward / forward+backward (W4c-fwd, W4c-fwdbwd). Prints `<workload> hepgnn <threads> <median_s>`
// (per pair for W4a/W4b, per call for W4c) and a checksum line on stderr.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "rb.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using hepgnn::matrix;
using hepgnn::vector;

/// W4 particle sets: coordinates in float32 (held in double), pt weights normalised per set.
struct w4_sets {
  matrix<double> xa, xb;
  vector<double> wa, wb;
  hepgnn::batch ba, bb;
};

w4_sets make_w4(int n, int pairs) {
  const std::uint64_t S = 400 + n;
  w4_sets s;
  s.xa.resize(static_cast<long>(pairs) * n, 2);
  s.xb.resize(static_cast<long>(pairs) * n, 2);
  s.wa.resize(static_cast<long>(pairs) * n);
  s.wb.resize(static_cast<long>(pairs) * n);
  for (int p = 0; p < pairs; ++p)
    for (int side = 0; side < 2; ++side) {
      matrix<double>& x = side ? s.xb : s.xa;
      vector<double>& w = side ? s.wb : s.wa;
      double total = 0;
      for (int j = 0; j < n; ++j) {
        const std::uint64_t k = (static_cast<std::uint64_t>(p) * 2 + side) * n + j;
        for (int t = 0; t < 2; ++t) x(static_cast<long>(p) * n + j, t) = 0.8f * rb::upm1(S, k * 2 + t);
        w[static_cast<long>(p) * n + j] = -std::log(1.0 - static_cast<double>(rb::u01(S + 1, k)));
        total += w[static_cast<long>(p) * n + j];
      }
      for (int j = 0; j < n; ++j) w[static_cast<long>(p) * n + j] /= total;
    }
  s.ba = hepgnn::batch::uniform(pairs, n);
  s.bb = s.ba;
  return s;
}

int threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s W4a-n30|W4a-n64|W4a-n128|W4b-n64|W4c-fwd|W4c-fwdbwd\n", argv[0]);
    return 2;
  }
  const std::string w = argv[1];
  const int T = threads();
  if (w.rfind("W4a-n", 0) == 0) {
    const int n = std::atoi(w.c_str() + 5), pairs = 1000;
    const auto s = make_w4(n, pairs);
    double check = 0;
    const double t = rb::median_seconds([&] { check = hepgnn::emd(s.xa, s.wa, s.ba, s.xb, s.wb, s.bb).sum(); });
    std::fprintf(stderr, "%s hepgnn checksum sum(cost) = %.12g\n", w.c_str(), check);
    rb::report(w, "hepgnn", T, t / pairs);
  } else if (w == "W4b-n64") {
    const int n = 64, pairs = 20;
    const auto s = make_w4(n, pairs);
    hepgnn::sinkhorn_options opt;
    opt.reg = 0.01;
    opt.max_iterations = 1000;
    opt.tolerance = 1e-9;
    double check = 0;
    const double t = rb::median_seconds([&] { check = hepgnn::sinkhorn(s.xa, s.wa, s.ba, s.xb, s.wb, s.bb, opt).sum(); });
    std::fprintf(stderr, "%s hepgnn checksum sum(cost) = %.12g\n", w.c_str(), check);
    rb::report(w, "hepgnn", T, t / pairs);
  } else if (w == "W4c-fwd" || w == "W4c-fwdbwd") {
    const int pairs = 512, n = 64;
    matrix<float> a(pairs * n, 3), b(pairs * n, 3);
    for (int k = 0; k < pairs * n * 3; ++k) {
      a.data()[k] = rb::u01(451, k);
      b.data()[k] = rb::u01(452, k);
    }
    const auto ba = hepgnn::batch::uniform(pairs, n);
    const bool backward = w == "W4c-fwdbwd";
    hepgnn::set_gradients<float> grad;
    double check = 0;
    const double t = rb::median_seconds([&] {
      check = hepgnn::chamfer(a, ba, b, ba, {}, backward ? &grad : nullptr).mean();
    });
    // the gradient of the mean loss (PyTorch's backward of loss.mean()) is that of the sum over pairs / pairs
    std::fprintf(stderr, "%s hepgnn checksum loss = %.9g%s\n", w.c_str(), check,
                 backward ? (" |grad a|_1 = " + std::to_string(grad.xa.cwiseAbs().sum() / pairs)).c_str() : "");
    rb::report(w, "hepgnn", T, t);
  } else {
    std::fprintf(stderr, "unknown workload %s\n", w.c_str());
    return 2;
  }
  return 0;
}
