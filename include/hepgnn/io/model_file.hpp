#pragma once
/// @file model_file.hpp
/// @brief The model shape every family shares, and its one file format: save_model / load_model.
///
/// A model family M is
///   - `M::config_type`: plain settings with `for_each_field(f)` calling `f(name, member, lo, hi)` for each
///     number, flag, enumeration (stored as its value) or list of integers (lo/hi bound what a file may ask
///     for: sizes from untrusted files are checked before anything is built);
///   - `M::family` (a short name) and `M::format_version` (raised when a file written by the new code would
///     be misread by the old);
///   - `explicit M(const config_type&)` (the config holds the initialisation seed), `config()`,
///     `for_each_param` / `for_each_buffer`, and `infer(inputs..., workspace&) const` returning the output held
///     in the caller's workspace (the workspace is the only mutable state, so one model serves many threads).
/// Training goes through train/trainer.hpp's fit(); models hold no training loops.
///
/// The file is safetensors (PyTorch reads the weights) whose string metadata holds "hepgnn.family",
/// "hepgnn.format_version", "hepgnn.library_version" and one "<family>.<field>" entry per config field.

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/version.hpp"

namespace hepgnn {

template <class M>
concept model_family = requires(const M& m) {
  typename M::config_type;
  { M::family } -> std::convertible_to<std::string_view>;
  { M::format_version } -> std::convertible_to<int>;
  { m.config() } -> std::convertible_to<const typename M::config_type&>;
} && std::constructible_from<M, const typename M::config_type&>;

namespace detail {

inline std::string metadata_number(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back exactly
  return std::string(buf, r.ptr);
}

inline double parse_metadata_number(std::string_view key, std::string_view s) {
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  HEPGNN_CHECK(ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v), "load_model: metadata '", key,
               "' = '", s, "' is not a finite number");
  return v;
}

template <class V>
void read_metadata_value(std::string_view key, std::string_view s, V& out, double lo, double hi) {
  auto one = [&](std::string_view text) {
    const double v = parse_metadata_number(key, text);
    HEPGNN_CHECK(v >= lo && v <= hi, "load_model: metadata '", key, "' = ", text, " is outside [", lo, ", ", hi, "]");
    return v;
  };
  if constexpr (std::is_same_v<V, bool>) {
    HEPGNN_CHECK(s == "0" || s == "1", "load_model: metadata '", key, "' = '", s, "' must be 0 or 1");
    out = s == "1";
  } else if constexpr (std::is_integral_v<V> || std::is_enum_v<V>) {
    const double v = one(s);
    HEPGNN_CHECK(v == std::floor(v), "load_model: metadata '", key, "' = ", s, " must be an integer");
    out = static_cast<V>(static_cast<long long>(v));
  } else if constexpr (std::is_floating_point_v<V>) {
    out = static_cast<V>(one(s));
  } else {  // std::vector<int>: comma-separated
    out.clear();
    while (!s.empty()) {
      const auto comma = s.find(',');
      typename V::value_type item{};
      read_metadata_value(key, s.substr(0, comma), item, lo, hi);
      out.push_back(item);
      s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    }
    HEPGNN_CHECK(!out.empty(), "load_model: metadata '", key, "' is an empty list");
  }
}

template <class V>
std::string write_metadata_value(const V& v) {
  if constexpr (std::is_same_v<V, bool>) {
    return v ? "1" : "0";
  } else if constexpr (std::is_arithmetic_v<V> || std::is_enum_v<V>) {
    return metadata_number(static_cast<double>(v));
  } else {
    std::string s;
    for (const auto& item : v) {
      if (!s.empty()) s.push_back(',');
      s.append(write_metadata_value(item));
    }
    return s;
  }
}

}  // namespace detail

/// @brief A config as "<prefix>.<field>" string metadata.
template <class Config>
std::map<std::string, std::string> config_to_metadata(const Config& cfg, std::string_view prefix) {
  std::map<std::string, std::string> m;
  Config copy = cfg;  // for_each_field hands out references, so it is not const
  copy.for_each_field([&](std::string_view name, const auto& value, double, double) {
    m[std::string(prefix) + "." + std::string(name)] = detail::write_metadata_value(value);
  });
  return m;
}

