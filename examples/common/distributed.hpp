#pragma once
// Data-parallel training for the examples: the same program runs alone or under `mpirun -np N` (when built with
// the hepgnn::mpi component, which defines HEPGNN_EXAMPLE_MPI for the examples), trains on micro-shards
// (dist/shard.hpp), writes and resumes checkpoints, and prints progress on rank 0 only.
//
// Command-line options every distributed example accepts (parse_distributed):
//   --micro-shards M     split the training data into M micro-shards (default: the number of ranks); a global
//                        batch is one event of every micro-shard
//   --reproducible       the same weight bits at any rank count (gradients summed in micro-shard order)
//   --checkpoint FILE    write a training checkpoint (rank 0) after every epoch and every --checkpoint-every steps
//   --checkpoint-every K
//   --resume             continue from --checkpoint FILE
//   --trace FILE         each rank writes its timeline as FILE.<rank>.json (Chrome trace)
//   --train-only         stop after training (the scaling runs)
//   --weights-out FILE   rank 0 writes the trained weights (safetensors) there
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "hepgnn/dist/data_parallel.hpp"
#include "hepgnn/io/checkpoint.hpp"
#ifdef HEPGNN_EXAMPLE_MPI
#include "hepgnn/dist/mpi_communicator.hpp"
#endif

namespace examples {

struct distributed_options {
  int micro_shards = 0;  // 0: the number of ranks
  bool reproducible = false;
  std::string checkpoint, trace, weights_out;
  long checkpoint_every = 0;
  bool resume = false, train_only = false;
  bool requested = false;  // a data-parallel option given: train data-parallel even on one rank

  /// Consumes argument `a` (and its value through next()) when it is one of these options.
  template <class Next>
  bool parse(const std::string& a, Next&& next) {
    bool mine = true;
    if (a == "--micro-shards") micro_shards = std::stoi(next());
    else if (a == "--reproducible") reproducible = true;
    else if (a == "--checkpoint") checkpoint = next();
    else if (a == "--checkpoint-every") checkpoint_every = std::stol(next());
    else if (a == "--resume") resume = true;
    else if (a == "--trace") trace = next();
    else mine = false;
    requested = requested || mine;  // the two below do not ask for data-parallel training
    if (a == "--train-only") train_only = mine = true;
    else if (a == "--weights-out") weights_out = next(), mine = true;
    return mine;
  }
};

/// Runs run(communicator) on every rank (MPI builds) or once (single_process); returns the exit code.
template <class Run>
int launch(int argc, char** argv, Run&& run) {
#ifdef HEPGNN_EXAMPLE_MPI
  return hepgnn::mpi_main(argc, argv, [&](hepgnn::mpi_communicator& comm) { run(comm); });
#else
  (void)argc;
  (void)argv;
  hepgnn::single_process comm;
  run(comm);
  return 0;
#endif
}

/// fit() over the steps of a micro-shard sampler: each step reduces the micro-shards' gradients across the
/// ranks (shard_gradient(shard, items) adds the gradient of the summed loss of those items of that micro-shard),
/// then after_reduce() (e.g. clipping) and the optimizer step; checkpoints and resume as the options say.
template <class T, class Comm, class Model, class Optimizer, class ShardGradient>
hepgnn::fit_history fit_data_parallel(Comm& comm, Model& model, Optimizer& opt, const distributed_options& d,
                                      const hepgnn::micro_shard_sampler& sampler, hepgnn::fit_options o,
                                      ShardGradient&& shard_gradient, const std::function<void()>& after_reduce,
                                      hepgnn::timeline* trace = nullptr) {
  hepgnn::data_parallel<T, Comm> dp(
      comm, sampler.shards(),
      {.mode = d.reproducible ? hepgnn::gradient_reduction::reproducible : hepgnn::gradient_reduction::fast}, trace);
  dp.broadcast_parameters(model);
  if (d.resume) {
    HEPGNN_CHECK(!d.checkpoint.empty(), "--resume needs --checkpoint FILE");
    o.resume = hepgnn::load_checkpoint(d.checkpoint, model, opt);
    if (comm.rank() == 0)
      std::printf("resumed from %s at epoch %d, step %ld\n", d.checkpoint.c_str(), o.resume->epoch,
                  o.resume->global_step);
  }
  if (!d.checkpoint.empty()) {
    o.checkpoint_every = d.checkpoint_every;
    o.on_checkpoint = [&](const hepgnn::training_position& at) {
      if (comm.rank() == 0) hepgnn::save_checkpoint(d.checkpoint, model, opt, at);
      comm.barrier();  // no rank runs past a checkpoint that is not written yet
    };
  }
  o.batch_size = 1;  // a step is a global batch: one micro-batch of every micro-shard ...
  o.shuffle = false;  // ... in the sampler's orders
  o.progress = o.progress && comm.rank() == 0;
  int epoch = 1;
  auto user_before = o.before_step;
  o.before_step = [&epoch, user_before](int e, long step) {
    epoch = e;
    if (user_before) user_before(e, step);
  };
  return hepgnn::fit(model, sampler.steps_per_epoch(), o, [&](std::span<const std::size_t> step) {
    const double loss = dp.reduce_gradients(model, [&](int shard) {
      return shard_gradient(shard, sampler.items(epoch, step[0], shard));
    });
    if (after_reduce) after_reduce();
    opt.step(model);
    return loss;
  });
}

}  // namespace examples
