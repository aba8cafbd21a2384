#pragma once
/// @file timeline.hpp
/// @brief hepgnn::timeline: what one rank spent its time on (compute, waiting, communication), written as a
/// Chrome trace (chrome://tracing or https://ui.perfetto.dev open it; one file per rank, or merged by pid).

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief The kinds of time a step is made of.
enum class time_kind { compute, wait, communication };

inline const char* time_kind_name(time_kind k) {
  switch (k) {
    case time_kind::compute: return "compute";
    case time_kind::wait: return "wait";
    case time_kind::communication: return "communication";
  }
  return "?";
}

/// @brief Intervals recorded by one rank. Not thread-safe: one timeline per rank (per thread that records).
class timeline {
 public:
  using clock = std::chrono::steady_clock;
  struct event {
    std::string name;
    time_kind kind;
    double begin_us, duration_us;
  };

  explicit timeline(int rank = 0) : rank_(rank), origin_(clock::now()) {}

  /// @brief Records [begin, now) as `name` of kind `kind`.
  void record(std::string name, time_kind kind, clock::time_point begin) {
    const auto now = clock::now();
    events_.push_back({std::move(name), kind, micros(begin), std::chrono::duration<double, std::micro>(now - begin).count()});
  }

  /// @brief Times a scope: `{ auto s = trace.scope("allreduce", time_kind::communication); ... }`.
  class scoped {
   public:
    scoped(timeline* t, std::string name, time_kind kind)
        : t_(t), name_(std::move(name)), kind_(kind), begin_(clock::now()) {}
    scoped(const scoped&) = delete;
    scoped& operator=(const scoped&) = delete;
    ~scoped() {
      if (t_) t_->record(std::move(name_), kind_, begin_);
    }

   private:
    timeline* t_;
    std::string name_;
    time_kind kind_;
    clock::time_point begin_;
  };
  scoped scope(std::string name, time_kind kind) { return scoped(this, std::move(name), kind); }

  const std::vector<event>& events() const { return events_; }
  void clear() { events_.clear(); }

  /// @brief Total microseconds recorded of one kind.
  double total_us(time_kind k) const {
    double s = 0;
    for (const auto& e : events_)
      if (e.kind == k) s += e.duration_us;
    return s;
  }

  /// @brief The events as Chrome trace JSON ("X" complete events; pid = rank, tid 0 compute, 1 communication and
  /// waiting), so the ranks of one job can be concatenated into one view.
  void write_chrome_trace(const std::string& path) const {
    std::ofstream out(path);
    HEPGNN_CHECK(out.good(), "timeline::write_chrome_trace: cannot open '", path, "' for writing");
    out << "{\"traceEvents\":[\n";
    out << "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" << rank_ << ",\"args\":{\"name\":\"rank " << rank_
        << "\"}}";
    char buf[64];
    for (const auto& e : events_) {
      out << ",\n{\"name\":\"";
      for (char c : e.name) {
        if (c == '"' || c == '\\') out << '\\';
        if (static_cast<unsigned char>(c) >= 0x20) out << c;
      }
      std::snprintf(buf, sizeof buf, "%.3f", e.begin_us);
      out << "\",\"cat\":\"" << time_kind_name(e.kind) << "\",\"ph\":\"X\",\"ts\":" << buf;
      std::snprintf(buf, sizeof buf, "%.3f", e.duration_us);
      out << ",\"dur\":" << buf << ",\"pid\":" << rank_ << ",\"tid\":" << (e.kind == time_kind::compute ? 0 : 1)
          << "}";
    }
    out << "\n]}\n";
    HEPGNN_CHECK(out.good(), "timeline::write_chrome_trace: writing '", path, "' failed");
  }

 private:
  double micros(clock::time_point t) const { return std::chrono::duration<double, std::micro>(t - origin_).count(); }
  int rank_;
  clock::time_point origin_;
  std::vector<event> events_;
};

}  // namespace hepgnn
