// Reading part of an .npy file (io/npy_rows.hpp) and of JetNet files: a data-parallel rank's share of a dataset.
#include "support/doctest.hpp"
#include "support/temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hepgnn/dist/shard.hpp"
#include "hepgnn/io/jetnet_npy.hpp"
#include "hepgnn/io/npy_rows.hpp"

namespace hepgnn_test_npy_rows {

using namespace hepgnn;
namespace fs = std::filesystem;

using rows_dir = hepgnn_test::temp_dir;

TEST_CASE("read_npy_rows: any row range equals the same rows of the whole array, for 2-d and 3-d arrays") {
  rows_dir dir;
  std::vector<double> v3(5 * 2 * 4);
  for (std::size_t i = 0; i < v3.size(); ++i) v3[i] = 0.5 * static_cast<double>(i) - 3;
  std::vector<std::int32_t> v2(7 * 3);
  for (std::size_t i = 0; i < v2.size(); ++i) v2[i] = static_cast<std::int32_t>(i * i) - 40;
  write_npy(dir.path / "a.npy", npy_array::from<double>({5, 2, 4}, v3));
  write_npy(dir.path / "b.npy", npy_array::from<std::int32_t>({7, 3}, v2));
  CHECK(read_npy_shape(dir.path / "a.npy") == std::vector<std::int64_t>{5, 2, 4});
  const auto whole_a = read_npy(dir.path / "a.npy").as<double>();
  const auto whole_b = read_npy(dir.path / "b.npy").as<std::int64_t>();
  for (std::int64_t begin = 0; begin <= 5; ++begin)
    for (std::int64_t count = 0; begin + count <= 5; ++count) {
      const npy_array part = read_npy_rows(dir.path / "a.npy", begin, count);
      CHECK(part.shape == std::vector<std::int64_t>{count, 2, 4});
      const auto got = part.as<double>();
      CHECK(got == std::vector<double>(whole_a.begin() + begin * 8, whole_a.begin() + (begin + count) * 8));
    }
  const auto mid = read_npy_rows(dir.path / "b.npy", 2, 4).as<std::int64_t>();
  CHECK(mid == std::vector<std::int64_t>(whole_b.begin() + 6, whole_b.begin() + 18));
  CHECK_THROWS_WITH_AS(read_npy_rows(dir.path / "b.npy", 5, 3), doctest::Contains("outside the array's 7 rows"), error);
  CHECK_THROWS_WITH_AS(read_npy_rows(dir.path / "b.npy", -1, 1), doctest::Contains("outside"), error);
  // a truncated copy is refused from its size, before any row is read
  std::ifstream in(dir.path / "b.npy", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  {
    std::ofstream out(dir.path / "cut.npy", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 5));
  }
  CHECK_THROWS_WITH_AS(read_npy_rows(dir.path / "cut.npy", 0, 1), doctest::Contains("(truncated)"), error);
  {
    std::ofstream out(dir.path / "junk.npy", std::ios::binary);
    out << "not an npy file at all";
  }
  CHECK_THROWS_WITH_AS(read_npy_shape(dir.path / "junk.npy"), doctest::Contains("not an npy file"), error);
  CHECK_THROWS_WITH_AS(read_npy_rows(dir.path, 0, 1), doctest::Contains("is a directory"), error);
}

TEST_CASE("contiguous micro-shards of a JetNet file: the ranks' parts make up the file, in order") {
  rows_dir dir;
  auto jets = jet_array<float>::zeros(11, 3);
  rng g(4);
  for (index_t j = 0; j < jets.num_jets; ++j)
    for (index_t p = 0; p < 1 + j % 3; ++p)  // real constituents first, then padding
      jets.row(j, p) << static_cast<float>(g.normal(0, 0.1)), static_cast<float>(g.normal(0, 0.1)),
          static_cast<float>(0.1 + 0.2 * g.uniform()), 1.0f;
  write_jetnet_npy(jets, dir.path / "jets.npy");
  const auto whole = read_jetnet_npy<float>(dir.path / "jets.npy");
  std::size_t next = 0;
  for (int s = 0; s < 4; ++s) {
    const row_range r = contiguous_rows(11, 4, s);
    CHECK(r.first == next);
    CHECK(r.count == (s < 3 ? 3u : 2u));  // 11 = 3 + 3 + 3 + 2
    next += r.count;
    const auto part = read_jetnet_npy_rows<float>(dir.path / "jets.npy", static_cast<std::int64_t>(r.first),
                                                  static_cast<std::int64_t>(r.count));
    REQUIRE(part.num_jets == static_cast<index_t>(r.count));
    for (index_t j = 0; j < part.num_jets; ++j)
      for (index_t p = 0; p < 3; ++p) CHECK(part.row(j, p) == whole.row(static_cast<index_t>(r.first) + j, p));
  }
  CHECK(next == 11);
  CHECK_THROWS_WITH_AS(contiguous_rows(3, 4, 0), doctest::Contains("cannot fill 4 micro-shards"), error);
}

}  // namespace hepgnn_test_npy_rows
