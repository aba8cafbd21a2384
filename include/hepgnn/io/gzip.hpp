#pragma once
/// @file gzip.hpp
/// @brief Whole-file text reads and writes that are transparent to gzip compression (through the program's zlib:
/// io/codec.hpp). Files are recognised as gzip by their magic bytes, not by their name.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "hepgnn/core/error.hpp"
#include "hepgnn/io/codec.hpp"

namespace hepgnn {

/// @brief Default bound on the bytes a compressed file may inflate to (1 GiB): a 1 MB gzip member can expand to
/// gigabytes, so untrusted files are bounded; a caller who expects more passes a larger limit.
inline constexpr std::size_t default_max_inflated_bytes = std::size_t{1} << 30;

/// @brief True when the file starts with the gzip magic bytes 1f 8b.
inline bool is_gzip_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

/// @brief Reads a whole file as text, decompressing it when it is gzip (several concatenated members are
/// fine). Throws hepgnn::error naming `who` and the file when it cannot be opened, is a directory, is corrupt,
/// inflates past `max_inflated_bytes`, or is gzip in a program without zlib.
inline std::string read_text_file(const std::filesystem::path& path, const char* who = "read_text_file",
                                  std::size_t max_inflated_bytes = default_max_inflated_bytes) {
  std::error_code ec;
  HEPGNN_CHECK(!std::filesystem::is_directory(path, ec), who, ": '", path.string(), "' is a directory, not a file");
  std::ifstream probe(path, std::ios::binary);
  HEPGNN_CHECK(probe.good(), who, ": cannot open '", path.string(), "' for reading");
  probe.close();
  std::string out;
  if (is_gzip_file(path)) {
    const compression_codec* zlib = zlib_codec();
    HEPGNN_CHECK(zlib != nullptr, who, ": '", path.string(), "' is gzip-compressed but ", zlib_missing_advice);
    zlib->read_gzip(path, out, who, max_inflated_bytes);
  } else {
    std::ifstream in(path, std::ios::binary);
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    HEPGNN_CHECK(size >= 0, who, ": cannot determine the size of '", path.string(), "'");
    in.seekg(0, std::ios::beg);
    out.resize(static_cast<std::size_t>(size));
    if (size > 0) in.read(out.data(), size);
    HEPGNN_CHECK(in.good() || size == 0, who, ": failed reading '", path.string(), "'");
  }
  return out;
}

/// @brief Writes text to a file, gzip-compressed when `compress` is true (needs the program's zlib), replacing the file.
inline void write_text_file(const std::filesystem::path& path, std::string_view text, bool compress,
                            const char* who = "write_text_file") {
  if (compress) {
    const compression_codec* zlib = zlib_codec();
    HEPGNN_CHECK(zlib != nullptr, who, ": cannot write gzip file '", path.string(), "': ", zlib_missing_advice);
    zlib->write_gzip(path, text, who);
  } else {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    HEPGNN_CHECK(out.good(), who, ": cannot open '", path.string(), "' for writing");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    HEPGNN_CHECK(out.good(), who, ": failed writing '", path.string(), "'");
  }
}

}  // namespace hepgnn
