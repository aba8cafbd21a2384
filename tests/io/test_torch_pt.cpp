// PyTorch .pt state dicts: files built here byte by byte (zip and legacy formats, strided views, hostile
// pickles, truncation, out-of-range views), and the real files of shared/data (MPGAN's generators, JetNet's
// ParticleNet in the legacy format against its npz copy).
#include "support/doctest.hpp"

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/torch_pt.hpp"
#include "hepgnn/nn/dense.hpp"
#include "support/data.hpp"

namespace hepgnn_test_torch_pt {  // this file's names, apart from the other files of its unity build

using hepgnn::torch_state_dict;
using bytes = hepgnn::detail::bytes;

namespace {

/// Writes pickle opcodes (protocol 2, as torch.save).
struct pickler {
  bytes b;
  pickler& raw(std::initializer_list<unsigned char> v) {
    b.insert(b.end(), v);
    return *this;
  }
  pickler& proto() { return raw({0x80, 2}); }
  pickler& stop() { return raw({'.'}); }
  pickler& mark() { return raw({'('}); }
  pickler& tuple() { return raw({'t'}); }
  pickler& empty_tuple() { return raw({')'}); }
  pickler& empty_dict() { return raw({'}'}); }
  pickler& empty_list() { return raw({']'}); }
  pickler& reduce() { return raw({'R'}); }
  pickler& persid() { return raw({'Q'}); }
  pickler& setitem() { return raw({'s'}); }
  pickler& setitems() { return raw({'u'}); }
  pickler& appends() { return raw({'e'}); }
  pickler& build() { return raw({'b'}); }
  pickler& newfalse() { return raw({0x89}); }
  pickler& newtrue() { return raw({0x88}); }
  pickler& none() { return raw({'N'}); }
  pickler& put(unsigned char i) { return raw({'q', i}); }
  pickler& get(unsigned char i) { return raw({'h', i}); }
  pickler& str(const std::string& s) {
    raw({'X'});
    hepgnn::detail::store_le(b, static_cast<std::uint32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  pickler& integer(std::int32_t v) {
    raw({'J'});
    hepgnn::detail::store_le(b, static_cast<std::uint32_t>(v));
    return *this;
  }
  pickler& global(const std::string& module, const std::string& name) {
    raw({'c'});
    b.insert(b.end(), module.begin(), module.end());
    b.push_back('\n');
    b.insert(b.end(), name.begin(), name.end());
    b.push_back('\n');
    return *this;
  }
  pickler& ints(const std::vector<std::int64_t>& v) {
    mark();
    for (auto x : v) integer(static_cast<std::int32_t>(x));
    return tuple();
  }
  pickler& ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }
};

struct view {
  std::string name, storage_type, key;
  std::int64_t numel, offset;
  std::vector<std::int64_t> shape, stride;
};

/// The dict pickle torch.save writes for these tensors (an OrderedDict with a _metadata BUILD at the end).
bytes state_pickle(const std::vector<view>& views) {
  pickler p;
  p.proto().ordered_dict().put(0);
  for (const auto& v : views) {
    p.str(v.name).global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", v.storage_type).str(v.key).str("cpu").integer(static_cast<std::int32_t>(v.numel)).tuple().persid();
    p.integer(static_cast<std::int32_t>(v.offset)).ints(v.shape).ints(v.stride).newfalse().ordered_dict().tuple().reduce();
    p.setitem();
  }
  p.empty_dict().str("_metadata").ordered_dict().setitem().build().stop();
  return p.b;
}

/// A zip archive of stored entries, as torch.save writes them.
bytes zip(const std::vector<std::pair<std::string, bytes>>& entries) {
  using hepgnn::detail::store_le;
  bytes out, central;
  for (const auto& [name, data] : entries) {
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint32_t crc = hepgnn::detail::crc32(data);
    store_le(out, std::uint32_t{0x04034b50});
    store_le(out, std::uint16_t{20});
    store_le(out, std::uint16_t{0});  // flags
    store_le(out, std::uint16_t{0});  // stored
    store_le(out, std::uint32_t{0});  // time, date
    store_le(out, crc);
    store_le(out, static_cast<std::uint32_t>(data.size()));
    store_le(out, static_cast<std::uint32_t>(data.size()));
    store_le(out, static_cast<std::uint16_t>(name.size()));
    store_le(out, std::uint16_t{0});
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), data.begin(), data.end());
    store_le(central, std::uint32_t{0x02014b50});
    store_le(central, std::uint16_t{20});
    store_le(central, std::uint16_t{20});
    store_le(central, std::uint16_t{0});
    store_le(central, std::uint16_t{0});
    store_le(central, std::uint32_t{0});
    store_le(central, crc);
    store_le(central, static_cast<std::uint32_t>(data.size()));
    store_le(central, static_cast<std::uint32_t>(data.size()));
    store_le(central, static_cast<std::uint16_t>(name.size()));
    for (int k = 0; k < 4; ++k) store_le(central, std::uint16_t{0});  // extra, comment, disk, internal attributes
    store_le(central, std::uint32_t{0});                               // external attributes
    store_le(central, offset);
    central.insert(central.end(), name.begin(), name.end());
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  out.insert(out.end(), central.begin(), central.end());
  store_le(out, std::uint32_t{0x06054b50});
  store_le(out, std::uint32_t{0});
  store_le(out, static_cast<std::uint16_t>(entries.size()));
  store_le(out, static_cast<std::uint16_t>(entries.size()));
  store_le(out, static_cast<std::uint32_t>(central.size()));
  store_le(out, cd_offset);
  store_le(out, std::uint16_t{0});
  return out;
}

bytes floats(std::initializer_list<float> v) {
  bytes out;
  hepgnn::detail::append_le<float>(out, std::data(v), v.size());
  return out;
}
bytes longs(std::initializer_list<std::int64_t> v) {
  bytes out;
  hepgnn::detail::append_le<std::int64_t>(out, std::data(v), v.size());
  return out;
}

// Storage "0": six floats 0..5; storage "1": one int64 (7).
const bytes storage0 = floats({0, 1, 2, 3, 4, 5});
const bytes storage1 = longs({7});

std::vector<view> example_views() {
  return {{"w", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}},
          {"wt", "FloatStorage", "0", 6, 0, {3, 2}, {1, 3}},  // the transposed view of the same storage
          {"tail", "FloatStorage", "0", 6, 4, {2}, {1}},
          {"n", "LongStorage", "1", 1, 0, {}, {}}};
}

bytes zip_file(const std::vector<view>& views, std::string byteorder = "little") {
  std::vector<std::pair<std::string, bytes>> e{{"archive/data.pkl", state_pickle(views)}};
  if (!byteorder.empty()) e.push_back({"archive/byteorder", bytes(byteorder.begin(), byteorder.end())});
  e.push_back({"archive/data/0", storage0});
  e.push_back({"archive/data/1", storage1});
  e.push_back({"archive/version", bytes{'3', '\n'}});
  return zip(e);
}

bytes legacy_file(const std::vector<view>& views, bool little = true) {
  pickler p;
  p.proto().raw({0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}).stop();
  p.proto().raw({'M', 0xe9, 0x03}).stop();  // 1001
  p.proto().empty_dict().mark().str("protocol_version").raw({'M', 0xe9, 0x03}).str("little_endian");
  little ? p.newtrue() : p.newfalse();
  p.setitems().stop();
  bytes out = p.b;
  const bytes obj = state_pickle(views);
  out.insert(out.end(), obj.begin(), obj.end());
  pickler keys;
  keys.proto().empty_list().mark().str("0").str("1").appends().stop();
  out.insert(out.end(), keys.b.begin(), keys.b.end());
  hepgnn::detail::store_le(out, std::uint64_t{6});
  out.insert(out.end(), storage0.begin(), storage0.end());
  hepgnn::detail::store_le(out, std::uint64_t{1});
  out.insert(out.end(), storage1.begin(), storage1.end());
  return out;
}

std::string error_of(const bytes& file) {
  try {
    (void)torch_state_dict::parse(file);
  } catch (const hepgnn::error& e) {
    return e.what();
  }
  return "";
}

void check_example(const torch_state_dict& sd) {
  REQUIRE(sd.names() == std::vector<std::string>{"w", "wt", "tail", "n"});
  CHECK(sd.at("w").shape == std::vector<std::int64_t>{2, 3});
  CHECK(sd.at("w").values<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK(sd.at("wt").shape == std::vector<std::int64_t>{3, 2});
  CHECK(sd.at("wt").values<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(sd.at("tail").values<float>() == std::vector<float>{4, 5});
  CHECK(sd.at("n").shape.empty());
  CHECK(sd.at("n").values<std::int64_t>() == std::vector<std::int64_t>{7});
  CHECK_THROWS_WITH_AS(sd.at("missing"), doctest::Contains("'missing'"), hepgnn::error);
}

}  // namespace

TEST_CASE("torch_pt: zip-format state dict with contiguous, transposed, offset and scalar tensors") {
  const auto sd = torch_state_dict::parse(zip_file(example_views()));
  CHECK_FALSE(sd.legacy());
  check_example(sd);
  // byteorder is optional (torch < 1.10 did not write it)
  check_example(torch_state_dict::parse(zip_file(example_views(), "")));
}

TEST_CASE("torch_pt: legacy-format state dict gives the same tensors") {
  const auto sd = torch_state_dict::parse(legacy_file(example_views()));
  CHECK(sd.legacy());
  check_example(sd);
}

TEST_CASE("torch_pt: protocol-4 opcodes, nn.Parameter and the metadata argument of _rebuild_tensor_v2") {
  // FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE (protocol 4), _rebuild_parameter around a tensor, and
  // _rebuild_tensor_v2's optional seventh argument (None).
  pickler p;
  const auto short_str = [&](const std::string& s) {
    p.raw({0x8c, static_cast<unsigned char>(s.size())});
    p.b.insert(p.b.end(), s.begin(), s.end());
  };
  p.raw({0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0});
  short_str("collections");
  short_str("OrderedDict");
  p.raw({0x93, 0x94}).empty_tuple().reduce();  // memo 0: OrderedDict (global)
  short_str("p");
  short_str("torch._utils");
  short_str("_rebuild_parameter");
  p.raw({0x93}).mark();
  p.global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(6).tuple().persid();
  p.integer(1).ints({2}).ints({2}).newfalse().get(0).empty_tuple().reduce().none().tuple().reduce();
  p.newtrue().get(0).empty_tuple().reduce().tuple().reduce().setitem().stop();
  const auto sd = torch_state_dict::parse(zip({{"archive/data.pkl", p.b}, {"archive/data/0", storage0}}));
  REQUIRE(sd.names() == std::vector<std::string>{"p"});
  CHECK(sd.at("p").values<float>() == std::vector<float>{1, 3});
}

TEST_CASE("torch_pt: load_weights into a layer, with a prefix and strictness") {
  // A dense 3 -> 2 layer: weight [2, 3], bias [2].
  const std::vector<view> v{{"fc.weight", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}},
                            {"fc.bias", "FloatStorage", "0", 6, 4, {2}, {1}}};
  const auto sd = torch_state_dict::parse(zip_file(v));
  hepgnn::rng gen(3);
  hepgnn::dense<double> layer(gen, 3, 2);
  const auto report = hepgnn::load_weights(layer, sd, hepgnn::load_options{.prefix = "fc."});
  CHECK(report.complete());
  CHECK(layer.weight()(1, 2) == 5.0);
  CHECK(layer.bias()(0, 1) == 5.0);
  hepgnn::dense<double> wrong(gen, 2, 2);
  CHECK_THROWS_WITH_AS(hepgnn::load_weights(wrong, sd, hepgnn::load_options{.prefix = "fc."}),
                       doctest::Contains("fc.weight"), hepgnn::error);
}

TEST_CASE("torch_pt: globals other than a state dict's are refused by name") {
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"os", "system"}, {"builtins", "eval"}, {"posix", "system"}, {"torch", "load"}}) {
    pickler p;
    p.proto().global(module, name).mark().str("echo hacked").tuple().reduce().stop();
    const std::string msg = error_of(zip({{"archive/data.pkl", p.b}}));
    CAPTURE(msg);
    CHECK(msg.find("'" + module + "." + name + "'") != std::string::npos);
    CHECK(msg.find("not allowed") != std::string::npos);
  }
  // An allowed name used as something it is not: a storage type called as a function.
  pickler p;
  p.proto().global("torch", "FloatStorage").empty_tuple().reduce().stop();
  CHECK(error_of(zip({{"archive/data.pkl", p.b}})).find("calling 'torch.FloatStorage'") != std::string::npos);
  // Not a dict at the top.
  pickler q;
  q.proto().empty_list().stop();
  CHECK(error_of(zip({{"archive/data.pkl", q.b}})).find("does not hold a dict") != std::string::npos);
}

