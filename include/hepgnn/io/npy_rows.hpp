#pragma once
/// @file npy_rows.hpp
/// @brief Part of an .npy array: its shape from the header alone, and a range of rows (first axis) read without
/// reading the rest of the file, which is what each rank of a data-parallel job reads of a shared file
/// (docs/distributed.md). The same checks as read_npy: a file whose size does not match its header is refused.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hepgnn/io/npy.hpp"

namespace hepgnn {

namespace npy_rows_detail {

struct opened {
  std::ifstream in;
  detail::npy_layout layout;
  std::uint64_t row_bytes = 0;
};

inline opened open_npy(const std::filesystem::path& path, const std::string& who) {
  std::error_code ec;
  HEPGNN_CHECK(!std::filesystem::is_directory(path, ec), who, ": '", path.string(), "' is a directory, not a file");
  opened f;
  f.in.open(path, std::ios::binary);
  HEPGNN_CHECK(f.in.good(), who, ": cannot open '", path.string(), "' for reading");
  f.in.seekg(0, std::ios::end);
  const std::streamoff size = f.in.tellg();
  HEPGNN_CHECK(size >= 0, who, ": cannot determine the size of '", path.string(), "'");
  const auto file_size = static_cast<std::uint64_t>(size);
  // the preamble (at most 12 bytes) says how long the header is; read exactly that much
  detail::bytes head(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, 12)));
  f.in.seekg(0, std::ios::beg);
  f.in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  HEPGNN_CHECK(f.in.good(), who, ": failed reading the npy preamble");
  std::uint64_t header_end = head.size();
  if (head.size() >= 10 && head[6] == 1) header_end = 10 + detail::load_le<std::uint16_t>(head.data() + 8);
  else if (head.size() >= 12 && (head[6] == 2 || head[6] == 3)) header_end = 12 + detail::load_le<std::uint32_t>(head.data() + 8);
  HEPGNN_CHECK(header_end <= file_size, who, ": the npy header (", header_end, " bytes) is longer than the file (",
               file_size, " bytes)");
  HEPGNN_CHECK(header_end <= (std::uint64_t{64} << 20), who, ": npy header of ", header_end, " bytes (limit 64 MiB)");
  const std::size_t had = head.size();
  head.resize(static_cast<std::size_t>(header_end));
  f.in.read(reinterpret_cast<char*>(head.data() + had), static_cast<std::streamsize>(header_end - had));
  HEPGNN_CHECK(f.in.good() || header_end == had, who, ": failed reading the npy header");
  f.layout = detail::parse_npy_layout(head, who.c_str());
  const auto& shape = f.layout.header.shape;
  HEPGNN_CHECK(!shape.empty(), who, ": a 0-d array has no rows");
  std::uint64_t n = 0, bytes_needed = 0;
  HEPGNN_CHECK(detail::checked_numel(shape, n) && detail::checked_mul(n, npy_itemsize(f.layout.header.dtype), bytes_needed),
               who, ": shape ", detail::shape_string(shape), " is too large");
  const std::uint64_t available = file_size - f.layout.data_start;
  HEPGNN_CHECK(available == bytes_needed, who, ": shape ", detail::shape_string(shape), " of ",
               npy_descr(f.layout.header.dtype), " needs ", bytes_needed, " data bytes, the file has ", available,
               available < bytes_needed ? " (truncated)" : " (trailing bytes)");
  f.row_bytes = shape[0] > 0 ? bytes_needed / static_cast<std::uint64_t>(shape[0]) : 0;
  return f;
}

}  // namespace npy_rows_detail

/// @brief The shape of an .npy array, from its header (the data is not read, its size is checked).
inline std::vector<std::int64_t> read_npy_shape(const std::filesystem::path& path) {
  return npy_rows_detail::open_npy(path, "read_npy_shape('" + path.string() + "')").layout.header.shape;
}

/// @brief Rows [begin, begin + count) of an .npy array (first axis), as an array of shape [count, ...].
inline npy_array read_npy_rows(const std::filesystem::path& path, std::int64_t begin, std::int64_t count) {
  const std::string who = "read_npy_rows('" + path.string() + "')";
  auto f = npy_rows_detail::open_npy(path, who);
  const std::int64_t rows = f.layout.header.shape[0];
  HEPGNN_CHECK(begin >= 0 && count >= 0 && begin <= rows && count <= rows - begin, who, ": rows [", begin, ", ",
               begin, " + ", count, ") are outside the array's ", rows, " rows");
  npy_array a;
  a.dtype = f.layout.header.dtype;
  a.shape = f.layout.header.shape;
  a.shape[0] = count;
  a.data.resize(static_cast<std::size_t>(f.row_bytes * static_cast<std::uint64_t>(count)));
  f.in.seekg(static_cast<std::streamoff>(f.layout.data_start + f.row_bytes * static_cast<std::uint64_t>(begin)));
  if (!a.data.empty()) f.in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(a.data.size()));
  HEPGNN_CHECK(f.in.good() || a.data.empty(), who, ": failed reading ", a.data.size(), " bytes");
  if (f.layout.header.big_endian) detail::npy_to_little_endian(a.data, a.dtype);
  return a;
}

}  // namespace hepgnn
