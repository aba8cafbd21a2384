#pragma once
// Closed-form jets shared by the jet-metric tests and their reference scripts (tests/reference/
// generation_metrics_reference.py, cov_mmd_reference.py: wave_jets): multiplicity 5..30 of 30 slots, zero padding;
// sample 1's pt_rel sum to 1 + 0.1 sin(1.3 j); jet 3 of sample 0 spreads phi over +-2.
#include <cmath>
#include <vector>

#include "hepgnn/data/jet_array.hpp"

namespace hepgnn_test {

inline hepgnn::jet_array<double> wave_jets(int sample, hepgnn::index_t n) {
  using namespace hepgnn;
  constexpr index_t P = 30;
  auto jets = jet_array<double>::zeros(n, P);
  for (index_t j = 0; j < n; ++j) {
    const int m = 5 + (7 * j + 11 * sample) % 26;
    std::vector<double> pt(m);
    double total = 0;
    for (int i = 0; i < m; ++i) {
      const double k = static_cast<double>((sample * 1000 + j) * P + i);
      pt[i] = std::exp(-0.12 * i) * (1.2 + std::sin(0.53 * k));
      total += pt[i];
    }
    for (int i = 0; i < m; ++i) {
      const double k = static_cast<double>((sample * 1000 + j) * P + i);
      auto r = jets.row(j, i);
      r(jet_col::eta_rel) = 0.35 * std::sin(0.37 * k + 0.2 * sample);
      r(jet_col::phi_rel) = (sample == 0 && j == 3 ? 2.0 : 0.3) * std::sin(0.71 * k + 1.1);
      r(jet_col::pt_rel) = pt[i] / total * (sample == 1 ? 1 + 0.1 * std::sin(1.3 * j) : 1.0);
      r(jet_col::mask) = 1;
    }
  }
  return jets;
}

}  // namespace hepgnn_test