TEST_CASE("torch_pt: opcodes outside a state dict's are refused") {
  pickler p;
  p.proto().raw({'i'}).stop();  // INST builds arbitrary objects
  CHECK(error_of(zip({{"archive/data.pkl", p.b}})).find("opcode 0x69 (INST)") != std::string::npos);
  pickler q;
  q.proto().raw({0xff}).stop();
  CHECK(error_of(zip({{"archive/data.pkl", q.b}})).find("opcode 0xff") != std::string::npos);
  pickler r;
  r.proto().get(9).stop();  // memo key never stored
  CHECK(error_of(zip({{"archive/data.pkl", r.b}})).find("never stored") != std::string::npos);
  pickler s;
  s.proto().tuple().stop();  // TUPLE without MARK
  CHECK(error_of(zip({{"archive/data.pkl", s.b}})).find("needs a MARK") != std::string::npos);
}

TEST_CASE("torch_pt: views outside their storage are refused") {
  const auto msg_for = [](view v) {
    const std::string m = error_of(zip_file({v}));
    CAPTURE(m);
    return m;
  };
  CHECK(msg_for({"a", "FloatStorage", "0", 6, 6, {1}, {1}}).find("reads outside its storage") != std::string::npos);
  CHECK(msg_for({"a", "FloatStorage", "0", 6, 1, {2, 3}, {3, 1}}).find("reads outside") != std::string::npos);
  CHECK(msg_for({"a", "FloatStorage", "0", 6, 0, {2, 3}, {4, 1}}).find("reads outside") != std::string::npos);
  CHECK(msg_for({"a", "FloatStorage", "0", 6, 0, {2, 3}, {3}}).find("malformed") != std::string::npos);
  // The persistent id's size disagrees with the stored bytes.
  CHECK(msg_for({"a", "FloatStorage", "0", 7, 0, {2}, {1}}).find("has 24 bytes") != std::string::npos);
  // A stride-0 view may repeat an element (expand), within the copy budget; a huge one is refused.
  const auto ok = torch_state_dict::parse(zip_file({{"a", "FloatStorage", "0", 6, 5, {4}, {0}}}));
  CHECK(ok.at("a").values<float>() == std::vector<float>{5, 5, 5, 5});
  CHECK(msg_for({"a", "FloatStorage", "0", 6, 0, {1 << 30, 1 << 30}, {0, 0}}).find("hostile") != std::string::npos);
  // Same tensor name twice.
  CHECK(error_of(zip_file({{"a", "FloatStorage", "0", 6, 0, {1}, {1}}, {"a", "FloatStorage", "0", 6, 0, {1}, {1}}}))
            .find("appears twice") != std::string::npos);
}

