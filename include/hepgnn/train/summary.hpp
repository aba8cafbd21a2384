#pragma once
/// @file summary.hpp
/// @brief hepgnn::summary: a model's tensors as a table (name, shape, count, trainable or buffer) with totals,
/// the first thing to print when a weight file does not load or a model is larger than expected.

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "hepgnn/core/parameter.hpp"

namespace hepgnn {

/// @brief One tensor of a model.
struct summary_row {
  std::string name;                 ///< state_dict name, as weight files store it
  std::vector<std::int64_t> shape;  ///< PyTorch shape
  std::int64_t count = 0;           ///< scalars
  bool trainable = true;            ///< false: a buffer (e.g. BatchNorm running statistics)
};

/// @brief Every tensor of a model, parameters first, then buffers.
struct model_summary {
  std::vector<summary_row> rows;
  std::int64_t parameters = 0;  ///< trainable scalars
  std::int64_t buffers = 0;     ///< non-trainable scalars saved with the weights

  /// @brief A fixed-width table, one line per tensor, then the totals.
  std::string table() const {
    std::size_t width = 4;
    for (const auto& r : rows) width = std::max(width, r.name.size());
    std::ostringstream os;
    auto pad = [](std::string s, std::size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
    os << pad("name", width) << "  " << pad("shape", 16) << "  " << pad("count", 10) << "  kind\n";
    for (const auto& r : rows) {
      std::string shape = "[";
      for (std::size_t i = 0; i < r.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(r.shape[i]);
      shape += "]";
      os << pad(r.name, width) << "  " << pad(shape, 16) << "  " << pad(std::to_string(r.count), 10) << "  "
         << (r.trainable ? "parameter" : "buffer") << "\n";
    }
    os << parameters << " trainable parameters";
    if (buffers) os << ", " << buffers << " buffer values";
    os << " (" << rows.size() << " tensors)\n";
    return os.str();
  }
};

/// @brief The tensors of any model with for_each_param (and for_each_buffer), with totals.
template <class Model>
model_summary summary(Model& model) {
  model_summary s;
  for_each_state(model, "", [&](const std::string& name, auto p) {
    const bool trainable = p.grad != nullptr;
    s.rows.push_back({name, p.shape, p.size(), trainable});
    (trainable ? s.parameters : s.buffers) += p.size();
  });
  return s;
}

}  // namespace hepgnn
