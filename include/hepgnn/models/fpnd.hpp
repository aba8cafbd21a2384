#pragma once
/// @file fpnd.hpp
/// @brief FPND, the Frechet ParticleNet distance of JetNet (jetnet.evaluation.fpnd, arXiv:2106.11535): the Frechet
/// distance between the fc1 activations (before its ReLU) of JetNet's trained ParticleNet on generated jets and the
/// stored mean and covariance of those activations on real JetNet jets of the same type ({g,q,t}_mu.txt,
/// {g,q,t}_sigma.txt). In models/ rather than metrics/, since it runs a model (docs/layering.md).
///
/// As JetNet: the jets' (eta_rel, phi_rel, pt_rel) are scaled by fpnd_norm (divided by 1.6211985349655151,
/// 0.520724892616272, 0.8934717178344727, then pt - 0.5); all 30 slots of a jet are nodes of its kNN graphs
/// (JetNet's ParticleNet has no mask, so padded slots take part); at most the first 50,000 jets are used.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/metrics/frechet.hpp"
#include "hepgnn/models/particlenet.hpp"

namespace hepgnn {

/// @brief Mean and covariance of the fc1 activations on real jets of one type (FPND's reference).
struct fpnd_statistics {
  vector<double> mu;      ///< 256
  matrix<double> sigma;   ///< 256 x 256

  /// @brief Reads `<dir>/<jet_type>_mu.txt` and `<dir>/<jet_type>_sigma.txt` (numpy.savetxt files of JetNet's
  /// fpnd_resources/jetnet/30_particles), jet_type one of "g", "q", "t".
  static fpnd_statistics load(const std::filesystem::path& dir, const std::string& jet_type, int width = 256) {
    HEPGNN_CHECK(jet_type == "g" || jet_type == "q" || jet_type == "t", "fpnd_statistics::load: jet_type must be ",
                 "\"g\", \"q\" or \"t\" (JetNet's FPND types), got \"", jet_type, "\"");
    auto read = [&](const std::string& name, long count) {
      const auto path = dir / (jet_type + name);
      std::ifstream in(path);
      HEPGNN_CHECK(in.good(), "fpnd_statistics::load: cannot open ", path.string());
      std::vector<double> v;
      v.reserve(static_cast<std::size_t>(count));
      double x;
      while (in >> x) {
        HEPGNN_CHECK(std::isfinite(x), "fpnd_statistics::load: ", path.string(), " holds a non-finite value");
        v.push_back(x);
      }
      HEPGNN_CHECK(in.eof(), "fpnd_statistics::load: ", path.string(), " has a token that is not a number after ",
                   v.size(), " values");
      HEPGNN_CHECK(static_cast<long>(v.size()) == count, "fpnd_statistics::load: ", path.string(), " must hold ", count,
                   " values, got ", v.size());
      return v;
    };
    fpnd_statistics s;
    const auto mu = read("_mu.txt", width);
    const auto sigma = read("_sigma.txt", static_cast<long>(width) * width);
    s.mu = Eigen::Map<const vector<double>>(mu.data(), width);
    s.sigma = Eigen::Map<const matrix<double>>(sigma.data(), width, width);
    return s;
  }
};

/// @brief JetNet's fpnd_norm of jets [first, first + n): (n * P) x 3 rows, every slot (padding included).
template <class T>
matrix<T> fpnd_inputs(const jet_array<T>& jets, index_t first, index_t n) {
  HEPGNN_CHECK(first >= 0 && n >= 0 && n <= jets.num_jets - first, "fpnd_inputs: jets [", first, ", ",
               static_cast<long long>(first) + n, ") out of range for ", jets.num_jets, " jets");
  constexpr double maxes[3] = {1.6211985349655151, 0.520724892616272, 0.8934717178344727};
  const Eigen::Index rows = static_cast<Eigen::Index>(n) * jets.max_particles;
  matrix<T> x(rows, 3);
  const Eigen::Index offset = static_cast<Eigen::Index>(first) * jets.max_particles;
  for (Eigen::Index r = 0; r < rows; ++r)
    for (int c = 0; c < 3; ++c)
      x(r, c) = static_cast<T>(static_cast<double>(jets.particles(offset + r, c)) / maxes[c] - (c == 2 ? 0.5 : 0.0));
  return x;
}

/// @brief fc1 activations (before ReLU) of the first min(num_jets, max_jets) jets: one row per jet, in double.
/// Jets go through the network `batch_jets` at a time (the values do not depend on it: kNN graphs, pooling and
/// BatchNorm in evaluation mode are per jet).
template <class T>
matrix<double> fpnd_activations(const particlenet<T>& net, const jet_array<T>& jets, index_t max_jets = 50'000,
                                index_t batch_jets = 512) {
  jets.validate("fpnd: jets");
  HEPGNN_CHECK(jets.max_particles == 30, "fpnd: JetNet's ParticleNet statistics are for 30 particles per jet, got ",
               jets.max_particles);
  HEPGNN_CHECK(max_jets >= 1 && batch_jets >= 1, "fpnd: max_jets and batch_jets must be >= 1, got ", max_jets, " and ",
               batch_jets);
  const index_t n = std::min(jets.num_jets, max_jets);
  matrix<double> act(n, net.config().fc);
  typename particlenet<T>::workspace ws;
  for (index_t first = 0; first < n; first += batch_jets) {
    const index_t count = std::min(batch_jets, n - first);
    const matrix<T> x = fpnd_inputs(jets, first, count);
    net.infer(x, batch::uniform(count, jets.max_particles), ws);
    act.middleRows(first, count) = particlenet<T>::activations(ws).template cast<double>();
  }
  return act;
}

/// @brief FPND of `jets` (generated) against the real-jet statistics of their type: Frechet distance between the
/// Gaussian fit of fpnd_activations and (real.mu, real.sigma). JetNet recommends 50,000 jets; at least 2 are needed.
template <class T>
double fpnd(const particlenet<T>& net, const jet_array<T>& jets, const fpnd_statistics& real,
            index_t max_jets = 50'000) {
  HEPGNN_CHECK(jets.num_jets >= 2, "fpnd: need at least 2 jets for a covariance, got ", jets.num_jets);
  HEPGNN_CHECK(real.mu.size() == net.config().fc && real.sigma.rows() == net.config().fc &&
                   real.sigma.cols() == net.config().fc,
               "fpnd: real statistics must be ", net.config().fc, " and ", net.config().fc, " x ", net.config().fc,
               ", got ", real.mu.size(), " and ", real.sigma.rows(), " x ", real.sigma.cols());
  const gaussian_fit g = fit_gaussian(fpnd_activations(net, jets, max_jets));
  return frechet_distance(real.mu, real.sigma, g.mean, g.cov);
}

}  // namespace hepgnn
