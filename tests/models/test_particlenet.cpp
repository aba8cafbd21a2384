// JetNet's trained ParticleNet rebuilt from hepgnn blocks: its logits and fc1 activations on the 26 FastJet
// jets must match PyTorch Geometric's (shared/data/jetnet_particlenet_fpnd/reference_on_fastjet_jets).
// Also: the model's backward against finite differences on a small configuration.
#include "support/doctest.hpp"

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/models/particlenet.hpp"
#include "support/check_layer.hpp"
#include "support/data.hpp"

namespace hepgnn_test_particlenet {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
template <class T>
void check_jetnet(const std::filesystem::path& dir, const char* precision, double tol) {
  const std::string prec = precision;
  CAPTURE(prec);
  rng gen(1);
  particlenet<T> net(gen);
  const auto report = load_weights(net, npz_file::open(dir / "pnet_weights.npz"));
  (void)report;
  const auto ref = dir / "reference_on_fastjet_jets" / precision;
  const npy_array jets = read_npy(ref / "jets_in.npy");
  REQUIRE(jets.shape == std::vector<std::int64_t>{26, 30, 3});
  const auto values = jets.as<T>();
  const matrix<T> x = Eigen::Map<const matrix<T>>(values.data(), 26 * 30, 3);
  const batch b = batch::uniform(26, 30);
  typename particlenet<T>::workspace ws;
  const matrix<T> logits = net.infer(x, b, ws);
  const matrix<T> act = particlenet<T>::activations(ws);
  const auto want_logits = read_npy(ref / "logits.npy").as<double>();
  const auto want_act = read_npy(ref / "activations.npy").as<double>();
  REQUIRE(logits.rows() == 26);
  REQUIRE(logits.cols() == 5);
  REQUIRE(act.size() == static_cast<long>(want_act.size()));
  double worst_logit = 0, worst_act = 0;
  for (long i = 0; i < logits.size(); ++i)
    worst_logit = std::max(worst_logit, std::abs(double(logits.data()[i]) - want_logits[i]) / std::max(1.0, std::abs(want_logits[i])));
  for (long i = 0; i < act.size(); ++i)
    worst_act = std::max(worst_act, std::abs(double(act.data()[i]) - want_act[i]) / std::max(1.0, std::abs(want_act[i])));
  MESSAGE(prec << ": worst logit difference " << worst_logit << ", worst fc1 activation difference " << worst_act);
  CHECK(worst_logit < tol);
  CHECK(worst_act < tol);
  // The boosted tops (rows 24, 25) score highest in class 1 (see the data README).
  Eigen::Index best = 0;
  logits.row(25).maxCoeff(&best);
  CHECK(best == 1);
  // Inference twice with the same cache: identical.
  const matrix<T>& again = net.infer(x, b, ws);
  CHECK(again == logits);
}
}  // namespace

TEST_CASE("particlenet reproduces JetNet's trained ParticleNet on the 26 FastJet jets") {
  HEPGNN_REQUIRE_DATA(dir, "jetnet_particlenet_fpnd");
  check_jetnet<double>(dir, "float64", 1e-9);
  check_jetnet<float>(dir, "float32", 2e-5);
}

TEST_CASE("particlenet parameter and buffer names follow JetNet's state_dict") {
  rng gen(2);
  particlenet<float> net(gen);
  std::vector<std::string> names;
  for_each_state(net, "", [&](const std::string& n, parameter<float>) { names.push_back(n); });
  CHECK(names.size() == 67);  // as pnet_weights.npz
  CHECK(names.front() == "edge_nets.0.model.0.weight");
  CHECK(std::find(names.begin(), names.end(), "edge_nets.2.model.7.running_var") != names.end());
  CHECK(std::find(names.begin(), names.end(), "fc1.0.weight") != names.end());
  CHECK(net.node_width() == 451);
}

TEST_CASE("particlenet backward matches finite differences (small configuration, training mode)") {
  rng gen(4);
  particlenet_config cfg;
  cfg.k = 3;
  cfg.channels = {4, 5};
  cfg.fc = 6;
  cfg.classes = 3;
  particlenet<double> net(gen, cfg);
  const batch b = batch::from_sizes({6, 5});
  matrix<double> x(11, 3), r(2, 3);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = gen.normal();
  for (long i = 0; i < r.size(); ++i) r.data()[i] = gen.normal();
  hepgnn_test::check_layer(net, b, x, {.dy = &r});
}

TEST_CASE("particlenet rejects bad input") {
  rng gen(3);
  particlenet<float> net(gen);
  particlenet<float>::workspace ws;
  CHECK_THROWS_WITH_AS(net.infer(matrix<float>::Zero(30, 4), batch::uniform(1, 30), ws),
                       doctest::Contains("particlenet: particle features x: expected 3 columns"), error);
  CHECK_THROWS_WITH_AS(net.infer(matrix<float>::Zero(30, 3), batch::uniform(2, 30), ws),
                       doctest::Contains("the batch covers 60 particles but x has 30 rows"), error);
}

TEST_CASE("particlenet: save_model / load_model round trip (config from the metadata, identical logits)") {
  particlenet_config cfg;
  cfg.k = 4;
  cfg.channels = {8, 12};
  cfg.fc = 10;
  cfg.classes = 3;
  cfg.seed = 77;
  particlenet<float> net(cfg);
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_particlenet_model.safetensors";
  save_model(net, path);
  const auto back = load_model<particlenet<float>>(path);
  CHECK(back.config().channels == cfg.channels);
  CHECK(back.config().seed == 77);
  rng gen(5);
  matrix<float> x(20, 3);
  for (long i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(gen.normal());
  const batch b = batch::from_sizes({12, 8});
  particlenet<float>::workspace w1, w2;
  CHECK(net.infer(x, b, w1) == back.infer(x, b, w2));
  // A different seed gives other weights: the reload is not a rebuild from the config alone.
  particlenet_config other = cfg;
  other.seed = 78;
  particlenet<float>::workspace w3;
  CHECK(particlenet<float>(other).infer(x, b, w3) != w1.logits);
  // The family and the bounds are checked before anything is built.
  auto file = safetensors_file::load(path);
  file.metadata["particlenet.fc"] = "1e9";
  file.save(path);
  CHECK_THROWS_WITH_AS(load_model<particlenet<float>>(path), doctest::Contains("'particlenet.fc' = 1e9 is outside"),
                       error);
  file.metadata["hepgnn.family"] = "mlpf";
  file.save(path);
  CHECK_THROWS_WITH_AS(load_model<particlenet<float>>(path), doctest::Contains("holds a 'mlpf' model"), error);
  file.metadata["hepgnn.family"] = "particlenet";
  file.metadata["hepgnn.format_version"] = "2";
  file.save(path);
  CHECK_THROWS_WITH_AS(load_model<particlenet<float>>(path), doctest::Contains("format version 2 is newer"), error);
  std::filesystem::remove(path);
}

}  // namespace hepgnn_test_particlenet
