#pragma once
/// @file fastjet_events.hpp
/// @brief Reader of FastJet example event files (one particle per line `px py pz E`, a `#END` line between
/// events, other lines starting with `#` are comments; the last event may lack its `#END`), and conversion of
/// jets given by their constituents' four-momenta into the JetNet layout. Clustering the events into jets
/// needs FastJet: see io/fastjet_cluster.hpp.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"

namespace hepgnn {

/// @brief Particles of one event: n x 4 rows of (px, py, pz, E) in GeV.
using four_momenta = matrix<double>;

/// @brief Parses the text of a FastJet example event file. Throws hepgnn::error naming the line for a line
/// that is not four finite numbers (extra columns are an error too). Empty events are kept only when they end
/// with `#END` (an input that is all comments gives no events).
inline std::vector<four_momenta> parse_fastjet_events(std::string_view text, const std::string& name = "<text>") {
  std::vector<four_momenta> events;
  std::vector<double> cur;
  std::size_t line_no = 0, pos = 0;
  auto flush = [&] {
    four_momenta m(static_cast<Eigen::Index>(cur.size() / 4), 4);
    std::copy(cur.begin(), cur.end(), m.data());
    events.push_back(std::move(m));
    cur.clear();
  };
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;  // blank
    line.remove_prefix(first);
    if (line[0] == '#') {
      if (line.substr(0, 4) == "#END") flush();
      continue;
    }
    double v[4];
    int k = 0;
    std::size_t p = 0;
    while (true) {
      while (p < line.size() && (line[p] == ' ' || line[p] == '\t' || line[p] == '\r')) ++p;
      if (p >= line.size()) break;
      HEPGNN_CHECK(k < 4, "read_fastjet_events: ", name, " line ", line_no,
                   ": expected 4 numbers (px py pz E), got more");
      const char* b = line.data() + p;
      const char* e = line.data() + line.size();
      if (*b == '+') ++b;  // from_chars does not accept a leading '+'
      const auto [ptr, ec] = std::from_chars(b, e, v[k]);
      HEPGNN_CHECK(ec == std::errc() && (ptr == e || *ptr == ' ' || *ptr == '\t' || *ptr == '\r'),
                   "read_fastjet_events: ", name, " line ", line_no, ": column ", k + 1, " is not a number: '",
                   std::string(line.substr(p, std::min<std::size_t>(line.size() - p, 32))), "'");
      HEPGNN_CHECK(std::isfinite(v[k]), "read_fastjet_events: ", name, " line ", line_no, ": column ", k + 1,
                   " is not finite");
      p = static_cast<std::size_t>(ptr - line.data());
      ++k;
    }
    HEPGNN_CHECK(k == 4, "read_fastjet_events: ", name, " line ", line_no, ": expected 4 numbers (px py pz E), got ", k);
    cur.insert(cur.end(), v, v + 4);
  }
  if (!cur.empty()) flush();
  return events;
}

/// @brief Reads a FastJet example event file (see parse_fastjet_events).
inline std::vector<four_momenta> read_fastjet_events(const std::filesystem::path& path) {
  std::error_code ec;
  HEPGNN_CHECK(!std::filesystem::is_directory(path, ec), "read_fastjet_events: '", path.string(),
               "' is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  HEPGNN_CHECK(f.good(), "read_fastjet_events: cannot open '", path.string(), "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_fastjet_events(ss.str(), path.string());
}

/// @brief Kinematics of a four-momentum: pt, pseudorapidity, phi in [-pi, pi], mass (0 when m^2 < 0).
struct jet_kinematics {
  double pt = 0, eta = 0, phi = 0, mass = 0;
  /// @brief From (px, py, pz, E); pseudorapidity is +-inf along the beam and asinh(pz / pt) otherwise.
  static jet_kinematics of(double px, double py, double pz, double e) {
    jet_kinematics k;
    k.pt = std::hypot(px, py);
    k.eta = k.pt > 0 ? std::asinh(pz / k.pt) : (pz >= 0 ? INFINITY : -INFINITY);
    k.phi = std::atan2(py, px);
    const double m2 = e * e - px * px - py * py - pz * pz;
    k.mass = m2 > 0 ? std::sqrt(m2) : 0.0;
    return k;
  }
};

/// @brief Converts jets given by their constituents (each n_i x 4 (px, py, pz, E)) to the JetNet layout:
/// jet = E-scheme sum of all constituents; the `max_particles` highest-pt constituents (ties keep input
/// order) with eta_rel = eta - eta_jet (pseudorapidities), phi_rel = phi - phi_jet wrapped to [-pi, pi],
/// pt_rel = pt / pt_jet, mask 1; jet_features = (pt, eta, mass, n_constituents). Constituents with pt = 0
/// (no pseudorapidity) are rejected.
template <class T>
jet_array<T> jetnet_from_constituents(const std::vector<four_momenta>& jets, index_t max_particles = 30) {
  HEPGNN_CHECK(max_particles > 0, "jetnet_from_constituents: max_particles must be > 0, got ", max_particles);
  const auto n = static_cast<index_t>(jets.size());
  jet_array<T> out = jet_array<T>::zeros(n, max_particles);
  out.jet_features = matrix<T>::Zero(n, 4);
  for (index_t j = 0; j < n; ++j) {
    const four_momenta& c = jets[j];
    HEPGNN_CHECK(c.cols() == 4 && c.rows() > 0, "jetnet_from_constituents: jet ", j,
                 " must be n x 4 (px, py, pz, E) with n > 0, got ", c.rows(), " x ", c.cols());
    HEPGNN_CHECK(c.allFinite(), "jetnet_from_constituents: jet ", j, " has a non-finite four-momentum");
    const Eigen::RowVector4d sum = c.colwise().sum();
    const auto jk = jet_kinematics::of(sum(0), sum(1), sum(2), sum(3));
    HEPGNN_CHECK(jk.pt > 0, "jetnet_from_constituents: jet ", j, " has zero transverse momentum");
    std::vector<jet_kinematics> parts(static_cast<std::size_t>(c.rows()));
    for (Eigen::Index i = 0; i < c.rows(); ++i) {
      parts[i] = jet_kinematics::of(c(i, 0), c(i, 1), c(i, 2), c(i, 3));
      HEPGNN_CHECK(parts[i].pt > 0, "jetnet_from_constituents: jet ", j, " constituent ", i,
                   " has pt = 0 (no pseudorapidity)");
    }
    std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.pt > b.pt; });
    const index_t keep = std::min<index_t>(max_particles, static_cast<index_t>(parts.size()));
    for (index_t i = 0; i < keep; ++i) {
      auto r = out.row(j, i);
      r(jet_col::eta_rel) = static_cast<T>(parts[i].eta - jk.eta);
      r(jet_col::phi_rel) = static_cast<T>(wrap_phi(parts[i].phi - jk.phi));
      r(jet_col::pt_rel) = static_cast<T>(parts[i].pt / jk.pt);
      r(jet_col::mask) = T(1);
    }
    out.jet_features.row(j) << static_cast<T>(jk.pt), static_cast<T>(jk.eta), static_cast<T>(jk.mass),
        static_cast<T>(c.rows());
  }
  return out;
}

}  // namespace hepgnn
