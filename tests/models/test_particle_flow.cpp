// MLPF model: preprocessing, shapes, finite-difference gradients (double), a short training run that must
// beat a stated accuracy, weights round trip (old weight names; save_model / load_model with the config), files
// asking for absurd sizes, dropout (training only; gradients with fixed masks), gradients and Adam steps
// bit-identical at 1, 2 and 3 threads, bad input.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"
#include "hepgnn/train/gradient_check.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_particle_flow {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using namespace hepgnn::pf;

namespace {
template <class T>
using model_t = mlpf<T>;

template <class T>
model_t<T> make_model(std::uint64_t seed, int hidden, int head_hidden, int convs, index_t bin_size = 32) {
  mlpf_config o;
  o.seed = seed;
  o.hidden = hidden;
  o.head_hidden = head_hidden;
  o.num_convs = convs;
  o.distance_dim = std::max(2, hidden / 2);
  o.ffn_dist_hidden_dim = hidden;
  o.bin_size = bin_size;
  return model_t<T>(o);
}

/// Sets the thread count for its lifetime, whatever OMP_NUM_THREADS says (no-op without OpenMP).
struct pf_threads {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  explicit pf_threads(int n) { omp_set_num_threads(n); }
  ~pf_threads() { omp_set_num_threads(saved); }
#else
  explicit pf_threads(int) {}
#endif
};

toy_pf_config small_events() {
  toy_pf_config c;
  c.min_jets = 1;
  c.max_jets = 3;
  c.soft_particles = 60;
  return c;
}
}  // namespace

TEST_CASE("mlpf: preprocessing and target encoding") {
  const auto ev = toy_pf_detector(small_events()).simulate(3, 1)[0];
  const matrix<float> x = mlpf_inputs<float>(ev.features);
  REQUIRE(x.rows() == ev.num_elements());
  REQUIRE(x.cols() == mlpf_input_width);
  for (index_t i = 0; i < x.rows(); ++i) {
    CHECK(x.row(i).head(3).sum() == 1.0f);  // one-hot type
    CHECK(x(i, static_cast<int>(ev.features(i, feature::type)) - 1) == 1.0f);
  }
  // decoding the encoded targets gives the targets back
  const matrix<double> r = mlpf_regression_targets<double>(ev.features, ev.target_class, ev.target);
  matrix<double> logits = matrix<double>::Constant(ev.num_elements(), num_classes, -10);
  for (index_t i = 0; i < ev.num_elements(); ++i) logits(i, ev.target_class[i]) = 10;
  const candidates c = mlpf_decode(ev.features, logits, r, /*track_kinematics=*/false);
  const candidates ct = mlpf_decode(ev.features, logits, r);
  CHECK(c.cls == ev.target_class);
  for (index_t i = 0; i < ev.num_elements(); ++i) {
    if (ev.target_class[i] == none) continue;
    for (int k = 0; k < target::count; ++k) REQUIRE(c.p4(i, k) == doctest::Approx(ev.target(i, k)).epsilon(1e-9));
    // by default charged candidates on tracks take the track momentum
    const bool on_track = ev.features(i, feature::type) == track;
    CHECK(ct.p4(i, target::pt) == doctest::Approx(on_track ? ev.features(i, feature::pt) : ev.target(i, target::pt)));
  }
}

TEST_CASE("mlpf: output shapes and batching keeps events apart") {
  auto model = make_model<float>(1, 16, 16, 2);
  const auto evs = toy_pf_detector(small_events()).simulate(4, 2);
  model_t<float>::workspace ws;
  const candidates c0 = model.reconstruct(evs[0].features, ws);
  REQUIRE(c0.size() == evs[0].num_elements());
  REQUIRE(c0.p4.allFinite());
  // an event batched with a copy of itself gives the same outputs twice, equal to the event alone
  const index_t n = evs[1].num_elements();
  matrix<double> both(2 * n, feature::count);
  both << evs[1].features, evs[1].features;
  const matrix<float> x = mlpf_inputs<float>(both);
  model.infer(x, batch::from_sizes({n, n}), ws);
  REQUIRE(ws.out[0].rows() == both.rows());
  REQUIRE(ws.out[0].cols() == num_classes);
  REQUIRE(ws.out[1].cols() == mlpf_regression_width);
  const matrix<float> batched = ws.out[0];
  CHECK((batched.topRows(n) - batched.bottomRows(n)).cwiseAbs().maxCoeff() < 1e-5f);
  model.infer(mlpf_inputs<float>(evs[1].features), batch::single(n), ws);
  CHECK((batched.bottomRows(n) - ws.out[0]).cwiseAbs().maxCoeff() < 2e-3f);  // GEMM blocking may differ
}

