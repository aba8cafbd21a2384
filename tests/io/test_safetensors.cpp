// safetensors: round trips, files written by tests/reference/write_safetensors.py (torch), model weights
// load/save with strict errors, truncation at every length, corrupted headers.
#include "support/doctest.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "support/data.hpp"

namespace hepgnn_test_safetensors {  // this file's names, apart from the other files of its unity build

using hepgnn::safetensors_dtype;
using hepgnn::safetensors_file;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("hepgnn_test_safetensors_" + name);
}

// A file from a hand-written header and a buffer of `buffer_size` bytes.
hepgnn::detail::bytes make_file(const std::string& header, std::size_t buffer_size) {
  hepgnn::detail::bytes out;
  hepgnn::detail::store_le<std::uint64_t>(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + buffer_size, 0);
  return out;
}

std::string parse_error(const hepgnn::detail::bytes& file) {
  try {
    safetensors_file::parse(file);
  } catch (const hepgnn::error& e) {
    return e.what();
  }
  return "(no error)";
}

template <class T>
using mlp = hepgnn::sequential<T, hepgnn::dense<T, 3, 4>, hepgnn::relu<T>, hepgnn::dense<T, 4, 2>>;

template <class T>
mlp<T> make_mlp(std::uint64_t seed) {
  hepgnn::rng gen(seed);
  return mlp<T>(hepgnn::dense<T, 3, 4>(gen), hepgnn::relu<T>(), hepgnn::dense<T, 4, 2>(gen));
}

template <class Model>
std::vector<double> all_values(Model& m) {
  std::vector<double> v;
  hepgnn::for_each_state(m, "", [&](const std::string&, auto p) {
    for (std::int64_t i = 0; i < p.size(); ++i) v.push_back(static_cast<double>(p.value[i]));
  });
  return v;
}

// A model with a non-trainable buffer (like BatchNorm's running statistics), visited by for_each_buffer.
struct with_buffer {
  using scalar = double;
  hepgnn::dense<double, 2, 2> fc{};
  hepgnn::matrix<double> running = hepgnn::matrix<double>::Constant(1, 2, 0.5);
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { fc.for_each_param(prefix + "fc.", f); }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) {
    f(prefix + "bn.running_mean", hepgnn::parameter<double>{running.data(), nullptr, {2}});
  }
};

}  // namespace

