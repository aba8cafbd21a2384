#pragma once
/// @file search_space.hpp
/// @brief hepgnn::search_space (named dimensions: uniform, log-uniform, integer, choice) and hepgnn::trial_config
/// (one sampled point, with typed getters), plus uniform random sampling from a hepgnn::rng.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/dist/search_json.hpp"

namespace hepgnn {

/// @brief One value of a configuration: a real, an integer or a string.
using search_value = std::variant<double, std::int64_t, std::string>;

/// @brief The kinds of search dimensions.
enum class search_kind { uniform, log_uniform, integer, choice };

/// @brief One named dimension. Use search_space's add_* functions rather than filling it by hand.
struct search_dimension {
  std::string name;
  search_kind kind = search_kind::uniform;
  double lo = 0, hi = 1;              ///< bounds (uniform, log-uniform, integer: both inclusive for integers)
  bool log = false;                   ///< integer: sample log-uniformly
  std::vector<search_value> choices;  ///< choice: the options (numbers or strings)
};

/// @brief One point of a search space: (name, value) pairs in the space's order.
class trial_config {
 public:
  trial_config() = default;
  /// @brief Sets (or adds) a value.
  void set(const std::string& name, search_value v) {
    for (auto& [n, x] : values_)
      if (n == name) { x = std::move(v); return; }
    values_.emplace_back(name, std::move(v));
  }
  /// @brief True if the configuration has a value called `name`.
  bool contains(const std::string& name) const {
    for (const auto& nv : values_)
      if (nv.first == name) return true;
    return false;
  }
  /// @brief The value called `name`; throws if there is none.
  const search_value& at(const std::string& name) const {
    for (const auto& nv : values_)
      if (nv.first == name) return nv.second;
    std::string known;
    for (const auto& nv : values_) known += (known.empty() ? "" : ", ") + nv.first;
    fail("trial_config: no value named '", name, "' (the configuration has: ", known, ")");
  }
  /// @brief Typed access: T = double (uniform, log-uniform, numeric choice), std::int64_t or int (integer),
  /// std::string (string choice). A wrong type throws naming the value and its actual type (no silent conversion:
  /// asking an integer dimension for a double is usually a mistake in the space).
  template <class T>
  T get(const std::string& name) const {
    const search_value& v = at(name);
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
      if (const auto* d = std::get_if<double>(&v)) return static_cast<T>(*d);
      fail("trial_config::get<double>: '", name, "' is ", type_name(v), ", not a real");
    } else if constexpr (std::is_integral_v<T>) {
      if (const auto* d = std::get_if<std::int64_t>(&v)) return static_cast<T>(*d);
      fail("trial_config::get<integer>: '", name, "' is ", type_name(v), ", not an integer");
    } else {
      static_assert(std::is_same_v<T, std::string>, "trial_config::get: T must be double, an integer or string");
      if (const auto* s = std::get_if<std::string>(&v)) return *s;
      fail("trial_config::get<string>: '", name, "' is ", type_name(v), ", not a string");
    }
  }
  /// @brief The value as a double, for reals and integers alike (throws for strings).
  double number(const std::string& name) const {
    const search_value& v = at(name);
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* k = std::get_if<std::int64_t>(&v)) return static_cast<double>(*k);
    fail("trial_config::number: '", name, "' is a string, not a number");
  }
  const std::vector<std::pair<std::string, search_value>>& values() const { return values_; }
  std::size_t size() const { return values_.size(); }
  bool operator==(const trial_config&) const = default;

  /// @brief One value as JSON (reals with 17 digits, so they read back exactly).
  static std::string value_json(const search_value& v) {
    if (const auto* d = std::get_if<double>(&v)) return search_json_number(*d);
    if (const auto* k = std::get_if<std::int64_t>(&v)) return std::to_string(*k);
    return search_json_string(std::get<std::string>(v));
  }
  /// @brief The configuration as a JSON object, e.g. {"lr": 0.001, "width": 64, "act": "relu"}.
  std::string to_json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < values_.size(); ++i)
      out += (i ? ", " : "") + search_json_string(values_[i].first) + ": " + value_json(values_[i].second);
    return out + "}";
  }

 private:
  static const char* type_name(const search_value& v) {
    return v.index() == 0 ? "a real" : v.index() == 1 ? "an integer" : "a string";
  }
  std::vector<std::pair<std::string, search_value>> values_;
};

