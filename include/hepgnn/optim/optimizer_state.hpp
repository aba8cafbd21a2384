#pragma once
/// @file optimizer_state.hpp
/// @brief Per-parameter optimizer state, keyed by the order in which a model visits its parameters.

#include <span>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"

namespace hepgnn::detail {

/// Slots of optimizer state (momentum, second moment, ...) for each parameter, created on first use and checked
/// against the parameter's size afterwards, so an optimizer reused on another model fails loudly.
template <class T>
struct slot_state {
  std::vector<std::vector<T>> slots;
  std::size_t next = 0;
  void begin() { next = 0; }
  std::vector<T>& get(const std::string& name, std::int64_t size) {
    if (next == slots.size()) slots.emplace_back(static_cast<std::size_t>(size), T(0));
    auto& s = slots[next++];
    HEPGNN_CHECK(static_cast<std::int64_t>(s.size()) == size, "optimizer: parameter '", name, "' has ", size,
                 " entries but the optimizer state has ", s.size(), "; was the optimizer used with another model?");
    return s;
  }
  /// Visits this slot of every parameter of `model` as `f(slot + "." + name, std::span<T>)`, in the model's
  /// order, creating zero slots a fresh optimizer has not made yet (so a checkpoint loads into it).
  template <class Model, class F>
  void visit(Model& model, const std::string& slot, F&& f) {
    begin();
    model.for_each_param("", [&](const std::string& name, auto p) {
      f(slot + "." + name, std::span<T>(get(name, p.size())));
    });
  }
};

}  // namespace hepgnn::detail
