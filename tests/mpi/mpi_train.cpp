// Runs under mpirun for tests/mpi/run_mpi_tests.sh (ctest's mpi/* tests):
//   mpi_train collectives
//       allreduce (float, double, int64; blocking and started), broadcast and allgather against closed forms
//   mpi_train train --reduction fast|reproducible --epochs E --out FILE [--checkpoint FILE] [--resume]
//                   [--kill-rank R --kill-at STEP] [--throw-rank R --throw-at STEP] [--trace FILE]
//       trains tests/support/dp_regression.hpp's job with fit(), a checkpoint after every step (rank 0 writes it),
//       and writes rank 0's final weights as raw floats to FILE. --kill-at: that rank sends itself SIGKILL at that
//       global step (the job dies as with kill -9); --throw-at: that rank throws (mpi_main must stop the others).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hepgnn/dist/mpi_communicator.hpp"
#include "hepgnn/io/checkpoint.hpp"
#include "hepgnn/optim/adam.hpp"
#include "support/dp_regression.hpp"

namespace {

using namespace hepgnn;

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

void collectives(mpi_communicator& comm) {
  const int r = comm.rank(), n = comm.size();
  std::vector<float> f(1000);
  std::vector<double> d(3);
  std::vector<std::int64_t> i(2);
  for (std::size_t k = 0; k < f.size(); ++k) f[k] = static_cast<float>(r + 1) * static_cast<float>(k % 7);
  d = {1.0 * r, 0.5, -2.0 * r};
  i = {r, std::int64_t{1} << 40};
  comm.allreduce_sum(f.data(), f.size());
  comm.allreduce_sum(d.data(), d.size());
  comm.allreduce_sum(i.data(), i.size());
  const double ranks_sum = n * (n - 1) / 2.0;
  for (std::size_t k = 0; k < f.size(); ++k)
    expect(f[k] == static_cast<float>(n * (n + 1) / 2) * static_cast<float>(k % 7), "allreduce_sum(float)");
  expect(d[0] == ranks_sum && d[1] == 0.5 * n && d[2] == -2 * ranks_sum, "allreduce_sum(double)");
  expect(i[0] == static_cast<std::int64_t>(ranks_sum) && i[1] == n * (std::int64_t{1} << 40), "allreduce_sum(int64)");
  std::vector<float> a(64, 1.0f), b(64, 2.0f);
  auto pa = comm.start_allreduce_sum(a.data(), a.size());
  auto pb = comm.start_allreduce_sum(b.data(), b.size());
  pb.wait();
  pa.wait();
  expect(a[63] == static_cast<float>(n) && b[0] == 2.0f * static_cast<float>(n), "start_allreduce_sum");
  std::vector<double> root(5, r == 0 ? 3.25 : -1.0);
  comm.broadcast(root.data(), root.size(), 0);
  expect(root[4] == 3.25, "broadcast");
  std::vector<float> mine = {static_cast<float>(r), static_cast<float>(10 * r)}, all(2 * static_cast<std::size_t>(n));
  comm.allgather(std::span<const float>(mine), std::span<float>(all));
  for (int q = 0; q < n; ++q)
    expect(all[2 * static_cast<std::size_t>(q)] == static_cast<float>(q) && all[2 * static_cast<std::size_t>(q) + 1] == 10.0f * static_cast<float>(q),
           "allgather");
  if (r == 0) std::printf("collectives: ok at %d ranks\n", n);
}

struct train_args {
  gradient_reduction mode = gradient_reduction::fast;
  int epochs = 3;
  std::string out, checkpoint, trace;
  bool resume = false;
  int kill_rank = -1, throw_rank = -1;
  long kill_at = -1, throw_at = -1;
};

void train(mpi_communicator& comm, const train_args& a) {
  hepgnn_test::dp_regression job(100 + static_cast<std::uint64_t>(comm.rank()));
  timeline trace(comm.rank());
  data_parallel<float, mpi_communicator> dp(comm, job.shards, {.mode = a.mode}, a.trace.empty() ? nullptr : &trace);
  dp.broadcast_parameters(job.model);
  adam<float> opt({.lr = 0.01});
  std::optional<training_position> start;
  if (a.resume) start = load_checkpoint(a.checkpoint, job.model, opt);
  int epoch = 1;
  fit_options o{.epochs = a.epochs, .batch_size = 1, .shuffle = false, .progress = false};
  o.before_step = [&](int e, long step) {
    epoch = e;
    if (comm.rank() == a.kill_rank && step == a.kill_at) ::kill(::getpid(), SIGKILL);
    if (comm.rank() == a.throw_rank && step == a.throw_at)
      throw std::runtime_error("an injected failure at step " + std::to_string(step));
  };
  if (!a.checkpoint.empty()) {
    o.checkpoint_every = 1;
    o.on_checkpoint = [&](const training_position& at) {
      if (comm.rank() == 0) save_checkpoint(a.checkpoint, job.model, opt, at);
      comm.barrier();  // no rank runs ahead of the last checkpoint
    };
  }
  o.resume = start;
  fit(job.model, job.sampler.steps_per_epoch(), o, [&](std::span<const std::size_t> items) {
    const double loss = dp.reduce_gradients(job.model, [&](int s) { return job.shard_gradient(s, epoch, items[0]); });
    opt.step(job.model);
    return loss;
  });
  if (!a.trace.empty()) trace.write_chrome_trace(a.trace + "." + std::to_string(comm.rank()) + ".json");
  if (comm.rank() == 0 && !a.out.empty()) {
    const auto w = job.weights();
    std::ofstream f(a.out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * sizeof(float)));
    expect(f.good(), "writing " + a.out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return mpi_main(argc, argv, [&](mpi_communicator& comm) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "collectives") return collectives(comm);
    if (mode != "train") throw std::invalid_argument("usage: mpi_train collectives | train [options]");
    train_args a;
    for (int k = 2; k < argc; ++k) {
      const std::string opt = argv[k];
      const auto next = [&]() -> std::string {
        if (k + 1 >= argc) throw std::invalid_argument(opt + " needs a value");
        return argv[++k];
      };
      if (opt == "--reduction") {
        const std::string v = next();
        if (v != "fast" && v != "reproducible") throw std::invalid_argument("--reduction: fast or reproducible");
        a.mode = v == "fast" ? gradient_reduction::fast : gradient_reduction::reproducible;
      } else if (opt == "--epochs") a.epochs = std::stoi(next());
      else if (opt == "--out") a.out = next();
      else if (opt == "--checkpoint") a.checkpoint = next();
      else if (opt == "--trace") a.trace = next();
      else if (opt == "--resume") a.resume = true;
      else if (opt == "--kill-rank") a.kill_rank = std::stoi(next());
      else if (opt == "--kill-at") a.kill_at = std::stol(next());
      else if (opt == "--throw-rank") a.throw_rank = std::stoi(next());
      else if (opt == "--throw-at") a.throw_at = std::stol(next());
      else throw std::invalid_argument("unknown option " + opt);
    }
    train(comm, a);
  });
}
