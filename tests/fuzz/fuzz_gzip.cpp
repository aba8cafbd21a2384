// libFuzzer target: io/gzip.hpp's read_text_file on arbitrary bytes (as a file, gzip when they start with 1f 8b)
// must return the text or throw hepgnn::error (corrupt, truncated, or inflating past the limit), never read out of
// bounds or grow past its limit. The limit is small here (1 MiB) so that bombs are found quickly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "hepgnn/io/gzip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("hepgnn_fuzz_gzip_" + std::to_string(::getpid()));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  constexpr std::size_t limit = std::size_t{1} << 20;
  try {
    const std::string text = hepgnn::read_text_file(path, "fuzz_gzip", limit);
    if (text.size() > limit && hepgnn::is_gzip_file(path)) std::abort();
    if (!hepgnn::is_gzip_file(path) && text != std::string(reinterpret_cast<const char*>(data), size)) std::abort();
  } catch (const hepgnn::error&) {
  }
  return 0;
}
