#pragma once
/// @file error.hpp
/// @brief hepgnn::error and the always-on argument checks used at API boundaries.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hepgnn {

/// @brief The one exception type hepgnn throws for bad input; what() starts with "[hepgnn]".
struct error : std::runtime_error {
  explicit error(const std::string& message) : std::runtime_error("[hepgnn] " + message) {}
};

/// @brief Builds a message from streamable parts and throws hepgnn::error (what HEPGNN_CHECK calls).
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw error(os.str());
}

namespace detail {
using ::hepgnn::fail;  // the former name, kept for code written against it (other branches)
}  // namespace detail

}  // namespace hepgnn

/// @brief Always-on check at a public entry point: throws hepgnn::error built from the message parts.
/// Usage: HEPGNN_CHECK(k > 0, "knn: k must be positive, got ", k);
#define HEPGNN_CHECK(condition, ...)                 \
  do {                                               \
    if (!(condition)) ::hepgnn::fail(__VA_ARGS__);         \
  } while (false)

/// @brief Debug-only invariant for inner loops (compiled out with NDEBUG).
#ifdef NDEBUG
#define HEPGNN_ASSERT(condition) ((void)0)
#else
#include <cassert>
#define HEPGNN_ASSERT(condition) assert(condition)
#endif
