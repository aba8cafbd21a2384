// npy / npz: files written by NumPy (tests/reference/write_npy.py), round trips, real data, malformed input.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/nn/dense.hpp"
#include "support/data.hpp"

namespace hepgnn_test_npy {  // this file's names, apart from the other files of its unity build

using hepgnn::npy_array;
using hepgnn::npy_dtype;

namespace {

std::filesystem::path npy_data(const std::string& name) { return hepgnn_test::source_path("tests/data/npy/" + name); }

// The values write_npy.py stores (see its doc string), as doubles.
std::vector<double> pattern(npy_dtype d, std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double k = static_cast<double>(i);
    switch (d) {
      case npy_dtype::f4:
      case npy_dtype::f8: v[i] = (k - 3) * 0.75; break;
      case npy_dtype::i4:
      case npy_dtype::i8: v[i] = (k - 3) * 7; break;
      case npy_dtype::u1: v[i] = static_cast<double>(i * 37 % 256); break;
      case npy_dtype::b1: v[i] = i % 3 == 0 ? 1 : 0; break;
    }
  }
  return v;
}

std::string error_of(const hepgnn::detail::bytes& file) {
  try {
    hepgnn::parse_npy(file);
  } catch (const hepgnn::error& e) {
    return e.what();
  }
  return "(no error)";
}

hepgnn::detail::bytes with_header(const std::string& dict, std::size_t data_bytes) {
  hepgnn::detail::bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  hepgnn::detail::store_le<std::uint16_t>(out, static_cast<std::uint16_t>(dict.size()));
  out.insert(out.end(), dict.begin(), dict.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

// The fully connected head of JetNet's ParticleNet, named as in its state_dict.
struct fc_head {
  hepgnn::dense<float, 451, 256> fc1{};
  hepgnn::dense<float, 256, 5> fc2{};
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    fc1.for_each_param(prefix + "fc1.0.", f);
    fc2.for_each_param(prefix + "fc2.", f);
  }
};

}  // namespace

TEST_CASE("npy: files written by numpy read with the right dtype, shape and values") {
  struct file_case {
    const char* name;
    npy_dtype dtype;
    std::vector<std::int64_t> shape;
  };
  const std::vector<file_case> cases = {
      {"f4_2x3.npy", npy_dtype::f4, {2, 3}},         {"f8_4.npy", npy_dtype::f8, {4}},
      {"f8_scalar.npy", npy_dtype::f8, {}},          {"i4_3x2x2.npy", npy_dtype::i4, {3, 2, 2}},
      {"i8_5.npy", npy_dtype::i8, {5}},              {"b1_7.npy", npy_dtype::b1, {7}},
      {"u1_2x4.npy", npy_dtype::u1, {2, 4}},         {"f4_0x3.npy", npy_dtype::f4, {0, 3}},
      {"f8_big_endian_2x2.npy", npy_dtype::f8, {2, 2}}, {"i4_big_endian_3.npy", npy_dtype::i4, {3}},
      {"f8_2x2_v2.npy", npy_dtype::f8, {2, 2}},      {"f8_2x2_v3.npy", npy_dtype::f8, {2, 2}},
  };
  for (const auto& c : cases) {
    INFO("file ", c.name);
    const auto a = hepgnn::read_npy(npy_data(c.name));
    CHECK(a.dtype == c.dtype);
    CHECK(a.shape == c.shape);
    const auto expected = pattern(c.dtype, static_cast<std::size_t>(a.size()));
    CHECK(a.as<double>() == expected);
    const auto f = a.as<float>();
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(f[i] == static_cast<float>(expected[i]));
  }
  // Typed access keeps exact integers and booleans.
  CHECK(hepgnn::read_npy(npy_data("i8_5.npy")).as<std::int64_t>() == std::vector<std::int64_t>{-21, -14, -7, 0, 7});
  CHECK(hepgnn::read_npy(npy_data("b1_7.npy")).as<bool>() ==
        std::vector<bool>{true, false, false, true, false, false, true});
  // Matrix view: rows = first extent, columns = the rest.
  const auto m = hepgnn::read_npy(npy_data("i4_3x2x2.npy")).as_matrix<double>();
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 4);
  CHECK(m(2, 3) == (11 - 3) * 7);
  const auto v = hepgnn::read_npy(npy_data("f8_4.npy")).as_matrix<double>();
  CHECK((v.rows() == 4 && v.cols() == 1));
  const auto s = hepgnn::read_npy(npy_data("f8_scalar.npy")).as_matrix<double>();
  CHECK((s.rows() == 1 && s.cols() == 1 && s(0, 0) == -2.25));
}

