// hepgnn autoencoder example: anomaly detection with a particle graph autoencoder.
//
// Trains on QCD-like toy jets only (data/toy_jets.hpp), then scores held-out QCD, W-like (two-prong) and
// top-like (three-prong) jets by their reconstruction loss. Compares: the graph autoencoder (EdgeConv encoder
// on a kNN graph, pooled latent) trained with Chamfer and with the exact energy mover's distance (pt-weighted
// EMD; `graph_emd`; optionally the uniform-weight EMD, `graph_emd_uniform`), a dense autoencoder on the
// flattened constituents, and the classical tau3/tau2 (tau2/tau1 for W) N-subjettiness taggers. Prints AUCs,
// training wall and CPU seconds, and writes
//   roc_autoencoder.svg      ROC curves (top vs QCD, W vs QCD)
//   jets_autoencoder.svg     original vs reconstructed constituents for a QCD and a top jet
//   scores_autoencoder.svg   anomaly score distributions
// Options: --quick (short run), --metrics-out FILE (final figures as JSON), --out-dir DIR, --epochs N,
//          --train N (QCD training jets), --test N (test jets per class), --seed S, --latent L,
//          --methods LIST (graph_chamfer,graph_emd,dense[,graph_emd_uniform]), --beta B (energy EMD exponent),
//          --k K, --hidden H, --fully-connected, --max-pool.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <hepgnn/data/jet_substructure.hpp>
#include <hepgnn/data/toy_jets.hpp>
#include <hepgnn/metrics/roc.hpp>
#include <hepgnn/models/autoencoder.hpp>
#include <hepgnn/optim/adam.hpp>
#include <hepgnn/optim/schedule.hpp>
#include <map>
#include <string>
#include <vector>

#include "../common/svg_plot.hpp"

using namespace hepgnn;
using T = float;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  bool quick = false;
  int epochs = 25, dense_epochs = 25;
  index_t n_train = 12000, n_test = 5000, batch_size = 128;
  int latent = 4, k = 8, hidden = 32;
  double beta = 1.0;
  bool fully_connected = false, max_pool = false;
  std::uint64_t seed = 7;
  std::string out_dir = ".", metrics_out;
  std::string methods = "graph_chamfer,graph_emd,dense";  // also: graph_emd_uniform
};

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }
/// Process CPU seconds (all threads): on a shared machine this, not the wall time, says what the work costs.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

/// Feature scales: constituent (eta_rel, phi_rel, pt_rel) multiplied by these so each has unit spread.
std::vector<T> feature_scales(const jet_array<T>& train) {
  std::vector<T> s(3);
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum2 = 0, n = 0;
    for (index_t j = 0; j < train.num_jets; ++j)
      for (index_t i = 0; i < train.count(j); ++i) {
        const double v = train.row(j, i)(c);
        sum += v, sum2 += v * v, n += 1;
      }
    const double var = sum2 / n - (sum / n) * (sum / n);
    s[c] = static_cast<T>(1.0 / std::sqrt(std::max(var, 1e-12)));
  }
  return s;
}

jet_array<T> scaled(jet_array<T> jets, const std::vector<T>& s) {
  for (int c = 0; c < 3; ++c) jets.particles.col(c) *= s[c];
  return jets;
}

/// Minibatches of packed jets with their constituent graphs (built once: the graph depends on the input only).
struct packed_batches {
  std::vector<matrix<T>> x;
  std::vector<batch> b;
  std::vector<graph> g;
};

packed_batches pack_all(const jet_array<T>& jets, index_t bs, const graph_autoencoder<T>& model) {
  packed_batches p;
  for (index_t s = 0; s < jets.num_jets; s += bs) {
    matrix<T> x;
    batch b;
    pack_jets(jets, s, std::min(bs, jets.num_jets - s), x, b);
    p.g.push_back(model.build_graph(x, b));
    p.x.push_back(std::move(x));
    p.b.push_back(std::move(b));
  }
  return p;
}

