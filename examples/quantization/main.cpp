// hepgnn quantization: a dense MLP jet tagger (top vs QCD) from float to FPGA-style fixed point.
//
// Features per jet (toy generator, standardised): mass, pt, number of constituents, tau1, tau21, tau32. The tagger
// is 6 -> 16 -> 16 -> 1 with ReLU. Compared, by test accuracy and EBOPs (sum over non-zero weights of weight
// bits x input bits, HGQ's resource estimate):
//   - float baseline;
//   - post-training quantization to uniform ap_fixed<16,6>, <12,4>, <8,3>, <6,2> (every input, weight, bias,
//     accumulator and result; AP_TRN/AP_WRAP as hls4ml's default), run with the integer kernel;
//   - quantization-aware training at 8 bits (fake_quant, ap_fixed<8,3,AP_RND,AP_SAT> weights and activations,
//     straight-through estimator), run in fixed point with a wide accumulator and exported for hls4ml;
//   - HGQ (hgq_dense: learnable per-weight and per-input fractional bits with an EBOPs regulariser).
// Also: the integer kernel against a scalar fixed<16,6> loop in hls4ml's order (same bits? how much faster?).
// Options: --quick, --metrics-out FILE, --out-dir DIR (plot and hls4ml export; default example_quantization_out).
#include <hepgnn/data/jet_substructure.hpp>
#include <hepgnn/data/toy_jets.hpp>
#include <hepgnn/io/hls4ml_export.hpp>
#include <hepgnn/loss/classification.hpp>
#include <hepgnn/nn/dense.hpp>
#include <hepgnn/optim/adam.hpp>
#include <hepgnn/quant/fake_quant.hpp>
#include <hepgnn/quant/fixed_point.hpp>
#include <hepgnn/quant/hgq.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "../common/svg_plot.hpp"

using namespace hepgnn;
using namespace hepgnn::quant;
using D = double;
using M = matrix<D>;

