#pragma once
/// @file progress.hpp
/// @brief hepgnn::progress: one self-rewriting status line on stderr (epoch, loss, items/s, ETA);
/// silent when stderr is not a terminal, so logs and CI output stay clean.

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace hepgnn {

/// @brief Progress reporter. `enabled` defaults to "stderr is a terminal".
class progress {
 public:
  explicit progress(std::string label = "train", bool enabled = isatty(STDERR_FILENO) != 0)
      : label_(std::move(label)), enabled_(enabled), start_(clock::now()), last_(start_) {}
  bool enabled() const { return enabled_; }

  /// @brief Reports `done` of `total` items in epoch `epoch` of `epochs`, with the running loss.
  void update(int epoch, int epochs, std::size_t done, std::size_t total, double loss, bool force = false) {
    if (!enabled_) return;
    const auto now = clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    items_ += done - last_done_;
    last_done_ = done;
    const double rate = elapsed > 0 ? static_cast<double>(items_) / elapsed : 0;
    const double remaining_items = static_cast<double>(total - done) + static_cast<double>(epochs - epoch) * total;
    const double eta = rate > 0 ? remaining_items / rate : 0;
    std::fprintf(stderr, "\r%s epoch %d/%d  %zu/%zu  loss %.5g  %.3g items/s  ETA %.0fs   ", label_.c_str(), epoch,
                 epochs, done, total, loss, rate, eta);
    std::fflush(stderr);
  }
  /// @brief Starts a new epoch (item counting restarts at 0 within the epoch).
  void new_epoch() { last_done_ = 0; }
  /// @brief Ends the line.
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  clock::time_point start_, last_;
  std::size_t items_ = 0, last_done_ = 0;
};

}  // namespace hepgnn
