#pragma once
/// @file arch.hpp
/// @brief Backend tags for hepgnn's kernels: the portable scalar fallback and the best xsimd architecture.

// GCC bug 105593: see core/tensor.hpp (here for a translation unit that reaches xsimd before Eigen).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
#else
#include <xsimd/xsimd.hpp>
#endif

#include <type_traits>

namespace hepgnn::simd {

/// @brief Tag of the portable fallback: plain C++ loops, the same operation order as the SIMD path.
struct scalar {};

/// @brief Tag of the best instruction set xsimd found at compile time (e.g. xsimd::avx512bw with -march=native).
using native = xsimd::default_arch;

/// @brief True when Arch is the portable scalar tag.
template <class Arch>
inline constexpr bool is_scalar_v = std::is_same_v<Arch, scalar>;

/// @brief Lanes of one register of T under Arch (1 for the scalar tag).
template <class T, class Arch>
constexpr int lanes() {
  if constexpr (is_scalar_v<Arch>)
    return 1;
  else
    return static_cast<int>(xsimd::batch<T, Arch>::size);
}

}  // namespace hepgnn::simd
