#pragma once
/// @file gzip.hpp
/// @brief Whole-file text reads and writes that are transparent to gzip compression (zlib, when the build
/// defines HEPGNN_HAVE_ZLIB). Files are recognised as gzip by their magic bytes, not by their name.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "hepgnn/core/error.hpp"

#if defined(HEPGNN_HAVE_ZLIB)
#include <zlib.h>
#endif

namespace hepgnn {

/// @brief True when this build can read and write gzip files (zlib was found).
inline constexpr bool have_zlib =
#if defined(HEPGNN_HAVE_ZLIB)
    true;
#else
    false;
#endif

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
/// inflates past `max_inflated_bytes`, or is gzip in a build without zlib.
inline std::string read_text_file(const std::filesystem::path& path, const char* who = "read_text_file",
                                  std::size_t max_inflated_bytes = default_max_inflated_bytes) {
  std::error_code ec;
  HEPGNN_CHECK(!std::filesystem::is_directory(path, ec), who, ": '", path.string(), "' is a directory, not a file");
  std::ifstream probe(path, std::ios::binary);
  HEPGNN_CHECK(probe.good(), who, ": cannot open '", path.string(), "' for reading");
  probe.close();
  std::string out;
  if (is_gzip_file(path)) {
#if defined(HEPGNN_HAVE_ZLIB)
    gzFile f = gzopen(path.string().c_str(), "rb");
    HEPGNN_CHECK(f != nullptr, who, ": cannot open gzip file '", path.string(), "'");
    char buf[1 << 16];
    for (;;) {
      const int n = gzread(f, buf, sizeof(buf));
      if (n < 0) {
        int code = 0;
        const std::string msg = gzerror(f, &code);
        gzclose(f);
        hepgnn::fail(who, ": corrupt gzip data in '", path.string(), "' after ", out.size(), " bytes (zlib: ", msg,
                     ")");
      }
      if (n == 0) break;
      if (out.size() + static_cast<std::size_t>(n) > max_inflated_bytes) {
        gzclose(f);
        hepgnn::fail(who, ": gzip file '", path.string(), "' inflates to more than ", max_inflated_bytes,
                     " bytes (the limit; pass a larger max_inflated_bytes if this file is trusted)");
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    // gzread returns 0 at a truncated end as well; gzclose reports Z_BUF_ERROR in that case.
    const int rc = gzclose(f);
    HEPGNN_CHECK(rc == Z_OK, who, ": gzip file '", path.string(), "' is truncated or corrupt (zlib code ", rc, ")");
#else
    hepgnn::fail(who, ": '", path.string(),
                 "' is gzip-compressed but hepgnn was built without zlib (define HEPGNN_HAVE_ZLIB and link zlib)");
#endif
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

/// @brief Writes text to a file, gzip-compressed when `compress` is true (needs zlib), replacing the file.
inline void write_text_file(const std::filesystem::path& path, std::string_view text, bool compress,
                            const char* who = "write_text_file") {
  if (compress) {
#if defined(HEPGNN_HAVE_ZLIB)
    gzFile f = gzopen(path.string().c_str(), "wb6");
    HEPGNN_CHECK(f != nullptr, who, ": cannot open '", path.string(), "' for writing");
    std::size_t done = 0;
    while (done < text.size()) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(text.size() - done, 1u << 20));
      const int n = gzwrite(f, text.data() + done, chunk);
      if (n <= 0) {
        gzclose(f);
        hepgnn::fail(who, ": failed writing gzip data to '", path.string(), "'");
      }
      done += static_cast<std::size_t>(n);
    }
    HEPGNN_CHECK(gzclose(f) == Z_OK, who, ": failed closing gzip file '", path.string(), "'");
#else
    hepgnn::fail(who, ": cannot write gzip file '", path.string(), "': hepgnn was built without zlib");
#endif
  } else {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    HEPGNN_CHECK(out.good(), who, ": cannot open '", path.string(), "' for writing");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    HEPGNN_CHECK(out.good(), who, ": failed writing '", path.string(), "'");
  }
}

}  // namespace hepgnn