TEST_CASE("mlpf: parameter gradients match finite differences (double)") {
  toy_pf_config tiny;
  tiny.min_jets = tiny.max_jets = 1;
  tiny.soft_particles = 4;
  tiny.ecal_noise = tiny.hcal_noise = 1;
  const auto ev = toy_pf_detector(tiny).simulate(8, 1)[0];
  REQUIRE(ev.num_elements() >= 6);
  REQUIRE(ev.num_elements() <= 60);
  auto model = make_model<double>(2, 6, 5, 2);
  const matrix<double> x = mlpf_inputs<double>(ev.features);
  const matrix<double> r = mlpf_regression_targets<double>(ev.features, ev.target_class, ev.target);
  const batch b = batch::single(ev.num_elements());
  model_t<double>::workspace ws;
  auto loss = [&] {
    model.infer(x, b, ws);
    return model.loss(ev.target_class, r, ws, false).total;
  };
  auto backward = [&] {
    zero_grad(model);
    model.train_step(x, b, ev.target_class, r, ws);
  };
  const auto res = check_parameter_gradients(model, loss, backward);
  INFO("worst: ", res.worst, " analytic ", res.analytic, " numeric ", res.numeric);
  CHECK(res.max_error < 1e-6);
  // the training forward reports the same loss as inference
  zero_grad(model);
  CHECK(model.train_step(x, b, ev.target_class, r, ws).total == doctest::Approx(loss()).epsilon(1e-12));
}

TEST_CASE("mlpf: dropout acts in training forwards only; with its masks fixed, gradients match finite differences") {
  toy_pf_config tiny;
  tiny.min_jets = tiny.max_jets = 1;
  tiny.soft_particles = 4;
  tiny.ecal_noise = tiny.hcal_noise = 1;
  const auto ev = toy_pf_detector(tiny).simulate(8, 1)[0];
  const model_t<double> plain = make_model<double>(2, 6, 5, 2);
  mlpf_config cfg = plain.config();
  cfg.dropout = 0.3;
  model_t<double> model(cfg);
  const matrix<double> x = mlpf_inputs<double>(ev.features);
  const matrix<double> r = mlpf_regression_targets<double>(ev.features, ev.target_class, ev.target);
  const batch b = batch::single(ev.num_elements());
  model_t<double>::workspace ws, ws0, fresh;
  const matrix<double> want = plain.infer(x, b, ws0)[0];
  CHECK(model.infer(x, b, ws)[0] == want);  // the rate changes neither the weights nor inference
  const matrix<double> first = model.forward(x, b, ws)[0];
  const matrix<double> second = model.forward(x, b, ws)[0];
  CHECK((first - want).cwiseAbs().maxCoeff() > 1e-4);
  CHECK((second - first).cwiseAbs().maxCoeff() > 1e-4);  // new masks per training forward
  CHECK(model.forward(x, b, fresh)[0] == first);         // a fresh workspace repeats them
  model_t<double> no_drop = plain;
  CHECK(no_drop.forward(x, b, ws0)[0] == want);          // rate 0: the training forward computes inference
  // training steps differ from the same model without dropout
  model_t<double>::workspace wa, wb;
  zero_grad(model);
  zero_grad(no_drop);
  CHECK(model.train_step(x, b, ev.target_class, r, wa).total != no_drop.train_step(x, b, ev.target_class, r, wb).total);

  auto loss = [&] {
    model_t<double>::workspace w;  // fresh: the masks of the backward's first forward
    model.forward(x, b, w);
    return model.loss(ev.target_class, r, w, false).total;
  };
  auto backward = [&] {
    zero_grad(model);
    model_t<double>::workspace w;
    model.train_step(x, b, ev.target_class, r, w);
  };
  const auto res = check_parameter_gradients(model, loss, backward);
  INFO("worst: ", res.worst, " analytic ", res.analytic, " numeric ", res.numeric);
  CHECK(res.max_error < 1e-6);
}