TEST_CASE("torch_pt: big-endian files are refused") {
  CHECK(error_of(zip_file(example_views(), "big")).find("byte order 'big'") != std::string::npos);
  CHECK(error_of(legacy_file(example_views(), false)).find("big-endian") != std::string::npos);
}

TEST_CASE("torch_pt: every truncation of a valid file throws hepgnn::error") {
  for (const bytes& full : {zip_file(example_views()), legacy_file(example_views())}) {
    REQUIRE(error_of(full).empty());
    for (std::size_t n = 0; n < full.size(); ++n) {
      const bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      CAPTURE(n);
      CHECK_FALSE(error_of(cut).empty());
    }
  }
  CHECK(error_of(bytes{0x80, 2, 'K', 1, '.'}).find("not a PyTorch file") != std::string::npos);  // pickle of 1
}

TEST_CASE("torch_pt: the fuzzer's seed files (written by Python's zipfile and by hand) parse, half storage included") {
  for (const char* f : {"zip_format.pt", "legacy_format.pt"}) {
    CAPTURE(f);
    const auto sd = torch_state_dict::load(hepgnn_test::source_path(std::string("tests/fuzz/corpus/torch_pt/") + f));
    CHECK(sd.legacy() == (f[0] == 'l'));
    REQUIRE(sd.names() == std::vector<std::string>{"fc.weight", "fc.bias", "wt", "n", "h"});
    CHECK(sd.at("wt").values<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
    CHECK(sd.at("h").dtype == hepgnn::safetensors_dtype::f16);
    CHECK(sd.at("h").values<double>() == std::vector<double>{1, -2});
  }
}

TEST_CASE("torch_pt: MPGAN's trained generators (zip format): 24 tensors with their shapes") {
  HEPGNN_REQUIRE_DATA(dir, "mpgan_trained_generators");
  for (const char* jet : {"mp_g", "mp_q", "mp_t"}) {
    CAPTURE(jet);
    const auto sd = torch_state_dict::load(dir / jet / "G_best_epoch.pt");
    CHECK_FALSE(sd.legacy());
    REQUIRE(sd.size() == 24);
    const int fe[] = {64, 96, 160, 192}, fn[] = {224, 256, 256, 32};
    for (int t = 0; t < 2; ++t)
      for (int l = 0; l < 3; ++l) {
        const std::string p = "mp_layers." + std::to_string(t);
        const int fn_out = t == 1 && l == 2 ? 3 : fn[l + 1];
        CHECK(sd.at(p + ".fe.net." + std::to_string(l) + ".weight").shape == std::vector<std::int64_t>{fe[l + 1], fe[l]});
        CHECK(sd.at(p + ".fe.net." + std::to_string(l) + ".bias").shape == std::vector<std::int64_t>{fe[l + 1]});
        CHECK(sd.at(p + ".fn.net." + std::to_string(l) + ".weight").shape == std::vector<std::int64_t>{fn_out, fn[l]});
        CHECK(sd.at(p + ".fn.net." + std::to_string(l) + ".bias").shape == std::vector<std::int64_t>{fn_out});
      }
    for (const auto& name : sd.names()) {
      const auto v = sd.at(name).values<float>();
      bool finite = true;
      for (float x : v) finite = finite && std::isfinite(x);
      CHECK(finite);
    }
  }
}

TEST_CASE("torch_pt: JetNet's ParticleNet (legacy format) equals its npz copy, tensor by tensor") {
  HEPGNN_REQUIRE_DATA(dir, "jetnet_particlenet_fpnd");
  const auto sd = torch_state_dict::load(dir / "pnet_state_dict.pt");
  CHECK(sd.legacy());
  CHECK(sd.size() == 130);
  const auto npz = hepgnn::npz_file::open(dir / "pnet_weights.npz");
  REQUIRE(npz.size() == 67);
  for (const auto& name : npz.names()) {
    CAPTURE(name);
    REQUIRE(sd.contains(name));
    const auto want = npz.read(name);
    const auto& got = sd.at(name);
    CHECK(got.shape == want.shape);
    CHECK(got.values<double>() == want.as<double>());
  }
  // edge_convs.<i>.nn.* duplicate edge_nets.<i>.* (each EdgeConv wraps its edge net, sharing its storages).
  int duplicates = 0;
  for (const auto& name : sd.names())
    if (name.rfind("edge_convs.", 0) == 0) {
      std::string twin = "edge_nets." + name.substr(std::string("edge_convs.").size());
      const auto nn = twin.find(".nn.");
      REQUIRE(nn != std::string::npos);
      twin.erase(nn, 3);
      CAPTURE(twin);
      REQUIRE(sd.contains(twin));
      CHECK(sd.at(name).values<double>() == sd.at(twin).values<double>());
      ++duplicates;
    }
  CHECK(duplicates == 63);  // 130 = 67 + 63: all but the fc and the input batch-norm tensors
}

}  // namespace hepgnn_test_torch_pt