/// Trains a graph autoencoder with Adam and a cosine learning-rate decay; returns the final epoch's mean loss.
double train_graph_ae(graph_autoencoder<T>& model, const packed_batches& data, const reconstruction_loss_options& lo, int epochs,
                      std::uint64_t seed, const char* name) {
  adam<T> opt({.lr = 3e-3});
  graph_autoencoder<T>::cache c;
  matrix<T> recon, drecon;
  std::vector<std::size_t> order(data.x.size());
  rng g(seed);
  double last = 0;
  const auto t0 = clock_type::now();
  for (int e = 0; e < epochs; ++e) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    g.shuffle(order);
    opt.set_lr(3e-3 * 0.5 * (1 + std::cos(3.14159265358979 * e / epochs)));
    double sum = 0;
    for (std::size_t k : order) {
      zero_grad(model);
      model.forward(data.x[k], data.g[k], data.b[k], recon, c);
      sum += reconstruction_loss(recon, data.x[k], data.b[k], lo, &drecon).mean();
      model.backward(data.x[k], data.g[k], data.b[k], recon, drecon, c);
      opt.step(model);
    }
    last = sum / static_cast<double>(order.size());
    if (e == 0 || e + 1 == epochs || (e + 1) % 5 == 0)
      std::printf("  [%s] epoch %3d/%d  loss %.4f  (%.1f s)\n", name, e + 1, epochs, last, seconds_since(t0));
    std::fflush(stdout);
  }
  return last;
}

/// Per-jet reconstruction loss (the anomaly score).
std::vector<double> score_graph_ae(const graph_autoencoder<T>& model, const packed_batches& data,
                                   const reconstruction_loss_options& lo) {
  graph_autoencoder<T>::cache c;
  matrix<T> recon;
  std::vector<double> s;
  for (std::size_t k = 0; k < data.x.size(); ++k) {
    model.infer(data.x[k], data.g[k], data.b[k], recon, c);
    const vector<T> l = reconstruction_loss(recon, data.x[k], data.b[k], lo);
    for (Eigen::Index j = 0; j < l.size(); ++j) s.push_back(static_cast<double>(l[j]));
  }
  return s;
}

double train_dense_ae(dense_autoencoder<T>& model, const jet_array<T>& jets, index_t bs, int epochs,
                      std::uint64_t seed) {
  adam<T> opt({.lr = 1e-3});
  dense_autoencoder<T>::cache c;
  std::vector<matrix<T>> flats;
  std::vector<std::vector<index_t>> counts;
  for (index_t s = 0; s < jets.num_jets; s += bs) {
    flats.emplace_back();
    counts.emplace_back();
    model.flatten(jets, s, std::min(bs, jets.num_jets - s), flats.back(), counts.back());
  }
  matrix<T> recon, grad;
  std::vector<std::size_t> order(flats.size());
  rng g(seed);
  double last = 0;
  const auto t0 = clock_type::now();
  for (int e = 0; e < epochs; ++e) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    g.shuffle(order);
    opt.set_lr(1e-3 * 0.5 * (1 + std::cos(3.14159265358979 * e / epochs)));
    double sum = 0;
    for (std::size_t k : order) {
      zero_grad(model);
      model.forward(flats[k], recon, c);
      const auto l = model.masked_mse(recon, flats[k], counts[k], &grad);
      for (double v : l) sum += v / static_cast<double>(l.size());
      model.backward(flats[k], recon, grad, c);
      opt.step(model);
    }
    last = sum / static_cast<double>(order.size());
    if (e == 0 || e + 1 == epochs || (e + 1) % 5 == 0)
      std::printf("  [dense MSE] epoch %3d/%d  loss %.4f  (%.1f s)\n", e + 1, epochs, last, seconds_since(t0));
    std::fflush(stdout);
  }
  return last;
}

