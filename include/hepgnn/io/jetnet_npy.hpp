#pragma once
/// @file jetnet_npy.hpp
/// @brief JetNet-layout jets from and to .npy arrays: particle features [n_jets, P, 4] (eta_rel, phi_rel,
/// pt_rel, mask) or [n_jets, P, 3] (mask derived from pt_rel > 0), optional jet features [n_jets, k >= 4]
/// whose first four columns are taken as (pt, eta, mass, n_constituents).

#include <filesystem>
#include <string>

#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/npy_rows.hpp"

namespace hepgnn {

/// @brief Converts a decoded npy array of particle features to a jet_array (real particles moved in front
/// of padding, keeping their order; values are checked by jet_array::validate()).
template <class T>
jet_array<T> jets_from_npy(const npy_array& a, const char* who = "jets_from_npy") {
  HEPGNN_CHECK(a.ndim() == 3 && (a.shape[2] == 3 || a.shape[2] == 4), who,
               ": particle features must have shape [n_jets, P, 3 or 4], got ndim ", a.ndim(),
               a.ndim() == 3 ? " with last extent " + std::to_string(a.shape[2]) : std::string());
  HEPGNN_CHECK(a.shape[1] > 0 && a.shape[1] < (1 << 20) && a.shape[0] < (1LL << 31) / a.shape[1], who,
               ": unreasonable shape [", a.shape[0], ", ", a.shape[1], ", ", a.shape[2], "]");
  const auto n = static_cast<index_t>(a.shape[0]), p = static_cast<index_t>(a.shape[1]);
  const int f = static_cast<int>(a.shape[2]);
  const std::vector<T> v = a.as<T>();
  jet_array<T> out = jet_array<T>::zeros(n, p);
  for (index_t j = 0; j < n; ++j) {
    index_t k = 0;
    for (index_t i = 0; i < p; ++i) {
      const T* s = v.data() + (static_cast<std::size_t>(j) * p + i) * f;
      const T m = f == 4 ? s[3] : T(s[2] > T(0) ? 1 : 0);
      HEPGNN_CHECK(m == T(0) || m == T(1), who, ": jet ", j, " particle ", i, " mask must be 0 or 1, got ", m);
      if (m == T(0)) continue;
      out.row(j, k++) << s[0], s[1], s[2], T(1);
    }
  }
  out.validate(who);
  return out;
}

/// @brief Reads JetNet particle features (and, when `jet_features_path` is not empty, jet features).
template <class T>
jet_array<T> read_jetnet_npy(const std::filesystem::path& particle_path,
                             const std::filesystem::path& jet_features_path = {}) {
  jet_array<T> out = jets_from_npy<T>(read_npy(particle_path), "read_jetnet_npy");
  if (!jet_features_path.empty()) {
    const npy_array jf = read_npy(jet_features_path);
    HEPGNN_CHECK(jf.ndim() == 2 && jf.shape[0] == out.num_jets && jf.shape[1] >= 4, "read_jetnet_npy: '",
                 jet_features_path.string(), "' must have shape [", out.num_jets, ", >= 4], got ndim ", jf.ndim(),
                 jf.ndim() >= 1 ? ", first extent " + std::to_string(jf.shape[0]) : std::string());
    out.jet_features = jf.as_matrix<T>().leftCols(4);
  }
  return out;
}

/// @brief Jets [begin, begin + count) of JetNet .npy files, reading only those rows (io/npy_rows.hpp): a rank's
/// part of a shared dataset (split a file's jets into contiguous micro-shards: dist/shard.hpp, docs/distributed.md).
template <class T>
jet_array<T> read_jetnet_npy_rows(const std::filesystem::path& particle_path, std::int64_t begin, std::int64_t count,
                                  const std::filesystem::path& jet_features_path = {}) {
  jet_array<T> out = jets_from_npy<T>(read_npy_rows(particle_path, begin, count), "read_jetnet_npy_rows");
  if (!jet_features_path.empty()) {
    const npy_array jf = read_npy_rows(jet_features_path, begin, count);
    HEPGNN_CHECK(jf.ndim() == 2 && jf.shape[1] >= 4, "read_jetnet_npy_rows: '", jet_features_path.string(),
                 "' must have shape [n_jets, >= 4], got ndim ", jf.ndim());
    out.jet_features = jf.as_matrix<T>().leftCols(4);
  }
  return out;
}

/// @brief Writes particle features as float32 [n_jets, P, 4] (and jet features [n_jets, 4] when a path is
/// given and the jets have them).
template <class T>
void write_jetnet_npy(const jet_array<T>& jets, const std::filesystem::path& particle_path,
                      const std::filesystem::path& jet_features_path = {}) {
  jets.validate("write_jetnet_npy");
  write_npy(particle_path, npy_array::from({jets.num_jets, jets.max_particles, 4}, jets.particles.data(),
                                           npy_dtype::f4));
  if (!jet_features_path.empty()) {
    HEPGNN_CHECK(jets.jet_features.rows() == jets.num_jets && jets.jet_features.cols() == 4,
                 "write_jetnet_npy: jets have no jet_features (", jets.jet_features.rows(), " x ",
                 jets.jet_features.cols(), ") but a jet-feature path was given");
    write_npy(jet_features_path, npy_array::from_matrix(jets.jet_features, npy_dtype::f4));
  }
}

}  // namespace hepgnn
