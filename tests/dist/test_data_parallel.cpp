// Data-parallel training (dist/): the micro-shard rule, the fast (bucketed allreduce) and reproducible (ordered
// sum) reductions at 1 to 4 ranks (threads of this process; tests/mpi/ runs the same over MPI), broadcast, timeline.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hepgnn/dist/data_parallel.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/optim/adam.hpp"
#include "support/dp_regression.hpp"
#include "support/thread_ranks.hpp"

namespace hepgnn_test_data_parallel {

using namespace hepgnn;
using hepgnn_test::run_thread_ranks;
using hepgnn_test::thread_rank;

TEST_CASE("micro-shard sampler: uneven shards wrap, every item each epoch, every rank the same orders") {
  const auto shards = split_round_robin(14, 3);  // sizes 5, 5, 4
  REQUIRE(shards.size() == 3);
  CHECK(shards[0] == std::vector<std::size_t>{0, 3, 6, 9, 12});
  CHECK(shards[2] == std::vector<std::size_t>{2, 5, 8, 11});
  micro_shard_sampler a({5, 2, 4}, 2, 99), b({5, 2, 4}, 2, 99);
  CHECK(a.steps_per_epoch() == 3);  // ceil(5 / 2)
  CHECK(a.global_batch() == 6);
  for (int epoch = 1; epoch <= 2; ++epoch)
    for (int s = 0; s < 3; ++s) {
      std::multiset<std::size_t> seen;
      for (std::size_t st = 0; st < a.steps_per_epoch(); ++st) {
        const auto items = a.items(epoch, st, s);
        CHECK(items == b.items(epoch, st, s));  // a second "rank" computes the same order
        CHECK(items.size() == 2);
        seen.insert(items.begin(), items.end());
      }
      const std::size_t size = s == 0 ? 5 : s == 1 ? 2 : 4;
      for (std::size_t i = 0; i < size; ++i) CHECK(seen.count(i) >= 1);  // every item at least once
      CHECK(seen.size() == 6);
      CHECK(*seen.rbegin() < size);
    }
  // shuffled anew each epoch (5 items: 120 orders; these two seeds differ)
  std::vector<std::size_t> e1, e2;
  for (std::size_t st = 0; st < 3; ++st) {
    for (auto i : a.items(1, st, 0)) e1.push_back(i);
    for (auto i : a.items(2, st, 0)) e2.push_back(i);
  }
  CHECK(e1 != e2);
  // ownership partitions the micro-shards at every rank count
  for (int ranks = 1; ranks <= 4; ++ranks) {
    std::multiset<int> all;
    for (int r = 0; r < ranks; ++r)
      for (int s : owned_shards(7, r, ranks)) all.insert(s);
    CHECK(all == std::multiset<int>{0, 1, 2, 3, 4, 5, 6});
  }
  CHECK_THROWS_WITH_AS(owned_shards(2, 0, 3), doctest::Contains("at least as many micro-shards as ranks"), error);
  CHECK_THROWS_WITH_AS(micro_shard_sampler({3, 0}, 1, 1), doctest::Contains("micro-shard 1 is empty"), error);
  CHECK_THROWS_WITH_AS(a.items(1, 3, 0), doctest::Contains("step must be < 3"), error);
}

// A small regression trained data-parallel: returns the final weights (and the losses) of rank 0.
struct dp_run {
  std::vector<float> weights;
  std::vector<double> losses;
};

template <class Comm>
dp_run train_regression(Comm& comm, gradient_reduction mode, int steps, data_parallel_options o = {}) {
  hepgnn_test::dp_regression job(100 + static_cast<std::uint64_t>(comm.rank()));  // broadcast must fix the init
  o.mode = mode;
  data_parallel<float, Comm> dp(comm, job.shards, o);
  dp.broadcast_parameters(job.model);
  adam<float> opt({.lr = 0.01});
  dp_run out;
  const auto per_epoch = job.sampler.steps_per_epoch();
  for (int step = 0; step < steps; ++step) {
    const int epoch = 1 + step / static_cast<int>(per_epoch);
    const std::size_t in_epoch = static_cast<std::size_t>(step) % per_epoch;
    out.losses.push_back(dp.reduce_gradients(job.model, [&](int s) { return job.shard_gradient(s, epoch, in_epoch); }));
    opt.step(job.model);
  }
  out.weights = job.weights();
  return out;
}

dp_run train_on_ranks(int ranks, gradient_reduction mode, int steps, data_parallel_options o = {}) {
  std::vector<dp_run> runs(static_cast<std::size_t>(ranks));
  run_thread_ranks(ranks, [&](thread_rank& comm) {
    runs[static_cast<std::size_t>(comm.rank())] = train_regression(comm, mode, steps, o);
  });
  for (int r = 1; r < ranks; ++r) CHECK(runs[static_cast<std::size_t>(r)].weights == runs[0].weights);  // in step
  return runs[0];
}

TEST_CASE("reproducible mode: the same bits in one process and at 2, 3 and 4 ranks") {
  const int steps = 12;  // three epochs
  single_process one;
  const dp_run reference = train_regression(one, gradient_reduction::reproducible, steps);
  CHECK(reference.losses.back() < reference.losses.front() / 2);  // it learns
  for (int ranks = 1; ranks <= 4; ++ranks) {
    CAPTURE(ranks);
    const dp_run r = train_on_ranks(ranks, gradient_reduction::reproducible, steps);
    CHECK(r.weights == reference.weights);
    CHECK(r.losses == reference.losses);
  }
}

TEST_CASE("fast mode: the mean gradient of the global batch at any rank count, whatever the bucket sizes") {
  const int steps = 12;
  single_process one;
  const dp_run repro = train_regression(one, gradient_reduction::reproducible, steps);
  const dp_run fast1 = train_regression(one, gradient_reduction::fast, steps);
  for (int ranks : {2, 4}) {
    CAPTURE(ranks);
    const dp_run big = train_on_ranks(ranks, gradient_reduction::fast, steps);
    // a bucket per 16 floats (several per tensor boundary) packs and unpacks to the same sums
    const dp_run tiny = train_on_ranks(ranks, gradient_reduction::fast, steps,
                                       {.bucket_bytes = 64, .first_bucket_bytes = 16});
    CHECK(tiny.weights == big.weights);
    REQUIRE(big.weights.size() == repro.weights.size());
    double worst = 0;
    for (std::size_t i = 0; i < big.weights.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(big.weights[i] - repro.weights[i])));
    CHECK(worst < 1e-4);  // the same training up to the rounding of a differently ordered sum
    CHECK(std::abs(big.losses.back() - fast1.losses.back()) < 1e-4 * std::abs(fast1.losses.back()) + 1e-6);
  }
}

