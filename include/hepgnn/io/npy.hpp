#pragma once
/// @file npy.hpp
/// @brief NumPy .npy arrays (format versions 1.0, 2.0, 3.0; C order) read and written, and .npz archives read
/// (stored entries always, deflate entries through the program's zlib: io/codec.hpp).
///
/// Supported dtypes: <f4 <f8 <i4 <i8 |b1 |u1 (big-endian >f4 >f8 >i4 >i8 are read too). Readers never read
/// outside the given bytes, whatever they hold (fuzzed: tests/fuzz).
///
/// Usage:
///   auto a = hepgnn::read_npy("x.npy");  a.shape;  a.as<float>();  a.as_matrix<double>();
///   hepgnn::write_npy("y.npy", hepgnn::npy_array::from_matrix(m));
///   auto z = hepgnn::npz_file::open("w.npz");  z.names();  z.read("fc2.weight");
///   hepgnn::load_weights(model, z);  // arrays named as in a PyTorch state_dict

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hepgnn/core/tensor.hpp"
#include "hepgnn/io/detail_bytes.hpp"
#include "hepgnn/io/detail_state.hpp"
#include "hepgnn/io/detail_zip.hpp"

namespace hepgnn {

/// @brief Element type of an npy array.
enum class npy_dtype { f4, f8, i4, i8, b1, u1 };

/// @brief NumPy's descr string of a dtype ("<f4", "|b1", ...).
inline const char* npy_descr(npy_dtype d) {
  switch (d) {
    case npy_dtype::f4: return "<f4";
    case npy_dtype::f8: return "<f8";
    case npy_dtype::i4: return "<i4";
    case npy_dtype::i8: return "<i8";
    case npy_dtype::b1: return "|b1";
    case npy_dtype::u1: return "|u1";
  }
  return "?";
}

/// @brief Bytes per element.
inline std::size_t npy_itemsize(npy_dtype d) {
  switch (d) {
    case npy_dtype::f4:
    case npy_dtype::i4: return 4;
    case npy_dtype::f8:
    case npy_dtype::i8: return 8;
    case npy_dtype::b1:
    case npy_dtype::u1: return 1;
  }
  return 0;
}

/// @brief The npy dtype of a C++ type (float -> <f4, double -> <f8, int32 -> <i4, int64 -> <i8, bool, uint8).
template <class T>
constexpr npy_dtype npy_dtype_of() {
  if constexpr (std::is_same_v<T, float>) return npy_dtype::f4;
  else if constexpr (std::is_same_v<T, double>) return npy_dtype::f8;
  else if constexpr (std::is_same_v<T, std::int32_t>) return npy_dtype::i4;
  else if constexpr (std::is_same_v<T, std::int64_t>) return npy_dtype::i8;
  else if constexpr (std::is_same_v<T, bool>) return npy_dtype::b1;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return npy_dtype::u1;
  else static_assert(sizeof(T) == 0, "hepgnn::npy_dtype_of: no npy dtype for this type");
}

/// @brief An n-dimensional array in C (row-major) order: dtype, shape and little-endian element bytes.
struct npy_array {
  npy_dtype dtype = npy_dtype::f8;
  std::vector<std::int64_t> shape;
  detail::bytes data;

  /// @brief Number of elements (1 for a 0-d array).
  std::int64_t size() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }

  /// @brief Number of dimensions.
  std::size_t ndim() const { return shape.size(); }

  /// @brief The elements converted to T, in C order (|b1 gives 0/1; floating to integer throws when a value
  /// does not fit).
  template <class T>
  std::vector<T> as() const {
    if constexpr (std::is_same_v<T, bool>) {  // vector<bool> has no data(): go through double
      const auto d = as<double>();
      std::vector<bool> out(d.size());
      for (std::size_t i = 0; i < d.size(); ++i) out[i] = d[i] != 0;
      return out;
    } else {
      return as_impl<T>();
    }
  }

