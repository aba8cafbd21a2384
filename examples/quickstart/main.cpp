// hepgnn quickstart: a graph network that tags top jets.
//
// Jets are sets of constituents (eta_rel, phi_rel, pt_rel), from the library's toy generator: three-prong top
// jets against one-prong QCD jets. The tagger is written flat, input to output, as a chain of graph elements:
// a kNN graph in (eta, phi), an EdgeConv, a kNN graph rebuilt in the learned space, a second EdgeConv, a mean
// over each jet's constituents, and a small MLP to one logit. It trains with Adam and binary cross entropy
// through fit(), then is compared with the classic substructure cut tau32 (N-subjettiness ratio) by the area
// under the ROC curve, saved as safetensors, reloaded into a fresh model, and checked for identical outputs.
#include <hepgnn/data/jet_substructure.hpp>
#include <hepgnn/data/toy_jets.hpp>
#include <hepgnn/io/safetensors.hpp>
#include <hepgnn/loss/classification.hpp>
#include <hepgnn/metrics/roc.hpp>
#include <hepgnn/nn/activation.hpp>
#include <hepgnn/nn/dense.hpp>
#include <hepgnn/nn/edge_conv.hpp>
#include <hepgnn/nn/graph_sequential.hpp>
#include <hepgnn/nn/knn_builder.hpp>
#include <hepgnn/nn/pooling.hpp>
#include <hepgnn/nn/sequential.hpp>
#include <hepgnn/optim/adam.hpp>
#include <hepgnn/train/trainer.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

using namespace hepgnn;
using T = float;

// Edge networks of the two EdgeConvs: [x_i, x_j - x_i] -> 32 -> 32.
using edge_net1 = sequential<T, dense<T, 6, 32>, relu<T>, dense<T, 32, 32>, relu<T>>;
using edge_net2 = sequential<T, dense<T, 64, 32>, relu<T>, dense<T, 32, 32>, relu<T>>;

// The tagger, 3 features per constituent in, one logit per jet out; widths are checked at compile time.
using tagger = graph_sequential<T, 3,
                                knn_builder<8, metric::delta_r, 0, 2>,  // 8 neighbours in (eta, phi)
                                edge_conv<T, edge_net1>,
                                knn_builder<8>,                         // rebuilt in the learned space
                                edge_conv<T, edge_net2>,
                                global_pool_layer<T>,                   // constituents -> jets (mean)
                                dense<T, 32, 32>, relu<T>, dense<T, 32, 1>>;

static tagger make_tagger(rng& g) {
  return tagger(knn_builder<8, metric::delta_r, 0, 2>(),
                edge_conv<T, edge_net1>(edge_net1(dense<T, 6, 32>(g), relu<T>(), dense<T, 32, 32>(g), relu<T>()),
                                        aggregation::mean),
                knn_builder<8>(),
                edge_conv<T, edge_net2>(edge_net2(dense<T, 64, 32>(g), relu<T>(), dense<T, 32, 32>(g), relu<T>()),
                                        aggregation::mean),
                global_pool_layer<T>(aggregation::mean), dense<T, 32, 32>(g), relu<T>(), dense<T, 32, 1>(g));
}

// Toy top (label 1) and QCD (label 0) jets, alternating.
static jet_array<T> simulate(index_t n, std::uint64_t seed) {
  rng g(seed);
  const auto top = make_toy_jets<T>(n / 2, jet_kind::top, g);
  const auto qcd = make_toy_jets<T>(n - n / 2, jet_kind::qcd, g);
  auto jets = concat_jets<T>({&top, &qcd});
  for (int& label : jets.labels) label = label == static_cast<int>(jet_kind::top);
  return jets;
}

// Constituents of jets as graph-model input: eta_rel, phi_rel and log pt_rel, scaled to order one (pt_rel spans
// four decades; raw, it would be ignored next to the angles).
template <class Items>
static void pack(const jet_array<T>& jets, Items items, matrix<T>& x, batch& b) {
  pack_jets(jets, items, x, b);
  x.col(2) = ((x.col(2).array().log() + T(4)) / T(2)).matrix();
}

