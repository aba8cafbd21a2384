// io/hls4ml_interaction_export.hpp: a fixed-point interaction network written and read back gives the same bits on
// the same jets (rounding, saturating and per-column formats included); damaged folders are refused by name.
#include "support/doctest.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/io/hls4ml_interaction_export.hpp"

namespace hepgnn_test_hls4ml_interaction_export {

using namespace hepgnn;
using namespace hepgnn::quant;

namespace {

fixed_stage random_stage(std::mt19937_64& gen, int in, int out, const char* input, bool relu, bool bias,
                         std::vector<fixed_spec> quantizer = {}) {
  std::normal_distribution<double> nd(0, 0.6);
  std::vector<double> w(static_cast<std::size_t>(in) * out), b(static_cast<std::size_t>(out));
  for (auto& v : w) v = nd(gen);
  for (auto& v : b) v = nd(gen);
  const dense_precision p{parse_fixed_spec(input), parse_fixed_spec("ap_fixed<8,2,AP_RND>"),
                          parse_fixed_spec("ap_fixed<10,3>"), parse_fixed_spec("ap_fixed<24,10,AP_RND,AP_SAT>"),
                          parse_fixed_spec("ap_fixed<16,6,AP_RND_CONV,AP_SAT>")};
  return {quantized_dense(w.data(), bias ? b.data() : nullptr, in, out, p), relu,
          parse_fixed_spec("ap_ufixed<12,5,AP_RND,AP_SAT>"), std::move(quantizer)};
}

fixed_interaction_network random_network() {
  std::mt19937_64 gen(5);
  const int P = 3;
  fixed_interaction_parts p;
  p.input = parse_fixed_spec("ap_fixed<14,5>");
  std::vector<fixed_spec> q;
  for (int c = 0; c < 2 * P; ++c) q.push_back(parse_fixed_spec(c % 2 ? "ap_fixed<6,2,AP_RND,AP_SAT>" : "ap_fixed<9,4>"));
  p.edge = {random_stage(gen, 2 * P, 6, "ap_fixed<16,6>", true, true, q),
            random_stage(gen, 6, 5, "ap_ufixed<12,5,AP_RND,AP_SAT>", true, false)};
  p.aggregate = {parse_fixed_spec("ap_fixed<20,9,AP_RND,AP_SAT>"), parse_fixed_spec("ap_fixed<14,7,AP_RND>")};
  p.node = {random_stage(gen, P + 5, 4, "ap_fixed<16,7>", true, true)};
  p.pool = {parse_fixed_spec("ap_fixed<18,9>"), parse_fixed_spec("ap_fixed<16,8,AP_TRN,AP_SAT>")};
  p.classifier = {random_stage(gen, 4, 2, "ap_fixed<16,8>", false, true)};
  return fixed_interaction_network(p);
}

matrix<double> outputs(const fixed_interaction_network& net) {
  const batch b = batch::from_sizes({6, 1, 4, 9});
  const graph g = fully_connected(b);
  std::mt19937_64 gen(9);
  std::normal_distribution<double> nd(0, 2);
  matrix<double> x(b.num_nodes(), 3), y;
  for (long k = 0; k < x.size(); ++k) x.data()[k] = nd(gen);
  net.forward(x, g, b, y);
  return y;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("hls4ml interaction export: written and read back, the same bits on the same jets") {
  const auto net = random_network();
  hepgnn_test::temp_dir tmp("hls4ml_in");
  const auto dir = tmp / "in";
  write_hls4ml_interaction_export(dir, net);
  const std::string json = slurp(dir / "interaction_network.json");
  CHECK(json.find("\"input\": \"ap_fixed<14,5>\"") != std::string::npos);
  CHECK(json.find("\"accum\": \"ap_fixed<20,9,AP_RND,AP_SAT>\"") != std::string::npos);
  CHECK(json.find("\"input_quantizer\": [\"ap_fixed<9,4>\", \"ap_fixed<6,2,AP_RND,AP_SAT>\"") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "edge_1_kernel.npy"));
  CHECK_FALSE(std::filesystem::exists(dir / "edge_1_bias.npy"));  // that stage has no bias
  const auto back = read_hls4ml_interaction_export(dir);
  const matrix<double> y = outputs(net), y2 = outputs(back);
  CHECK(y.cwiseAbs().maxCoeff() > 0);
  CHECK(y2 == y);
  // the reader rebuilt every format: another pooling result would give other bits
  auto parts = back.parts();
  parts.pool.result = parse_fixed_spec("ap_fixed<10,8>");
  CHECK(outputs(fixed_interaction_network(parts)) != y);
}

TEST_CASE("hls4ml interaction export: damaged folders are refused naming the file and the entry") {
  const auto net = random_network();
  hepgnn_test::temp_dir tmp("hls4ml_in_bad");
  const auto dir = tmp / "in";
  write_hls4ml_interaction_export(dir, net);
  // a weight off its grid
  write_npy(dir / "node_0_kernel.npy", npy_array::from<double>({8, 4}, std::vector<double>(32, 0.123456789)));
  CHECK_THROWS_WITH_AS(read_hls4ml_interaction_export(dir), doctest::Contains("node_0_kernel.npy element 0"), error);
  // a missing weight file
  write_hls4ml_interaction_export(dir, net);
  std::filesystem::remove(dir / "edge_0_bias.npy");
  CHECK_THROWS_WITH_AS(read_hls4ml_interaction_export(dir), doctest::Contains("edge_0_bias.npy"), error);
  // a malformed precision and another format
  write_hls4ml_interaction_export(dir, net);
  std::string json = slurp(dir / "interaction_network.json");
  const std::string good = json;
  json.replace(json.find("ap_fixed<14,5>"), 14, "ap_fixed<14;5>");
  std::ofstream(dir / "interaction_network.json") << json;
  CHECK_THROWS_WITH_AS(read_hls4ml_interaction_export(dir), doctest::Contains("ap_fixed<14;5>"), error);
  json = good;
  json.replace(json.find("network-1"), 9, "network-9");
  std::ofstream(dir / "interaction_network.json") << json;
  CHECK_THROWS_WITH_AS(read_hls4ml_interaction_export(dir), doctest::Contains("format must be"), error);
  CHECK_THROWS_WITH_AS(read_hls4ml_interaction_export(tmp / "absent"), doctest::Contains("interaction_network.json"),
                       error);
}

}  // namespace hepgnn_test_hls4ml_interaction_export