 private:
  template <class T>
  std::vector<T> as_impl() const {
    const auto n = static_cast<std::size_t>(size());
    HEPGNN_ASSERT(data.size() == n * npy_itemsize(dtype));
    std::vector<T> out(n);
    const unsigned char* s = data.data();
    switch (dtype) {
      case npy_dtype::f4: detail::convert_le<float>(s, n, out.data()); break;
      case npy_dtype::f8: detail::convert_le<double>(s, n, out.data()); break;
      case npy_dtype::i4: detail::convert_le<std::int32_t>(s, n, out.data()); break;
      case npy_dtype::i8: detail::convert_le<std::int64_t>(s, n, out.data()); break;
      case npy_dtype::b1:
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(s[i] != 0);
        break;
      case npy_dtype::u1: detail::convert_le<std::uint8_t>(s, n, out.data()); break;
    }
    return out;
  }

 public:
  /// @brief The array as a row-major matrix: shape[0] rows and the product of the other extents as columns
  /// (a 1-d array becomes one column, a 0-d array 1 x 1).
  template <class T>
  matrix<T> as_matrix() const {
    const std::int64_t rows = shape.empty() ? 1 : shape[0];
    std::uint64_t cols = 1;
    const std::vector<std::int64_t> tail(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
    // With rows == 0 the other extents are not bounded by the element count, so check their product.
    HEPGNN_CHECK(detail::checked_numel(tail, cols), "npy_array::as_matrix: shape ", detail::shape_string(shape),
                 " has too many columns for a matrix");
    matrix<T> m(rows, static_cast<Eigen::Index>(cols));
    const auto v = as<T>();
    std::copy(v.begin(), v.end(), m.data());
    return m;
  }

  /// @brief An array of the given shape from numel(shape) values, stored as `dtype` (default: T's own).
  template <class T>
  static npy_array from(const std::vector<std::int64_t>& shape, const T* values, npy_dtype dtype = npy_dtype_of<T>()) {
    std::uint64_t n = 0;
    HEPGNN_CHECK(detail::checked_numel(shape, n), "npy_array::from: invalid shape ", detail::shape_string(shape),
                 " (extents must be non-negative, product must fit in int64)");
    HEPGNN_CHECK(n == 0 || values != nullptr, "npy_array::from: values is null");
    npy_array a;
    a.dtype = dtype;
    a.shape = shape;
    switch (dtype) {
      case npy_dtype::f4: detail::append_le<float>(a.data, values, n); break;
      case npy_dtype::f8: detail::append_le<double>(a.data, values, n); break;
      case npy_dtype::i4: append_checked<std::int32_t>(a.data, values, n); break;
      case npy_dtype::i8: append_checked<std::int64_t>(a.data, values, n); break;
      case npy_dtype::b1: detail::append_le<bool>(a.data, values, n); break;
      case npy_dtype::u1: append_checked<std::uint8_t>(a.data, values, n); break;
    }
    return a;
  }

  /// @brief An array of the given shape from a vector of values.
  template <class T>
  static npy_array from(const std::vector<std::int64_t>& shape, const std::vector<T>& values,
                        npy_dtype dtype = npy_dtype_of<T>()) {
    std::uint64_t n = 0;
    HEPGNN_CHECK(detail::checked_numel(shape, n) && n == values.size(), "npy_array::from: shape ",
                 detail::shape_string(shape), " needs ", n, " values, got ", values.size());
    if constexpr (std::is_same_v<T, bool>) {  // vector<bool> has no data()
      std::vector<std::uint8_t> tmp(values.begin(), values.end());
      return from(shape, tmp.data(), dtype);
    } else {
      return from(shape, values.data(), dtype);
    }
  }

  /// @brief A 2-d array [rows, cols] from a row-major matrix.
  template <class T>
  static npy_array from_matrix(const matrix<T>& m, npy_dtype dtype = npy_dtype_of<T>()) {
    return from({static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())}, m.data(), dtype);
  }

 private:
  template <class Stored, class T>
  static void append_checked(detail::bytes& out, const T* values, std::uint64_t n) {
    out.reserve(n * sizeof(Stored));
    for (std::uint64_t i = 0; i < n; ++i) {
      const Stored v = detail::safe_cast<Stored>(values[i], i);
      detail::append_le<Stored>(out, &v, 1);
    }
  }
};

namespace detail {

/// @brief Parser for the Python dict literal of an npy header.
class npy_header_parser {
 public:
  npy_header_parser(std::string_view s, const char* who) : s_(s), who_(who) {}

  struct result {
    npy_dtype dtype;
    bool big_endian;
    std::vector<std::int64_t> shape;
  };

