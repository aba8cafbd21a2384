#pragma once
/// @file safetensors.hpp
/// @brief safetensors weight files (the format PyTorch / Hugging Face use): read, write, and load into or save
/// from any model with for_each_param.
///
/// Format: 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}`,
/// then the byte buffer; offsets are relative to the buffer, which the tensors cover without holes or overlaps.
/// The reader never reads outside the given bytes, whatever they hold (it is fuzzed: tests/fuzz).
///
/// Usage:
///   hepgnn::save_weights(model, "model.safetensors");              // names from for_each_param / for_each_buffer
///   hepgnn::load_weights(model, "model.safetensors");              // strict: throws naming any mismatch
///   auto report = hepgnn::load_weights(model, path, false);        // non-strict: see report.summary()
///   auto file = hepgnn::safetensors_file::load(path);              // raw access: file.at("0.weight").values<float>()

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hepgnn/io/detail_bytes.hpp"
#include "hepgnn/io/detail_json.hpp"
#include "hepgnn/io/detail_state.hpp"

namespace hepgnn {

/// @brief Element types of a safetensors tensor. All can be read (converted to the caller's type); the
/// writer converts from float, double, int32 and int64 into any of them except F16 / BF16.
enum class safetensors_dtype { boolean, u8, i8, i16, i32, i64, f16, bf16, f32, f64 };

/// @brief The file's name of a dtype ("F32", "BF16", ...).
inline const char* dtype_name(safetensors_dtype d) {
  switch (d) {
    case safetensors_dtype::boolean: return "BOOL";
    case safetensors_dtype::u8: return "U8";
    case safetensors_dtype::i8: return "I8";
    case safetensors_dtype::i16: return "I16";
    case safetensors_dtype::i32: return "I32";
    case safetensors_dtype::i64: return "I64";
    case safetensors_dtype::f16: return "F16";
    case safetensors_dtype::bf16: return "BF16";
    case safetensors_dtype::f32: return "F32";
    case safetensors_dtype::f64: return "F64";
  }
  return "?";
}

/// @brief Bytes per element of a dtype.
inline std::size_t dtype_size(safetensors_dtype d) {
  switch (d) {
    case safetensors_dtype::boolean:
    case safetensors_dtype::u8:
    case safetensors_dtype::i8: return 1;
    case safetensors_dtype::i16:
    case safetensors_dtype::f16:
    case safetensors_dtype::bf16: return 2;
    case safetensors_dtype::i32:
    case safetensors_dtype::f32: return 4;
    case safetensors_dtype::i64:
    case safetensors_dtype::f64: return 8;
  }
  return 0;
}

/// @brief The dtype with the given file name, or nullopt when unknown.
inline std::optional<safetensors_dtype> dtype_from_name(std::string_view s) {
  for (auto d : {safetensors_dtype::boolean, safetensors_dtype::u8, safetensors_dtype::i8, safetensors_dtype::i16,
                 safetensors_dtype::i32, safetensors_dtype::i64, safetensors_dtype::f16, safetensors_dtype::bf16,
                 safetensors_dtype::f32, safetensors_dtype::f64})
    if (s == dtype_name(d)) return d;
  return std::nullopt;
}

/// @brief The natural file dtype of a C++ element type (float -> F32, double -> F64, int32 -> I32, ...).
template <class T>
constexpr safetensors_dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return safetensors_dtype::f32;
  else if constexpr (std::is_same_v<T, double>) return safetensors_dtype::f64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return safetensors_dtype::i32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return safetensors_dtype::i64;
  else if constexpr (std::is_same_v<T, std::int16_t>) return safetensors_dtype::i16;
  else if constexpr (std::is_same_v<T, std::int8_t>) return safetensors_dtype::i8;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return safetensors_dtype::u8;
  else if constexpr (std::is_same_v<T, bool>) return safetensors_dtype::boolean;
  else static_assert(sizeof(T) == 0, "hepgnn::dtype_of: no safetensors dtype for this type");
}

/// @brief One named tensor: dtype, shape (PyTorch order, row-major) and its little-endian bytes.
struct safetensors_tensor {
  std::string name;
  safetensors_dtype dtype = safetensors_dtype::f32;
  std::vector<std::int64_t> shape;
  detail::bytes data;

