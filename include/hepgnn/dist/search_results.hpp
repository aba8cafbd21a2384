#pragma once
/// @file search_results.hpp
/// @brief hepgnn::search_result: every trial of a search (configuration, each rung's metric and wall time,
/// status), with the best trial and CSV / JSON writers, as a Ray Tune user expects of a results table.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/search_json.hpp"
#include "hepgnn/dist/search_scheduler.hpp"
#include "hepgnn/dist/search_space.hpp"

namespace hepgnn {

/// @brief One reported result of a trial.
struct search_rung_result {
  double resource = 0;      ///< total resource the trial had when it reported
  double metric = 0;        ///< as the trial function returned it
  double wall_seconds = 0;  ///< time of the job that produced it (0 when replayed from a journal)
  bool operator==(const search_rung_result&) const = default;
};

/// @brief One trial: its configuration, results in order, status and (if failed) the message.
struct search_trial_record {
  std::size_t id = 0;
  trial_config config;
  std::vector<search_rung_result> results;
  search_status status = search_status::running;
  std::string error;  ///< what() of the exception of a failed trial
  /// @brief The last reported metric (NaN if none).
  double last_metric() const { return results.empty() ? std::nan("") : results.back().metric; }
  /// @brief The resource reached (0 if none).
  double last_resource() const { return results.empty() ? 0 : results.back().resource; }
};

/// @brief What run_search returns.
struct search_result {
  std::vector<search_trial_record> trials;  ///< by trial id
  search_mode mode = search_mode::minimize;
  double units_used = 0;      ///< resource units trained in this process (replayed results not counted)
  double units_replayed = 0;  ///< resource units whose results came from a journal
  double wall_seconds = 0;    ///< of this run_search call
  bool interrupted = false;   ///< stopped by search_options::stop_after_events

  /// @brief The best trial among those that reached the largest resource any trial reached (a trial stopped at
  /// the first rung is not compared with completed ones); nothing if no trial reported.
  const search_trial_record* best() const {
    double top = -1;
    for (const auto& t : trials)
      if (!t.results.empty() && t.status != search_status::failed) top = std::max(top, t.last_resource());
    const search_trial_record* out = nullptr;
    for (const auto& t : trials) {
      if (t.results.empty() || t.status == search_status::failed || t.last_resource() != top) continue;
      const double m = t.last_metric();
      if (!out || (mode == search_mode::minimize ? m < out->last_metric() : m > out->last_metric())) out = &t;
    }
    return out;
  }
  /// @brief Trials with a given status.
  std::size_t count(search_status s) const {
    std::size_t n = 0;
    for (const auto& t : trials) n += t.status == s;
    return n;
  }

  /// @brief CSV, one row per reported result (a trial without results gets one row with empty resource/metric):
  /// trial,status,resource,metric,wall_seconds,<one column per dimension>,error. Plot metric versus resource per
  /// trial with scripts/plot_search.py.
  std::string to_csv() const {
    std::vector<std::string> names;
    for (const auto& t : trials)
      for (const auto& nv : t.config.values())
        if (std::find(names.begin(), names.end(), nv.first) == names.end()) names.push_back(nv.first);
    std::string out = "trial,status,resource,metric,wall_seconds";
    for (const auto& n : names) out += "," + csv_field(n);
    out += ",error\n";
    for (const auto& t : trials) {
      // Appends rather than chains of operator+ (GCC 12 warns falsely about those under -Wall).
      std::string tail;
      for (const auto& n : names) {
        tail += ',';
        if (t.config.contains(n)) tail += csv_field(value_text(t.config.at(n)));
      }
      tail += ',';
      tail += csv_field(t.error);
      tail += '\n';
      std::string head = std::to_string(t.id);
      head += ',';
      head += to_string(t.status);
      head += ',';
      if (t.results.empty()) {
        out += head;
        out += ",,";
        out += tail;
      }
      for (const auto& r : t.results) {
        out += head;
        out += search_json_number(r.resource);
        out += ',';
        out += search_json_number(r.metric);
        out += ',';
        out += search_json_number(r.wall_seconds);
        out += tail;
      }
    }
    return out;
  }
  /// @brief JSON: {"mode":..., "units_used":..., "best_trial":..., "trials":[{"id", "status", "config",
  /// "results":[{"resource","metric","wall_seconds"}], "error"}]}.
  std::string to_json() const {
    std::string out = "{\"mode\": ";
    out += mode == search_mode::minimize ? "\"minimize\"" : "\"maximize\"";
    out += ", \"units_used\": " + search_json_number(units_used) +
           ", \"units_replayed\": " + search_json_number(units_replayed) +
           ", \"wall_seconds\": " + search_json_number(wall_seconds) +
           ", \"interrupted\": " + (interrupted ? "true" : "false");
    const auto* b = best();
    out += ", \"best_trial\": " + (b ? std::to_string(b->id) : std::string("null")) + ", \"trials\": [";
    for (std::size_t i = 0; i < trials.size(); ++i) {
      const auto& t = trials[i];
      out += std::string(i ? ",\n  " : "\n  ") + "{\"id\": " + std::to_string(t.id) + ", \"status\": \"" +
             to_string(t.status) + "\", \"config\": " + t.config.to_json() + ", \"results\": [";
      for (std::size_t k = 0; k < t.results.size(); ++k)
        out += std::string(k ? ", " : "") + "{\"resource\": " + search_json_number(t.results[k].resource) +
               ", \"metric\": " + search_json_number(t.results[k].metric) +
               ", \"wall_seconds\": " + search_json_number(t.results[k].wall_seconds) + "}";
      out += "]";
      if (!t.error.empty()) out += ", \"error\": " + search_json_string(t.error);
      out += "}";
    }
    return out + "\n]}\n";
  }
  void write_csv(const std::string& path) const { write(path, to_csv(), "write_csv"); }
  void write_json(const std::string& path) const { write(path, to_json(), "write_json"); }

 private:
  static std::string value_text(const search_value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    return trial_config::value_json(v);
  }
  static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  static void write(const std::string& path, const std::string& text, const char* what) {
    std::ofstream f(path, std::ios::binary);
    HEPGNN_CHECK(f.good(), "search_result::", what, ": cannot open '", path, "' for writing");
    f << text;
    HEPGNN_CHECK(f.good(), "search_result::", what, ": writing '", path, "' failed");
  }
};

}  // namespace hepgnn
