#pragma once
/// @file aggregation.hpp
/// @brief hepgnn::aggregation: how the rows of a segment (the messages entering a node, the nodes of a graph) are
/// combined into one row (PyTorch Geometric `aggr`).

#include <string_view>

namespace hepgnn {

/// @brief How messages arriving at a node are combined (PyTorch Geometric `aggr`).
enum class aggregation { sum, mean, max };

/// @brief "sum", "mean" or "max".
constexpr std::string_view to_string(aggregation a) {
  return a == aggregation::sum ? "sum" : a == aggregation::mean ? "mean" : "max";
}

}  // namespace hepgnn