  /// @brief Number of elements (1 for a scalar of shape []).
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }

  /// @brief Converts the values into dst (numel() elements) as T.
  template <class T>
  void read(T* dst) const {
    const auto n = static_cast<std::size_t>(numel());
    HEPGNN_ASSERT(data.size() == n * dtype_size(dtype));
    const unsigned char* s = data.data();
    switch (dtype) {
      case safetensors_dtype::boolean:
        for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i] != 0);
        break;
      case safetensors_dtype::u8: detail::convert_le<std::uint8_t>(s, n, dst); break;
      case safetensors_dtype::i8: detail::convert_le<std::int8_t>(s, n, dst); break;
      case safetensors_dtype::i16: detail::convert_le<std::int16_t>(s, n, dst); break;
      case safetensors_dtype::i32: detail::convert_le<std::int32_t>(s, n, dst); break;
      case safetensors_dtype::i64: detail::convert_le<std::int64_t>(s, n, dst); break;
      case safetensors_dtype::f16:
        for (std::size_t i = 0; i < n; ++i)
          dst[i] = detail::safe_cast<T>(detail::half_to_float(detail::load_le<std::uint16_t>(s + 2 * i)), i);
        break;
      case safetensors_dtype::bf16:
        for (std::size_t i = 0; i < n; ++i)
          dst[i] = detail::safe_cast<T>(detail::bfloat16_to_float(detail::load_le<std::uint16_t>(s + 2 * i)), i);
        break;
      case safetensors_dtype::f32: detail::convert_le<float>(s, n, dst); break;
      case safetensors_dtype::f64: detail::convert_le<double>(s, n, dst); break;
    }
  }

  /// @brief The values converted to T.
  template <class T>
  std::vector<T> values() const {
    if constexpr (std::is_same_v<T, bool>) {  // vector<bool> has no data(): go through double
      const auto d = values<double>();
      std::vector<bool> out(d.size());
      for (std::size_t i = 0; i < d.size(); ++i) out[i] = d[i] != 0;
      return out;
    } else {
      std::vector<T> out(static_cast<std::size_t>(numel()));
      read(out.data());
      return out;
    }
  }
};

/// @brief A safetensors file in memory: named tensors (in header order) and optional string metadata.
class safetensors_file {
 public:
  /// @brief The file's "__metadata__" (string to string); written when non-empty.
  std::map<std::string, std::string> metadata;

  /// @brief Largest header accepted (the reference implementation's limit): bounds memory on hostile input.
  static constexpr std::uint64_t max_header_bytes = 100u << 20;

  /// @brief Parses a whole file's bytes; throws hepgnn::error naming the first problem.
  static safetensors_file parse(detail::byte_view file) { return parse_impl(file); }

  /// @brief Reads and parses a file.
  static safetensors_file load(const std::filesystem::path& path) {
    const auto data = detail::read_file_bytes(path, "safetensors_file::load");
    try {
      return parse_impl(data);
    } catch (const error& e) {
      hepgnn::fail("safetensors_file::load('", path.string(), "'): ", std::string_view(e.what()).substr(9));
    }
  }