TEST_CASE("mlpf: spatial LSH bins put a track and the HCAL cluster it points to in one chunk") {
  const auto ev = toy_pf_detector().simulate(11, 1)[0];
  const matrix<double>& f = ev.features;
  auto phi = [&](index_t i, int s, int c) { return std::atan2(f(i, s), f(i, c)); };
  auto shared = [&](bool spatial) {
    mlpf_config o;
    o.seed = 7;
    o.hidden = o.head_hidden = 16;
    o.num_convs = 1;
    o.spatial_bins = spatial;
    const model_t<float> model(o);
    model_t<float>::workspace ws;
    (void)model.reconstruct(f, ws);
    const auto& bins = model_t<float>::conv_cache(ws, 0).bins;
    std::vector<index_t> chunk(static_cast<std::size_t>(f.rows()));
    for (index_t ch = 0; ch < bins.num_chunks(); ++ch)
      for (index_t p = bins.chunk_offsets[ch]; p < bins.chunk_offsets[ch + 1]; ++p) chunk[bins.permutation[p]] = ch;
    long pairs = 0, same = 0;
    for (index_t t = 0; t < f.rows(); ++t) {
      if (f(t, feature::type) != track) continue;
      for (index_t h = 0; h < f.rows(); ++h) {
        if (f(h, feature::type) != hcal_cluster ||
            delta_r(f(t, feature::eta_calo), phi(t, feature::sin_phi_calo, feature::cos_phi_calo), f(h, feature::eta),
                    phi(h, feature::sin_phi, feature::cos_phi)) > 0.15)
          continue;
        ++pairs;
        same += chunk[t] == chunk[h];
      }
    }
    REQUIRE(pairs > 100);
    return static_cast<double>(same) / static_cast<double>(pairs);
  };
  const double spatial = shared(true), learned = shared(false);
  MESSAGE("track-HCAL pairs (dR < 0.15) sharing a chunk: spatial bins ", spatial, ", learned-embedding bins ", learned);
  CHECK(spatial > 0.8);
  CHECK(learned < 0.5);
}

TEST_CASE("mlpf: a short training run beats the stated accuracy") {
  const toy_pf_detector det(small_events());
  const auto train = det.simulate(100, 24), test = det.simulate(200, 6);
  auto model = make_model<float>(3, 32, 32, 2);
  adam<float> opt({.lr = 3e-3});
  model_t<float>::workspace ws;
  std::vector<matrix<float>> xs, rs;
  for (const auto& e : train) {
    xs.push_back(mlpf_inputs<float>(e.features));
    rs.push_back(mlpf_regression_targets<float>(e.features, e.target_class, e.target));
  }
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 30; ++epoch) {
    double sum = 0;
    for (std::size_t i = 0; i < train.size(); ++i) {
      zero_grad(model);
      sum += model.train_step(xs[i], batch::single(train[i].num_elements()), train[i].target_class, rs[i], ws).total;
      clip_grad_norm(model, 5.0);  // as in the example: one bad event must not throw the weights away
      opt.step(model);
    }
    (epoch == 0 ? first : last) = sum / static_cast<double>(train.size());
  }
  CHECK(last < 0.6 * first);
  long right = 0, total = 0, majority = 0, base_right = 0;
  const pf_baseline base;
  for (const auto& e : test) {
    const candidates c = model.reconstruct(e.features, ws);
    const candidates cb = base.reconstruct(e.features);
    for (index_t i = 0; i < e.num_elements(); ++i) {
      right += c.cls[i] == e.target_class[i];
      base_right += cb.cls[i] == e.target_class[i];
      majority += e.target_class[i] == none;
      ++total;
    }
  }
  const double acc = static_cast<double>(right) / static_cast<double>(total);
  MESSAGE("held-out element accuracy ", acc, " (all-none guess ", static_cast<double>(majority) / total,
          ", rule-based baseline ", static_cast<double>(base_right) / total, ")");
  CHECK(acc > 0.87);  // stated target: above the rule-based baseline (0.85) and the all-none guess (~0.50)
}

