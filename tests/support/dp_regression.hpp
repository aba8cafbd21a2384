#pragma once
// A small data-parallel job shared by the thread-rank tests (tests/dist) and the MPI programs (tests/mpi): 40
// points of a smooth 3 -> 1 regression in 4 micro-shards of 10, micro-batches of 3, an MLP 3-16-1.
#include <cmath>
#include <string>
#include <vector>

#include "hepgnn/dist/data_parallel.hpp"
#include "hepgnn/nn/mlp.hpp"

namespace hepgnn_test {

struct dp_regression {
  static constexpr int n = 40, shards = 4;
  hepgnn::matrix<float> x{n, 3}, y{n, 1};
  std::vector<std::vector<std::size_t>> members = hepgnn::split_round_robin(n, shards);
  hepgnn::micro_shard_sampler sampler{{10, 10, 10, 10}, 3, 17};
  hepgnn::rng init;
  hepgnn::mlp<float> model;

  /// `init_seed` differs per rank in the tests, so broadcast_parameters has something to fix.
  explicit dp_regression(std::uint64_t init_seed) : init(init_seed), model(init, {3, 16, 1}) {
    hepgnn::rng data(5);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < 3; ++j) x(i, j) = static_cast<float>(data.normal());
      y(i, 0) = std::sin(x(i, 0)) + 0.5f * x(i, 1) * x(i, 2);
    }
  }

  /// Adds the gradient of the squared-error sum of micro-shard `s`'s items at (epoch, step) to the model.
  hepgnn::shard_loss shard_gradient(int s, int epoch, std::size_t step) {
    const auto items = sampler.items(epoch, step, s);
    const auto rows = static_cast<Eigen::Index>(items.size());
    xb.resize(rows, 3);
    yb.resize(rows, 1);
    for (Eigen::Index k = 0; k < rows; ++k) {
      const auto i = static_cast<Eigen::Index>(members[static_cast<std::size_t>(s)][items[static_cast<std::size_t>(k)]]);
      xb.row(k) = x.row(i);
      yb.row(k) = y.row(i);
    }
    model.forward(xb, pred, c);
    dpred = 2 * (pred - yb);
    model.backward(xb, pred, dpred, c, nullptr);
    return {(pred - yb).squaredNorm(), static_cast<double>(rows)};
  }

  std::vector<float> weights() {
    std::vector<float> w;
    model.for_each_param("", [&](const std::string&, auto p) { w.insert(w.end(), p.value, p.value + p.size()); });
    return w;
  }

 private:
  hepgnn::matrix<float> xb, yb, pred, dpred;
  hepgnn::mlp<float>::cache c;
};

}  // namespace hepgnn_test