TEST_CASE("npy: writing reproduces numpy's own bytes, and every dtype round trips") {
  for (const char* name : {"f4_2x3.npy", "f8_4.npy", "f8_scalar.npy", "i4_3x2x2.npy", "i8_5.npy", "b1_7.npy",
                           "u1_2x4.npy", "f4_0x3.npy"}) {
    INFO("file ", name);
    const auto original = hepgnn::detail::read_file_bytes(npy_data(name), "test");
    CHECK(hepgnn::serialize_npy(hepgnn::parse_npy(original)) == original);
  }
  for (auto d : {npy_dtype::f4, npy_dtype::f8, npy_dtype::i4, npy_dtype::i8, npy_dtype::b1, npy_dtype::u1}) {
    INFO("dtype ", hepgnn::npy_descr(d));
    const bool floating = d == npy_dtype::f4 || d == npy_dtype::f8;
    const std::vector<double> values = floating ? std::vector<double>{0.5, -1.0, 2.0, 0.0, 7.0, 1e30}
                                       : d == npy_dtype::u1 ? std::vector<double>{0, 1, 2, 0, 255, 1}
                                                            : std::vector<double>{0, -1, 2, 0, 2147483647, 1};
    const auto a = npy_array::from({3, 2}, values, d);
    const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_npy_roundtrip.npy";
    hepgnn::write_npy(path, a);
    const auto b = hepgnn::read_npy(path);
    std::filesystem::remove(path);
    CHECK(b.dtype == d);
    CHECK(b.shape == std::vector<std::int64_t>{3, 2});
    CHECK(b.data == a.data);
    const auto back = b.as<double>();
    for (std::size_t i = 0; i < values.size(); ++i) {
      double expected = values[i];
      if (d == npy_dtype::b1) expected = values[i] != 0 ? 1 : 0;
      if (d == npy_dtype::f4) expected = static_cast<float>(values[i]);
      CHECK(back[i] == expected);
    }
  }
  hepgnn::matrix<float> m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  const auto a = hepgnn::parse_npy(hepgnn::serialize_npy(npy_array::from_matrix(m)));
  CHECK(a.as_matrix<float>() == m);
  CHECK_THROWS_WITH_AS(npy_array::from({2}, std::vector<double>{1.0, 300.0}, npy_dtype::u1),
                       doctest::Contains("element 1 (300) is not representable"), hepgnn::error);
  CHECK_THROWS_WITH_AS(npy_array::from({2, 2}, std::vector<double>{1.0}), doctest::Contains("needs 4 values, got 1"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::serialize_npy(npy_array{npy_dtype::f4, {3}, {1, 2}}),
                       doctest::Contains("needs 12 bytes, the array holds 2"), hepgnn::error);
}

TEST_CASE("npy: unsupported and malformed files give a clear error") {
  CHECK_THROWS_WITH_AS(hepgnn::read_npy(npy_data("f8_fortran_2x3.npy")),
                       doctest::Contains("fortran_order True (column-major) arrays are not supported"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::read_npy(npy_data("c8_2.npy")), doctest::Contains("unsupported dtype '<c8'"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::read_npy(npy_data("missing.npy")), doctest::Contains("cannot open"), hepgnn::error);
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  CHECK(error_of(with_header(ok, 8)) == "(no error)");
  struct bad_case {
    std::string dict;
    std::size_t data;
    const char* message;
  };
  const std::vector<bad_case> cases = {
      {ok, 4, "needs 8 data bytes, the file has 4 (truncated)"},
      {ok, 9, "needs 8 data bytes, the file has 9 (trailing bytes)"},
      {"{'descr': '<f4', 'shape': (2,), }", 8, "must contain 'descr', 'fortran_order' and 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, "duplicate key 'descr'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", 8, "structured (record) dtypes"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", 4, "unsupported dtype '<f2'"},
      {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,)}", 8, "needs a byte order"},
      {"{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,)}", 8, "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", 8, "expected a non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 8, "shape extent too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 8, "is too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, "expected ',' or '}'"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, "malformed header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, "unexpected characters after the header"},
  };
  for (const auto& c : cases) {
    INFO("header: ", c.dict);
    const auto msg = error_of(with_header(c.dict, c.data));
    CHECK(msg.find("[hepgnn] parse_npy") == 0);
    CHECK(msg.find(c.message) != std::string::npos);
    if (msg.find(c.message) == std::string::npos) MESSAGE(msg);
  }
  auto bad_magic = with_header(ok, 8);
  bad_magic[1] = 'X';
  CHECK(error_of(bad_magic).find("not an npy file") != std::string::npos);
  auto bad_version = with_header(ok, 8);
  bad_version[6] = 4;
  CHECK(error_of(bad_version).find("unsupported format version 4.0") != std::string::npos);
  auto long_header = with_header(ok, 8);
  long_header[8] = 0xFF;
  CHECK(error_of(long_header).find("header length") != std::string::npos);
  // An empty array may have extents whose product overflows; as_matrix refuses instead of overflowing.
  const auto empty = hepgnn::parse_npy(
      with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776, 1099511627776), }", 0));
  CHECK(empty.size() == 0);
  CHECK_THROWS_WITH_AS(empty.as_matrix<float>(), doctest::Contains("has too many columns"), hepgnn::error);
  // Integers outside the target type are refused instead of wrapped.
  const auto f = npy_array::from({1}, std::vector<double>{1e30});
  CHECK_THROWS_WITH_AS(f.as<std::int32_t>(), doctest::Contains("not representable"), hepgnn::error);
}

TEST_CASE("npy: every truncation and deterministic random corruption is rejected or read safely") {
  const auto original = hepgnn::detail::read_file_bytes(npy_data("i4_3x2x2.npy"), "test");
  for (std::size_t n = 0; n < original.size(); ++n) {
    INFO("length ", n);
    CHECK_THROWS_AS(hepgnn::parse_npy(hepgnn::detail::bytes(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n))),
                    hepgnn::error);
  }
  hepgnn::rng gen(7);
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto m = original;
    for (int e = 0, edits = 1 + static_cast<int>(gen.below(3)); e < edits; ++e) {
      const auto pos = static_cast<std::size_t>(gen.below(std::min<std::size_t>(m.size(), 128)));
      switch (gen.below(3)) {
        case 0: m[pos] = static_cast<unsigned char>(gen.below(256)); break;
        case 1: m[pos] = static_cast<unsigned char>("0123456789(),' TF"[gen.below(17)]); break;
        default: m.erase(m.begin() + static_cast<std::ptrdiff_t>(pos)); break;
      }
    }
    try {
      (void)hepgnn::parse_npy(m).as<double>();
    } catch (const hepgnn::error& e) {
      CHECK(std::string(e.what()).find("[hepgnn] parse_npy") == 0);
      ++rejected;
    }
  }
  CHECK(rejected > 1500);
}

