#pragma once
/// @file fastjet_cluster.hpp
/// @brief Clustering events into jets with FastJet (anti-kt, E-scheme) and converting them to the JetNet
/// layout. Needs FastJet: link the `hepgnn::fastjet` CMake component, which defines HEPGNN_HAVE_FASTJET; without
/// it this header declares nothing (its functions exist or not; none changes its body with the macro).

#include "hepgnn/io/fastjet_events.hpp"

#ifdef HEPGNN_HAVE_FASTJET
#include <fastjet/ClusterSequence.hh>

namespace hepgnn {

/// @brief Jet definition and selection for cluster_jets.
struct jet_cluster_options {
  double radius = 0.8;          ///< anti-kt R
  double pt_min = 200;          ///< keep jets above this pt (GeV)
  index_t max_jets = -1;        ///< keep at most this many (leading) jets per event; -1: all
  index_t max_particles = 30;   ///< JetNet slots per jet
};

/// @brief Clusters one event (n x 4 (px, py, pz, E)) with anti-kt / E-scheme; returns the constituents of
/// the jets above pt_min, jets ordered by decreasing pt, constituents by decreasing pt.
inline std::vector<four_momenta> cluster_jets(const four_momenta& event, const jet_cluster_options& o = {}) {
  HEPGNN_CHECK(event.cols() == 4, "cluster_jets: event must be n x 4 (px, py, pz, E), got ", event.rows(), " x ",
               event.cols());
  HEPGNN_CHECK(event.allFinite(), "cluster_jets: event has a non-finite four-momentum");
  HEPGNN_CHECK(o.radius > 0 && o.pt_min >= 0, "cluster_jets: need radius > 0 and pt_min >= 0, got radius=", o.radius,
               ", pt_min=", o.pt_min);
  std::vector<fastjet::PseudoJet> in;
  in.reserve(static_cast<std::size_t>(event.rows()));
  for (Eigen::Index i = 0; i < event.rows(); ++i) in.emplace_back(event(i, 0), event(i, 1), event(i, 2), event(i, 3));
  const fastjet::JetDefinition def(fastjet::antikt_algorithm, o.radius, fastjet::E_scheme);
  fastjet::ClusterSequence cs(in, def);
  auto jets = fastjet::sorted_by_pt(cs.inclusive_jets(o.pt_min));
  if (o.max_jets >= 0 && jets.size() > static_cast<std::size_t>(o.max_jets)) jets.resize(o.max_jets);
  std::vector<four_momenta> out;
  for (const auto& jet : jets) {
    auto cons = fastjet::sorted_by_pt(jet.constituents());
    four_momenta m(static_cast<Eigen::Index>(cons.size()), 4);
    for (std::size_t i = 0; i < cons.size(); ++i)
      m.row(static_cast<Eigen::Index>(i)) << cons[i].px(), cons[i].py(), cons[i].pz(), cons[i].E();
    out.push_back(std::move(m));
  }
  return out;
}

/// @brief Clusters every event and converts all selected jets to the JetNet layout (labels = event index).
template <class T>
jet_array<T> cluster_to_jetnet(const std::vector<four_momenta>& events, const jet_cluster_options& o = {}) {
  std::vector<four_momenta> all;
  std::vector<int> event_of;
  for (std::size_t e = 0; e < events.size(); ++e)
    for (auto& j : cluster_jets(events[e], o)) {
      all.push_back(std::move(j));
      event_of.push_back(static_cast<int>(e));
    }
  jet_array<T> out = jetnet_from_constituents<T>(all, o.max_particles);
  out.labels = std::move(event_of);
  return out;
}

}  // namespace hepgnn
#endif
