#pragma once
/// @file codec.hpp
/// @brief The compression slot of a program: gzip files (io/gzip.hpp) and deflate-compressed zip entries (.npz,
/// .pt) are read through functions that io/zlib.hpp registers when some translation unit of the program includes
/// it (the `hepgnn::zlib` CMake component does so by defining HEPGNN_HAVE_ZLIB).
///
/// Why a slot and not `#ifdef` in the readers: an inline function whose body depends on a macro differs between
/// translation units built with and without it, and the linker keeps one body for the whole program (an ODR
/// violation: a file read in one part of a program could fail for want of zlib although another part links it).
/// With the slot, every hepgnn function has one body; whether zlib is there is a fact of the program, at run time.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace hepgnn {

/// @brief The functions a compression library provides to hepgnn's readers and writers.
struct compression_codec {
  /// Appends the inflated contents of the gzip file `path` to `out`; throws hepgnn::error naming `who` when the data
  /// are corrupt or inflate past `max_bytes`.
  void (*read_gzip)(const std::filesystem::path& path, std::string& out, const char* who, std::size_t max_bytes);
  /// Writes `text` gzip-compressed to `path`, replacing the file; throws naming `who` on failure.
  void (*write_gzip)(const std::filesystem::path& path, std::string_view text, const char* who);
  /// Inflates the raw deflate stream src[0, n) into exactly out_n bytes at dst; false when it is not such a stream.
  bool (*inflate_raw)(const std::uint8_t* src, std::uint64_t n, std::uint8_t* dst, std::uint64_t out_n);
};

namespace detail {
inline std::atomic<const compression_codec*> zlib_slot{nullptr};
}  // namespace detail

/// @brief Makes `codec` the program's gzip/deflate implementation (io/zlib.hpp calls this at static initialisation).
inline void register_zlib_codec(const compression_codec* codec) {
  detail::zlib_slot.store(codec, std::memory_order_release);
}

/// @brief The program's gzip/deflate implementation, or nullptr when no translation unit included io/zlib.hpp.
inline const compression_codec* zlib_codec() { return detail::zlib_slot.load(std::memory_order_acquire); }

/// @brief True when this program can read and write gzip files and deflate zip entries.
inline bool have_zlib() { return zlib_codec() != nullptr; }

/// @brief The advice every reader gives when a compressed input meets a program without zlib.
inline constexpr const char* zlib_missing_advice =
    "this program has no zlib: link the hepgnn::zlib CMake component (or include hepgnn/io/zlib.hpp in one source "
    "file and link zlib)";

}  // namespace hepgnn

#if defined(HEPGNN_HAVE_ZLIB)
#include "hepgnn/io/zlib.hpp"  // only adds zlib's registration; no function above changes
#endif