TEST_CASE("npz: numpy.savez and savez_compressed archives") {
  for (const char* name : {"arrays.npz", "arrays_compressed.npz"}) {
    INFO("archive ", name);
    const auto z = hepgnn::npz_file::open(npy_data(name));
    CHECK(z.names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(z.contains("c"));
    CHECK(z.contains("c.npy"));
    CHECK_FALSE(z.contains("d"));
    CHECK_THROWS_WITH_AS(z.read("d"), doctest::Contains("no array named 'd' (the archive has: a, b, c)"), hepgnn::error);
    if (!hepgnn::have_zlib() && std::string(name) == "arrays_compressed.npz") {
      CHECK_THROWS_WITH_AS(z.read("a"), doctest::Contains("deflate-compressed"), hepgnn::error);
      continue;
    }
    const auto a = z.read("a"), b = z.read("b"), c = z.read("c");
    CHECK(a.dtype == npy_dtype::f4);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
    CHECK(a.as<double>() == pattern(npy_dtype::f4, 6));
    CHECK(b.dtype == npy_dtype::i8);
    CHECK(b.as<double>() == pattern(npy_dtype::i8, 4));
    CHECK(c.shape == std::vector<std::int64_t>{3, 3});
    CHECK(c.as<double>() == pattern(npy_dtype::f8, 9));
  }
}

TEST_CASE("npz: truncated and corrupted archives give hepgnn::error") {
  for (const char* name : {"arrays.npz", "arrays_compressed.npz"}) {
    INFO("archive ", name);
    const auto original = hepgnn::detail::read_file_bytes(npy_data(name), "test");
    for (std::size_t n = 0; n < original.size(); ++n) {
      INFO("length ", n);
      hepgnn::detail::bytes prefix(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_THROWS_AS(hepgnn::npz_file::parse(prefix), hepgnn::error);
    }
    hepgnn::rng gen(11);
    for (int iter = 0; iter < 2000; ++iter) {
      auto m = original;
      m[gen.below(m.size())] = static_cast<unsigned char>(gen.below(256));
      try {
        const auto z = hepgnn::npz_file::parse(m);
        for (const auto& n : z.names()) (void)z.read(n).as<double>();
      } catch (const hepgnn::error& e) {
        CHECK(std::string(e.what()).find("[hepgnn]") == 0);
      }
    }
  }
  // A flipped data byte fails the CRC check by name.
  auto m = hepgnn::detail::read_file_bytes(npy_data("arrays.npz"), "test");
  m[200] ^= 0x01;  // inside the data of the first entry ("a": header then 24 bytes)
  CHECK_THROWS_WITH_AS(hepgnn::npz_file::parse(m).read("a"), doctest::Contains("fails its CRC-32 check"), hepgnn::error);
  CHECK_THROWS_WITH_AS(hepgnn::npz_file::parse(hepgnn::detail::bytes(30, 0)),
                       doctest::Contains("no end-of-central-directory record"), hepgnn::error);
}

TEST_CASE("npy/npz: real data (jets_fastjet_pythia, jetnet_particlenet_fpnd)") {
  HEPGNN_REQUIRE_DATA(jets, "jets_fastjet_pythia");
  const auto p = hepgnn::read_npy(jets / "jetnet30_particle_features.npy");
  CHECK(p.dtype == npy_dtype::f4);
  REQUIRE(p.shape == std::vector<std::int64_t>{26, 30, 4});
  const auto v = p.as<double>();
  double max_pt_rel = 0;
  for (std::size_t i = 0; i < v.size(); i += 4) {
    CHECK(v[i + 3] == 1.0);  // mask: every jet has >= 30 constituents
    max_pt_rel = std::max(max_pt_rel, v[i + 2]);
  }
  CHECK(max_pt_rel > 0.0);
  CHECK(max_pt_rel < 1.0);

  const auto z = hepgnn::npz_file::open(jets / "emd_reference.npz");
  CHECK(z.size() == 13);
  CHECK(z.contains("jet_rows"));
  CHECK(z.contains("ef_emd_R0.8_beta1_norm0"));
  const auto emd = z.read("ef_emd_R0.8_beta1_norm0");
  CHECK(emd.dtype == npy_dtype::f8);
  REQUIRE(emd.shape == std::vector<std::int64_t>{12, 12});
  const auto e = emd.as_matrix<double>();
  for (int i = 0; i < 12; ++i) {
    CHECK(e(i, i) == doctest::Approx(0.0));
    for (int j = 0; j < 12; ++j) {
      CHECK(e(i, j) == doctest::Approx(e(j, i)).epsilon(1e-9));
      if (i != j) CHECK(e(i, j) > 0.0);
    }
  }
  CHECK(z.read("jet_rows").as<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});

  HEPGNN_REQUIRE_DATA(pnet, "jetnet_particlenet_fpnd");
  const auto w = hepgnn::npz_file::open(pnet / "pnet_weights.npz");
  CHECK(w.size() == 67);
  CHECK(w.read("fc2.weight").shape == std::vector<std::int64_t>{5, 256});
  CHECK(w.read("edge_nets.0.model.1.num_batches_tracked").dtype == npy_dtype::i8);

  // The fc head loads from the archive by state_dict names (non-strict: the EdgeConv weights are not ours).
  fc_head model;
  CHECK_THROWS_WITH_AS(hepgnn::load_weights(model, w), doctest::Contains("63 problem(s), nothing loaded"), hepgnn::error);
  const auto report = hepgnn::load_weights(model, w, false);
  CHECK(report.loaded == std::vector<std::string>{"fc1.0.weight", "fc1.0.bias", "fc2.weight", "fc2.bias"});
  CHECK(report.unexpected.size() == 63);
  const auto fc2 = w.read("fc2.weight").as<float>();
  CHECK(std::equal(fc2.begin(), fc2.end(), model.fc2.weight().data()));
}

}  // namespace hepgnn_test_npy
