#pragma once
/// @file trackml.hpp
/// @brief TrackML CSV events (hits, truth, particles, optional cells): reading plain or gzip-compressed files and
/// writing them back. The in-memory event (trackml::event) and compute_weights are in data/trackml_event.hpp.
///
/// Columns are found by their header names, so files with extra or reordered columns load; optional columns
/// (truth `weight`, particles `particle_type` and `nhits`, as in ACTS-Fatras exports) may be absent. Malformed
/// rows throw hepgnn::error naming the file, the line and the column.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/data/trackml_event.hpp"
#include "hepgnn/io/gzip.hpp"

namespace hepgnn::trackml {

namespace detail {

/// @brief A CSV text with a header line; finds columns by name and parses fields with precise errors.
class csv_reader {
 public:
  csv_reader(std::string_view text, std::string file, const char* who) : text_(text), file_(std::move(file)), who_(who) {
    if (text_.size() >= 3 && static_cast<unsigned char>(text_[0]) == 0xEF && static_cast<unsigned char>(text_[1]) == 0xBB &&
        static_cast<unsigned char>(text_[2]) == 0xBF)
      text_.remove_prefix(3);  // UTF-8 byte order mark
    std::string_view line;
    HEPGNN_CHECK(next_line(line), who_, ": '", file_, "' is empty (expected a header line)");
    split(line, header_);
    names_.assign(header_.begin(), header_.end());
  }

  /// @brief Column index of a required column; throws naming the file and the header when absent.
  int require(std::string_view name) const {
    const int c = find(name);
    if (c < 0) {
      std::string h;
      for (const auto& s : names_) h += (h.empty() ? "" : ",") + s;
      ::hepgnn::fail(who_, ": '", file_, "' has no column '", name, "' (header: ", h, ")");
    }
    return c;
  }
  /// @brief Column index, or -1 when absent.
  int find(std::string_view name) const {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return static_cast<int>(i);
    return -1;
  }

  /// @brief Reads the next data row (skipping blank lines); false at the end of the text.
  bool next_row() {
    std::string_view line;
    while (next_line(line)) {
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      split(line, fields_);
      HEPGNN_CHECK(fields_.size() == names_.size(), who_, ": '", file_, "' line ", line_, ": expected ", names_.size(),
                   " comma-separated fields (as in the header), got ", fields_.size());
      return true;
    }
    return false;
  }

  /// @brief Integer field of the current row.
  template <class I>
  I get_int(int col) const {
    const std::string_view s = fields_[col];
    I v{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty())
      bad(col, s, ec == std::errc::result_out_of_range ? "an integer in range" : "an integer");
    return v;
  }
  /// @brief Floating-point field of the current row; when `finite`, NaN and infinities are rejected.
  double get_double(int col, bool finite) const {
    std::string_view s = fields_[col];
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    double v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) bad(col, fields_[col], "a number");
    if (finite && !std::isfinite(v)) bad(col, fields_[col], "a finite number");
    return v;
  }
  /// @brief Line number (1-based) of the current row.
  std::size_t line() const { return line_; }
  const std::string& file() const { return file_; }

