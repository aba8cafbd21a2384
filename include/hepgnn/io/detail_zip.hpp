#pragma once
/// @file detail_zip.hpp
/// @brief Internal: a bounds-checked zip directory reader and entry extractor (stored entries; deflate through the
/// program's zlib, io/codec.hpp), enough for NumPy's .npz archives, including the zip64
/// extra fields numpy.savez writes.

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/io/codec.hpp"
#include "hepgnn/io/detail_bytes.hpp"

namespace hepgnn::detail {

/// @brief One file of a zip archive, as the central directory describes it.
struct zip_entry {
  std::string name;
  std::uint16_t flags = 0;
  std::uint16_t method = 0;  ///< 0 stored, 8 deflate
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t data_offset = 0;  ///< where the (compressed) bytes start in the archive
};

/// @brief Reads and checks the central directory; every entry's data range lies inside `file`.
inline std::vector<zip_entry> zip_directory(byte_view file, const char* who) {
  constexpr std::uint32_t eocd_sig = 0x06054b50, loc64_sig = 0x07064b50, eocd64_sig = 0x06064b50,
                          central_sig = 0x02014b50, local_sig = 0x04034b50;
  const std::uint64_t size = file.size();
  HEPGNN_CHECK(size >= 22, who, ": ", size, " bytes is too short for a zip archive");
  // End of central directory record: last 22 bytes plus a comment of up to 65535 bytes.
  std::uint64_t eocd = size;
  const std::uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  for (std::uint64_t i = size - 22 + 1; i-- > lowest;) {
    if (load_le<std::uint32_t>(file.data() + i) == eocd_sig &&
        i + 22 + load_le<std::uint16_t>(file.data() + i + 20) <= size) {
      eocd = i;
      break;
    }
  }
  HEPGNN_CHECK(eocd != size, who, ": not a zip archive (no end-of-central-directory record)");
  const unsigned char* e = file.data() + eocd;
  std::uint64_t count = load_le<std::uint16_t>(e + 10);
  std::uint64_t cd_size = load_le<std::uint32_t>(e + 12);
  std::uint64_t cd_offset = load_le<std::uint32_t>(e + 16);
  const bool zip64 = count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF;
  if (zip64) {
    HEPGNN_CHECK(eocd >= 20 && load_le<std::uint32_t>(file.data() + eocd - 20) == loc64_sig, who,
                 ": zip64 archive without its zip64 end-of-directory locator");
    const std::uint64_t at = load_le<std::uint64_t>(file.data() + eocd - 20 + 8);
    HEPGNN_CHECK(at <= size && size - at >= 56 && load_le<std::uint32_t>(file.data() + at) == eocd64_sig, who,
                 ": zip64 end-of-directory record missing at offset ", at);
    count = load_le<std::uint64_t>(file.data() + at + 32);
    cd_size = load_le<std::uint64_t>(file.data() + at + 40);
    cd_offset = load_le<std::uint64_t>(file.data() + at + 48);
  } else {
    HEPGNN_CHECK(load_le<std::uint16_t>(e + 4) == 0 && load_le<std::uint16_t>(e + 6) == 0, who,
                 ": multi-part zip archives are not supported");
  }
  HEPGNN_CHECK(cd_offset <= size && cd_size <= size - cd_offset, who, ": central directory (offset ", cd_offset,
               ", ", cd_size, " bytes) lies outside the ", size, "-byte archive");
  HEPGNN_CHECK(count <= cd_size / 46, who, ": ", count, " entries cannot fit a central directory of ", cd_size,
               " bytes");
  std::vector<zip_entry> entries;
  entries.reserve(count);
  std::set<std::string> seen;
  std::uint64_t pos = cd_offset;
  const std::uint64_t cd_end = cd_offset + cd_size;
  for (std::uint64_t k = 0; k < count; ++k) {
    HEPGNN_CHECK(cd_end - pos >= 46 && load_le<std::uint32_t>(file.data() + pos) == central_sig, who,
                 ": central directory entry ", k, " is malformed");
    const unsigned char* c = file.data() + pos;
    zip_entry z;
    z.flags = load_le<std::uint16_t>(c + 8);
    z.method = load_le<std::uint16_t>(c + 10);
    z.crc = load_le<std::uint32_t>(c + 16);
    z.compressed_size = load_le<std::uint32_t>(c + 20);
    z.uncompressed_size = load_le<std::uint32_t>(c + 24);
    const std::uint64_t name_len = load_le<std::uint16_t>(c + 28), extra_len = load_le<std::uint16_t>(c + 30),
                        comment_len = load_le<std::uint16_t>(c + 32);
    std::uint64_t local = load_le<std::uint32_t>(c + 42);
    HEPGNN_CHECK(cd_end - pos - 46 >= name_len + extra_len + comment_len, who, ": central directory entry ", k,
                 " runs past the directory");
    z.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extra field: 64-bit values for the 32-bit fields that hold 0xFFFFFFFF, in this order.
    const unsigned char* x = c + 46 + name_len;
    for (std::uint64_t xp = 0; xp + 4 <= extra_len;) {
      const std::uint16_t id = load_le<std::uint16_t>(x + xp), len = load_le<std::uint16_t>(x + xp + 2);
      HEPGNN_CHECK(xp + 4 + len <= extra_len, who, ": entry '", z.name, "' has a truncated extra field");
      if (id == 0x0001) {
        std::uint64_t q = xp + 4;
        const std::uint64_t qe = xp + 4 + len;
        auto take = [&](std::uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          HEPGNN_CHECK(q + 8 <= qe, who, ": entry '", z.name, "' has a truncated zip64 extra field");
          field = load_le<std::uint64_t>(x + q);
          q += 8;
        };
        take(z.uncompressed_size);
        take(z.compressed_size);
        take(local);
      }
      xp += 4 + len;
    }
    HEPGNN_CHECK(seen.insert(z.name).second, who, ": duplicate entry '", z.name, "'");
    HEPGNN_CHECK(local <= size && size - local >= 30 && load_le<std::uint32_t>(file.data() + local) == local_sig, who,
                 ": entry '", z.name, "' has no local header at offset ", local);
    const std::uint64_t data = local + 30 + load_le<std::uint16_t>(file.data() + local + 26) +
                               load_le<std::uint16_t>(file.data() + local + 28);
    HEPGNN_CHECK(data <= size && z.compressed_size <= size - data, who, ": entry '", z.name, "' (",
                 z.compressed_size, " bytes at offset ", data, ") runs past the end of the ", size, "-byte archive");
    z.data_offset = data;
    entries.push_back(std::move(z));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

/// @brief The uncompressed bytes of one entry, CRC-checked.
inline bytes zip_extract(byte_view file, const zip_entry& z, const char* who) {
  HEPGNN_CHECK((z.flags & 1u) == 0, who, ": entry '", z.name, "' is encrypted, which is not supported");
  const auto* src = file.data() + z.data_offset;
  bytes out;
  if (z.method == 0) {
    HEPGNN_CHECK(z.compressed_size == z.uncompressed_size, who, ": stored entry '", z.name, "' has compressed size ",
                 z.compressed_size, " but uncompressed size ", z.uncompressed_size);
    out.assign(src, src + z.compressed_size);
  } else if (z.method == 8) {
    const compression_codec* zlib = zlib_codec();
    HEPGNN_CHECK(zlib != nullptr, who, ": entry '", z.name, "' is deflate-compressed (numpy.savez_compressed) but ",
                 zlib_missing_advice, "; or save with numpy.savez");
    // Deflate expands at most ~1032:1; a larger claim is corrupt (and would allocate without bound).
    HEPGNN_CHECK(z.uncompressed_size <= z.compressed_size * 1032 + 64, who, ": entry '", z.name, "' claims ",
                 z.uncompressed_size, " bytes from ", z.compressed_size, " compressed bytes");
    out.resize(z.uncompressed_size);
    HEPGNN_CHECK(zlib->inflate_raw(src, z.compressed_size, out.data(), z.uncompressed_size), who, ": entry '", z.name,
                 "' is not a valid deflate stream of the size the directory states (", z.uncompressed_size, " bytes)");
  } else {
    hepgnn::fail(who, ": entry '", z.name, "' uses compression method ", z.method, " (supported: 0 stored, 8 deflate)");
  }
  HEPGNN_CHECK(crc32(out) == z.crc, who, ": entry '", z.name, "' fails its CRC-32 check (corrupted archive)");
  return out;
}

}  // namespace hepgnn::detail
