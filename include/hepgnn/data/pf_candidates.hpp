#pragma once
/// @file pf_candidates.hpp
/// @brief pf::candidates, the per-element output of a particle-flow reconstruction (models/pf_baseline.hpp,
/// models/particle_flow.hpp) and the input of the particle-flow metrics (metrics/particle_flow.hpp).

#include <vector>

#include "hepgnn/data/toy_pf_detector.hpp"

namespace hepgnn::pf {

/// @brief Per-element reconstructed candidates, in the layout of the event targets.
/// cls[i] is the class predicted for element i (none: the element makes no candidate); p4 row i holds
/// (pt, eta, sin phi, cos phi, E) as in `target`.
struct candidates {
  std::vector<index_t> cls;
  matrix<double> p4;
  /// @brief Number of elements.
  index_t size() const { return static_cast<index_t>(cls.size()); }
};

/// @brief The targets of an event as candidates (the ideal reconstruction).
inline candidates truth_candidates(const event& ev) { return {ev.target_class, ev.target}; }

}  // namespace hepgnn::pf