 private:
  [[noreturn]] void bad(int col, std::string_view s, const char* expected) const {
    ::hepgnn::fail(who_, ": '", file_, "' line ", line_, ", column ", col + 1, " ('", names_[col], "'): expected ",
                 expected, ", got '", s, "'");
  }
  bool next_line(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const std::size_t end = text_.find('\n', pos_);
    const std::size_t stop = end == std::string_view::npos ? text_.size() : end;
    line = text_.substr(pos_, stop - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = stop + 1;
    ++line_;
    return true;
  }
  static void split(std::string_view line, std::vector<std::string_view>& out) {
    out.clear();
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = line.find(',', start);
      std::string_view f = line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.remove_prefix(1);
      while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.remove_suffix(1);
      out.push_back(f);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }

  std::string_view text_;
  std::string file_;
  const char* who_;
  std::size_t pos_ = 0, line_ = 0;
  std::vector<std::string_view> header_, fields_;
  std::vector<std::string> names_;
};

/// @brief Appends the shortest text that reads back as exactly v.
inline void append_number(std::string& out, double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
inline void append_number(std::string& out, std::int64_t v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
inline void append_number(std::string& out, std::int32_t v) { append_number(out, static_cast<std::int64_t>(v)); }

}  // namespace detail

/// @brief Parses a hits CSV text (hit_id, x, y, z, volume_id, layer_id, module_id) into `ev`'s hit columns,
/// clearing its truth. `file` names the source in error messages. A non-finite coordinate throws, unless
/// `dropped` is given: then such hits are skipped and their ids appended to *dropped.
inline void parse_hits(std::string_view text, const std::string& file, event& ev,
                       std::vector<std::int64_t>* dropped = nullptr) {
  detail::csv_reader csv(text, file, "trackml::read_hits");
  const int c_id = csv.require("hit_id"), c_x = csv.require("x"), c_y = csv.require("y"), c_z = csv.require("z"),
            c_v = csv.require("volume_id"), c_l = csv.require("layer_id"), c_m = csv.require("module_id");
  ev.resize(0, true);
  const bool strict = dropped == nullptr;
  while (csv.next_row()) {
    const auto id = csv.get_int<std::int64_t>(c_id);
    const double x = csv.get_double(c_x, strict), y = csv.get_double(c_y, strict), z = csv.get_double(c_z, strict);
    if (!strict && !(std::isfinite(x) && std::isfinite(y) && std::isfinite(z))) {
      dropped->push_back(id);
      continue;
    }
    ev.hit_id.push_back(id);
    ev.x.push_back(x);
    ev.y.push_back(y);
    ev.z.push_back(z);
    ev.volume_id.push_back(csv.get_int<std::int32_t>(c_v));
    ev.layer_id.push_back(csv.get_int<std::int32_t>(c_l));
    ev.module_id.push_back(csv.get_int<std::int32_t>(c_m));
  }
  std::vector<std::int64_t> ids(ev.hit_id);
  std::sort(ids.begin(), ids.end());
  const auto dup = std::adjacent_find(ids.begin(), ids.end());
  HEPGNN_CHECK(dup == ids.end(), "trackml::read_hits: '", file, "': hit_id ", dup == ids.end() ? 0 : *dup,
               " appears more than once");
}

/// @brief Parses a truth CSV text (hit_id, particle_id, tx, ty, tz, tpx, tpy, tpz[, weight]) and aligns it
/// with the hits already in `ev` by hit_id. Every hit needs exactly one truth row and every truth row a hit
/// (rows of the hit ids in the sorted list `ignored`, hits dropped by parse_hits, are skipped).
inline void parse_truth(std::string_view text, const std::string& file, event& ev,
                        const std::vector<std::int64_t>* ignored = nullptr) {
  const char* who = "trackml::read_truth";
  detail::csv_reader csv(text, file, who);
  const int c_id = csv.require("hit_id"), c_p = csv.require("particle_id"), c_tx = csv.require("tx"),
            c_ty = csv.require("ty"), c_tz = csv.require("tz"), c_px = csv.require("tpx"), c_py = csv.require("tpy"),
            c_pz = csv.require("tpz"), c_w = csv.find("weight");
  const std::size_t n = ev.num_hits();
  std::unordered_map<std::int64_t, std::size_t> row_of;
  row_of.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) row_of.emplace(ev.hit_id[i], i);
  ev.resize(n, true);
  if (c_w < 0) ev.weight.clear();
  std::vector<char> seen(n, 0);
  std::size_t rows = 0;
  while (csv.next_row()) {
    const auto id = csv.get_int<std::int64_t>(c_id);
    const auto it = row_of.find(id);
    if (it == row_of.end() && ignored && std::binary_search(ignored->begin(), ignored->end(), id)) continue;
    HEPGNN_CHECK(it != row_of.end(), who, ": '", file, "' line ", csv.line(), ": hit_id ", id,
                 " is not in the hits file");
    const std::size_t i = it->second;
    HEPGNN_CHECK(!seen[i], who, ": '", file, "' line ", csv.line(), ": hit_id ", id, " has a second truth row");
    seen[i] = 1;
    ++rows;
    ev.particle_id[i] = csv.get_int<std::int64_t>(c_p);
    ev.tx[i] = csv.get_double(c_tx, false);
    ev.ty[i] = csv.get_double(c_ty, false);
    ev.tz[i] = csv.get_double(c_tz, false);
    ev.tpx[i] = csv.get_double(c_px, false);
    ev.tpy[i] = csv.get_double(c_py, false);
    ev.tpz[i] = csv.get_double(c_pz, false);
    if (c_w >= 0) {
      ev.weight[i] = csv.get_double(c_w, true);
      HEPGNN_CHECK(ev.weight[i] >= 0, who, ": '", file, "' line ", csv.line(), ": weight must be >= 0, got ",
                   ev.weight[i]);
    }
  }
  if (rows != n) {
    std::size_t miss = 0;
    while (seen[miss]) ++miss;
    ::hepgnn::fail(who, ": '", file, "' has ", rows, " truth rows for ", n, " hits; hit_id ", ev.hit_id[miss],
                 " has none");
  }
}

/// @brief Parses a particles CSV text (particle_id, vx, vy, vz, px, py, pz, q[, particle_type][, nhits]).
inline void parse_particles(std::string_view text, const std::string& file, event& ev) {
  const char* who = "trackml::read_particles";
  detail::csv_reader csv(text, file, who);
  const int c_id = csv.require("particle_id"), c_vx = csv.require("vx"), c_vy = csv.require("vy"),
            c_vz = csv.require("vz"), c_px = csv.require("px"), c_py = csv.require("py"), c_pz = csv.require("pz"),
            c_q = csv.require("q"), c_t = csv.find("particle_type"), c_n = csv.find("nhits");
  ev.particles.clear();
  std::unordered_map<std::int64_t, std::size_t> seen;
  while (csv.next_row()) {
    particle p;
    p.particle_id = csv.get_int<std::int64_t>(c_id);
    HEPGNN_CHECK(seen.emplace(p.particle_id, csv.line()).second, who, ": '", file, "' line ", csv.line(),
                 ": particle_id ", p.particle_id, " already appeared on line ", seen[p.particle_id]);
    p.vx = csv.get_double(c_vx, true), p.vy = csv.get_double(c_vy, true), p.vz = csv.get_double(c_vz, true);
    p.px = csv.get_double(c_px, true), p.py = csv.get_double(c_py, true), p.pz = csv.get_double(c_pz, true);
    p.q = csv.get_int<std::int32_t>(c_q);
    if (c_t >= 0) p.particle_type = csv.get_int<std::int32_t>(c_t);
    p.nhits = c_n >= 0 ? csv.get_int<std::int32_t>(c_n) : -1;
    ev.particles.push_back(p);
  }
  if (c_n < 0 && ev.has_truth()) {  // recompute from truth
    auto index = ev.particle_index();
    for (auto& p : ev.particles) p.nhits = 0;
    for (auto pid : ev.particle_id)
      if (auto it = index.find(pid); it != index.end()) ++ev.particles[it->second].nhits;
  }
}

/// @brief Parses a cells CSV text (hit_id, ch0, ch1, value); every hit_id must be a hit of `ev`.
inline void parse_cells(std::string_view text, const std::string& file, event& ev) {
  const char* who = "trackml::read_cells";
  detail::csv_reader csv(text, file, who);
  const int c_id = csv.require("hit_id"), c_0 = csv.require("ch0"), c_1 = csv.require("ch1"),
            c_v = csv.require("value");
  std::vector<std::int64_t> ids(ev.hit_id);
  std::sort(ids.begin(), ids.end());
  ev.cells.clear();
  while (csv.next_row()) {
    cell c{csv.get_int<std::int64_t>(c_id), csv.get_int<std::int32_t>(c_0), csv.get_int<std::int32_t>(c_1),
           csv.get_double(c_v, true)};
    HEPGNN_CHECK(std::binary_search(ids.begin(), ids.end(), c.hit_id), who, ": '", file, "' line ", csv.line(),
                 ": hit_id ", c.hit_id, " is not in the hits file");
    ev.cells.push_back(c);
  }
}

/// @brief What read_event loads besides the hits.
struct read_options {
  bool truth = true;      ///< read <prefix>-truth.csv[.gz] (required when true)
  bool particles = true;  ///< read <prefix>-particles.csv[.gz] or <prefix>-fatras-particles.csv (when present)
  bool cells = false;     ///< read <prefix>-cells.csv[.gz] (when present)
  bool check_particle_ids = true;  ///< every non-zero truth particle_id must be in the particles table
  bool drop_non_finite_hits = false;  ///< skip hits with NaN/inf coordinates (and their truth) instead of throwing
  std::size_t max_inflated_bytes = default_max_inflated_bytes;  ///< bound on each .csv.gz's inflated size
};

namespace detail {
/// @brief First existing file among <prefix><suffix>.csv and .csv.gz, or empty.
inline std::filesystem::path find_part(const std::filesystem::path& prefix, std::string_view suffix) {
  for (const char* ext : {".csv", ".csv.gz"}) {
    std::filesystem::path p = prefix;
    p += std::string(suffix) + ext;
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}
}  // namespace detail

/// @brief Reads an event given its path prefix (e.g. ".../event000000001"): <prefix>-hits.csv or .csv.gz,
/// and, per `opt`, truth, particles and cells. gzip is recognised by content.
inline event read_event(const std::filesystem::path& prefix, const read_options& opt = {}) {
  event ev;
  const auto hits = detail::find_part(prefix, "-hits");
  HEPGNN_CHECK(!hits.empty(), "trackml::read_event: no '", prefix.string(), "-hits.csv' or '-hits.csv.gz'");
  std::vector<std::int64_t> dropped;
  parse_hits(read_text_file(hits, "trackml::read_hits", opt.max_inflated_bytes), hits.string(), ev,
             opt.drop_non_finite_hits ? &dropped : nullptr);
  std::sort(dropped.begin(), dropped.end());
  if (opt.truth) {
    const auto truth = detail::find_part(prefix, "-truth");
    HEPGNN_CHECK(!truth.empty(), "trackml::read_event: no '", prefix.string(), "-truth.csv' or '-truth.csv.gz'");
    parse_truth(read_text_file(truth, "trackml::read_truth", opt.max_inflated_bytes), truth.string(), ev,
                &dropped);
  }
  if (opt.particles) {
    auto part = detail::find_part(prefix, "-particles");
    if (part.empty()) part = detail::find_part(prefix, "-fatras-particles");
    if (!part.empty())
      parse_particles(read_text_file(part, "trackml::read_particles", opt.max_inflated_bytes), part.string(), ev);
  }
  if (opt.cells) {
    const auto cells = detail::find_part(prefix, "-cells");
    if (!cells.empty())
      parse_cells(read_text_file(cells, "trackml::read_cells", opt.max_inflated_bytes), cells.string(), ev);
  }
  if (opt.check_particle_ids && ev.has_truth() && !ev.particles.empty()) ev.validate("trackml::read_event");
  return ev;
}

/// @brief Writes <prefix>-hits.csv, -truth.csv (when the event has truth), -particles.csv (when it has
/// particles) and -cells.csv (when it has cells); with `compress`, gzip files named .csv.gz. Numbers are written
/// in their shortest exact form, so reading back gives the same values.
inline void write_event(const std::filesystem::path& prefix, const event& ev, bool compress = false) {
  ev.validate("trackml::write_event");
  const std::string ext = compress ? ".csv.gz" : ".csv";
  auto path = [&](const char* part) {
    std::filesystem::path p = prefix;
    p += std::string(part) + ext;
    return p;
  };
  using detail::append_number;
  const std::size_t n = ev.num_hits();
  std::string s = "hit_id,x,y,z,volume_id,layer_id,module_id\n";
  for (std::size_t i = 0; i < n; ++i) {
    append_number(s, ev.hit_id[i]), s += ',', append_number(s, ev.x[i]), s += ',', append_number(s, ev.y[i]);
    s += ',', append_number(s, ev.z[i]), s += ',', append_number(s, ev.volume_id[i]), s += ',';
    append_number(s, ev.layer_id[i]), s += ',', append_number(s, ev.module_id[i]), s += '\n';
  }
  write_text_file(path("-hits"), s, compress, "trackml::write_event");
  if (ev.has_truth()) {
    const bool w = ev.has_weights();
    s = w ? "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n" : "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz\n";
    for (std::size_t i = 0; i < n; ++i) {
      append_number(s, ev.hit_id[i]), s += ',', append_number(s, ev.particle_id[i]);
      for (double v : {ev.tx[i], ev.ty[i], ev.tz[i], ev.tpx[i], ev.tpy[i], ev.tpz[i]}) s += ',', append_number(s, v);
      if (w) s += ',', append_number(s, ev.weight[i]);
      s += '\n';
    }
    write_text_file(path("-truth"), s, compress, "trackml::write_event");
  }
  if (!ev.particles.empty()) {
    s = "particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits\n";
    for (const auto& p : ev.particles) {
      append_number(s, p.particle_id), s += ',', append_number(s, p.particle_type);
      for (double v : {p.vx, p.vy, p.vz, p.px, p.py, p.pz}) s += ',', append_number(s, v);
      s += ',', append_number(s, p.q), s += ',', append_number(s, p.nhits), s += '\n';
    }
    write_text_file(path("-particles"), s, compress, "trackml::write_event");
  }
  if (!ev.cells.empty()) {
    s = "hit_id,ch0,ch1,value\n";
    for (const auto& c : ev.cells) {
      append_number(s, c.hit_id), s += ',', append_number(s, c.ch0), s += ',', append_number(s, c.ch1), s += ',';
      append_number(s, c.value), s += '\n';
    }
    write_text_file(path("-cells"), s, compress, "trackml::write_event");
  }
}

}  // namespace hepgnn::trackml
