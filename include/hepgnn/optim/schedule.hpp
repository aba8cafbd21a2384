#pragma once
/// @file schedule.hpp
/// @brief Learning-rate schedules: step decay, cosine annealing, and linear warm-up in front of either.

#include <cmath>
#include <numbers>

#include "hepgnn/core/error.hpp"

namespace hepgnn {

/// @brief lr = base * gamma^floor(step / step_size) (PyTorch StepLR).
struct step_schedule {
  double base_lr, gamma = 0.1;
  long step_size = 1;
  double lr_at(long step) const {
    HEPGNN_CHECK(step_size > 0, "step_schedule: step_size must be > 0, got ", step_size);
    return base_lr * std::pow(gamma, static_cast<double>(step / step_size));
  }
};

/// @brief Cosine annealing from base_lr to min_lr over total_steps (PyTorch CosineAnnealingLR, one half period).
struct cosine_schedule {
  double base_lr;
  long total_steps;
  double min_lr = 0;
  double lr_at(long step) const {
    HEPGNN_CHECK(total_steps > 0, "cosine_schedule: total_steps must be > 0, got ", total_steps);
    const double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(total_steps));
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(std::numbers::pi * t));
  }
};

/// @brief Linear warm-up from 0 over warmup_steps, then the wrapped schedule (its step counted from the end of warm-up).
template <class Schedule>
struct warmup_schedule {
  Schedule after;
  long warmup_steps;
  double lr_at(long step) const {
    if (step < warmup_steps) return after.lr_at(0) * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    return after.lr_at(step - warmup_steps);
  }
};

}  // namespace hepgnn