/// @brief A search space: named dimensions, in the order they were added.
class search_space {
 public:
  /// @brief Uniform real in [lo, hi].
  search_space& add_uniform(const std::string& name, double lo, double hi) {
    HEPGNN_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
                 "search_space::add_uniform: '", name, "': need finite lo < hi, got [", lo, ", ", hi, "]");
    return add({name, search_kind::uniform, lo, hi, false, {}});
  }
  /// @brief Log-uniform real in [lo, hi] (0 < lo < hi): learning rates, weight decays.
  search_space& add_log_uniform(const std::string& name, double lo, double hi) {
    HEPGNN_CHECK(std::isfinite(lo) && std::isfinite(hi) && 0 < lo && lo < hi,
                 "search_space::add_log_uniform: '", name, "': need 0 < lo < hi, got [", lo, ", ", hi, "]");
    return add({name, search_kind::log_uniform, lo, hi, false, {}});
  }
  /// @brief Integer in [lo, hi] (both included), uniform or log-uniform (log needs lo >= 1): widths, layer counts.
  search_space& add_integer(const std::string& name, std::int64_t lo, std::int64_t hi, bool log = false) {
    HEPGNN_CHECK(lo <= hi, "search_space::add_integer: '", name, "': need lo <= hi, got [", lo, ", ", hi, "]");
    HEPGNN_CHECK(!log || lo >= 1, "search_space::add_integer: '", name, "': log needs lo >= 1, got ", lo);
    return add({name, search_kind::integer, static_cast<double>(lo), static_cast<double>(hi), log, {}});
  }
  /// @brief One of the given numbers.
  search_space& add_choice(const std::string& name, const std::vector<double>& options) {
    std::vector<search_value> v(options.begin(), options.end());
    return add_choice_values(name, std::move(v));
  }
  /// @brief One of the given strings.
  search_space& add_choice(const std::string& name, const std::vector<std::string>& options) {
    std::vector<search_value> v(options.begin(), options.end());
    return add_choice_values(name, std::move(v));
  }
  search_space& add_choice(const std::string& name, std::initializer_list<const char*> options) {
    return add_choice(name, std::vector<std::string>(options.begin(), options.end()));
  }

  const std::vector<search_dimension>& dimensions() const { return dims_; }
  std::size_t size() const { return dims_.size(); }
  bool empty() const { return dims_.empty(); }
  /// @brief The dimension called `name` (throws if there is none).
  const search_dimension& dimension(const std::string& name) const {
    for (const auto& d : dims_)
      if (d.name == name) return d;
    fail("search_space: no dimension named '", name, "'");
  }

  /// @brief Maps a unit coordinate u in [0, 1) to dimension d's value (the inverse CDF of its prior).
  static search_value from_unit(const search_dimension& d, double u) {
    switch (d.kind) {
      case search_kind::uniform: return d.lo + (d.hi - d.lo) * u;
      case search_kind::log_uniform: return std::exp(std::log(d.lo) + (std::log(d.hi) - std::log(d.lo)) * u);
      case search_kind::integer: {
        // Continuous over [lo - 0.5, hi + 0.5) (log: [lo - 0.5, hi + 0.5) in log space), then rounded: every
        // integer gets its share of the (log) line.
        const double a = d.log ? std::log(d.lo - 0.5) : d.lo - 0.5, b = d.log ? std::log(d.hi + 0.5) : d.hi + 0.5;
        const double x = a + (b - a) * u;
        return clamp_integer(d, d.log ? std::exp(x) : x);
      }
      case search_kind::choice: {
        const auto k = static_cast<std::size_t>(u * static_cast<double>(d.choices.size()));
        return d.choices[std::min(k, d.choices.size() - 1)];
      }
    }
    return 0.0;
  }
  /// @brief Rounds to the nearest integer in [lo, hi].
  static std::int64_t clamp_integer(const search_dimension& d, double x) {
    const double r = std::round(x);
    return static_cast<std::int64_t>(std::min(std::max(r, d.lo), d.hi));
  }
  /// @brief A configuration drawn from the prior (every dimension independent, one uniform draw each, in order).
  trial_config sample(rng& g) const {
    HEPGNN_CHECK(!dims_.empty(), "search_space::sample: the space has no dimensions");
    trial_config c;
    for (const auto& d : dims_) c.set(d.name, from_unit(d, g.uniform()));
    return c;
  }
  /// @brief Checks that `c` holds exactly this space's names, each of the right type and in range.
  void validate(const trial_config& c) const {
    HEPGNN_CHECK(c.size() == dims_.size(), "search_space::validate: config has ", c.size(), " values, space has ",
                 dims_.size(), " dimensions");
    for (const auto& d : dims_) {
      const search_value& v = c.at(d.name);
      bool ok = false;
      if (d.kind == search_kind::choice) {
        for (const auto& o : d.choices) ok = ok || o == v;
      } else if (d.kind == search_kind::integer) {
        ok = v.index() == 1 && std::get<1>(v) >= d.lo && std::get<1>(v) <= d.hi;
      } else {
        ok = v.index() == 0 && std::get<0>(v) >= d.lo && std::get<0>(v) <= d.hi;
      }
      HEPGNN_CHECK(ok, "search_space::validate: '", d.name, "' = ", trial_config::value_json(v),
                   " is not a value of this dimension");
    }
  }
  /// @brief Reads a configuration back from its JSON (trial_config::to_json), typed by this space.
  trial_config parse_config(std::string_view json) const {
    trial_config c;
    for (auto& [name, v] : search_json_parse_flat(json, "config")) {
      const search_dimension& d = dimension(name);
      if (const auto* s = std::get_if<std::string>(&v)) {
        c.set(name, *s);
      } else if (d.kind == search_kind::integer) {
        c.set(name, static_cast<std::int64_t>(std::llround(std::get<double>(v))));
      } else {
        c.set(name, std::get<double>(v));
      }
    }
    validate(c);
    return c;
  }

 private:
  search_space& add_choice_values(const std::string& name, std::vector<search_value> options) {
    HEPGNN_CHECK(!options.empty(), "search_space::add_choice: '", name, "': need at least one option");
    for (const auto& o : options)
      if (const auto* d = std::get_if<double>(&o))
        HEPGNN_CHECK(std::isfinite(*d), "search_space::add_choice: '", name, "': options must be finite, got ", *d);
    return add({name, search_kind::choice, 0, static_cast<double>(options.size()), false, std::move(options)});
  }
  search_space& add(search_dimension d) {
    HEPGNN_CHECK(!d.name.empty(), "search_space: a dimension needs a name");
    for (const auto& e : dims_)
      HEPGNN_CHECK(e.name != d.name, "search_space: dimension '", d.name, "' added twice");
    dims_.push_back(std::move(d));
    return *this;
  }
  std::vector<search_dimension> dims_;
};

}  // namespace hepgnn