/// @brief Reads a config from "<prefix>.<field>" metadata; each value is checked against its field's bounds.
/// A missing key keeps the field's default only when `missing_ok` is true (fields added after a file was
/// written); otherwise it throws naming the key.
template <class Config>
Config config_from_metadata(const std::map<std::string, std::string>& m, std::string_view prefix,
                            bool missing_ok = false) {
  Config cfg{};
  cfg.for_each_field([&](std::string_view name, auto& value, double lo, double hi) {
    const std::string key = std::string(prefix) + "." + std::string(name);
    const auto it = m.find(key);
    if (it == m.end()) {
      HEPGNN_CHECK(missing_ok, "load_model: the file's metadata lacks '", key, "'");
      return;
    }
    detail::read_metadata_value(key, it->second, value, lo, hi);
  });
  return cfg;
}

/// @brief Throws unless every field of cfg lies within its bounds (every item of a list field): a model's
/// constructor calls it, so a config that a file could not hold is refused before anything is built.
template <class Config>
void check_config(const Config& cfg, std::string_view who) {
  Config copy = cfg;  // for_each_field hands out references, so it is not const
  copy.for_each_field([&](std::string_view name, const auto& value, double lo, double hi) {
    auto one = [&](double v) {
      HEPGNN_CHECK(v >= lo && v <= hi, who, ": config field '", name, "' = ", v, " is outside [", lo, ", ", hi, "]");
    };
    using V = std::decay_t<decltype(value)>;
    if constexpr (std::is_arithmetic_v<V> || std::is_enum_v<V>) {
      one(static_cast<double>(value));
    } else {
      for (const auto& item : value) one(static_cast<double>(item));
    }
  });
}

/// @brief Saves weights and buffers with the family, format version, library version and config as metadata.
template <model_family M>
void save_model(M& model, const std::filesystem::path& path) {
  auto meta = config_to_metadata(model.config(), M::family);
  meta["hepgnn.family"] = std::string(M::family);
  meta["hepgnn.format_version"] = std::to_string(M::format_version);
  meta["hepgnn.library_version"] = version;
  save_weights(model, path, meta);
}

/// @brief Builds a model from a file written by save_model, already read (`name` names it in messages): checks
/// the family and format version, reads and bounds the config, then loads every tensor strictly (a missing, extra
/// or mis-shaped tensor throws). For families that also read older files of their own.
template <model_family M>
M load_model(const safetensors_file& file, const std::string& name) {
  const auto& m = file.metadata;
  const auto fam = m.find("hepgnn.family");
  HEPGNN_CHECK(fam != m.end(), "load_model('", name, "'): no 'hepgnn.family' in the metadata (not written by ",
               "save_model? load its tensors with load_weights)");
  HEPGNN_CHECK(fam->second == M::family, "load_model('", name, "'): the file holds a '", fam->second,
               "' model, not '", M::family, "'");
  const auto ver = m.find("hepgnn.format_version");
  HEPGNN_CHECK(ver != m.end(), "load_model('", name, "'): no 'hepgnn.format_version' in the metadata");
  int v = 0;
  detail::read_metadata_value("hepgnn.format_version", ver->second, v, 1, std::numeric_limits<int>::max());
  HEPGNN_CHECK(v <= M::format_version, "load_model('", name, "'): format version ", v,
               " is newer than this build reads (", M::format_version, "); update hepgnn");
  M model(config_from_metadata<typename M::config_type>(m, M::family, /*missing_ok=*/v < M::format_version));
  load_weights(model, file, true);
  return model;
}

/// @brief Builds a model from a file written by save_model (see above).
template <model_family M>
M load_model(const std::filesystem::path& path) {
  return load_model<M>(safetensors_file::load(path), path.string());
}

}  // namespace hepgnn
