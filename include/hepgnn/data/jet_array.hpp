#pragma once
/// @file jet_array.hpp
/// @brief hepgnn::jet_array: jets as fixed-size constituent sets in the JetNet layout [n_jets, P, 4] with
/// features (eta_rel, phi_rel, pt_rel, mask), and conversion to a packed node matrix + batch for graph models.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <span>
#include <type_traits>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn {

/// @brief Column order of the JetNet particle features.
namespace jet_col {
inline constexpr int eta_rel = 0;  ///< pseudorapidity relative to the jet axis
inline constexpr int phi_rel = 1;  ///< azimuth relative to the jet axis, wrapped to [-pi, pi]
inline constexpr int pt_rel = 2;   ///< pt / jet pt
inline constexpr int mask = 3;     ///< 1 for a real constituent, 0 for padding
}  // namespace jet_col

/// @brief Wraps an angle difference into [-pi, pi].
template <class T>
T wrap_phi(T dphi) {
  constexpr T pi = std::numbers::pi_v<T>, two_pi = 2 * std::numbers::pi_v<T>;
  if (!std::isfinite(dphi)) return dphi;
  dphi = std::fmod(dphi + pi, two_pi);
  if (dphi < 0) dphi += two_pi;
  return dphi - pi;
}

/// @brief Jets in the JetNet layout: `particles` holds num_jets * max_particles rows of (eta_rel, phi_rel,
/// pt_rel, mask); jet j owns rows [j * max_particles, (j + 1) * max_particles). Real constituents come first
/// (mask 1, pt-ordered by convention), padding rows are all zero. `labels` is optional (one per jet).
template <class T>
struct jet_array {
  index_t num_jets = 0;       ///< number of jets
  index_t max_particles = 30; ///< slots per jet (P)
  matrix<T> particles;        ///< (num_jets * P) x 4
  std::vector<int> labels;    ///< optional class label per jet (empty or num_jets entries)
  matrix<T> jet_features;     ///< optional num_jets x 4 (pt, eta, mass, n_constituents) as in JetNet; may be empty

  /// @brief Allocates n zero jets of P slots.
  static jet_array zeros(index_t n, index_t p) {
    HEPGNN_CHECK(n >= 0 && p > 0, "jet_array::zeros: need n >= 0 and P > 0, got n=", n, ", P=", p);
    jet_array a;
    a.num_jets = n;
    a.max_particles = p;
    a.particles = matrix<T>::Zero(static_cast<Eigen::Index>(n) * p, 4);
    return a;
  }
  /// @brief Row of constituent i of jet j.
  auto row(index_t j, index_t i) { return particles.row(static_cast<Eigen::Index>(j) * max_particles + i); }
  auto row(index_t j, index_t i) const { return particles.row(static_cast<Eigen::Index>(j) * max_particles + i); }
  /// @brief Number of real constituents of jet j (mask > 0.5; real rows come first).
  index_t count(index_t j) const {
    index_t n = 0;
    while (n < max_particles && row(j, n)(jet_col::mask) > T(0.5)) ++n;
    return n;
  }
  /// @brief Checks shape, finiteness, mask in {0,1} with real rows first, and pt_rel >= 0.
  void validate(const char* who = "jet_array") const {
    HEPGNN_CHECK(num_jets >= 0 && max_particles > 0, who, ": bad sizes num_jets=", num_jets,
                 ", max_particles=", max_particles);
    HEPGNN_CHECK(particles.rows() == static_cast<Eigen::Index>(num_jets) * max_particles && particles.cols() == 4,
                 who, ": particles must be (num_jets*max_particles) x 4 = ",
                 static_cast<long>(num_jets) * max_particles, " x 4, got ", particles.rows(), " x ",
                 particles.cols());
    HEPGNN_CHECK(jet_features.size() == 0 || jet_features.rows() == num_jets, who,
                 ": jet_features must be empty or have num_jets=", num_jets, " rows, got ", jet_features.rows());
    HEPGNN_CHECK(labels.empty() || labels.size() == static_cast<std::size_t>(num_jets), who,
                 ": labels must be empty or have num_jets=", num_jets, " entries, got ", labels.size());
    for (index_t j = 0; j < num_jets; ++j) {
      bool padding = false;
      for (index_t i = 0; i < max_particles; ++i) {
        auto r = row(j, i);
        HEPGNN_CHECK(r.allFinite(), who, ": jet ", j, " particle ", i, " has a non-finite feature");
        HEPGNN_CHECK(r(jet_col::mask) == T(0) || r(jet_col::mask) == T(1), who, ": jet ", j, " particle ", i,
                     " mask must be 0 or 1, got ", r(jet_col::mask));
        HEPGNN_CHECK(r(jet_col::pt_rel) >= T(0), who, ": jet ", j, " particle ", i, " pt_rel must be >= 0, got ", r(jet_col::pt_rel));
        if (r(jet_col::mask) == T(0)) padding = true;
        else HEPGNN_CHECK(!padding, who, ": jet ", j, " has a real particle at slot ", i, " after padding");
      }
    }
  }
};

