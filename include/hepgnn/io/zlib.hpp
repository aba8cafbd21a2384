#pragma once
/// @file zlib.hpp
/// @brief zlib behind hepgnn's compression slot (io/codec.hpp): including this header in any one source file of a
/// program (and linking zlib; the `hepgnn::zlib` CMake component does both) lets every reader of the program
/// open gzip files and deflate-compressed .npz/.pt entries.

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "hepgnn/core/error.hpp"
#include "hepgnn/io/codec.hpp"

namespace hepgnn::detail {

inline void zlib_read_gzip(const std::filesystem::path& path, std::string& out, const char* who,
                           std::size_t max_bytes) {
  gzFile f = gzopen(path.string().c_str(), "rb");
  HEPGNN_CHECK(f != nullptr, who, ": cannot open gzip file '", path.string(), "'");
  char buf[1 << 16];
  const std::size_t start = out.size();
  for (;;) {
    const int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      hepgnn::fail(who, ": corrupt gzip data in '", path.string(), "' after ", out.size() - start, " bytes (zlib: ",
                   msg, ")");
    }
    if (n == 0) break;
    if (out.size() - start + static_cast<std::size_t>(n) > max_bytes) {
      gzclose(f);
      hepgnn::fail(who, ": gzip file '", path.string(), "' inflates to more than ", max_bytes,
                   " bytes (the limit; pass a larger max_inflated_bytes if this file is trusted)");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  // gzread returns 0 at a truncated end as well; gzclose reports Z_BUF_ERROR in that case.
  const int rc = gzclose(f);
  HEPGNN_CHECK(rc == Z_OK, who, ": gzip file '", path.string(), "' is truncated or corrupt (zlib code ", rc, ")");
}

inline void zlib_write_gzip(const std::filesystem::path& path, std::string_view text, const char* who) {
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
}

inline bool zlib_inflate_raw(const std::uint8_t* src, std::uint64_t n, std::uint8_t* dst, std::uint64_t out_n) {
  z_stream s{};
  if (inflateInit2(&s, -15) != Z_OK) return false;
  std::uint64_t in_left = n, out_left = out_n;
  s.next_in = const_cast<Bytef*>(src);
  unsigned char empty_out = 0;  // zlib rejects a null next_out even when avail_out is 0
  s.next_out = out_n == 0 ? &empty_out : dst;
  int rc = Z_OK;
  constexpr std::uint64_t chunk = 1u << 30;  // avail_* are 32-bit
  while (rc == Z_OK) {
    const auto in_now = static_cast<uInt>(std::min(in_left, chunk));
    const auto out_now = static_cast<uInt>(std::min(out_left, chunk));
    s.avail_in = in_now;
    s.avail_out = out_now;
    rc = inflate(&s, Z_NO_FLUSH);
    in_left -= in_now - s.avail_in;
    out_left -= out_now - s.avail_out;
    if (rc == Z_OK && in_now == s.avail_in && out_now == s.avail_out) rc = Z_BUF_ERROR;  // no progress
  }
  inflateEnd(&s);
  return rc == Z_STREAM_END && out_left == 0;
}

inline constexpr compression_codec zlib_functions{&zlib_read_gzip, &zlib_write_gzip, &zlib_inflate_raw};

// Runs at static initialisation in every program that includes this header (GCC and Clang initialise inline
// variables eagerly); registering twice stores the same pointer.
inline const bool zlib_registered = (register_zlib_codec(&zlib_functions), true);

}  // namespace hepgnn::detail