  result parse() {
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    std::string descr;
    std::vector<std::int64_t> shape;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        skip_ws();
        if (peek() == '[') hepgnn::fail(who_, ": structured (record) dtypes are not supported");
        descr = parse_string();
        HEPGNN_CHECK(!have_descr, who_, ": duplicate key 'descr' in the header");
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = parse_bool();
        HEPGNN_CHECK(!have_order, who_, ": duplicate key 'fortran_order' in the header");
        have_order = true;
      } else if (key == "shape") {
        shape = parse_shape();
        HEPGNN_CHECK(!have_shape, who_, ": duplicate key 'shape' in the header");
        have_shape = true;
      } else {
        hepgnn::fail(who_, ": unexpected key '", key, "' in the header (expected descr, fortran_order, shape)");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != '}') fail_here("expected ',' or '}'");
    }
    ++pos_;
    skip_ws();
    HEPGNN_CHECK(pos_ == s_.size(), who_, ": unexpected characters after the header dict");
    HEPGNN_CHECK(have_descr && have_order && have_shape, who_,
                 ": header must contain 'descr', 'fortran_order' and 'shape'");
    HEPGNN_CHECK(!fortran, who_,
                 ": fortran_order True (column-major) arrays are not supported; save a C-order array "
                 "(numpy.ascontiguousarray) instead");
    result r{npy_dtype::f8, false, std::move(shape)};
    parse_descr(descr, r);
    return r;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  [[noreturn]] void fail_here(const char* what) const {
    hepgnn::fail(who_, ": malformed header at character ", pos_, ": ", what);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c || pos_ >= s_.size()) {
      const char msg[] = {'e', 'x', 'p', 'e', 'c', 't', 'e', 'd', ' ', '\'', c, '\'', '\0'};
      fail_here(msg);
    }
    ++pos_;
  }
  std::string parse_string() {
    skip_ws();
    const char q = peek();
    if (pos_ >= s_.size() || (q != '\'' && q != '"')) fail_here("expected a quoted string");
    ++pos_;
    const auto end = s_.find(q, pos_);
    if (end == std::string_view::npos) fail_here("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    skip_ws();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail_here("expected True or False");
  }
  std::vector<std::int64_t> parse_shape() {
    expect('(');
    std::vector<std::int64_t> shape;
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      if (pos_ >= s_.size() || peek() < '0' || peek() > '9') fail_here("expected a non-negative integer in the shape");
      std::uint64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        const auto d = static_cast<std::uint64_t>(s_[pos_] - '0');
        if (v > (static_cast<std::uint64_t>(INT64_MAX) - d) / 10) fail_here("shape extent too large");
        v = v * 10 + d;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix
      if (shape.size() >= 64) fail_here("more than 64 dimensions");
      shape.push_back(static_cast<std::int64_t>(v));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != ')') fail_here("expected ',' or ')' in the shape");
    }
    ++pos_;
    return shape;
  }
  void parse_descr(const std::string& d, result& r) const {
    const char* supported = " (supported: <f4 <f8 <i4 <i8 |b1 |u1, and big-endian >f4 >f8 >i4 >i8)";
    HEPGNN_CHECK(d.size() == 3 && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '='), who_,
                 ": unsupported dtype '", d, "'", supported);
    const std::string_view t(d.data() + 1, 2);
    if (t == "f4") r.dtype = npy_dtype::f4;
    else if (t == "f8") r.dtype = npy_dtype::f8;
    else if (t == "i4") r.dtype = npy_dtype::i4;
    else if (t == "i8") r.dtype = npy_dtype::i8;
    else if (t == "b1") r.dtype = npy_dtype::b1;
    else if (t == "u1") r.dtype = npy_dtype::u1;
    else hepgnn::fail(who_, ": unsupported dtype '", d, "'", supported);
    const bool native_big = std::endian::native == std::endian::big;
    r.big_endian = npy_itemsize(r.dtype) > 1 && (d[0] == '>' || (d[0] == '=' && native_big));
    HEPGNN_CHECK(npy_itemsize(r.dtype) == 1 || d[0] != '|', who_, ": dtype '", d, "' needs a byte order");
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  const char* who_;
};

/// The header of an npy file and where its data starts; `head` needs to hold only the preamble and the header.
struct npy_layout {
  npy_header_parser::result header;
  std::uint64_t data_start = 0;
};