// Area under the ROC curve of per-jet scores (higher = more top-like).
static double area_under_roc(const std::vector<double>& score, const std::vector<int>& label) {
  return auc(std::span<const double>(score), std::span<const int>(label));
}

// 1 / (QCD efficiency) at the score cut that keeps half of the top jets.
static double rejection_at_half_efficiency(const std::vector<double>& score, const std::vector<int>& label) {
  std::vector<double> sig, bkg;
  for (std::size_t i = 0; i < score.size(); ++i) (label[i] ? sig : bkg).push_back(score[i]);
  return rejection_at_signal_efficiency(roc(sig, bkg), 0.5);
}

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  const jet_array<T> train = simulate(12000, 1), test = simulate(4000, 2);

  rng init(42);
  tagger model = make_tagger(init);
  adam<T> opt({.lr = 2e-3});
  tagger::cache cache;
  matrix<T> x, y, logits, dlogits;
  batch b;

  const auto history = fit(model, static_cast<std::size_t>(train.num_jets), {.epochs = 12, .batch_size = 64, .label = "quickstart"},
                           [&](std::span<const std::size_t> items) {
                             pack(train, items, x, b);  // the minibatch's constituents, one graph per jet
                             y.resize(static_cast<long>(items.size()), 1);
                             for (std::size_t k = 0; k < items.size(); ++k)
                               y(static_cast<long>(k), 0) = T(train.labels[items[k]]);
                             zero_grad(model);
                             model.forward(x, b, logits, cache);
                             const T loss = bce_with_logits(logits, y, {}, &dlogits);
                             model.backward(x, b, logits, dlogits, cache, nullptr);
                             opt.step(model);
                             return static_cast<double>(loss);
                           });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Score the test jets in one batch; compare with tau32 (top jets have small tau32, so its score is -tau32).
  std::vector<index_t> all(static_cast<std::size_t>(test.num_jets));
  for (index_t j = 0; j < test.num_jets; ++j) all[static_cast<std::size_t>(j)] = j;
  pack(test, std::span<const index_t>(all), x, b);
  model.infer(x, b, logits, cache);
  std::vector<double> gnn_score(logits.data(), logits.data() + logits.size()), cut_score;
  for (const double r : nsubjettiness_ratio(test, 3, 2)) cut_score.push_back(-r);
  const double auc_gnn = area_under_roc(gnn_score, test.labels), auc_cut = area_under_roc(cut_score, test.labels);
  std::printf("trained %zu epochs on %d jets in %.1f s: loss %.4f -> %.4f\n", history.epochs.size(), train.num_jets,
              seconds, history.epochs.front().train_loss, history.epochs.back().train_loss);
  std::printf("top vs QCD, %d test jets: AUC graph network %.4f, tau32 cut %.4f\n", test.num_jets, auc_gnn, auc_cut);
  std::printf("QCD rejection at 50%% top efficiency: graph network %.1f, tau32 cut %.1f\n",
              rejection_at_half_efficiency(gnn_score, test.labels), rejection_at_half_efficiency(cut_score, test.labels));

  // Save, reload into a freshly initialised model, compare outputs bit for bit.
  const auto path = (std::filesystem::temp_directory_path() / "hepgnn_quickstart.safetensors").string();
  save_weights(model, path);  // names as torch.nn.Sequential: "1.nn.0.weight", ..., "7.bias"
  rng other(7);
  tagger reloaded = make_tagger(other);
  load_weights(reloaded, path);
  matrix<T> logits2;
  tagger::cache cache2;
  reloaded.infer(x, b, logits2, cache2);
  const bool identical = logits2 == logits;
  std::printf("weights saved to %s and reloaded: outputs %s\n", path.c_str(), identical ? "identical" : "DIFFER");
  if (!identical || !(auc_gnn > auc_cut)) {
    std::printf("FAILED: %s\n", identical ? "the graph network does not beat the tau32 cut" : "reloaded model differs");
    return 1;
  }
  return 0;
}
