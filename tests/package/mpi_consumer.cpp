// A user's data-parallel program through the installed package's mpi component: two ranks average a gradient
// with data_parallel and agree on the result.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "hepgnn/dist/data_parallel.hpp"
#include "hepgnn/dist/mpi_communicator.hpp"
#include "hepgnn/nn/dense.hpp"

int main(int argc, char** argv) {
  return hepgnn::mpi_main(argc, argv, [](hepgnn::mpi_communicator& comm) {
    hepgnn::rng g(1);
    hepgnn::dense<double> layer(g, 2, 1);
    hepgnn::data_parallel<double, hepgnn::mpi_communicator> dp(comm, comm.size());
    dp.broadcast_parameters(layer);
    // micro-shard s contributes a gradient of s + 1 to every weight, for one item
    dp.reduce_gradients(layer, [&](int s) {
      layer.for_each_param("", [&](const std::string&, auto p) {
        for (std::int64_t i = 0; i < p.size(); ++i) p.grad[i] += s + 1;
      });
      return hepgnn::shard_loss{1.0, 1};
    });
    const double n = comm.size(), expected = (n + 1) / 2;  // mean of 1..n
    layer.for_each_param("", [&](const std::string& name, auto p) {
      if (p.grad[0] != expected) throw std::runtime_error(name + ": gradient " + std::to_string(p.grad[0]));
    });
    if (comm.rank() == 0) std::printf("mpi consumer: %d ranks agree on the mean gradient %.2f\n", comm.size(), expected);
  });
}