TEST_CASE("mlpf: weights round trip through safetensors") {
  auto a = make_model<float>(4, 16, 16, 1);
  auto b = make_model<float>(5, 16, 16, 1);
  const auto ev = toy_pf_detector(small_events()).simulate(6, 1)[0];
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mlpf.safetensors";
  save_weights(a, path);
  load_weights(b, path);
  std::filesystem::remove(path);
  model_t<float>::workspace wa, wb;
  const auto ca = a.reconstruct(ev.features, wa), cb = b.reconstruct(ev.features, wb);
  CHECK(ca.cls == cb.cls);
  CHECK(wa.out[0] == wb.out[0]);
  CHECK(wa.out[1] == wb.out[1]);
}

TEST_CASE("mlpf: save_model / load_model rebuild the model from its file (bit-identical outputs)") {
  mlpf_config cfg;
  cfg.seed = 12;
  cfg.hidden = 16;
  cfg.head_hidden = 12;
  cfg.num_convs = 2;
  cfg.distance_dim = 8;
  cfg.ffn_dist_hidden_dim = 16;
  cfg.num_node_messages = 1;
  cfg.bin_size = 24;
  cfg.spatial_kernel_width = 0.3;
  cfg.dropout = 0.25;
  model_t<float> model(cfg);
  CHECK(static_cast<double>(parameter_count(model)) == model_t<float>::parameter_count_of(cfg));
  const auto ev = toy_pf_detector(small_events()).simulate(9, 1)[0];
  const matrix<float> x = mlpf_inputs<float>(ev.features);
  const matrix<float> r = mlpf_regression_targets<float>(ev.features, ev.target_class, ev.target);
  const batch b = batch::single(x.rows());
  model_t<float>::workspace ws;
  adam<float> opt({.lr = 1e-2});
  for (int s = 0; s < 3; ++s) {  // weights away from those the seed gives, so only the file can restore them
    zero_grad(model);
    model.train_step(x, b, ev.target_class, r, ws);
    opt.step(model);
  }
  const auto want = model.infer(x, b, ws);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mlpf_model.safetensors";
  save_model(model, path);
  const model_t<float> loaded = load_model<model_t<float>>(path);
  const auto file = safetensors_file::load(path);
  std::filesystem::remove(path);
  CHECK(file.metadata.at("hepgnn.family") == "mlpf");
  CHECK(file.metadata.at("mlpf.bin_size") == "24");
  const mlpf_config& got = loaded.config();
  CHECK(got.seed == cfg.seed);
  CHECK(got.hidden == cfg.hidden);
  CHECK(got.head_hidden == cfg.head_hidden);
  CHECK(got.num_convs == cfg.num_convs);
  CHECK(got.distance_dim == cfg.distance_dim);
  CHECK(got.ffn_dist_hidden_dim == cfg.ffn_dist_hidden_dim);
  CHECK(got.num_node_messages == cfg.num_node_messages);
  CHECK(got.bin_size == cfg.bin_size);
  CHECK(got.spatial_bins == cfg.spatial_bins);
  CHECK(got.spatial_kernel_width == cfg.spatial_kernel_width);
  CHECK(got.dropout == cfg.dropout);
  model_t<float>::workspace wl;
  const auto& out = loaded.infer(x, b, wl);
  CHECK(out[0] == want[0]);
  CHECK(out[1] == want[1]);
  CHECK(model_t<float>(cfg).infer(x, b, wl)[0] != want[0]);  // the seed alone does not give the trained weights
}

