#pragma once
/// @file search_json.hpp
/// @brief The little JSON the search needs: writing strings and numbers that read back exactly, and reading back
/// one flat object (string keys; number or string values), which is all a journal line or a config holds.
/// (io/ has a JSON writer, but it lives in a higher layer.)

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief A JSON string literal (quotes and escapes added).
inline std::string search_json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

/// @brief A double that reads back to the same bits (%.17g); non-finite values become null (JSON has no NaN).
inline std::string search_json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

/// @brief One value of a flat JSON object as read back: a number (null reads as NaN) or a string.
using search_json_value = std::variant<double, std::string>;

/// @brief Reads a flat JSON object `{"k": 1.5, "s": "text", "n": null}` into (key, value) pairs in file order.
/// Nested objects and arrays are rejected (a journal line never holds them); `what` names the source in errors.
inline std::vector<std::pair<std::string, search_json_value>> search_json_parse_flat(std::string_view text,
                                                                                     std::string_view what) {
  std::size_t i = 0;
  const auto bad = [&](const char* expected) {
    fail("search_json_parse_flat: ", what, ": expected ", expected, " at offset ", i, " in '",
         std::string(text.substr(0, 200)), "'");
  };
  const auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
  };
  const auto read_string = [&]() -> std::string {
    if (i >= text.size() || text[i] != '"') bad("a string");
    ++i;
    std::string s;
    while (i < text.size() && text[i] != '"') {
      char c = text[i++];
      if (c == '\\') {
        if (i >= text.size()) bad("an escape");
        c = text[i++];
        switch (c) {
          case 'n': s += '\n'; break;
          case 'r': s += '\r'; break;
          case 't': s += '\t'; break;
          case 'u': {
            if (i + 4 > text.size()) bad("four hex digits");
            const unsigned code = static_cast<unsigned>(std::strtoul(std::string(text.substr(i, 4)).c_str(), nullptr, 16));
            if (code >= 0x80) bad("an ASCII \\u escape");  // the writer escapes control characters only
            s += static_cast<char>(code);
            i += 4;
            break;
          }
          default: s += c;  // \" \\ \/
        }
      } else {
        s += c;
      }
    }
    if (i >= text.size()) bad("a closing quote");
    ++i;
    return s;
  };
  std::vector<std::pair<std::string, search_json_value>> out;
  skip();
  if (i >= text.size() || text[i] != '{') bad("'{'");
  ++i;
  skip();
  if (i < text.size() && text[i] == '}') return out;
  for (;;) {
    skip();
    std::string key = read_string();
    skip();
    if (i >= text.size() || text[i] != ':') bad("':'");
    ++i;
    skip();
    if (i < text.size() && text[i] == '"') {
      out.emplace_back(std::move(key), read_string());
    } else if (text.substr(i, 4) == "null") {
      out.emplace_back(std::move(key), std::nan(""));
      i += 4;
    } else {
      const std::string rest(text.substr(i, 40));
      char* end = nullptr;
      const double x = std::strtod(rest.c_str(), &end);
      if (end == rest.c_str()) bad("a number, a string or null");
      out.emplace_back(std::move(key), x);
      i += static_cast<std::size_t>(end - rest.c_str());
    }
    skip();
    if (i < text.size() && text[i] == ',') { ++i; continue; }
    if (i < text.size() && text[i] == '}') { ++i; break; }
    bad("',' or '}'");
  }
  skip();
  if (i != text.size()) bad("the end of the object");
  return out;
}

}  // namespace hepgnn