inline npy_layout parse_npy_layout(byte_view head, const char* who) {
  static constexpr unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  HEPGNN_CHECK(head.size() >= 10, who, ": ", head.size(), " bytes is too short for an npy file (at least 10)");
  HEPGNN_CHECK(std::equal(std::begin(magic), std::end(magic), head.begin()), who,
               ": not an npy file (magic string \\x93NUMPY missing)");
  const unsigned major = head[6], minor = head[7];
  HEPGNN_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, who, ": unsupported format version ", major,
               ".", minor, " (supported: 1.0, 2.0, 3.0)");
  std::uint64_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = load_le<std::uint16_t>(head.data() + 8);
    start = 10;
  } else {
    HEPGNN_CHECK(head.size() >= 12, who, ": ", head.size(), " bytes is too short for a version ", major,
                 ".0 npy preamble (12)");
    header_len = load_le<std::uint32_t>(head.data() + 8);
    start = 12;
  }
  HEPGNN_CHECK(header_len <= head.size() - start, who, ": header length ", header_len, " exceeds the ",
               head.size() - start, " bytes after the preamble");
  const std::string_view header(reinterpret_cast<const char*>(head.data() + start), header_len);
  return {npy_header_parser(header, who).parse(), start + header_len};
}

/// Big-endian element bytes to little-endian, in place.
inline void npy_to_little_endian(bytes& data, npy_dtype dtype) {
  const std::size_t w = npy_itemsize(dtype);
  for (std::size_t i = 0; i + w <= data.size(); i += w) std::reverse(data.begin() + i, data.begin() + i + w);
}

inline npy_array parse_npy_impl(byte_view file, const char* who) {
  const auto [h, start] = parse_npy_layout(file, who);
  std::uint64_t n = 0, bytes_needed = 0;
  HEPGNN_CHECK(checked_numel(h.shape, n) && checked_mul(n, npy_itemsize(h.dtype), bytes_needed), who, ": shape ",
               shape_string(h.shape), " is too large");
  const std::uint64_t available = file.size() - start;
  HEPGNN_CHECK(available == bytes_needed, who, ": shape ", shape_string(h.shape), " of ",
               npy_descr(h.dtype), " needs ", bytes_needed, " data bytes, the file has ", available,
               available < bytes_needed ? " (truncated)" : " (trailing bytes)");
  npy_array a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  a.data.assign(file.begin() + static_cast<std::ptrdiff_t>(start), file.end());
  if (h.big_endian) npy_to_little_endian(a.data, h.dtype);
  return a;
}

}  // namespace detail

/// @brief Parses the bytes of an .npy file; throws hepgnn::error naming the problem.
inline npy_array parse_npy(detail::byte_view file) { return detail::parse_npy_impl(file, "parse_npy"); }

/// @brief Reads an .npy file.
inline npy_array read_npy(const std::filesystem::path& path) {
  const auto data = detail::read_file_bytes(path, "read_npy");
  const std::string who = "read_npy('" + path.string() + "')";
  return detail::parse_npy_impl(data, who.c_str());
}

/// @brief The bytes of an .npy file (version 1.0, or 2.0 when the header needs it; header padded to 64 bytes
/// as NumPy does).
inline detail::bytes serialize_npy(const npy_array& a) {
  std::uint64_t n = 0, size = 0;
  HEPGNN_CHECK(detail::checked_numel(a.shape, n) && detail::checked_mul(n, npy_itemsize(a.dtype), size) &&
                   size == a.data.size(),
               "serialize_npy: shape ", detail::shape_string(a.shape), " of ", npy_descr(a.dtype), " needs ", size,
               " bytes, the array holds ", a.data.size());
  std::string header = std::string("{'descr': '") + npy_descr(a.dtype) + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < a.shape.size(); ++i) {
    header += std::to_string(a.shape[i]);
    header += (a.shape.size() == 1 || i + 1 < a.shape.size()) ? "," : "";
    if (i + 1 < a.shape.size()) header += ' ';
  }
  header += "), }";
  // Version 1.0 stores the header length in 16 bits; pad as for 1.0 and fall back to 2.0 when it does not fit.
  const bool v1 = (header.size() + 1 + 10 + 63) / 64 * 64 - 10 <= 65535;
  const std::size_t preamble = v1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  detail::bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(v1 ? 1 : 2), 0};
  if (v1) detail::store_le<std::uint16_t>(out, static_cast<std::uint16_t>(header.size()));
  else detail::store_le<std::uint32_t>(out, static_cast<std::uint32_t>(header.size()));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