TEST_CASE("mlpf: a file or config asking for absurd sizes is refused before anything is built") {
  const model_t<float> model = make_model<float>(13, 8, 8, 1);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_mlpf_absurd.safetensors";
  auto write = [&](const std::string& key, const std::string& value) {
    auto meta = config_to_metadata(model.config(), "mlpf");
    meta["hepgnn.family"] = "mlpf";
    meta["hepgnn.format_version"] = "1";
    meta[key] = value;
    model_t<float> copy = model;
    save_weights(copy, path, meta);
  };
  write("mlpf.hidden", "1000000000");
  CHECK_THROWS_WITH_AS(load_model<model_t<float>>(path), doctest::Contains("'mlpf.hidden' = 1000000000 is outside [1, 4096]"),
                       hepgnn::error);
  write("mlpf.bin_size", "1e30");
  CHECK_THROWS_WITH_AS(load_model<model_t<float>>(path), doctest::Contains("'mlpf.bin_size' = 1e30 is outside"),
                       hepgnn::error);
  write("mlpf.num_convs", "-1");
  CHECK_THROWS_WITH_AS(load_model<model_t<float>>(path), doctest::Contains("'mlpf.num_convs' = -1 is outside"),
                       hepgnn::error);
  // every field within its bounds, together far too many parameters (64 layers of 64 messages of 4096 x 4096)
  auto meta = config_to_metadata(model.config(), "mlpf");
  meta["hepgnn.family"] = "mlpf";
  meta["hepgnn.format_version"] = "1";
  meta["mlpf.hidden"] = "4096";
  meta["mlpf.num_convs"] = "64";
  meta["mlpf.num_node_messages"] = "64";
  model_t<float> copy = model;
  save_weights(copy, path, meta);
  CHECK_THROWS_WITH_AS(load_model<model_t<float>>(path), doctest::Contains("parameters, more than the"), hepgnn::error);
  // dropout came with format version 2: a version-1 file without it reads 0, a version-2 one must have it
  meta = config_to_metadata(model.config(), "mlpf");
  meta.erase("mlpf.dropout");
  meta["hepgnn.family"] = "mlpf";
  meta["hepgnn.format_version"] = "1";
  copy = model;
  save_weights(copy, path, meta);
  CHECK(load_model<model_t<float>>(path).config().dropout == 0);
  meta["hepgnn.format_version"] = "2";
  save_weights(copy, path, meta);
  CHECK_THROWS_WITH_AS(load_model<model_t<float>>(path), doctest::Contains("lacks 'mlpf.dropout'"), hepgnn::error);
  std::filesystem::remove(path);
  // the same checks guard a config built in code
  mlpf_config bad;
  bad.hidden = 0;
  CHECK_THROWS_WITH_AS(model_t<float>{bad}, doctest::Contains("mlpf_model: config field 'hidden' = 0 is outside"),
                       hepgnn::error);
  bad = {};
  bad.dropout = 1;
  CHECK_THROWS_WITH_AS(model_t<float>{bad}, doctest::Contains("config field 'dropout' = 1 is outside [0, 0.99]"),
                       hepgnn::error);
  bad = {};
  bad.hidden = 2;
  CHECK_THROWS_WITH_AS(model_t<float>{bad}, doctest::Contains("spatial_bins needs hidden >= 3"), hepgnn::error);
  mlpf_loss_options lo;
  lo.class_weights = {1, 2};
  const auto ev = toy_pf_detector(small_events()).simulate(7, 1)[0];
  const matrix<float> x = mlpf_inputs<float>(ev.features);
  const matrix<float> r = mlpf_regression_targets<float>(ev.features, ev.target_class, ev.target);
  model_t<float> m = model;
  model_t<float>::workspace ws;
  CHECK_THROWS_WITH_AS(m.train_step(x, batch::single(x.rows()), ev.target_class, r, ws, lo),
                       doctest::Contains("class_weights must be empty or have 6 entries, got 2"), hepgnn::error);
}

