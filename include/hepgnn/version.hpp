#pragma once
/// @file version.hpp
/// @brief hepgnn's version: the one place it is written (CMakeLists.txt's project(VERSION) reads these three lines).
#define HEPGNN_VERSION_MAJOR 0
#define HEPGNN_VERSION_MINOR 1
#define HEPGNN_VERSION_PATCH 0
#define HEPGNN_VERSION_STRINGIFY_(x) #x
#define HEPGNN_VERSION_STRINGIFY(x) HEPGNN_VERSION_STRINGIFY_(x)
namespace hepgnn {
/// @brief "major.minor.patch"
inline constexpr const char* version =
    HEPGNN_VERSION_STRINGIFY(HEPGNN_VERSION_MAJOR) "." HEPGNN_VERSION_STRINGIFY(HEPGNN_VERSION_MINOR) "."
    HEPGNN_VERSION_STRINGIFY(HEPGNN_VERSION_PATCH);
}  // namespace hepgnn
