#pragma once
/// @file version.hpp
/// @brief hepgnn's version (kept equal to project(VERSION) in CMakeLists.txt).
#define HEPGNN_VERSION_MAJOR 0
#define HEPGNN_VERSION_MINOR 1
#define HEPGNN_VERSION_PATCH 0
namespace hepgnn {
/// @brief "major.minor.patch"
inline constexpr const char* version = "0.1.0";
}  // namespace hepgnn
