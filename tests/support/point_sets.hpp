#pragma once
// Random weighted point sets for the set-loss tests (chamfer, emd, sinkhorn, sliced Wasserstein).
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

namespace hepgnn_test {

/// n points in [-1, 1)^d.
template <class T = double>
hepgnn::matrix<T> random_points(hepgnn::rng& r, int n, int d) {
  hepgnn::matrix<T> x(n, d);
  for (int k = 0; k < n * d; ++k) x.data()[k] = static_cast<T>(r.uniform(-1, 1));
  return x;
}

/// n positive weights in [0.1, 1) (away from zero so transport problems stay non-degenerate).
inline hepgnn::vector<double> random_weights(hepgnn::rng& r, int n) {
  hepgnn::vector<double> w(n);
  for (int k = 0; k < n; ++k) w[k] = r.uniform(0.1, 1.0);
  return w;
}

}  // namespace hepgnn_test
