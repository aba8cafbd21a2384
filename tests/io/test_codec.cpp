// The compression slot (io/codec.hpp): gzip and deflate go through the program's registered zlib, every reader has
// one body whatever the translation unit's macros, and a program without zlib gets a clear error naming the fix.
#include "support/doctest.hpp"

#include <filesystem>
#include <string>

#include "hepgnn/io/gzip.hpp"
#include "hepgnn/io/npy.hpp"
#include "support/data.hpp"

namespace hepgnn_test_codec {  // this file's names, apart from the other files of its unity build

namespace fs = std::filesystem;

namespace {

// Takes the program's zlib away for one scope (as in a program that never includes io/zlib.hpp), then puts it back.
struct without_zlib {
  const hepgnn::compression_codec* saved = hepgnn::zlib_codec();
  without_zlib() { hepgnn::register_zlib_codec(nullptr); }
  ~without_zlib() { hepgnn::register_zlib_codec(saved); }
  without_zlib(const without_zlib&) = delete;
  without_zlib& operator=(const without_zlib&) = delete;
};

}  // namespace

TEST_CASE("codec: the test programs register zlib, and gzip text round-trips through it") {
  REQUIRE(hepgnn::have_zlib());  // the tests link the hepgnn::zlib component
  const fs::path p = fs::temp_directory_path() / "hepgnn_test_codec.txt.gz";
  const std::string text = "hit_id,x\n1,2.5\n" + std::string(100000, 'a');
  hepgnn::write_text_file(p, text, /*compress=*/true);
  CHECK(hepgnn::is_gzip_file(p));
  CHECK(fs::file_size(p) < text.size() / 10);
  CHECK(hepgnn::read_text_file(p) == text);
  CHECK_THROWS_WITH_AS(hepgnn::read_text_file(p, "reader", 1000), doctest::Contains("inflates to more than 1000"),
                       hepgnn::error);
  fs::remove(p);
}

TEST_CASE("codec: without zlib, gzip and deflate inputs fail with the fix named, plain inputs still work") {
  const fs::path gz = fs::temp_directory_path() / "hepgnn_test_codec_plain.txt.gz";
  const fs::path plain = fs::temp_directory_path() / "hepgnn_test_codec_plain.txt";
  hepgnn::write_text_file(gz, "abc", true);
  hepgnn::write_text_file(plain, "abc", false);
  {
    without_zlib off;
    CHECK_FALSE(hepgnn::have_zlib());
    const std::string expected =
        "my_reader: '" + gz.string() + "' is gzip-compressed but this program has no zlib: link the hepgnn::zlib "
        "CMake component";
    CHECK_THROWS_WITH_AS(hepgnn::read_text_file(gz, "my_reader"), doctest::Contains(expected.c_str()), hepgnn::error);
    CHECK_THROWS_WITH_AS(hepgnn::write_text_file(gz, "x", true, "my_writer"),
                         doctest::Contains("my_writer: cannot write gzip file"), hepgnn::error);
    CHECK(hepgnn::read_text_file(plain) == "abc");
    const auto z = hepgnn::npz_file::open(hepgnn_test::source_path("tests/data/npy/arrays_compressed.npz"));
    CHECK_THROWS_WITH_AS(z.read("a"), doctest::Contains("is deflate-compressed (numpy.savez_compressed) but this "
                                                        "program has no zlib"),
                         hepgnn::error);
  }
  CHECK(hepgnn::have_zlib());
  CHECK(hepgnn::read_text_file(gz) == "abc");
  fs::remove(gz);
  fs::remove(plain);
}

}  // namespace hepgnn_test_codec
