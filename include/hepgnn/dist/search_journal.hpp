#pragma once
/// @file search_journal.hpp
/// @brief The search journal: an append-only file, one JSON object a line, flushed after every line, from which
/// run_search resumes a killed search. Events: a trial's configuration, a result (trial, from, to, metric, wall
/// time), a failure (trial, message).

#include <cstdio>
#include <iterator>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/dist/search_json.hpp"
#include "hepgnn/dist/search_space.hpp"

namespace hepgnn {

/// @brief What a journal holds, by trial.
struct search_journal_contents {
  struct result {
    double from = 0, metric = 0, wall_seconds = 0;
  };
  std::map<std::size_t, trial_config> configs;
  std::map<std::pair<std::size_t, double>, result> results;  ///< by (trial, to)
  std::map<std::pair<std::size_t, double>, std::string> failures;  ///< by (trial, to)
  std::size_t events = 0;
  bool truncated_tail = false;  ///< the last line was cut off (killed while writing) and was ignored
  std::size_t valid_bytes = 0;  ///< bytes up to the end of the last complete line
};

/// @brief Appends events to a journal file (opened for appending; created if missing). Not thread-safe by
/// itself: run_search writes under its lock.
class search_journal_writer {
 public:
  search_journal_writer() = default;
  explicit search_journal_writer(const std::string& path) { open(path); }
  /// @brief Opens `path` for appending (closing any file open before).
  void open(const std::string& path) {
    if (f_) std::fclose(f_);
    path_ = path;
    f_ = std::fopen(path.c_str(), "ab");
    HEPGNN_CHECK(f_ != nullptr, "search_journal_writer: cannot open '", path, "' for appending");
  }
  search_journal_writer(const search_journal_writer&) = delete;
  search_journal_writer& operator=(const search_journal_writer&) = delete;
  ~search_journal_writer() {
    if (f_) std::fclose(f_);
  }
  bool is_open() const { return f_ != nullptr; }

  void trial(std::size_t id, const trial_config& c) {
    line("{\"event\": \"trial\", \"id\": " + std::to_string(id) + ", \"config\": " + search_json_string(c.to_json()) + "}");
  }
  void result(std::size_t id, double from, double to, double metric, double wall) {
    line("{\"event\": \"result\", \"id\": " + std::to_string(id) + ", \"from\": " + search_json_number(from) +
         ", \"to\": " + search_json_number(to) + ", \"metric\": " + search_json_number(metric) +
         ", \"wall\": " + search_json_number(wall) + "}");
  }
  void failure(std::size_t id, double to, const std::string& message) {
    line("{\"event\": \"failed\", \"id\": " + std::to_string(id) + ", \"to\": " + search_json_number(to) +
         ", \"message\": " + search_json_string(message) + "}");
  }

 private:
  // One fputs + fflush per event: a kill loses at most the line being written, which the reader then ignores.
  // (No fsync: a power cut may lose the last lines; a killed process does not.)
  void line(const std::string& s) {
    if (!f_) return;
    const std::string text = s + "\n";
    HEPGNN_CHECK(std::fputs(text.c_str(), f_) >= 0 && std::fflush(f_) == 0, "search_journal_writer: writing '",
                 path_, "' failed");
  }
  std::string path_;
  std::FILE* f_ = nullptr;
};

/// @brief Reads a journal written by search_journal_writer; configurations are typed by `space`. A missing file
/// reads as empty. A last line without its newline (a kill mid-write) is ignored; any other bad line throws.
inline search_journal_contents read_search_journal(const std::string& path, const search_space& space) {
  search_journal_contents out;
  std::ifstream f(path, std::ios::binary);
  if (!f) return out;
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    ++line_no;
    if (end == std::string::npos) {  // no newline: the write was cut off
      out.truncated_tail = true;
      break;
    }
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    out.valid_bytes = pos;
    if (line.empty()) continue;
    const std::string where = "journal '" + path + "' line " + std::to_string(line_no);
    std::string event, config, message;
    double id = -1, from = 0, to = -1, metric = 0, wall = 0;
    for (auto& [k, v] : search_json_parse_flat(line, where)) {
      const double* num = std::get_if<double>(&v);
      const std::string* str = std::get_if<std::string>(&v);
      if (k == "event" && str) event = *str;
      else if (k == "config" && str) config = *str;
      else if (k == "message" && str) message = *str;
      else if (k == "id" && num) id = *num;
      else if (k == "from" && num) from = *num;
      else if (k == "to" && num) to = *num;
      else if (k == "metric" && num) metric = *num;
      else if (k == "wall" && num) wall = *num;
      else fail("read_search_journal: ", where, ": unexpected field '", k, "'");
    }
    HEPGNN_CHECK(id >= 0, "read_search_journal: ", where, ": missing trial id");
    const auto tid = static_cast<std::size_t>(id);
    if (event == "trial") {
      out.configs[tid] = space.parse_config(config);
    } else if (event == "result") {
      HEPGNN_CHECK(to >= 0, "read_search_journal: ", where, ": result without 'to'");
      out.results[{tid, to}] = {from, metric, wall};
    } else if (event == "failed") {
      out.failures[{tid, to}] = message;
    } else {
      fail("read_search_journal: ", where, ": unknown event '", event, "'");
    }
    ++out.events;
  }
  return out;
}

}  // namespace hepgnn