namespace {

constexpr int n_features = 6, hidden = 16;
const fixed_spec q8{8, 3, AP_RND, AP_SAT};  // QAT format of weights and activations

struct dataset {
  M x;
  std::vector<int> y;
};

// Toy top (1) and QCD (0) jets with their high-level features.
dataset simulate(index_t n, std::uint64_t seed) {
  rng g(seed);
  const auto top = make_toy_jets<D>(n / 2, jet_kind::top, g);
  const auto qcd = make_toy_jets<D>(n - n / 2, jet_kind::qcd, g);
  const auto jets = concat_jets<D>({&top, &qcd});
  const auto t21 = nsubjettiness_ratio(jets, 2, 1), t32 = nsubjettiness_ratio(jets, 3, 2);
  dataset d;
  d.x.resize(jets.num_jets, n_features);
  for (index_t j = 0; j < jets.num_jets; ++j) {
    d.x(j, 0) = jets.jet_features(j, 2);
    d.x(j, 1) = jets.jet_features(j, 0);
    d.x(j, 2) = jets.jet_features(j, 3);
    d.x(j, 3) = nsubjettiness(jets, j, 1);
    d.x(j, 4) = t21[j];
    d.x(j, 5) = t32[j];
    d.y.push_back(jets.labels[j] == static_cast<int>(jet_kind::top));
  }
  return d;
}

// The MLP over any dense-like layer (dense<D> or hgq_dense<D>); `qat`: activations fake-quantized to q8.
template <class L>
struct mlp {
  std::vector<L> layers;
  bool qat = false;
  struct cache {
    std::vector<typename L::cache> c{3};
    std::vector<M> a{3}, h{3};  // a[k]: input of layer k; h[k]: its output
  };
  void forward(const M& x, M& y, cache& c) {
    c.a[0] = x;
    if (qat) for (auto& v : c.a[0].reshaped()) v = fake_quantize(v, q8);
    for (int k = 0; k < 3; ++k) {
      layers[k].forward(c.a[k], c.h[k], c.c[k]);
      if (k < 2) {
        c.a[k + 1] = c.h[k].cwiseMax(0.0);
        if (qat) for (auto& v : c.a[k + 1].reshaped()) v = fake_quantize(v, q8);
      }
    }
    y = c.h[2];
  }
  void backward(const M& dy, cache& c) {
    M g = dy, dx;
    for (int k = 2; k >= 0; --k) {
      layers[k].backward(c.a[k], c.h[k], g, c.c[k], k ? &dx : nullptr);
      if (!k) break;
      for (Eigen::Index e = 0; e < dx.size(); ++e) {  // ReLU, then the straight-through estimator of q8
        const D h = c.h[k - 1].data()[e];
        dx.data()[e] *= h > 0 && (!qat || fake_quant_passes(h, q8)) ? 1.0 : 0.0;
      }
      g = dx;
    }
  }
  template <class F>
  void for_each_param(const std::string& p, F&& f) {
    for (int k = 0; k < 3; ++k) layers[k].for_each_param(p + std::to_string(k) + ".", f);
  }
};

double accuracy(const M& logits, const std::vector<int>& y) {
  int ok = 0;
  for (std::size_t i = 0; i < y.size(); ++i) ok += (logits(static_cast<Eigen::Index>(i), 0) > 0) == (y[i] == 1);
  return static_cast<double>(ok) / static_cast<double>(y.size());
}

// Minibatch Adam with binary cross entropy; `per_step` runs after backward (QAT weight swap, EBOPs gradient).
template <class L, class Before, class After>
void train(mlp<L>& net, const dataset& d, int epochs, double lr, Before before, After after) {
  adam<D> opt({.lr = lr});
  typename mlp<L>::cache c;
  std::vector<Eigen::Index> order(static_cast<std::size_t>(d.x.rows()));
  std::iota(order.begin(), order.end(), 0);
  rng g(99);
  M x, y, logits, dl;
  const int bs = 128;
  for (int ep = 0; ep < epochs; ++ep) {
    for (std::size_t i = order.size() - 1; i > 0; --i)
      std::swap(order[i], order[static_cast<std::size_t>(g.uniform() * static_cast<double>(i + 1)) % (i + 1)]);
    for (std::size_t s = 0; s < order.size(); s += bs) {
      const auto n = static_cast<Eigen::Index>(std::min<std::size_t>(bs, order.size() - s));
      x.resize(n, n_features);
      y.resize(n, 1);
      for (Eigen::Index k = 0; k < n; ++k) {
        x.row(k) = d.x.row(order[s + static_cast<std::size_t>(k)]);
        y(k, 0) = d.y[static_cast<std::size_t>(order[s + static_cast<std::size_t>(k)])];
      }
      before(net);
      zero_grad(net);
      net.forward(x, logits, c);
      bce_with_logits(logits, y, {}, &dl);
      net.backward(dl, c);
      after(net);
      opt.step(net);
    }
  }
}

// A fixed-point network from dense layers: one precision per layer, ReLU outputs in `act`.
std::vector<hls4ml_dense_layer> to_fixed(const mlp<dense<D>>& net, const dense_precision& first,
                                         const dense_precision& rest, const fixed_spec& act) {
  std::vector<hls4ml_dense_layer> out;
  for (int k = 0; k < 3; ++k)
    out.push_back({k < 2 ? "fc" + std::to_string(k + 1) : std::string("output"),
                   quantized_dense::from(net.layers[k], k ? rest : first), k < 2, act});
  return out;
}

std::vector<std::int32_t> input_raw(const M& x, const fixed_spec& s) {
  std::vector<std::int32_t> r(static_cast<std::size_t>(x.size()));
  for (Eigen::Index e = 0; e < x.size(); ++e) r[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(quantize_double(x.data()[e], s));
  return r;
}

double fixed_accuracy(const std::vector<hls4ml_dense_layer>& net, const dataset& d) {
  const auto n = static_cast<int>(d.x.rows());
  const auto y = hls4ml_forward_raw(net, input_raw(d.x, net.front().layer.precision().input), n);
  M logits(n, 1);
  for (int i = 0; i < n; ++i) logits(i, 0) = y[static_cast<std::size_t>(i)];
  return accuracy(logits, d.y);
}

// EBOPs of a fixed-point network: non-zero weights x weight width x input width.
double fixed_ebops(const std::vector<hls4ml_dense_layer>& net) {
  double e = 0;
  for (const auto& l : net)
    for (int o = 0; o < l.layer.out_features(); ++o)
      for (int i = 0; i < l.layer.in_features(); ++i)
        if (l.layer.weight_raw(o, i)) e += l.layer.precision().weight.width * l.layer.precision().input.width;
  return e;
}

// hls4ml's order with the fixed<16,6> scalar (all formats the same): what a C simulation does per MAC.
std::vector<std::int32_t> scalar_forward(const std::vector<hls4ml_dense_layer>& net, const std::vector<std::int32_t>& x, int n) {
  using F = fixed<16, 6>;
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  std::vector<F> a, b;
  for (int s = 0; s < n; ++s) {
    a.clear();
    for (int i = 0; i < n_features; ++i) a.push_back(F::from_raw(x[static_cast<std::size_t>(s) * n_features + i]));
    for (const auto& l : net) {
      b.assign(static_cast<std::size_t>(l.layer.out_features()), F{});
      for (int j = 0; j < l.layer.out_features(); ++j) {
        F acc = F::from_raw(l.layer.bias_raw(j));
        for (int i = 0; i < l.layer.in_features(); ++i) acc += F(a[static_cast<std::size_t>(i)] * F::from_raw(l.layer.weight_raw(j, i)));
        b[static_cast<std::size_t>(j)] = l.relu && acc.raw() < 0 ? F{} : acc;
      }
      a.swap(b);
    }
    out[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(a[0].raw());
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string metrics_out, out_dir = "example_quantization_out";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--metrics-out" && i + 1 < argc) {
      metrics_out = argv[++i];
    } else if (a == "--out-dir" && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: example_quantization [--quick] [--metrics-out FILE] [--out-dir DIR]\n");
      return 2;
    }
  }
  const auto t_all = std::chrono::steady_clock::now();
  dataset train_set = simulate(quick ? 4000 : 16000, 1), test_set = simulate(quick ? 2000 : 8000, 2);
  const double t_data = seconds_since(t_all);
  // standardise with the training set's mean and deviation
  const Eigen::RowVectorXd mean = train_set.x.colwise().mean();
  const Eigen::RowVectorXd sd = ((train_set.x.rowwise() - mean).array().square().colwise().sum() / train_set.x.rows()).sqrt();
  for (auto* d : {&train_set, &test_set}) d->x = ((d->x.rowwise() - mean).array().rowwise() / sd.array()).matrix();
  const int epochs = quick ? 12 : 30;
  auto nothing = [](auto&) {};

  // float baseline
  const auto t_train = std::chrono::steady_clock::now();
  rng g(42);
  mlp<dense<D>> fnet{{dense<D>(g, n_features, hidden), dense<D>(g, hidden, hidden), dense<D>(g, hidden, 1)}};
  train(fnet, train_set, epochs, 3e-3, nothing, nothing);
  M logits;
  typename mlp<dense<D>>::cache fc;
  fnet.forward(test_set.x, logits, fc);
  const double acc_float = accuracy(logits, test_set.y);

  // post-training quantization, uniform formats
  struct row { std::string name; double acc, ebops; };
  std::vector<row> rows{{"float", acc_float, NAN}};
  std::vector<double> uni_acc, uni_ebops;
  std::vector<hls4ml_dense_layer> uniform16;
  for (const auto& [w, i] : std::vector<std::pair<int, int>>{{16, 6}, {12, 4}, {8, 3}, {6, 2}}) {
    const fixed_spec s{w, i};
    const dense_precision p{s, s, s, s, s};
    const auto net = to_fixed(fnet, p, p, s);
    if (w == 16) uniform16 = net;
    rows.push_back({"ap_fixed<" + std::to_string(w) + "," + std::to_string(i) + "> PTQ", fixed_accuracy(net, test_set), fixed_ebops(net)});
    uni_acc.push_back(rows.back().acc);
    uni_ebops.push_back(rows.back().ebops);
  }

  // QAT at 8 bits: fake-quantized weights (straight-through: the float weights get the gradient) and activations
  rng g2(42);
  mlp<dense<D>> qnet{{dense<D>(g2, n_features, hidden), dense<D>(g2, hidden, hidden), dense<D>(g2, hidden, 1)}, true};
  std::vector<M> saved(3);
  train(qnet, train_set, epochs, 3e-3,
        [&](mlp<dense<D>>& n) {
          for (int k = 0; k < 3; ++k) {
            saved[k] = n.layers[k].weight();
            for (auto& v : n.layers[k].weight().reshaped()) v = fake_quantize(v, q8);
          }
        },
        [&](mlp<dense<D>>& n) {
          for (int k = 0; k < 3; ++k) n.layers[k].weight() = saved[k];
        });
  const fixed_spec acc_wide{24, 10};  // exact for 16 products of two q8 values
  const dense_precision qp{q8, q8, q8, acc_wide, acc_wide};
  const auto qat_fixed = to_fixed(qnet, qp, qp, q8);
  rows.push_back({"QAT ap_fixed<8,3> (fixed point)", fixed_accuracy(qat_fixed, test_set), fixed_ebops(qat_fixed)});
  const double acc_qat = rows.back().acc, ebops_qat = rows.back().ebops;

  // HGQ: learnable bits, EBOPs regulariser
  rng g3(42);
  hgq_options ho;
  ho.init_weight_frac_bits = 4;
  ho.init_input_frac_bits = 4;
  mlp<hgq_dense<D>> hnet{{hgq_dense<D>(g3, n_features, hidden, ho), hgq_dense<D>(g3, hidden, hidden, ho), hgq_dense<D>(g3, hidden, 1, ho)}};
  const double beta = 3e-6;
  train(hnet, train_set, epochs, 3e-3, nothing, [&](mlp<hgq_dense<D>>& n) {
    for (auto& l : n.layers) l.add_ebops_gradient(beta);
  });
  M hlogits;
  {  // infer, not forward: forward would go on calibrating the input ranges on the test set
    M a = test_set.x, h;
    for (int k = 0; k < 3; ++k) {
      typename hgq_dense<D>::cache c;
      hnet.layers[k].infer(a, h, c);
      a = k < 2 ? M(h.cwiseMax(0.0)) : h;
    }
    hlogits = a;
  }
  double ebops_hgq = 0;
  for (const auto& l : hnet.layers) ebops_hgq += l.ebops();
  const double acc_hgq = accuracy(hlogits, test_set.y);
  rows.push_back({"HGQ (beta " + std::to_string(beta).substr(0, 8) + ")", acc_hgq, ebops_hgq});
  const double train_seconds = seconds_since(t_train);

  // integer kernel against the scalar fixed<16,6> loop, on the test set
  const int n_test = static_cast<int>(test_set.x.rows());
  const auto xr = input_raw(test_set.x, fixed_spec{16, 6});
  const int reps = 5;
  std::vector<std::int32_t> yk, ys;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) yk = hls4ml_forward_raw(uniform16, xr, n_test);
  const double t_kernel = seconds_since(t0) / reps;
  t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) ys = scalar_forward(uniform16, xr, n_test);
  const double t_scalar = seconds_since(t0) / reps;
  const bool bit_exact = yk == ys;

