#pragma once
/// @file detail_bytes.hpp
/// @brief Internal helpers for binary file readers: whole-file reads, bounds-checked little-endian loads,
/// checked size arithmetic, half / bfloat16 conversion, CRC-32.

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn::detail {

/// @brief Raw bytes of a file or of a part of one.
using bytes = std::vector<unsigned char>;
/// @brief Read-only view of bytes.
using byte_view = std::span<const unsigned char>;

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);

/// @brief Reads a whole file; `who` names the calling function in the error message.
inline bytes read_file_bytes(const std::filesystem::path& path, const char* who) {
  std::error_code ec;  // a directory opens as a stream whose size reads as 2^63 - 1
  HEPGNN_CHECK(!std::filesystem::is_directory(path, ec), who, ": '", path.string(), "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  HEPGNN_CHECK(in.good(), who, ": cannot open '", path.string(), "' for reading");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  HEPGNN_CHECK(size >= 0, who, ": cannot determine the size of '", path.string(), "'");
  in.seekg(0, std::ios::beg);
  bytes data(static_cast<std::size_t>(size));
  if (size > 0) in.read(reinterpret_cast<char*>(data.data()), size);
  HEPGNN_CHECK(in.good() || (size == 0), who, ": failed reading ", size, " bytes from '", path.string(), "'");
  return data;
}

/// @brief Writes bytes to a file, replacing it.
inline void write_file_bytes(const std::filesystem::path& path, byte_view data, const char* who) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  HEPGNN_CHECK(out.good(), who, ": cannot open '", path.string(), "' for writing");
  if (!data.empty()) out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.flush();
  HEPGNN_CHECK(out.good(), who, ": failed writing ", data.size(), " bytes to '", path.string(), "'");
}

/// @brief Loads an unsigned little-endian integer of N bytes at `pos`; the caller has checked the bounds.
template <class U, std::size_t N = sizeof(U)>
U load_le(const unsigned char* p) {
  U v = 0;
  for (std::size_t i = 0; i < N; ++i) v |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return v;
}

/// @brief Appends an unsigned integer as N little-endian bytes.
template <class U>
void store_le(bytes& out, U v, std::size_t n = sizeof(U)) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFF));
}

/// @brief a * b for non-negative sizes, or false when it would exceed `limit`.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out,
                        std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return out <= limit;
}

/// @brief Product of a shape's extents (1 for a scalar), or false on a negative extent or overflow of int64.
inline bool checked_numel(const std::vector<std::int64_t>& shape, std::uint64_t& out) {
  std::uint64_t n = 1;
  for (auto d : shape) {
    if (d < 0) return false;
    if (!checked_mul(n, static_cast<std::uint64_t>(d), n)) return false;
  }
  out = n;
  return true;
}

/// @brief Writes a shape as "[a, b, c]" for messages.
inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// @brief IEEE binary16 bits to float (exact; handles subnormals, infinities and NaN).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

/// @brief bfloat16 bits to float (the upper half of a float).
inline float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

/// @brief CRC-32 (ISO-HDLC, as in zip) of a byte range.
inline std::uint32_t crc32(byte_view data) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/// @brief static_cast that throws instead of invoking undefined behaviour when a floating value does not fit an
/// integer target (NaN, infinity, out of range); `index` names the element in the message.
template <class T, class S>
T safe_cast(S v, std::size_t index) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != S(0);
  } else if constexpr (std::is_integral_v<T> && std::is_floating_point_v<S>) {
    // Both bounds are exact powers of two in floating point, so the comparisons are exact (and false for NaN).
    const S half_range = static_cast<S>(std::numeric_limits<T>::max() / 2 + 1) * S(2);  // 2^digits
    const S lo = std::is_signed_v<T> ? static_cast<S>(std::numeric_limits<T>::min()) : S(0);
    const S hi = std::is_signed_v<T> ? -lo : half_range;
    const bool fits = v >= lo && v < hi;
    HEPGNN_CHECK(fits, "conversion: element ", index, " (", static_cast<double>(v),
                 ") is not representable in the requested integer type");
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}

/// @brief Converts `n` little-endian elements of a primitive type at `src` to T (no alignment assumed).
template <class Stored, class T>
void convert_le(const unsigned char* src, std::size_t n, T* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    Stored v;
    if constexpr (sizeof(Stored) == 1) {
      std::memcpy(&v, src + i, 1);
    } else {
      using U = std::conditional_t<sizeof(Stored) == 2, std::uint16_t,
                                   std::conditional_t<sizeof(Stored) == 4, std::uint32_t, std::uint64_t>>;
      v = std::bit_cast<Stored>(load_le<U>(src + i * sizeof(Stored)));
    }
    dst[i] = safe_cast<T>(v, i);
  }
}

/// @brief Appends `n` values of T as little-endian Stored (converted with static_cast).
template <class Stored, class T>
void append_le(bytes& out, const T* src, std::size_t n) {
  using U = std::conditional_t<sizeof(Stored) == 1, std::uint8_t,
                               std::conditional_t<sizeof(Stored) == 2, std::uint16_t,
                                                  std::conditional_t<sizeof(Stored) == 4, std::uint32_t, std::uint64_t>>>;
  out.reserve(out.size() + n * sizeof(Stored));
  for (std::size_t i = 0; i < n; ++i) store_le(out, std::bit_cast<U>(static_cast<Stored>(src[i])));
}

}  // namespace hepgnn::detail
