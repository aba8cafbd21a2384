// Google Benchmarks of the set losses on WORKLOADS.md-style inputs (W4): exact EMD per pair size, Sinkhorn,
// Chamfer forward / forward+backward, sliced Wasserstein. Items are point-set pairs.
#include <benchmark/benchmark.h>

#include "compare/rb.hpp"
#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "hepgnn/loss/sliced_wasserstein.hpp"

namespace {

using hepgnn::matrix;
using hepgnn::vector;

struct sets {
  matrix<double> xa, xb;
  vector<double> wa, wb;
  hepgnn::batch bx;
};

/// W4 particle sets (eta, phi in [-0.8, 0.8), exponential pt weights normalised per set).
sets make_sets(int n, int pairs) {
  const std::uint64_t S = 400 + n;
  sets s;
  s.xa.resize(static_cast<long>(pairs) * n, 2);
  s.xb.resize(static_cast<long>(pairs) * n, 2);
  s.wa.resize(static_cast<long>(pairs) * n);
  s.wb.resize(static_cast<long>(pairs) * n);
  for (int p = 0; p < pairs; ++p)
    for (int side = 0; side < 2; ++side) {
      matrix<double>& x = side ? s.xb : s.xa;
      vector<double>& w = side ? s.wb : s.wa;
      for (int j = 0; j < n; ++j) {
        const std::uint64_t k = (static_cast<std::uint64_t>(p) * 2 + side) * n + j;
        for (int t = 0; t < 2; ++t) x(static_cast<long>(p) * n + j, t) = 0.8f * rb::upm1(S, k * 2 + t);
        w[static_cast<long>(p) * n + j] = -std::log(1.0 - static_cast<double>(rb::u01(S + 1, k)));
      }
    }
  s.bx = hepgnn::batch::uniform(pairs, n);
  return s;
}

void bm_emd(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), pairs = 100;
  const auto s = make_sets(n, pairs);
  hepgnn::set_gradients<double> grad;
  hepgnn::set_gradients<double>* g = state.range(1) != 0 ? &grad : nullptr;
  for (auto _ : state) benchmark::DoNotOptimize(hepgnn::emd(s.xa, s.wa, s.bx, s.xb, s.wb, s.bx, {}, g).data());
  state.SetItemsProcessed(state.iterations() * pairs);
}
BENCHMARK(bm_emd)->ArgNames({"n", "grad"})->Args({30, 0})->Args({64, 0})->Args({128, 0})->Args({30, 1})->UseRealTime();

void bm_emd_uniform(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), pairs = 100;
  const auto s = make_sets(n, pairs);
  for (auto _ : state) benchmark::DoNotOptimize(hepgnn::emd(s.xa, s.bx, s.xb, s.bx).data());
  state.SetItemsProcessed(state.iterations() * pairs);
}
BENCHMARK(bm_emd_uniform)->ArgName("n")->Arg(30)->Arg(128)->UseRealTime();

void bm_sinkhorn(benchmark::State& state) {
  const int n = 64, pairs = 8;
  const auto s = make_sets(n, pairs);
  hepgnn::sinkhorn_options opt;
  opt.reg = 0.01;
  hepgnn::set_gradients<double> grad;
  hepgnn::set_gradients<double>* g = state.range(0) != 0 ? &grad : nullptr;
  for (auto _ : state) benchmark::DoNotOptimize(hepgnn::sinkhorn(s.xa, s.wa, s.bx, s.xb, s.wb, s.bx, opt, g).data());
  state.SetItemsProcessed(state.iterations() * pairs);
}
BENCHMARK(bm_sinkhorn)->ArgName("grad")->Arg(0)->Arg(1)->UseRealTime();

void bm_chamfer(benchmark::State& state) {
  const int pairs = 512, n = 64;
  matrix<float> a(pairs * n, 3), b(pairs * n, 3);
  for (int k = 0; k < pairs * n * 3; ++k) a.data()[k] = rb::u01(451, k), b.data()[k] = rb::u01(452, k);
  const auto bx = hepgnn::batch::uniform(pairs, n);
  hepgnn::set_gradients<float> grad;
  hepgnn::set_gradients<float>* g = state.range(0) != 0 ? &grad : nullptr;
  for (auto _ : state) benchmark::DoNotOptimize(hepgnn::chamfer(a, bx, b, bx, {}, g).data());
  state.SetItemsProcessed(state.iterations() * pairs);
}
BENCHMARK(bm_chamfer)->ArgName("backward")->Arg(0)->Arg(1)->UseRealTime();

void bm_sliced_wasserstein(benchmark::State& state) {
  const int n = 64, pairs = 100;
  const auto s = make_sets(n, pairs);
  hepgnn::sliced_wasserstein_options opt;
  opt.projections = 50;
  hepgnn::set_gradients<double> grad;
  hepgnn::set_gradients<double>* g = state.range(0) != 0 ? &grad : nullptr;
  for (auto _ : state)
    benchmark::DoNotOptimize(hepgnn::sliced_wasserstein(s.xa, s.wa, s.bx, s.xb, s.wb, s.bx, opt, g).data());
  state.SetItemsProcessed(state.iterations() * pairs);
}
BENCHMARK(bm_sliced_wasserstein)->ArgName("grad")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