std::vector<double> score_dense_ae(const dense_autoencoder<T>& model, const jet_array<T>& jets, index_t bs) {
  dense_autoencoder<T>::cache c;
  matrix<T> flat, recon;
  std::vector<index_t> counts;
  std::vector<double> s;
  for (index_t k = 0; k < jets.num_jets; k += bs) {
    model.flatten(jets, k, std::min(bs, jets.num_jets - k), flat, counts);
    model.infer(flat, recon, c);
    const auto l = model.masked_mse(recon, flat, counts);
    s.insert(s.end(), l.begin(), l.end());
  }
  return s;
}

std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

/// ROC in the HEP convention: x = signal efficiency, y = background rejection 1 / eps_B.
void add_roc(svg_plot::line_plot& p, const std::string& label, const std::vector<double>& sig,
             const std::vector<double>& bkg) {
  const roc_curve c = roc(sig, bkg);
  std::vector<double> x, y;
  for (std::size_t k = 0; k < c.signal_eff.size(); ++k)
    if (c.background_eff[k] > 0 && c.signal_eff[k] > 0) {
      x.push_back(c.signal_eff[k]);
      y.push_back(1.0 / c.background_eff[k]);
    }
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s (AUC %.3f)", label.c_str(), auc(sig, bkg));
  p.add(buf, x, y);
}

/// Original vs reconstructed constituents of one jet (eta, phi; marker area ~ pt).
svg_plot::scatter jet_panel(const std::string& title, const matrix<T>& orig, const matrix<T>& recon,
                            const std::vector<T>& s) {
  svg_plot::scatter p(title, "eta_rel", "phi_rel");
  std::vector<double> ex, ey, er, rx, ry, rr;
  for (Eigen::Index i = 0; i < orig.rows(); ++i) {
    ex.push_back(orig(i, 0) / s[0]), ey.push_back(orig(i, 1) / s[1]);
    er.push_back(2 + 30 * std::sqrt(std::max<double>(0, orig(i, 2) / s[2])));
    rx.push_back(recon(i, 0) / s[0]), ry.push_back(recon(i, 1) / s[1]);
    rr.push_back(2 + 30 * std::sqrt(std::max<double>(0, recon(i, 2) / s[2])));
  }
  p.add("original", ex, ey, er);
  p.add("reconstructed", rx, ry, rr);
  p.x_min = p.y_min = -0.8;
  p.x_max = p.y_max = 0.8;
  return p;
}

void usage() {
  std::printf(
      "usage: example_autoencoder [--quick] [--metrics-out FILE] [--out-dir DIR] [--epochs N] [--train N]\n"
      "                           [--test N] [--seed S] [--latent L] [--methods LIST] [--beta B] [--k K]\n"
      "                           [--hidden H] [--fully-connected] [--max-pool]\n");
}

}  // namespace