  // export the QAT network for hls4ml and read it back
  std::filesystem::create_directories(out_dir);
  const auto export_dir = std::filesystem::path(out_dir) / "hls4ml_qat8";
  write_hls4ml_export(export_dir, qat_fixed);
  const auto back = read_hls4ml_export(export_dir);
  const auto xq = input_raw(test_set.x, q8);
  const bool export_exact = hls4ml_forward_raw(back, xq, n_test) == hls4ml_forward_raw(qat_fixed, xq, n_test);

  std::printf("top vs QCD, MLP %d-%d-%d-1, %d train / %d test jets (data %.1f s, training %.1f s)\n\n", n_features,
              hidden, hidden, static_cast<int>(train_set.x.rows()), n_test, t_data, train_seconds);
  std::printf("| model | test accuracy | EBOPs |\n|---|---|---|\n");
  for (const auto& r : rows) {
    const std::string e = std::isnan(r.ebops) ? "-" : std::to_string(static_cast<long>(r.ebops));
    std::printf("| %s | %.4f | %s |\n", r.name.c_str(), r.acc, e.c_str());
  }
  const double ebops16 = uni_ebops[0];
  const bool target = acc_hgq >= acc_float - 0.01 && ebops_hgq <= ebops16 / 3;
  std::printf("\nissue 26 target (HGQ within 1%% of float at <= 1/3 of <16,6>'s EBOPs): %s (%.4f vs %.4f, %.0f vs %.0f / 3)\n",
              target ? "met" : "NOT met", acc_hgq, acc_float, ebops_hgq, ebops16);
  std::printf("integer kernel vs scalar fixed<16,6> loop on %d jets: %s, %.3f ms vs %.3f ms (%.1fx)\n", n_test,
              bit_exact ? "bit-exact" : "DIFFER", 1e3 * t_kernel, 1e3 * t_scalar, t_scalar / t_kernel);
  std::printf("hls4ml export of the QAT network: %s (read back %s)\n", export_dir.string().c_str(),
              export_exact ? "bit-exact" : "DIFFERS");

