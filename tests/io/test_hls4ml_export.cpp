// hls4ml export (io/hls4ml_export.hpp): configuration JSON keys and precision strings, weights that read back to
// the same raw integers, the same fixed-point outputs after the round trip, and argument errors.
#include "support/doctest.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "hepgnn/io/hls4ml_export.hpp"

namespace hepgnn_test_hls4ml_export {

using namespace hepgnn;
using namespace hepgnn::quant;

std::vector<hls4ml_dense_layer> two_layer_net(std::mt19937& rng) {
  std::normal_distribution<double> g(0.0, 0.7);
  std::vector<double> w1(5 * 4), b1(5), w2(2 * 5), b2(2);
  for (auto* v : {&w1, &b1, &w2, &b2})
    for (auto& x : *v) x = g(rng);
  dense_precision p1{{12, 4}, {8, 2, AP_RND, AP_SAT}, {10, 3}, {20, 8}, {14, 6, AP_RND, AP_SAT}};
  const fixed_spec relu_out{10, 5, AP_RND, AP_SAT, false};
  dense_precision p2{relu_out, {6, 1, AP_RND_CONV}, {9, 4}, {18, 8, AP_TRN, AP_SAT}, {16, 6}};
  std::vector<hls4ml_dense_layer> net;
  net.push_back({"fc1", quantized_dense(w1.data(), b1.data(), 4, 5, p1), true, relu_out});
  net.push_back({"out", quantized_dense(w2.data(), b2.data(), 5, 2, p2), false, {}});
  return net;
}

TEST_CASE("hls4ml export: configuration dictionary keys and precision strings") {
  std::mt19937 rng(3);
  const auto net = two_layer_net(rng);
  hls4ml_export_options opt;
  opt.reuse_factor = 2;
  const auto j = hepgnn::detail::json::parse(hls4ml_config_json(net, opt), "test");
  const auto* model = j.find("Model");
  REQUIRE(model);
  CHECK(model->find("Precision")->text == "ap_fixed<16,6>");
  CHECK(model->find("ReuseFactor")->text == "2");
  CHECK(model->find("Strategy")->text == "Latency");
  const auto* names = j.find("LayerName");
  REQUIRE(names);
  CHECK(names->keys == std::vector<std::string>{"input_1", "fc1", "fc1_relu", "out"});
  CHECK(names->find("input_1")->find("Precision")->find("result")->text == "ap_fixed<12,4>");
  const auto* fc1 = names->find("fc1")->find("Precision");
  CHECK(fc1->find("weight")->text == "ap_fixed<8,2,AP_RND,AP_SAT>");
  CHECK(fc1->find("bias")->text == "ap_fixed<10,3>");
  CHECK(fc1->find("accum")->text == "ap_fixed<20,8>");
  CHECK(fc1->find("result")->text == "ap_fixed<14,6,AP_RND,AP_SAT>");
  CHECK(names->find("fc1")->find("ReuseFactor")->text == "2");
  CHECK(names->find("fc1_relu")->find("Precision")->find("result")->text == "ap_ufixed<10,5,AP_RND,AP_SAT>");
  CHECK(names->find("out")->find("Precision")->find("accum")->text == "ap_fixed<18,8,AP_TRN,AP_SAT>");
}

TEST_CASE("hls4ml export: weights and precisions read back bit-exactly, same fixed-point outputs") {
  std::mt19937 rng(7);
  const auto net = two_layer_net(rng);
  hepgnn_test::temp_dir dir("hls4ml_export");
  write_hls4ml_export(dir.path, net);
  for (const char* f : {"hls4ml_config.json", "model.json", "fc1_kernel.npy", "fc1_bias.npy", "out_kernel.npy", "out_bias.npy"})
    CHECK(std::filesystem::exists(dir / f));
  const auto k = read_npy(dir / "fc1_kernel.npy");
  CHECK(k.shape == std::vector<std::int64_t>{4, 5});  // Keras kernel layout [in, out]
  CHECK(k.as<double>()[1 * 5 + 3] == raw_to_double(net[0].layer.weight_raw(3, 1), net[0].layer.precision().weight));
  const auto back = read_hls4ml_export(dir.path);
  REQUIRE(back.size() == net.size());
  for (std::size_t l = 0; l < net.size(); ++l) {
    const auto &a = net[l].layer, &b = back[l].layer;
    CHECK(back[l].name == net[l].name);
    CHECK(back[l].relu == net[l].relu);
    CHECK(back[l].relu_result == net[l].relu_result);
    CHECK(b.precision().input == a.precision().input);
    CHECK(b.precision().weight == a.precision().weight);
    CHECK(b.precision().bias == a.precision().bias);
    CHECK(b.precision().accum == a.precision().accum);
    CHECK(b.precision().result == a.precision().result);
    int diff = 0;
    for (int o = 0; o < a.out_features(); ++o) {
      diff += b.bias_raw(o) != a.bias_raw(o) || b.bias_accum_raw(o) != a.bias_accum_raw(o);
      for (int i = 0; i < a.in_features(); ++i) diff += b.weight_raw(o, i) != a.weight_raw(o, i);
    }
    CHECK(diff == 0);
  }
  std::uniform_int_distribution<std::int32_t> u(-2048, 2047);  // all of ap_fixed<12,4>
  const int batch = 300;
  std::vector<std::int32_t> x(static_cast<std::size_t>(batch) * 4);
  for (auto& v : x) v = u(rng);
  const auto y0 = hls4ml_forward_raw(net, x, batch), y1 = hls4ml_forward_raw(back, x, batch);
  CHECK(y0 == y1);
  int nonzero = 0;
  for (auto v : y0) nonzero += v != 0;
  CHECK(nonzero > batch);  // the comparison is not between two all-zero outputs
}

TEST_CASE("hls4ml export: a value off its grid, mismatched layers and bad names are rejected") {
  std::mt19937 rng(11);
  auto net = two_layer_net(rng);
  hepgnn_test::temp_dir dir("hls4ml_export_bad");
  write_hls4ml_export(dir.path, net);
  auto w = read_npy(dir / "out_kernel.npy").as<double>();
  w[0] += 1.0 / 1024;  // finer than ap_fixed<6,1>'s LSB
  write_npy(dir / "out_kernel.npy", npy_array::from<double>({5, 2}, w));
  CHECK_THROWS_WITH(read_hls4ml_export(dir.path), doctest::Contains("is not a value of ap_fixed<6,1,AP_RND_CONV>"));
  std::filesystem::remove(dir / "model.json");
  CHECK_THROWS_WITH(read_hls4ml_export(dir.path), doctest::Contains("cannot open"));

  auto bad = net;
  bad[0].relu_result = {10, 4, AP_RND, AP_SAT, false};  // the next layer expects <10,5>
  CHECK_THROWS_WITH(hls4ml_config_json(bad), doctest::Contains("layer 'out' must take 5 inputs in ap_ufixed<10,4,AP_RND,AP_SAT>"));
  bad = net;
  bad[1].name = "fc1";
  CHECK_THROWS_WITH(hls4ml_config_json(bad), doctest::Contains("must be unique"));
  bad[1].name = "2out";
  CHECK_THROWS_WITH(hls4ml_config_json(bad), doctest::Contains("must be a C identifier"));
  hls4ml_export_options opt;
  opt.strategy = "Fast";
  CHECK_THROWS_WITH(hls4ml_config_json(net, opt), doctest::Contains("options.strategy"));
}

}  // namespace hepgnn_test_hls4ml_export
