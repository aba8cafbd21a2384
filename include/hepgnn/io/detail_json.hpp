#pragma once
/// @file detail_json.hpp
/// @brief Internal: a small, strict JSON reader and string writer, enough for safetensors headers.
/// Never reads past the given bytes; bounded nesting depth; duplicate object keys rejected.

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn::detail::json {

/// @brief Maximum nesting of arrays and objects (safetensors needs 3).
inline constexpr int max_depth = 64;

/// @brief A parsed JSON value. Numbers keep their text so integers convert exactly.
struct value {
  /// @brief Which JSON type the value holds.
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  /// @brief String contents (unescaped, UTF-8) or the number's text.
  std::string text;
  /// @brief Object keys, in file order (parallel to `items` for objects).
  std::vector<std::string> keys;
  /// @brief Array elements or object member values.
  std::vector<value> items;

  /// @brief Member with the given key, or null when absent (objects only).
  const value* find(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

/// @brief Name of a kind for messages.
inline const char* kind_name(value::kind k) {
  switch (k) {
    case value::kind::null: return "null";
    case value::kind::boolean: return "boolean";
    case value::kind::number: return "number";
    case value::kind::string: return "string";
    case value::kind::array: return "array";
    case value::kind::object: return "object";
  }
  return "?";
}

/// @brief Recursive-descent parser over [begin, end); `who` prefixes error messages.
class parser {
 public:
  parser(std::string_view text, const char* who) : p_(text.data()), begin_(text.data()), end_(text.data() + text.size()), who_(who) {}

  /// @brief Parses one value followed only by whitespace.
  value parse_document() {
    value v = parse_value(0);
    skip_ws();
    if (p_ != end_) fail_here("unexpected trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail_here(const char* what) const {
    hepgnn::fail(who_, ": malformed JSON header at byte ", p_ - begin_, ": ", what);
  }
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool consume(char c) {
    skip_ws();
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void expect(char c, const char* what) {
    if (!consume(c)) fail_here(what);
  }
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) >= word.size() && std::string_view(p_, word.size()) == word) {
      p_ += word.size();
      return true;
    }
    return false;
  }

  value parse_value(int depth) {
    skip_ws();
    if (p_ == end_) fail_here("unexpected end, expected a value");
    value v;
    const char c = *p_;
    if (c == '{') {
      if (depth >= max_depth) fail_here("nesting too deep");
      ++p_;
      v.type = value::kind::object;
      if (consume('}')) return v;
      do {
        skip_ws();
        if (p_ == end_ || *p_ != '"') fail_here("expected a string key");
        std::string key = parse_string();
        expect(':', "expected ':' after a key");
        v.items.push_back(parse_value(depth + 1));
        v.keys.push_back(std::move(key));
      } while (consume(','));
      expect('}', "expected ',' or '}' in an object");
      reject_duplicate_keys(v);
    } else if (c == '[') {
      if (depth >= max_depth) fail_here("nesting too deep");
      ++p_;
      v.type = value::kind::array;
      if (consume(']')) return v;
      do {
        v.items.push_back(parse_value(depth + 1));
      } while (consume(','));
      expect(']', "expected ',' or ']' in an array");
    } else if (c == '"') {
      v.type = value::kind::string;
      v.text = parse_string();
    } else if (literal("true")) {
      v.type = value::kind::boolean;
      v.boolean = true;
    } else if (literal("false")) {
      v.type = value::kind::boolean;
    } else if (literal("null")) {
      v.type = value::kind::null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.type = value::kind::number;
      v.text = parse_number();
    } else {
      fail_here("unexpected character, expected a value");
    }
    return v;
  }

  // Sorting views keeps this O(n log n) for headers with many tensors.
  void reject_duplicate_keys(const value& v) const {
    if (v.keys.size() < 2) return;
    std::vector<std::string_view> sorted(v.keys.begin(), v.keys.end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i] == sorted[i - 1]) hepgnn::fail(who_, ": malformed JSON header: duplicate key \"", sorted[i], "\"");
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  std::string parse_number() {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_ || !is_digit(*p_)) fail_here("expected digits in a number");
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) fail_here("expected digits after '.'");
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) fail_here("expected digits in an exponent");
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    return std::string(start, p_);
  }

  unsigned hex4() {
    if (end_ - p_ < 4) fail_here("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail_here("bad hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Called with *p_ == '"'.
  std::string parse_string() {
    ++p_;
    std::string s;
    while (true) {
      if (p_ == end_) fail_here("unterminated string");
      const char c = *p_++;
      if (c == '"') return s;
      if (static_cast<unsigned char>(c) < 0x20) fail_here("control character in a string");
      if (c != '\\') {
        s += c;
        continue;
      }
      if (p_ == end_) fail_here("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // high surrogate: needs a low one
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') fail_here("unpaired surrogate in a \\u escape");
            p_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail_here("unpaired surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail_here("unpaired surrogate in a \\u escape");
          }
          append_utf8(s, cp);
          break;
        }
        default: fail_here("unknown escape in a string");
      }
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  const char* who_;
};

/// @brief Parses a JSON document; errors name `who`.
inline value parse(std::string_view text, const char* who) { return parser(text, who).parse_document(); }

/// @brief A number value as a non-negative int64, or false when it is not a plain non-negative integer in range.
inline bool to_nonnegative_int64(const value& v, std::int64_t& out) {
  if (v.type != value::kind::number || v.text.empty() || v.text[0] == '-') return false;
  std::uint64_t n = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;  // fractions and exponents are not integers here
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (n > (static_cast<std::uint64_t>(INT64_MAX) - d) / 10) return false;
    n = n * 10 + d;
  }
  out = static_cast<std::int64_t>(n);
  return true;
}

/// @brief Appends s as a JSON string literal (quotes and escapes added).
inline void append_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace hepgnn::detail::json