  svg_plot::line_plot p("top tagger: accuracy vs EBOPs", "EBOPs", "test accuracy", true, false);
  p.add("uniform PTQ <16,6> <12,4> <8,3> <6,2>", uni_ebops, uni_acc).markers = true;
  p.add("QAT 8 bits", {ebops_qat}, {acc_qat}).markers = true;
  p.add("HGQ", {ebops_hgq}, {acc_hgq}).markers = true;
  p.add("float", {std::min(ebops_hgq, uni_ebops.back()), uni_ebops.front()}, {acc_float, acc_float}).dashed = true;
  const auto svg = (std::filesystem::path(out_dir) / "accuracy_vs_ebops.svg").string();
  p.save(svg);
  std::printf("plot: %s\n", svg.c_str());

  if (!metrics_out.empty()) {
    std::ofstream m(metrics_out);
    auto num = [](double v) { return std::isfinite(v) ? std::to_string(v) : std::string("null"); };
    m << "{\n  \"float.accuracy\": " << num(acc_float) << ",\n";
    const char* names[] = {"uniform16", "uniform12", "uniform8", "uniform6"};
    for (int k = 0; k < 4; ++k)
      m << "  \"" << names[k] << ".accuracy\": " << num(uni_acc[k]) << ",\n  \"" << names[k] << ".ebops\": " << num(uni_ebops[k]) << ",\n";
    m << "  \"qat8.accuracy\": " << num(acc_qat) << ",\n  \"qat8.ebops\": " << num(ebops_qat) << ",\n";
    m << "  \"hgq.accuracy\": " << num(acc_hgq) << ",\n  \"hgq.ebops\": " << num(ebops_hgq) << ",\n";
    m << "  \"hgq.target_met\": " << (target ? "true" : "false") << ",\n";
    m << "  \"train_seconds\": " << num(train_seconds) << ",\n  \"apfixed.bit_exact\": null,\n";
    m << "  \"fixed_vs_scalar.bit_exact\": " << (bit_exact ? "true" : "false") << ",\n";
    m << "  \"fixed_point_speedup\": " << num(t_scalar / t_kernel) << ",\n";
    m << "  \"export.roundtrip_bit_exact\": " << (export_exact ? "true" : "false") << "\n}\n";
  }
  return bit_exact && export_exact ? 0 : 1;
}