TEST_CASE("the timeline records compute, waiting and communication, and writes a Chrome trace") {
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_dp_timeline_rank1.json";
  double compute = 0, comm_us = 0;
  std::size_t waits = 0;
  run_thread_ranks(2, [&](thread_rank& comm) {
    timeline trace(comm.rank());
    rng g(1);
    mlp<float> model(g, {2, 4, 1});
    data_parallel<float, thread_rank> dp(comm, 2, {}, &trace);
    dp.broadcast_parameters(model);
    matrix<float> x = matrix<float>::Ones(3, 2), out, dout;
    mlp<float>::cache c;
    for (int step = 0; step < 2; ++step)
      dp.reduce_gradients(model, [&](int) {
        model.forward(x, out, c);
        dout = matrix<float>::Ones(3, 1);
        model.backward(x, out, dout, c, nullptr);
        return shard_loss{out.sum(), 3};
      });
    if (comm.rank() == 1) {
      compute = trace.total_us(time_kind::compute);
      comm_us = trace.total_us(time_kind::communication);
      for (const auto& e : trace.events()) waits += e.kind == time_kind::wait;
      trace.write_chrome_trace(path.string());
    }
  });
  CHECK(compute > 0);
  CHECK(comm_us > 0);
  CHECK(waits == 2);  // one per step
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  CHECK(json.find("\"traceEvents\"") != std::string::npos);
  CHECK(json.find("\"cat\":\"communication\"") != std::string::npos);
  CHECK(json.find("\"name\":\"micro-shard\"") != std::string::npos);
  CHECK(json.find("\"pid\":1") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("data_parallel refuses an empty global batch and more ranks than micro-shards") {
  single_process one;
  rng g(1);
  mlp<float> model(g, {2, 2, 1});
  data_parallel<float, single_process> dp(one, 2);
  CHECK_THROWS_WITH_AS(dp.reduce_gradients(model, [](int) { return shard_loss{0, 0}; }),
                       doctest::Contains("the global batch has no items"), error);
  CHECK_THROWS_WITH_AS(run_thread_ranks(3, [](thread_rank& comm) { data_parallel<float, thread_rank> bad(comm, 2); }),
                       doctest::Contains("2 micro-shards for 3 ranks"), error);
  CHECK_THROWS_WITH_AS((data_parallel<float, single_process>(one, 1, {.bucket_bytes = 2})),
                       doctest::Contains("bucket sizes must hold at least one value"), error);
  timeline trace;
  CHECK_THROWS_WITH_AS(trace.write_chrome_trace("/nonexistent-folder/trace.json"), doctest::Contains("cannot open"),
                       error);
}

}  // namespace hepgnn_test_data_parallel
