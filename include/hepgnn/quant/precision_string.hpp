#pragma once
/// @file precision_string.hpp
/// @brief fixed_spec to and from the precision strings of HLS code and hls4ml configurations:
/// "ap_fixed<16,6>", "ap_fixed<18,8,AP_RND,AP_SAT>", "ap_ufixed<8,3,AP_RND_CONV>" (default modes omitted on output;
/// AP_TRN and AP_WRAP when absent on input; a saturation-bit count after the overflow mode is rejected).

#include <cctype>
#include <string>
#include <string_view>

#include "hepgnn/core/error.hpp"
#include "hepgnn/quant/fixed_spec.hpp"

namespace hepgnn::quant {

inline const char* to_string(quant_mode q) {
  switch (q) {
    case quant_mode::trn: return "AP_TRN";
    case quant_mode::trn_zero: return "AP_TRN_ZERO";
    case quant_mode::rnd: return "AP_RND";
    case quant_mode::rnd_zero: return "AP_RND_ZERO";
    case quant_mode::rnd_min_inf: return "AP_RND_MIN_INF";
    case quant_mode::rnd_inf: return "AP_RND_INF";
    case quant_mode::rnd_conv: return "AP_RND_CONV";
  }
  return "AP_TRN";
}

inline const char* to_string(overflow_mode o) {
  switch (o) {
    case overflow_mode::wrap: return "AP_WRAP";
    case overflow_mode::sat: return "AP_SAT";
    case overflow_mode::sat_zero: return "AP_SAT_ZERO";
    case overflow_mode::sat_sym: return "AP_SAT_SYM";
  }
  return "AP_WRAP";
}

/// @brief "ap_fixed<W,I>" / "ap_ufixed<W,I,Q>" / "...<W,I,Q,O>": trailing default modes left out, as hls4ml writes.
inline std::string to_string(const fixed_spec& s) {
  std::string r = s.is_signed ? "ap_fixed<" : "ap_ufixed<";
  r += std::to_string(s.width) + "," + std::to_string(s.integer);
  if (s.q != quant_mode::trn || s.o != overflow_mode::wrap) r += std::string(",") + to_string(s.q);
  if (s.o != overflow_mode::wrap) r += std::string(",") + to_string(s.o);
  return r + ">";
}

/// @brief Parses an ap_fixed / ap_ufixed precision string (spaces allowed); throws hepgnn::error naming `text`.
inline fixed_spec parse_fixed_spec(std::string_view text) {
  std::string t;
  for (char ch : text)
    if (!std::isspace(static_cast<unsigned char>(ch))) t += ch;
  auto bad = [&](const char* why) { fail("parse_fixed_spec: precision must look like ap_fixed<16,6[,AP_RND[,AP_SAT]]> (", why, "), got '", text, "'"); };
  fixed_spec s;
  std::string_view v(t);
  if (v.starts_with("ap_fixed<")) {
    v.remove_prefix(9);
  } else if (v.starts_with("ap_ufixed<")) {
    v.remove_prefix(10);
    s.is_signed = false;
  } else {
    bad("no ap_fixed< or ap_ufixed<");
  }
  if (!v.ends_with(">")) bad("no closing >");
  v.remove_suffix(1);
  std::string_view parts[5];
  int n = 0;
  while (true) {
    const auto comma = v.find(',');
    if (n == 5) bad("too many fields");
    parts[n++] = v.substr(0, comma);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (n < 2) bad("W and I are required");
  if (n > 4) bad("saturation bits are not supported");
  auto number = [&](std::string_view p) {
    if (p.empty() || p.size() > 6) bad("W and I must be integers");
    int sign = 1, value = 0;
    std::size_t k = 0;
    if (p[0] == '-') sign = -1, k = 1;
    if (k == p.size()) bad("W and I must be integers");
    for (; k < p.size(); ++k) {
      if (!std::isdigit(static_cast<unsigned char>(p[k]))) bad("W and I must be integers");
      value = value * 10 + (p[k] - '0');
    }
    return sign * value;
  };
  s.width = number(parts[0]);
  s.integer = number(parts[1]);
  if (n >= 3) {
    bool found = false;
    for (int q = 0; q < 7 && !found; ++q)
      if (parts[2] == to_string(static_cast<quant_mode>(q))) s.q = static_cast<quant_mode>(q), found = true;
    if (!found) bad("unknown quantization mode");
  }
  if (n == 4) {
    bool found = false;
    for (int o = 0; o < 4 && !found; ++o)
      if (parts[3] == to_string(static_cast<overflow_mode>(o))) s.o = static_cast<overflow_mode>(o), found = true;
    if (!found) bad("unknown overflow mode (AP_WRAP_SM is not supported)");
  }
  if (s.width < 1 || s.width > max_fixed_width) bad("W must be in [1, 64]");
  return s;
}

}  // namespace hepgnn::quant