  /// @brief The file's bytes: header padded with spaces to a multiple of 8, then the tensors in order.
  detail::bytes serialize() const {
    std::string header = "{";
    bool first = true;
    if (!metadata.empty()) {
      header += "\"__metadata__\":{";
      for (const auto& [k, v] : metadata) {
        if (!first) header += ',';
        first = false;
        detail::json::append_string(header, k);
        header += ':';
        detail::json::append_string(header, v);
      }
      header += '}';
      first = false;
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      if (!first) header += ',';
      first = false;
      detail::json::append_string(header, t.name);
      header += ":{\"dtype\":\"";
      header += dtype_name(t.dtype);
      header += "\",\"shape\":[";
      for (std::size_t i = 0; i < t.shape.size(); ++i) {
        if (i) header += ',';
        header += std::to_string(t.shape[i]);
      }
      header += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(offset + t.data.size()) + "]}";
      offset += t.data.size();
    }
    header += '}';
    while ((8 + header.size()) % 8 != 0) header += ' ';
    detail::bytes out;
    out.reserve(8 + header.size() + offset);
    detail::store_le<std::uint64_t>(out, header.size());
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& t : tensors_) out.insert(out.end(), t.data.begin(), t.data.end());
    return out;
  }

  /// @brief Writes the file (see serialize()).
  void save(const std::filesystem::path& path) const {
    const auto data = serialize();
    detail::write_file_bytes(path, data, "safetensors_file::save");
  }

  /// @brief Adds a tensor from numel(shape) values of T, converted to `dtype` (default: T's own dtype).
  template <class T>
  void add(const std::string& name, const std::vector<std::int64_t>& shape, const T* values,
           safetensors_dtype dtype = dtype_of<T>()) {
    std::uint64_t n = 0;
    HEPGNN_CHECK(detail::checked_numel(shape, n), "safetensors_file::add: tensor '", name, "' has invalid shape ",
                 detail::shape_string(shape), " (extents must be non-negative, product must fit in int64)");
    HEPGNN_CHECK(n == 0 || values != nullptr, "safetensors_file::add: tensor '", name, "': values is null");
    detail::bytes data;
    switch (dtype) {
      case safetensors_dtype::boolean: detail::append_le<bool>(data, values, n); break;
      case safetensors_dtype::u8: append_checked<std::uint8_t>(data, values, n, name); break;
      case safetensors_dtype::i8: append_checked<std::int8_t>(data, values, n, name); break;
      case safetensors_dtype::i16: append_checked<std::int16_t>(data, values, n, name); break;
      case safetensors_dtype::i32: append_checked<std::int32_t>(data, values, n, name); break;
      case safetensors_dtype::i64: append_checked<std::int64_t>(data, values, n, name); break;
      case safetensors_dtype::f32: detail::append_le<float>(data, values, n); break;
      case safetensors_dtype::f64: detail::append_le<double>(data, values, n); break;
      case safetensors_dtype::f16:
      case safetensors_dtype::bf16:
        hepgnn::fail("safetensors_file::add: tensor '", name, "': writing ", dtype_name(dtype),
                     " is not supported (write F32 or F64)");
    }
    add_raw(name, dtype, shape, std::move(data));
  }

  /// @brief Adds a tensor from a vector of values.
  template <class T>
  void add(const std::string& name, const std::vector<std::int64_t>& shape, const std::vector<T>& values,
           safetensors_dtype dtype = dtype_of<T>()) {
    std::uint64_t n = 0;
    HEPGNN_CHECK(detail::checked_numel(shape, n) && n == values.size(), "safetensors_file::add: tensor '", name,
                 "' has shape ", detail::shape_string(shape), " but ", values.size(), " values were given");
    add(name, shape, values.data(), dtype);
  }

  /// @brief Adds a tensor from its little-endian bytes (size must be numel * dtype size).
  void add_raw(const std::string& name, safetensors_dtype dtype, const std::vector<std::int64_t>& shape,
               detail::bytes data) {
    HEPGNN_CHECK(name != "__metadata__", "safetensors_file::add: '__metadata__' is reserved, not a tensor name");
    HEPGNN_CHECK(!contains(name), "safetensors_file::add: duplicate tensor name '", name, "'");
    std::uint64_t n = 0, size = 0;
    HEPGNN_CHECK(detail::checked_numel(shape, n) && detail::checked_mul(n, dtype_size(dtype), size),
                 "safetensors_file::add: tensor '", name, "' has invalid shape ", detail::shape_string(shape));
    HEPGNN_CHECK(size == data.size(), "safetensors_file::add: tensor '", name, "' ", dtype_name(dtype),
                 detail::shape_string(shape), " needs ", size, " bytes, got ", data.size());
    index_.emplace(name, tensors_.size());
    tensors_.push_back({name, dtype, shape, std::move(data)});
  }

  /// @brief True when a tensor of that name exists.
  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }

  /// @brief The tensor of that name, or null.
  const safetensors_tensor* find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

  /// @brief The tensor of that name; throws hepgnn::error when absent.
  const safetensors_tensor& at(std::string_view name) const {
    const auto* t = find(name);
    HEPGNN_CHECK(t, "safetensors_file::at: no tensor named '", name, "' (the file has ", tensors_.size(), " tensors)");
    return *t;
  }

  /// @brief All tensors, in header (or insertion) order.
  const std::vector<safetensors_tensor>& tensors() const { return tensors_; }

  /// @brief All tensor names, in order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  /// @brief Number of tensors.
  std::size_t size() const { return tensors_.size(); }

  /// @brief Shape of the named tensor, or null (the weight-loading source interface).
  const std::vector<std::int64_t>* find_shape(const std::string& name) const {
    const auto* t = find(name);
    return t ? &t->shape : nullptr;
  }

  /// @brief Converts the named tensor's values into dst (the weight-loading source interface).
  template <class T>
  void read(const std::string& name, T* dst) const { at(name).read(dst); }

 private:
  template <class Stored, class T>
  static void append_checked(detail::bytes& data, const T* values, std::uint64_t n, const std::string& name) {
    std::vector<Stored> tmp(n);
    try {
      for (std::uint64_t i = 0; i < n; ++i) tmp[i] = detail::safe_cast<Stored>(values[i], i);
    } catch (const error& e) {
      hepgnn::fail("safetensors_file::add: tensor '", name, "': ", std::string_view(e.what()).substr(9));
    }
    detail::append_le<Stored>(data, tmp.data(), n);
  }

  static safetensors_file parse_impl(detail::byte_view file) {
    constexpr const char* who = "safetensors";
    HEPGNN_CHECK(file.size() >= 8, who, ": file is ", file.size(), " bytes, too short for the 8-byte header length");
    const std::uint64_t n = detail::load_le<std::uint64_t>(file.data());
    HEPGNN_CHECK(n <= file.size() - 8, who, ": header length ", n, " exceeds the ", file.size() - 8,
                 " bytes after the length field");
    HEPGNN_CHECK(n <= max_header_bytes, who, ": header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    HEPGNN_CHECK(n >= 2, who, ": header length ", n, " is too short for a JSON object");
    const std::string_view header(reinterpret_cast<const char*>(file.data() + 8), n);
    HEPGNN_CHECK(header[0] == '{', who, ": header must start with '{', got byte ",
                 static_cast<int>(static_cast<unsigned char>(header[0])));
    const detail::json::value root = detail::json::parse(header, "safetensors");
    HEPGNN_CHECK(root.type == detail::json::value::kind::object, who, ": header must be a JSON object");
    const detail::byte_view buffer = file.subspan(8 + n);

    safetensors_file out;
    struct span_info {
      std::uint64_t begin, end;
      std::size_t tensor;
    };
    std::vector<span_info> spans;
    for (std::size_t k = 0; k < root.keys.size(); ++k) {
      const std::string& name = root.keys[k];
      const auto& v = root.items[k];
      if (name == "__metadata__") {
        HEPGNN_CHECK(v.type == detail::json::value::kind::object, who, ": \"__metadata__\" must be an object, got ",
                     detail::json::kind_name(v.type));
        for (std::size_t m = 0; m < v.keys.size(); ++m) {
          HEPGNN_CHECK(v.items[m].type == detail::json::value::kind::string, who, ": \"__metadata__\" value of \"",
                       v.keys[m], "\" must be a string, got ", detail::json::kind_name(v.items[m].type));
          out.metadata[v.keys[m]] = v.items[m].text;
        }
        continue;
      }
      HEPGNN_CHECK(v.type == detail::json::value::kind::object, who, ": tensor '", name, "' must be an object, got ",
                   detail::json::kind_name(v.type));
      for (const auto& key : v.keys)
        HEPGNN_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", who, ": tensor '", name,
                     "' has unexpected key \"", key, "\"");
      const auto* dt = v.find("dtype");
      const auto* sh = v.find("shape");
      const auto* off = v.find("data_offsets");
      HEPGNN_CHECK(dt && sh && off, who, ": tensor '", name, "' needs \"dtype\", \"shape\" and \"data_offsets\"");
      HEPGNN_CHECK(dt->type == detail::json::value::kind::string, who, ": tensor '", name,
                   "': \"dtype\" must be a string");
      const auto dtype = dtype_from_name(dt->text);
      HEPGNN_CHECK(dtype.has_value(), who, ": tensor '", name, "' has unsupported dtype \"", dt->text,
                   "\" (supported: BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64)");
      HEPGNN_CHECK(sh->type == detail::json::value::kind::array, who, ": tensor '", name,
                   "': \"shape\" must be an array");
      std::vector<std::int64_t> shape;
      for (const auto& d : sh->items) {
        std::int64_t e = 0;
        HEPGNN_CHECK(detail::json::to_nonnegative_int64(d, e), who, ": tensor '", name,
                     "': shape entries must be non-negative integers, got ",
                     d.type == detail::json::value::kind::number ? d.text : detail::json::kind_name(d.type));
        shape.push_back(e);
      }
      std::uint64_t numel = 0, size = 0;
      HEPGNN_CHECK(detail::checked_numel(shape, numel) && detail::checked_mul(numel, dtype_size(*dtype), size), who,
                   ": tensor '", name, "': shape ", detail::shape_string(shape), " overflows");
      HEPGNN_CHECK(off->type == detail::json::value::kind::array && off->items.size() == 2, who, ": tensor '", name,
                   "': \"data_offsets\" must be an array [begin, end]");
      std::int64_t b = 0, e = 0;
      HEPGNN_CHECK(detail::json::to_nonnegative_int64(off->items[0], b) &&
                       detail::json::to_nonnegative_int64(off->items[1], e),
                   who, ": tensor '", name, "': \"data_offsets\" must be non-negative integers");
      HEPGNN_CHECK(b <= e, who, ": tensor '", name, "': data_offsets [", b, ", ", e, "] has begin > end");
      HEPGNN_CHECK(static_cast<std::uint64_t>(e) <= buffer.size(), who, ": tensor '", name, "': data_offsets [", b,
                   ", ", e, "] exceed the data buffer of ", buffer.size(), " bytes");
      HEPGNN_CHECK(static_cast<std::uint64_t>(e - b) == size, who, ": tensor '", name, "': data_offsets [", b, ", ",
                   e, "] hold ", e - b, " bytes, but ", dtype_name(*dtype), detail::shape_string(shape), " needs ", size);
      spans.push_back({static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(e), out.tensors_.size()});
      const auto first = buffer.begin() + b;
      out.index_.emplace(name, out.tensors_.size());
      out.tensors_.push_back({name, *dtype, std::move(shape), detail::bytes(first, first + (e - b))});
    }
    // The tensors must tile the buffer exactly: sorted by offset, each starts where the previous ended.
    std::sort(spans.begin(), spans.end(),
              [](const span_info& a, const span_info& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    std::uint64_t pos = 0;
    for (const auto& s : spans) {
      const auto& nm = out.tensors_[s.tensor].name;
      HEPGNN_CHECK(s.begin >= pos, who, ": tensor '", nm, "' data_offsets [", s.begin, ", ", s.end,
                   "] overlap the previous tensor, which ends at ", pos);
      HEPGNN_CHECK(s.begin == pos, who, ": tensor '", nm, "' data_offsets [", s.begin, ", ", s.end,
                   "] leave a hole after byte ", pos, " of the data buffer");
      pos = s.end;
    }
    HEPGNN_CHECK(pos == buffer.size(), who, ": the tensors cover ", pos, " bytes but the data buffer has ",
                 buffer.size(), " (trailing bytes)");
    return out;
  }

  std::vector<safetensors_tensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

/// @brief A model's parameters and buffers (for_each_param / for_each_buffer names and shapes) as a file in
/// memory; values stored in the model's scalar type (F32 for float, F64 for double).
template <class Model>
safetensors_file to_safetensors(Model& model) {
  safetensors_file file;
  for_each_state(model, "", [&](const std::string& name, auto p) { file.add(name, p.shape, p.value); });
  return file;
}

/// @brief Saves a model's parameters and buffers to a safetensors file PyTorch can read
/// (`safetensors.torch.load_file`), with optional string metadata.
template <class Model>
void save_weights(Model& model, const std::filesystem::path& path, const std::map<std::string, std::string>& metadata = {}) {
  auto file = to_safetensors(model);
  file.metadata = metadata;
  file.save(path);
}

/// @brief Copies tensors from a parsed file into the model, converting dtypes to the model's scalar.
/// Strict (default): a missing, unexpected or mis-shaped tensor throws hepgnn::error naming every such tensor
/// and both shapes, and the model is left unchanged. Non-strict: loads what matches and reports the rest.
template <class Model>
load_report load_weights(Model& model, const safetensors_file& file, bool strict = true) {
  return detail::load_state(model, file, load_options{.strict = strict}, "load_weights");
}

/// @brief As above, with a prefix (the model is a sub-module of the file) and/or a name mapping.
template <class Model>
load_report load_weights(Model& model, const safetensors_file& file, const load_options& options) {
  return detail::load_state(model, file, options, "load_weights");
}

/// @brief Reads a safetensors file and loads it into the model (see the overload taking a safetensors_file).
template <class Model>
load_report load_weights(Model& model, const std::filesystem::path& path, bool strict = true) {
  const auto file = safetensors_file::load(path);
  return detail::load_state(model, file, load_options{.strict = strict}, "load_weights('" + path.string() + "')");
}

/// @brief Reads a safetensors file and loads it with a prefix and/or a name mapping (see load_options).
template <class Model>
load_report load_weights(Model& model, const std::filesystem::path& path, const load_options& options) {
  const auto file = safetensors_file::load(path);
  return detail::load_state(model, file, options, "load_weights('" + path.string() + "')");
}

}  // namespace hepgnn