TEST_CASE("mlpf: losses, parameter gradients and weights after Adam steps are bit-identical at 1, 2 and 3 threads") {
  // Two default events (~2800 elements) through the default model: every product and parallel loop of the
  // GNN-LSH layers, the LayerNorms and the heads runs on several threads.
  const auto evs = toy_pf_detector().simulate(5, 2);
  matrix<double> f(evs[0].num_elements() + evs[1].num_elements(), feature::count);
  matrix<double> tg(f.rows(), target::count);
  f << evs[0].features, evs[1].features;
  tg << evs[0].target, evs[1].target;
  std::vector<index_t> labels = evs[0].target_class;
  labels.insert(labels.end(), evs[1].target_class.begin(), evs[1].target_class.end());
  REQUIRE(f.rows() > 2000);
  const matrix<float> x = mlpf_inputs<float>(f);
  const matrix<float> r = mlpf_regression_targets<float>(f, labels, tg);
  const batch b = batch::from_sizes({evs[0].num_elements(), evs[1].num_elements()});
  auto run = [&](int threads) {
    const pf_threads set(threads);
    model_t<float> model{mlpf_config{}};
    model_t<float>::workspace ws;
    adam<float> opt({.lr = 1e-3});
    std::vector<std::pair<std::string, matrix<float>>> out;
    for (int step = 0; step < 2; ++step) {
      zero_grad(model);
      const mlpf_loss l = model.train_step(x, b, labels, r, ws);
      out.emplace_back("loss", matrix<float>::Constant(1, 1, static_cast<float>(l.total)));
      model.for_each_param("", [&](const std::string& name, parameter<float> p) {
        out.emplace_back("grad " + name, Eigen::Map<const matrix<float>>(p.grad, 1, p.size()));
      });
      opt.step(model);
    }
    model.for_each_param("", [&](const std::string& name, parameter<float> p) {
      out.emplace_back(name, Eigen::Map<const matrix<float>>(p.value, 1, p.size()));
    });
    return out;
  };
  const auto one = run(1);
  for (int threads : {2, 3}) {
    const auto many = run(threads);
    REQUIRE(many.size() == one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO(threads, " threads: ", one[i].first);
      CHECK(many[i].second == one[i].second);
    }
  }
}

TEST_CASE("mlpf: bad input") {
  auto model = make_model<float>(6, 8, 8, 1);
  const auto ev = toy_pf_detector(small_events()).simulate(7, 1)[0];
  matrix<double> f = ev.features;
  f(2, feature::eta) = std::nan("");
  CHECK_THROWS_WITH_AS(model.reconstruct(f), doctest::Contains("element 2 has a non-finite feature"), hepgnn::error);
  f = ev.features;
  f(1, feature::type) = 4;
  CHECK_THROWS_WITH_AS(model.reconstruct(f), doctest::Contains("unknown element type 4"), hepgnn::error);
  CHECK_THROWS_WITH_AS(model.reconstruct(matrix<double>(2, 3)), doctest::Contains("must have 15 columns"),
                       hepgnn::error);
  model_t<float>::workspace ws;
  CHECK_THROWS_WITH_AS(model.infer(matrix<float>(3, 5), batch::single(3), ws), doctest::Contains("inputs x0"),
                       hepgnn::error);
  const matrix<float> x = mlpf_inputs<float>(ev.features);
  CHECK_THROWS_WITH_AS(model.infer(x, batch::single(x.rows() + 1), ws), doctest::Contains("batch"), hepgnn::error);
  const matrix<float> r = mlpf_regression_targets<float>(ev.features, ev.target_class, ev.target);
  std::vector<index_t> labels = ev.target_class;
  labels[0] = 6;
  CHECK_THROWS_WITH_AS(model.train_step(x, batch::single(x.rows()), labels, r, ws), doctest::Contains("label"),
                       hepgnn::error);
  // an empty event gives no candidates
  const candidates empty = model.reconstruct(matrix<double>(0, feature::count));
  CHECK(empty.size() == 0);
}

}  // namespace hepgnn_test_particle_flow