int main(int argc, char** argv) {
  settings st;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "missing value after %s\n", a.c_str());
          std::exit(2);
        }
        return argv[++i];
      };
      if (a == "--quick") {
        st.quick = true;
        st.epochs = st.dense_epochs = 8;
        st.n_train = 4000;
        st.n_test = 1500;
      } else if (a == "--metrics-out")
        st.metrics_out = next();
      else if (a == "--out-dir")
        st.out_dir = next();
      else if (a == "--epochs")
        st.epochs = st.dense_epochs = std::stoi(next());
      else if (a == "--train")
        st.n_train = std::stoi(next());
      else if (a == "--test")
        st.n_test = std::stoi(next());
      else if (a == "--seed")
        st.seed = std::stoull(next());
      else if (a == "--latent")
        st.latent = std::stoi(next());
      else if (a == "--methods")
        st.methods = next();
      else if (a == "--beta")
        st.beta = std::stod(next());
      else if (a == "--k")
        st.k = std::stoi(next());
      else if (a == "--hidden")
        st.hidden = std::stoi(next());
      else if (a == "--fully-connected")
        st.fully_connected = true;
      else if (a == "--max-pool")
        st.max_pool = true;
      else if (a == "--help" || a == "-h") {
        usage();
        return 0;
      } else {
        std::fprintf(stderr, "unknown option %s\n", a.c_str());
        usage();
        return 2;
      }
    }
  } catch (const std::exception& e) {  // std::stoi and friends on a malformed value
    std::fprintf(stderr, "bad option value: %s\n", e.what());
    usage();
    return 2;
  }
  if (st.n_train < 1 || st.n_test < 1 || st.epochs < 1 || st.latent < 1) {
    std::fprintf(stderr, "--train, --test, --epochs and --latent must be positive\n");
    return 2;
  }
  std::filesystem::create_directories(st.out_dir);
  const auto t_start = clock_type::now();

  // ---- data: QCD for training; QCD, W, top for testing --------------------------------------------------------
  rng gen(st.seed);
  const jet_array<T> train_raw = make_toy_jets<T>(st.n_train, jet_kind::qcd, gen);
  const jet_array<T> qcd_raw = make_toy_jets<T>(st.n_test, jet_kind::qcd, gen);
  const jet_array<T> w_raw = make_toy_jets<T>(st.n_test, jet_kind::w, gen);
  const jet_array<T> top_raw = make_toy_jets<T>(st.n_test, jet_kind::top, gen);
  const std::vector<T> s = feature_scales(train_raw);
  const jet_array<T> train = scaled(train_raw, s), qcd = scaled(qcd_raw, s), wj = scaled(w_raw, s),
                     top = scaled(top_raw, s);
  std::printf("toy jets: %d QCD for training, %d each of QCD / W / top for testing (%.1f s)\n", st.n_train, st.n_test,
              seconds_since(t_start));
  std::printf("feature scales (eta_rel, phi_rel, pt_rel): %.2f %.2f %.2f\n", s[0], s[1], s[2]);

  // ---- classical taggers ---------------------------------------------------------------------------------------
  const auto q32 = nsubjettiness_ratio(qcd_raw, 3, 2), t32 = nsubjettiness_ratio(top_raw, 3, 2);
  const auto q21 = nsubjettiness_ratio(qcd_raw, 2, 1), w21 = nsubjettiness_ratio(w_raw, 2, 1);
  const double auc_top_tau32 = auc(negated(t32), negated(q32)), auc_w_tau21 = auc(negated(w21), negated(q21));

  // ---- graph autoencoders ----------------------------------------------------------------------------------------
  graph_autoencoder_options go;
  go.latent = st.latent;
  go.hidden = st.hidden;
  go.k = st.k;
  if (st.fully_connected) go.graph_kind = jet_graph::fully_connected;
  if (st.max_pool) go.pool_aggr = aggregation::max;
  std::map<std::string, std::vector<double>> sq, sw, st_;  // scores of QCD, W, top per method
  std::map<std::string, double> seconds, cpu;
  reconstruction_loss_options chamfer_loss, emd_loss, energy_loss;
  emd_loss.kind = set_loss_kind::emd;
  energy_loss.kind = set_loss_kind::energy_emd;
  energy_loss.emd_beta = st.beta;
  struct run_spec {
    std::string key, label;
    reconstruction_loss_options lo;
  };
  std::vector<run_spec> runs;
  auto wanted = [&](const std::string& k) { return ("," + st.methods + ",").find("," + k + ",") != std::string::npos; };
  if (wanted("graph_chamfer")) runs.push_back({"graph_chamfer", "graph AE, Chamfer", chamfer_loss});
  if (wanted("graph_emd")) runs.push_back({"graph_emd", "graph AE, energy EMD", energy_loss});
  if (wanted("graph_emd_uniform")) runs.push_back({"graph_emd_uniform", "graph AE, uniform EMD", emd_loss});
  graph_autoencoder<T>* shown_model = nullptr;
  std::vector<std::unique_ptr<graph_autoencoder<T>>> models;
  for (const auto& r : runs) {
    rng mg(st.seed + 100);
    models.push_back(std::make_unique<graph_autoencoder<T>>(mg, go));
    auto& model = *models.back();
    if (!shown_model || r.key == "graph_emd") shown_model = &model;  // the model shown in the jet plots
    std::printf("training %s (pooled latent %d, kNN k=%d, %lld parameters)\n", r.label.c_str(), go.latent, go.k,
                static_cast<long long>(parameter_count(model)));
    const auto t0 = clock_type::now();
    const double c0 = cpu_seconds();
    const auto data = pack_all(train, st.batch_size, model);
    train_graph_ae(model, data, r.lo, st.epochs, st.seed + 1, r.label.c_str());
    seconds[r.key] = seconds_since(t0);
    cpu[r.key] = cpu_seconds() - c0;
    // score every test jet with the loss it was trained with
    sq[r.key] = score_graph_ae(model, pack_all(qcd, 256, model), r.lo);
    sw[r.key] = score_graph_ae(model, pack_all(wj, 256, model), r.lo);
    st_[r.key] = score_graph_ae(model, pack_all(top, 256, model), r.lo);
  }

  // ---- dense autoencoder baseline ---------------------------------------------------------------------------------
  if (wanted("dense")) {
    rng mg(st.seed + 200);
    dense_autoencoder<T> dense(mg, {.features = 3, .max_particles = 30, .hidden = 64, .latent = st.latent});
    std::printf("training dense AE (flattened 30 x 3, latent %d, %lld parameters)\n", st.latent,
                static_cast<long long>(parameter_count(dense)));
    const auto t0 = clock_type::now();
    const double c0 = cpu_seconds();
    train_dense_ae(dense, train, st.batch_size, st.dense_epochs, st.seed + 2);
    seconds["dense"] = seconds_since(t0);
    cpu["dense"] = cpu_seconds() - c0;
    sq["dense"] = score_dense_ae(dense, qcd, 256);
    sw["dense"] = score_dense_ae(dense, wj, 256);
    st_["dense"] = score_dense_ae(dense, top, 256);
  }

  // ---- results --------------------------------------------------------------------------------------------------
  std::map<std::string, double> auc_top, auc_w, eff_top_r10;
  for (const auto& [key, v] : sq) {
    auc_top[key] = auc(st_[key], v);
    auc_w[key] = auc(sw[key], v);
    eff_top_r10[key] = signal_efficiency_at_rejection(roc(st_[key], v), 10.0);
  }
  auc_top["tau32"] = auc_top_tau32;
  auc_w["tau21"] = auc_w_tau21;
  eff_top_r10["tau32"] = signal_efficiency_at_rejection(roc(negated(t32), negated(q32)), 10.0);
  double train_seconds = 0, train_cpu = 0;
  for (const auto& [k, v] : seconds) train_seconds += v;
  for (const auto& [k, v] : cpu) train_cpu += v;
  std::vector<std::string> keys;
  for (const char* k : {"graph_chamfer", "graph_emd", "graph_emd_uniform", "dense"})
    if (sq.count(k)) keys.push_back(k);
  std::printf("\n%-16s %12s %12s %22s %10s\n", "method", "AUC top", "AUC W", "eff_top @ 1/eps_B=10", "train s");
  for (const auto& k : keys)
    std::printf("%-16s %12.4f %12.4f %22.4f %10.1f\n", k.c_str(), auc_top[k], auc_w[k], eff_top_r10[k], seconds[k]);
  std::printf("%-16s %12.4f %12s %22.4f\n", "tau3/tau2", auc_top_tau32, "-", eff_top_r10["tau32"]);
  std::printf("%-16s %12s %12.4f\n", "tau2/tau1", "-", auc_w_tau21);
  std::printf("total training time %.1f s (%.1f s CPU), wall time %.1f s\n", train_seconds, train_cpu,
              seconds_since(t_start));

  // ---- plots ------------------------------------------------------------------------------------------------------
  svg_plot::line_plot roc_top("top-like vs QCD", "signal efficiency", "background rejection 1/eps_B", false, true);
  svg_plot::line_plot roc_w("W-like vs QCD", "signal efficiency", "background rejection 1/eps_B", false, true);
  const std::map<std::string, std::string> labels{{"graph_chamfer", "graph AE Chamfer"},
                                                  {"graph_emd", "graph AE energy EMD"},
                                                  {"graph_emd_uniform", "graph AE uniform EMD"},
                                                  {"dense", "dense AE"}};
  for (const auto& k : keys) {
    add_roc(roc_top, labels.at(k), st_[k], sq[k]);
    add_roc(roc_w, labels.at(k), sw[k], sq[k]);
  }
  add_roc(roc_top, "tau3/tau2", negated(t32), negated(q32));
  add_roc(roc_w, "tau2/tau1", negated(w21), negated(q21));
  roc_top.data.back().dashed = roc_w.data.back().dashed = true;
  roc_top.y_max = roc_w.y_max = 1e4;
  svg_plot::save_grid(st.out_dir + "/roc_autoencoder.svg", {&roc_top, &roc_w}, 2, 560, 420);

  svg_plot::histogram hs;
  const std::string main_key = sq.count("graph_emd") ? "graph_emd" : keys.empty() ? "" : keys.front();
  hs.title = labels.count(main_key) ? labels.at(main_key) + " anomaly score" : "anomaly score";
  hs.xlabel = "log10 reconstruction loss";
  hs.density = true;
  hs.bins = 50;
  auto logv = [](std::vector<double> v) {
    for (double& x : v) x = std::log10(std::max(x, 1e-12));
    return v;
  };
  hs.add("QCD", logv(sq[main_key]));
  hs.add("W-like", logv(sw[main_key]));
  hs.add("top-like", logv(st_[main_key]));
  svg_plot::histogram ht;
  ht.title = "tau3/tau2";
  ht.xlabel = "tau3/tau2";
  ht.density = true;
  ht.bins = 50;
  ht.lo = 0, ht.hi = 1.2;
  ht.add("QCD", q32);
  ht.add("W-like", nsubjettiness_ratio(w_raw, 3, 2));
  ht.add("top-like", t32);
  svg_plot::save_grid(st.out_dir + "/scores_autoencoder.svg", {&hs, &ht}, 2, 520, 380);

  if (shown_model) {  // examples of original vs reconstructed jets (the first test QCD and top jets)
    graph_autoencoder<T>::cache c;
    std::vector<svg_plot::scatter> panels;
    for (const auto* set : {&qcd, &top}) {
      matrix<T> x, recon;
      batch b;
      pack_jets(*set, 0, 1, x, b);
      shown_model->infer(x, shown_model->build_graph(x, b), b, recon, c);
      panels.push_back(jet_panel(set == &qcd ? "QCD-like jet" : "top-like jet", x, recon, s));
    }
    svg_plot::save_grid(st.out_dir + "/jets_autoencoder.svg", {&panels[0], &panels[1]}, 2, 460, 440);
  }
  std::printf("wrote %s/{roc,scores,jets}_autoencoder.svg\n", st.out_dir.c_str());

  if (!st.metrics_out.empty()) {
    std::ofstream f(st.metrics_out);
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", st.metrics_out.c_str());
      return 1;
    }
    f << "{\n";
    f << "  \"quick\": " << (st.quick ? "true" : "false") << ",\n";
    f << "  \"n_train\": " << st.n_train << ", \"n_test_per_class\": " << st.n_test << ", \"epochs\": " << st.epochs
      << ", \"latent\": " << st.latent << ",\n";
    auto obj = [&](const char* name, const std::map<std::string, double>& m) {
      f << "  \"" << name << "\": {";
      bool first = true;
      for (const auto& [k, v] : m) {
        f << (first ? "" : ", ") << "\"" << k << "\": " << v;
        first = false;
      }
      f << "},\n";
    };
    obj("auc_top", auc_top);
    obj("auc_w", auc_w);
    obj("eff_top_at_rejection_10", eff_top_r10);
    obj("train_seconds_by_model", seconds);
    obj("train_cpu_seconds_by_model", cpu);
    f << "  \"train_cpu_seconds\": " << train_cpu << ",\n";
    f << "  \"train_seconds\": " << train_seconds << "\n}\n";
    std::printf("wrote %s\n", st.metrics_out.c_str());
  }
  return 0;
}