TEST_CASE("safetensors: round trip of every written dtype, shapes, names and metadata") {
  const std::vector<double> values = {0.5, -1.25, 3.0, 1e10, -7.0, 0.0};
  const std::vector<float> fvalues = {1.5f, -2.25f, 1e-30f};
  const std::vector<std::int64_t> ivalues = {-(std::int64_t(1) << 40), 3, 0, 12};
  safetensors_file f;
  f.add("d.f64", {2, 3}, values);
  f.add("d.f32", {3, 2}, values, safetensors_dtype::f32);
  f.add("f.f32", {3}, fvalues);
  f.add("i.i64", {2, 2}, ivalues);
  f.add("d.i32", {6}, std::vector<double>{1, -2, 3, -4, 5, 2147483647.0}, safetensors_dtype::i32);
  f.add("d.i64", {1, 6}, std::vector<double>{1, -2, 3, -4, 5, 6}, safetensors_dtype::i64);
  f.add("scalar", {}, std::vector<double>{4.5});
  f.add("empty", {0, 5}, std::vector<double>{});
  f.add("name with \"quotes\", \\ and \n", {1}, std::vector<double>{9});
  f.metadata["format"] = "pt";
  f.metadata["tricky \"key\""] = "line\nbreak \\ \x01 caf\xc3\xa9";

  const auto bytes = f.serialize();
  const std::uint64_t header_len = hepgnn::detail::load_le<std::uint64_t>(bytes.data());
  CHECK((8 + header_len) % 8 == 0);  // data buffer aligned to 8 bytes

  const auto g = safetensors_file::parse(bytes);
  REQUIRE(g.size() == f.size());
  CHECK(g.names() == f.names());
  CHECK(g.metadata == f.metadata);
  for (const auto& t : f.tensors()) {
    const auto& u = g.at(t.name);
    CHECK(u.dtype == t.dtype);
    CHECK(u.shape == t.shape);
    CHECK(u.data == t.data);
  }
  CHECK(g.at("d.f64").values<double>() == values);
  CHECK(g.at("d.f64").dtype == safetensors_dtype::f64);
  const auto as_f32 = g.at("d.f32").values<double>();
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(as_f32[i] == static_cast<double>(static_cast<float>(values[i])));
  CHECK(g.at("f.f32").values<float>() == fvalues);
  CHECK(g.at("i.i64").values<std::int64_t>() == ivalues);
  CHECK(g.at("d.i32").values<double>() == std::vector<double>{1, -2, 3, -4, 5, 2147483647.0});
  CHECK(g.at("d.i32").dtype == safetensors_dtype::i32);
  CHECK(g.at("d.i64").values<float>() == std::vector<float>{1, -2, 3, -4, 5, 6});
  CHECK(g.at("scalar").shape.empty());
  CHECK(g.at("scalar").values<double>() == std::vector<double>{4.5});
  CHECK(g.at("empty").values<double>().empty());
  CHECK(g.at("name with \"quotes\", \\ and \n").values<double>() == std::vector<double>{9});

  // Through the file system too.
  const auto path = temp_file("roundtrip.safetensors");
  f.save(path);
  const auto h = safetensors_file::load(path);
  CHECK(h.serialize() == bytes);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: writer rejects bad tensors") {
  safetensors_file f;
  f.add("a", {2}, std::vector<double>{1, 2});
  CHECK_THROWS_WITH_AS(f.add("a", {1}, std::vector<double>{1}), doctest::Contains("duplicate tensor name 'a'"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(f.add("b", {2, 2}, std::vector<double>{1, 2, 3}),
                       doctest::Contains("tensor 'b' has shape [2, 2] but 3 values were given"), hepgnn::error);
  CHECK_THROWS_WITH_AS(f.add("c", {1}, std::vector<double>{1e12}, safetensors_dtype::i32),
                       doctest::Contains("tensor 'c': conversion: element 0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(f.add("d", {1}, std::vector<double>{NAN}, safetensors_dtype::i64),
                       doctest::Contains("not representable"), hepgnn::error);
  CHECK_THROWS_WITH_AS(f.add("e", {1}, std::vector<double>{1}, safetensors_dtype::f16),
                       doctest::Contains("writing F16 is not supported"), hepgnn::error);
  CHECK_THROWS_WITH_AS(f.add("__metadata__", {1}, std::vector<double>{1}), doctest::Contains("reserved"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(f.at("zzz"), doctest::Contains("no tensor named 'zzz'"), hepgnn::error);
  CHECK_THROWS_WITH_AS(safetensors_file::load(temp_file("does_not_exist")), doctest::Contains("cannot open"),
                       hepgnn::error);
}

TEST_CASE("safetensors: every dtype of a file written by torch converts as torch does") {
  const auto f = safetensors_file::load(hepgnn_test::source_path("tests/data/safetensors_dtypes.safetensors"));
  for (const char* name : {"f16", "bf16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "bool"}) {
    INFO("tensor ", name);
    const auto& t = f.at(name);
    const auto expected = f.at(std::string(name) + ".expected").values<double>();
    CHECK(t.shape == f.at(std::string(name) + ".expected").shape);
    CHECK(t.values<double>() == expected);
    const auto as_float = t.values<float>();
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(as_float[i] == static_cast<float>(expected[i]));
  }
  CHECK(f.at("f16").dtype == safetensors_dtype::f16);
  CHECK(f.at("bf16").dtype == safetensors_dtype::bf16);
  CHECK(f.at("bool").dtype == safetensors_dtype::boolean);
  // F16 covers its largest finite value and its smallest subnormal.
  CHECK(f.at("f16").values<double>()[4] == 65504.0);
  CHECK(f.at("f16").values<double>()[5] == std::ldexp(1.0, -24));
  CHECK(std::signbit(f.at("f16").values<double>()[6]));
  CHECK(f.at("scalar").shape.empty());
  CHECK(f.at("scalar").values<double>() == std::vector<double>{2.5});
  CHECK(f.at("empty").shape == std::vector<std::int64_t>{0, 3});
  CHECK(f.contains("caf\xc3\xa9 \"quoted\""));  // written as \u00e9 and \" by json.dumps
  CHECK(f.at("i64").values<std::int64_t>() == std::vector<std::int64_t>{0, 1, -1, 7, -128, 127, 42, -5});
  // Floating values that do not fit an integer target are refused rather than wrapped (65504 into int8).
  CHECK_THROWS_WITH_AS(f.at("f16").values<std::int8_t>(), doctest::Contains("element 4 (65504) is not representable"),
                       hepgnn::error);
  CHECK(f.at("f16").values<std::int32_t>()[4] == 65504);
}

TEST_CASE("safetensors: a torch nn.Sequential state_dict loads and reproduces torch's output") {
  const auto io = safetensors_file::load(hepgnn_test::source_path("tests/data/safetensors_mlp_io.safetensors"));
  const auto& in = io.at("input");
  const auto& out = io.at("output");
  REQUIRE(in.shape == std::vector<std::int64_t>{5, 3});
  REQUIRE(out.shape == std::vector<std::int64_t>{5, 2});
  const auto path = hepgnn_test::source_path("tests/data/safetensors_mlp.safetensors");

  auto model = make_mlp<double>(1);
  const auto report = hepgnn::load_weights(model, path);
  CHECK(report.complete());
  CHECK(report.loaded == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(safetensors_file::load(path).metadata.at("format") == "pt");

  hepgnn::matrix<double> x(5, 3), y;
  const auto xv = in.values<double>();
  std::copy(xv.begin(), xv.end(), x.data());
  typename mlp<double>::cache cache;
  model.infer(x, y, cache);
  const auto expected = out.values<double>();
  REQUIRE(y.rows() == 5);
  REQUIRE(y.cols() == 2);
  for (int i = 0; i < 10; ++i) CHECK(y.data()[i] == doctest::Approx(expected[i]).epsilon(1e-12));

  // Float model: F32 file values load exactly; output within float rounding.
  auto fmodel = make_mlp<float>(1);
  hepgnn::load_weights(fmodel, path);
  hepgnn::matrix<float> xf = x.cast<float>(), yf;
  typename mlp<float>::cache fcache;
  fmodel.infer(xf, yf, fcache);
  for (int i = 0; i < 10; ++i) CHECK(yf.data()[i] == doctest::Approx(expected[i]).epsilon(1e-5));
}

TEST_CASE("safetensors: save_weights then load_weights restores every parameter, across scalar types") {
  auto a = make_mlp<double>(11);
  auto b = make_mlp<double>(12);
  REQUIRE(all_values(a) != all_values(b));
  const auto path = temp_file("model.safetensors");
  hepgnn::save_weights(a, path, {{"epoch", "3"}});
  const auto file = safetensors_file::load(path);
  CHECK(file.at("0.weight").dtype == safetensors_dtype::f64);
  CHECK(file.at("0.weight").shape == std::vector<std::int64_t>{4, 3});
  CHECK(file.at("2.bias").shape == std::vector<std::int64_t>{2});
  CHECK(file.metadata.at("epoch") == "3");
  hepgnn::load_weights(b, path);
  CHECK(all_values(a) == all_values(b));

  auto c = make_mlp<float>(13);
  hepgnn::save_weights(c, path);
  CHECK(safetensors_file::load(path).at("0.weight").dtype == safetensors_dtype::f32);
  hepgnn::load_weights(b, path);  // F32 file into a double model
  const auto cv = all_values(c), bv = all_values(b);
  CHECK(cv == bv);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: load_weights of a sub-module (prefix) and of a file named by another convention (rename)") {
  // A larger model's file: the MLP under "encoder." next to tensors of other sub-modules.
  auto whole = make_mlp<double>(31);
  auto file = hepgnn::to_safetensors(whole);
  safetensors_file bigger;
  for (const auto& name : file.names()) {
    const auto& t = file.at(name);
    bigger.add("encoder." + name, t.shape, t.values<double>().data());
  }
  const double extra[2] = {1, 2};
  bigger.add("decoder.weight", {2}, extra);
  auto part = make_mlp<double>(32);
  REQUIRE(all_values(part) != all_values(whole));
  const auto report = hepgnn::load_weights(part, bigger, hepgnn::load_options{.prefix = "encoder."});
  CHECK(report.complete());  // decoder.* is outside the prefix: not "unexpected"
  CHECK(report.loaded.front() == "encoder.0.weight");
  CHECK(all_values(part) == all_values(whole));
  // Without the prefix nothing matches, and strict loading names the problem.
  CHECK_THROWS_WITH_AS(hepgnn::load_weights(part, bigger), doctest::Contains("tensor '0.weight' is missing"),
                       hepgnn::error);
  // A wrong prefix is missing tensors under that prefix.
  CHECK_THROWS_WITH_AS(hepgnn::load_weights(part, bigger, hepgnn::load_options{.prefix = "decoder."}),
                       doctest::Contains("'decoder.0.weight' is missing"), hepgnn::error);
  // Another naming convention ("fc1.*" for "0.*", "fc2.*" for "2.*").
  safetensors_file renamed;
  for (const auto& name : file.names()) {
    const std::string other = (name[0] == '0' ? "fc1" : "fc2") + name.substr(1);
    renamed.add(other, file.at(name).shape, file.at(name).values<double>().data());
  }
  auto third = make_mlp<double>(33);
  hepgnn::load_weights(third, renamed, hepgnn::load_options{.rename = [](const std::string& n) {
                                          return (n[0] == '0' ? "fc1" : "fc2") + n.substr(1);
                                        }});
  CHECK(all_values(third) == all_values(whole));
  // Two model tensors mapped to one file tensor is an error, not a silent double load.
  CHECK_THROWS_WITH_AS(
      hepgnn::load_weights(third, renamed,
                           hepgnn::load_options{.rename = [](const std::string& n) { return "fc1" + n.substr(1); }}),
      doctest::Contains("two model tensors map to the file's 'fc1.weight'"), hepgnn::error);
}

TEST_CASE("safetensors: strict loading names missing, unexpected and mis-shaped tensors; non-strict reports") {
  auto source = make_mlp<double>(21);
  const auto good = hepgnn::to_safetensors(source);
  auto rebuild = [&](auto&& change) {
    safetensors_file f;
    for (const auto& t : good.tensors()) change(f, t);
    return f;
  };
  auto target = make_mlp<double>(22);
  const auto before = all_values(target);

  SUBCASE("missing") {
    const auto f = rebuild([](safetensors_file& f, const hepgnn::safetensors_tensor& t) {
      if (t.name != "2.bias") f.add_raw(t.name, t.dtype, t.shape, t.data);
    });
    CHECK_THROWS_WITH_AS(hepgnn::load_weights(target, f),
                         doctest::Contains("tensor '2.bias' is missing from the file (model expects shape [2])"),
                         hepgnn::error);
    CHECK(all_values(target) == before);  // nothing loaded
    const auto r = hepgnn::load_weights(target, f, false);
    CHECK(r.missing == std::vector<std::string>{"2.bias"});
    CHECK(r.loaded.size() == 3);
    CHECK_FALSE(r.complete());
    CHECK(r.summary().find("missing from the file: '2.bias'") != std::string::npos);
  }
  SUBCASE("unexpected") {
    auto f = good;
    f.add("3.weight", {2, 2}, std::vector<double>{1, 2, 3, 4});
    CHECK_THROWS_WITH_AS(hepgnn::load_weights(target, f),
                         doctest::Contains("tensor '3.weight' [2, 2] in the file is not a tensor of the model"),
                         hepgnn::error);
    CHECK(all_values(target) == before);
    const auto r = hepgnn::load_weights(target, f, false);
    CHECK(r.unexpected == std::vector<std::string>{"3.weight"});
    CHECK(r.loaded.size() == 4);
    CHECK(all_values(target) == all_values(source));
  }
  SUBCASE("mis-shaped") {
    const auto f = rebuild([](safetensors_file& f, const hepgnn::safetensors_tensor& t) {
      if (t.name == "0.weight") f.add_raw(t.name, t.dtype, {3, 4}, t.data);  // transposed shape, same bytes
      else f.add_raw(t.name, t.dtype, t.shape, t.data);
    });
    CHECK_THROWS_WITH_AS(hepgnn::load_weights(target, f),
                         doctest::Contains("tensor '0.weight' has shape [3, 4] in the file but the model expects [4, 3]"),
                         hepgnn::error);
    CHECK(all_values(target) == before);
    const auto r = hepgnn::load_weights(target, f, false);
    CHECK(r.mismatched == std::vector<std::string>{"0.weight: file [3, 4] vs model [4, 3]"});
    CHECK(r.loaded.size() == 3);
  }
  SUBCASE("all problems are listed at once, with the path") {
    auto f = rebuild([](safetensors_file& f, const hepgnn::safetensors_tensor& t) {
      if (t.name == "0.bias") f.add_raw(t.name, t.dtype, {2, 2}, t.data);
      else if (t.name != "2.weight") f.add_raw(t.name, t.dtype, t.shape, t.data);
    });
    f.add("extra", {1}, std::vector<double>{0});
    const auto path = temp_file("bad_model.safetensors");
    f.save(path);
    try {
      hepgnn::load_weights(target, path);
      FAIL("expected hepgnn::error");
    } catch (const hepgnn::error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("[hepgnn] load_weights('" + path.string() + "'): 3 problem(s), nothing loaded") == 0);
      CHECK(msg.find("'0.bias' has shape [2, 2] in the file but the model expects [4]") != std::string::npos);
      CHECK(msg.find("'2.weight' is missing") != std::string::npos);
      CHECK(msg.find("'extra' [1] in the file") != std::string::npos);
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("safetensors: malformed headers give a clear error") {
  const std::string t = R"("dtype":"F32","shape":[2],"data_offsets":)";
  struct bad_case {
    std::string header;
    std::size_t buffer;
    const char* message;
  };
  const std::vector<bad_case> cases = {
      {"[]", 0, "header must start with '{'"},
      {"{", 0, "too short for a JSON object"},
      {"{\"a\":{" + t + "[0,8]}", 8, "malformed JSON header"},
      {"{\"a\":{" + t + "[0,8]}} x", 8, "unexpected trailing characters"},
      {"{\"a\":{" + t + "[0,8]},\"a\":{" + t + "[8,16]}}", 16, "duplicate key \"a\""},
      {R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8, "unsupported dtype \"F33\""},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "shape entries must be non-negative integers, got -2"},
      {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, "got 2.0"},
      {R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8, "got string"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "overflows"},
      {R"({"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})", 8, "non-negative integers"},
      {"{\"a\":{" + t + "[0,12]}}", 12, "hold 12 bytes, but F32[2] needs 8"},
      {"{\"a\":{" + t + "[8,0]}}", 8, "has begin > end"},
      {"{\"a\":{" + t + "[0,8]}}", 4, "exceed the data buffer of 4 bytes"},
      {"{\"a\":{" + t + "[0,8]}}", 12, "trailing bytes"},
      {"{\"a\":{" + t + "[0,8]},\"b\":{" + t + "[4,12]}}", 12, "overlap the previous tensor"},
      {"{\"a\":{" + t + "[0,8]},\"b\":{" + t + "[12,20]}}", 20, "leave a hole after byte 8"},
      {"{\"a\":{" + t + "[0,8],\"extra\":1}}", 8, "unexpected key \"extra\""},
      {R"({"a":{"dtype":"F32","shape":[2]}})", 8, "needs \"dtype\", \"shape\" and \"data_offsets\""},
      {"{\"a\":{" + t + "[0]}}", 8, "\"data_offsets\" must be an array [begin, end]"},
      {R"({"a":[1,2]})", 0, "tensor 'a' must be an object, got array"},
      {R"({"__metadata__":{"k":1}})", 0, "value of \"k\" must be a string, got number"},
      {R"({"__metadata__":[]})", 0, "\"__metadata__\" must be an object"},
      {"{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", 0, "nesting too deep"},
      {R"({"a\q":1})", 0, "unknown escape"},
      {R"({"a\ud800":1})", 0, "unpaired surrogate"},
      {"{\"a\x01\":1}", 0, "control character"},
      {R"({"a":tru})", 0, "unexpected character"},
      {R"({"a":01})", 0, "malformed JSON header"},
      {R"({"a":-})", 0, "expected digits"},
      {R"({"a":"abc)", 0, "unterminated string"},
  };
  for (const auto& c : cases) {
    INFO("header: ", c.header);
    const auto msg = parse_error(make_file(c.header, c.buffer));
    CHECK(msg.find("[hepgnn] safetensors") == 0);
    CHECK(msg.find(c.message) != std::string::npos);
    if (msg.find(c.message) == std::string::npos) MESSAGE(msg);
  }
  // Header length field inconsistent with the file size.
  auto file = make_file("{}", 0);
  CHECK(parse_error(file) == "(no error)");  // an empty file is valid
  hepgnn::detail::bytes longer(file);
  longer[0] = 3;
  CHECK(parse_error(longer).find("header length 3 exceeds the 2 bytes after the length field") != std::string::npos);
  std::fill(longer.begin(), longer.begin() + 8, 0xFF);
  CHECK(parse_error(longer).find("header length 18446744073709551615 exceeds") != std::string::npos);
  CHECK(parse_error(hepgnn::detail::bytes{1, 2, 3}).find("3 bytes, too short") != std::string::npos);
}

TEST_CASE("safetensors: every truncation of a valid file is rejected with hepgnn::error") {
  auto model = make_mlp<double>(3);
  auto f = hepgnn::to_safetensors(model);
  f.metadata["k"] = "v";
  const auto bytes = f.serialize();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const hepgnn::detail::bytes prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    INFO("length ", n);
    CHECK_THROWS_AS(safetensors_file::parse(prefix), hepgnn::error);
  }
  CHECK_NOTHROW(safetensors_file::parse(bytes));
}

TEST_CASE("safetensors: deterministic random corruption never escapes as anything but hepgnn::error") {
  auto model = make_mlp<double>(4);
  auto f = hepgnn::to_safetensors(model);
  f.add("ints", {3}, std::vector<std::int64_t>{1, 2, 3});
  const auto bytes = f.serialize();
  const std::size_t header_end = 8 + hepgnn::detail::load_le<std::uint64_t>(bytes.data());
  hepgnn::rng gen(20261122);
  const char* tokens[] = {"{", "}", "[", "]", ",", ":", "\"", "-1", "1e3", "99999999999999999999", "\\u", "null"};
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    auto m = bytes;
    const int edits = 1 + static_cast<int>(gen.below(4));
    for (int e = 0; e < edits; ++e) {
      const auto pos = static_cast<std::size_t>(gen.below(header_end));
      switch (gen.below(5)) {
        case 0: m[pos] = static_cast<unsigned char>(gen.below(256)); break;                  // random byte
        case 1: m[pos] = static_cast<unsigned char>("0123456789"[gen.below(10)]); break;      // digit change
        case 2: m.erase(m.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(pos, 8))); break;
        case 3: {
          const std::string tok = tokens[gen.below(std::size(tokens))];
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(pos, 8)), tok.begin(), tok.end());
          break;
        }
        default: m[gen.below(8)] = static_cast<unsigned char>(gen.below(256)); break;  // header length
      }
    }
    try {
      const auto g = safetensors_file::parse(m);
      for (const auto& t : g.tensors()) (void)t.values<double>();
      ++accepted;
    } catch (const hepgnn::error& e) {
      CHECK(std::string(e.what()).find("[hepgnn] safetensors") == 0);
      ++rejected;
    }
  }
  MESSAGE("corrupted files: ", accepted, " still valid, ", rejected, " rejected");
  CHECK(rejected > 3000);
}

TEST_CASE("safetensors: buffers (for_each_buffer) are saved and loaded with the parameters") {
  with_buffer a, b;
  a.running << 1.5, -2.0;
  const auto f = hepgnn::to_safetensors(a);
  CHECK(f.names() == std::vector<std::string>{"fc.weight", "fc.bias", "bn.running_mean"});
  hepgnn::load_weights(b, f);
  CHECK(b.running == a.running);
  // An I64 tensor in the file (as PyTorch's num_batches_tracked) converts to the model's scalar.
  safetensors_file g;
  for (const auto& t : f.tensors())
    if (t.name != "bn.running_mean") g.add_raw(t.name, t.dtype, t.shape, t.data);
  g.add("bn.running_mean", {2}, std::vector<std::int64_t>{3, -4});
  hepgnn::load_weights(b, g);
  CHECK(b.running(0, 0) == 3.0);
  CHECK(b.running(0, 1) == -4.0);
}

TEST_CASE("safetensors: non-finite tensors are refused by name unless asked; a directory is not a file") {
  auto model = make_mlp<double>(41);
  auto file = hepgnn::to_safetensors(model);
  safetensors_file bad;
  for (const auto& name : file.names()) {
    auto v = file.at(name).values<double>();
    if (name == "2.weight") v[3] = std::numeric_limits<double>::infinity();
    bad.add(name, file.at(name).shape, v.data());
  }
  auto target = make_mlp<double>(42);
  const auto before = all_values(target);
  CHECK_THROWS_WITH_AS(hepgnn::load_weights(target, bad),
                       doctest::Contains("tensor '2.weight' holds a non-finite value (inf at flat index 3)"),
                       hepgnn::error);
  CHECK(all_values(target) == before);  // nothing loaded
  hepgnn::load_weights(target, bad, hepgnn::load_options{.allow_non_finite = true});
  CHECK(std::isinf(all_values(target)[3 * 4 + 4 + 3]));  // 0.weight [4,3], 0.bias [4], then 2.weight[3]
  const auto dir = std::filesystem::temp_directory_path();
  CHECK_THROWS_WITH_AS(safetensors_file::load(dir), doctest::Contains("is a directory, not a file"), hepgnn::error);
}

}  // namespace hepgnn_test_safetensors
