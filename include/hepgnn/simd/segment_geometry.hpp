#pragma once
/// @file segment_geometry.hpp
/// @brief Geometry of track segments (a pair of hits) over SIMD lanes: the per-segment doubles of the tracking
/// pipeline's edge features, bit for bit as its scalar edge_geometry() computes them.

#include <numbers>

#include "hepgnn/simd/arch.hpp"

namespace hepgnn::simd {

/// @brief Segments per segment_geometry() call: doubles per native register.
inline constexpr int segment_lanes = lanes<double, native>();

/// @brief For each lane l of `in` (the segment from hit s to hit d, hit coordinates r and z in metres, phi / pi,
/// eta / 3): in[0] = phi_d - phi_s, in[1] = dr, in[2] = dz, in[3] = eta_d - eta_s, in[4] = z_s, in[5] = r_s.
/// Writes out[0..6) = 10 dr, 10 dz, 10 dphi (wrapped into [-pi, pi)), 10 deta, the curvature proxy dphi / dr
/// (clipped to +-5) and the z of the line through both hits at r = 0 (clipped to +-3); the last two are 0 where
/// |dr| <= 1e-4. One segment at a time, the two divisions and the branches of the clamps and wraps cost ~35 cycles.
inline void segment_geometry(const double (&in)[6][segment_lanes], double (&out)[6][segment_lanes]) {
  using B = xsimd::batch<double, native>;
  constexpr double pi = std::numbers::pi;
  const auto clamp = [](const B& v, double lo, double hi) { return xsimd::min(xsimd::max(v, B(lo)), B(hi)); };
  B dphi = B(pi) * B::load_unaligned(in[0]);
  dphi = xsimd::select(dphi >= B(pi), dphi - B(2 * pi), dphi);
  dphi = xsimd::select(dphi < B(-pi), dphi + B(2 * pi), dphi);
  const B dr = B::load_unaligned(in[1]), dz = B::load_unaligned(in[2]), deta = B(3.0) * B::load_unaligned(in[3]);
  const auto curved = xsimd::abs(dr) > B(1e-4);  // other lanes divide by ~0 and are replaced by 0
  const B zs = B::load_unaligned(in[4]), rs = B::load_unaligned(in[5]);
  (B(10.0) * dr).store_unaligned(out[0]);
  (B(10.0) * dz).store_unaligned(out[1]);
  (B(10.0) * dphi).store_unaligned(out[2]);
  (B(10.0) * deta).store_unaligned(out[3]);
  xsimd::select(curved, clamp(dphi / dr, -5.0, 5.0), B(0.0)).store_unaligned(out[4]);
  xsimd::select(curved, clamp(zs - rs * dz / dr, -3.0, 3.0), B(0.0)).store_unaligned(out[5]);
}

}  // namespace hepgnn::simd