/// @brief Writes an .npy file numpy.load reads.
inline void write_npy(const std::filesystem::path& path, const npy_array& a) {
  const auto data = serialize_npy(a);
  detail::write_file_bytes(path, data, "write_npy");
}

/// @brief A .npz archive (numpy.savez / savez_compressed) held in memory; arrays are decoded on request.
class npz_file {
 public:
  /// @brief Parses an archive's bytes (the zip directory is checked here; arrays when read).
  static npz_file parse(detail::bytes file) {
    npz_file z;
    z.entries_ = detail::zip_directory(file, "npz");
    z.file_ = std::move(file);
    return z;
  }

  /// @brief Reads an archive from disk.
  static npz_file open(const std::filesystem::path& path) {
    auto data = detail::read_file_bytes(path, "npz_file::open");
    try {
      return parse(std::move(data));
    } catch (const error& e) {
      hepgnn::fail("npz_file::open('", path.string(), "'): ", std::string_view(e.what()).substr(9));
    }
  }

  /// @brief Array names, in archive order, without the ".npy" suffix (as numpy.load(...).files).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(array_name(e.name));
    return out;
  }

  /// @brief True when the archive has an array of that name.
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  /// @brief Decodes the named array; throws hepgnn::error when absent or malformed.
  npy_array read(std::string_view name) const {
    const auto* e = find(name);
    if (!e) {
      std::string list;
      for (const auto& n : names()) list += (list.empty() ? "" : ", ") + n;
      hepgnn::fail("npz_file::read: no array named '", name, "' (the archive has: ", list, ")");
    }
    const auto content = detail::zip_extract(file_, *e, "npz_file::read");
    const std::string who = "npz_file::read('" + std::string(name) + "')";
    return detail::parse_npy_impl(content, who.c_str());
  }

  /// @brief Number of arrays.
  std::size_t size() const { return entries_.size(); }

 private:
  static std::string array_name(const std::string& entry) {
    if (entry.size() >= 4 && entry.compare(entry.size() - 4, 4, ".npy") == 0) return entry.substr(0, entry.size() - 4);
    return entry;
  }
  const detail::zip_entry* find(std::string_view name) const {
    for (const auto& e : entries_)
      if (array_name(e.name) == name || e.name == name) return &e;
    return nullptr;
  }

  detail::bytes file_;
  std::vector<detail::zip_entry> entries_;
};

namespace detail {
/// @brief Decoded arrays of an npz archive seen as a weight source for load_state.
struct npz_state_source {
  std::map<std::string, npy_array> arrays;
  std::vector<std::string> order;
  std::vector<std::string> names() const { return order; }
  const std::vector<std::int64_t>* find_shape(const std::string& name) const {
    auto it = arrays.find(name);
    return it == arrays.end() ? nullptr : &it->second.shape;
  }
  template <class T>
  void read(const std::string& name, T* dst) const {
    const auto v = arrays.at(name).as<T>();
    std::copy(v.begin(), v.end(), dst);
  }
};
}  // namespace detail

/// @brief Loads a model's parameters and buffers from an npz archive of arrays named as in a PyTorch state_dict
/// (e.g. `np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})`). Strict by default, as the
/// safetensors load_weights: a missing, unexpected or mis-shaped array throws naming it and both shapes.
template <class Model>
load_report load_weights(Model& model, const npz_file& archive, bool strict = true) {
  return load_weights(model, archive, load_options{.strict = strict});
}

/// @brief As above, with a prefix (the model is a sub-module of the archive) and/or a name mapping.
template <class Model>
load_report load_weights(Model& model, const npz_file& archive, const load_options& options) {
  detail::npz_state_source src;
  for (const auto& name : archive.names()) {
    if (name.compare(0, options.prefix.size(), options.prefix) != 0) continue;  // outside the sub-module
    src.arrays.emplace(name, archive.read(name));
    src.order.push_back(name);
  }
  return detail::load_state(model, src, options, "load_weights(npz)");
}

}  // namespace hepgnn
