#pragma once
// Locating hepgnn's real data (../shared/data by default, CMake cache variable HEPGNN_DATA_DIR) and
// skipping, with a message, the checks that need it when it is absent.
#include "support/doctest.hpp"

#include <filesystem>
#include <string>

namespace hepgnn_test {

/// Path of a data sub-folder, or empty when the data folder is not available.
inline std::filesystem::path data_path(const std::string& sub) {
  const std::filesystem::path root = HEPGNN_DATA_DIR;
  if (root.empty()) return {};
  auto p = root / sub;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

/// Path inside the source tree (tests/data and the like).
inline std::filesystem::path source_path(const std::string& sub) { return std::filesystem::path(HEPGNN_SOURCE_DIR) / sub; }

}  // namespace hepgnn_test

/// Returns from the current test case, with a visible message, when the named data folder is absent.
#define HEPGNN_REQUIRE_DATA(var, sub)                                                                   \
  const auto var = ::hepgnn_test::data_path(sub);                                                       \
  if (var.empty()) {                                                                                    \
    MESSAGE("skipped: data folder '" sub "' not found (set -DHEPGNN_DATA_DIR=.../shared/data to run)"); \
    return;                                                                                             \
  }