namespace detail {
/// Packs the jets jet_of(0), ..., jet_of(n - 1) (validated indices) in that order.
template <class T, class JetOf>
void pack_jets_by(const jet_array<T>& jets, index_t n, JetOf jet_of, matrix<T>& x, batch& b, int cols) {
  HEPGNN_CHECK(cols >= 1 && cols <= 4, "pack_jets: cols must be in [1, 4], got ", cols);
  Eigen::Index total = 0;
  for (index_t j = 0; j < n; ++j) total += jets.count(jet_of(j));
  HEPGNN_CHECK(total <= std::numeric_limits<index_t>::max(), "pack_jets: ", total,
               " constituents exceed the 32-bit node index of a batch");
  x.resize(total, cols);
  b.node_offsets.assign(1, 0);
  Eigen::Index r = 0;
  for (index_t j = 0; j < n; ++j) {
    const index_t jet = jet_of(j);
    for (index_t i = 0; i < jets.count(jet); ++i) x.row(r++) = jets.row(jet, i).head(cols);
    b.node_offsets.push_back(static_cast<index_t>(r));
  }
}
}  // namespace detail

/// @brief Packs the real constituents of jets [first, first + n) into a node matrix (rows: eta_rel, phi_rel,
/// pt_rel; columns chosen by `cols`, 3 by default) and the batch of their node offsets: the graph-model input.
/// Reuses the storage of x and b.
template <class T>
void pack_jets(const jet_array<T>& jets, index_t first, index_t n, matrix<T>& x, batch& b, int cols = 3) {
  HEPGNN_CHECK(first >= 0 && n >= 0 && n <= jets.num_jets - first, "pack_jets: jets [", first, ", ",
               static_cast<long long>(first) + n, ") out of range for ", jets.num_jets, " jets");
  detail::pack_jets_by(jets, n, [first](index_t j) { return first + j; }, x, b, cols);
}

/// @brief Packs the jets listed in `items` (in that order; e.g. a shuffled minibatch from fit()), as the
/// contiguous overload does.
template <class T, class Index>
  requires std::is_integral_v<Index>
void pack_jets(const jet_array<T>& jets, std::span<const Index> items, matrix<T>& x, batch& b, int cols = 3) {
  for (std::size_t k = 0; k < items.size(); ++k) {
    const auto jet = static_cast<long long>(items[k]);
    HEPGNN_CHECK(jet >= 0 && jet < jets.num_jets, "pack_jets: items[", k, "] = ", jet, " is not a jet index in [0, ",
                 jets.num_jets, ")");
  }
  HEPGNN_CHECK(items.size() <= static_cast<std::size_t>(std::numeric_limits<index_t>::max()), "pack_jets: ",
               items.size(), " items exceed the 32-bit graph index of a batch");
  detail::pack_jets_by(jets, static_cast<index_t>(items.size()),
                       [&items](index_t j) { return static_cast<index_t>(items[static_cast<std::size_t>(j)]); }, x, b,
                       cols);
}

}  // namespace hepgnn
