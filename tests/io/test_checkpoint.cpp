// Training checkpoints (io/checkpoint.hpp with fit()'s resume): a run interrupted and resumed from its last
// checkpoint ends with the same bits as one never interrupted; damaged, foreign and other-model files are refused.
#include "support/doctest.hpp"
#include "support/temp_dir.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hepgnn/io/checkpoint.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/rmsprop.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/optim/sgd.hpp"

namespace hepgnn_test_checkpoint {

using namespace hepgnn;
namespace fs = std::filesystem;

using ckpt_dir = hepgnn_test::temp_dir;

struct interrupted {};  // what the "kill" throws

// Trains a classifier for 3 epochs of 6 steps with Adam, a cosine schedule, input noise from an rng, early-stopping
// bookkeeping and a checkpoint every 4 steps. kill_at >= 0: the run dies at that global step (before its update).
// resume_from: a checkpoint to start from. Returns the final weights.
std::vector<float> ckpt_train(const fs::path& ckpt, long kill_at, bool resume, fit_history* history = nullptr) {
  rng data(3);
  const int n = 48;
  matrix<float> x(n, 2), y(n, 1);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = static_cast<float>(data.normal(i % 2 ? 1.0 : -1.0, 0.7));
    x(i, 1) = static_cast<float>(data.normal());
    y(i, 0) = static_cast<float>(i % 2);
  }
  rng init(resume ? 999 : 11);  // a resumed run starts from other weights: the checkpoint must replace them
  mlp<float> model(init, {2, 8, 1});
  adam<float> opt({.lr = 0.05});
  rng noise(21);
  std::optional<training_position> start;
  if (resume) start = load_checkpoint(ckpt, model, opt, {{"noise", &noise}});
  matrix<float> xb, yb, out, dout;
  mlp<float>::cache c;
  const cosine_schedule schedule{.base_lr = 0.05, .total_steps = 18, .min_lr = 0.005};
  fit_options o{.epochs = 3, .batch_size = 8, .seed = 5, .progress = false};
  o.before_step = learning_rate_schedule(opt, schedule);
  o.checkpoint_every = 4;
  o.on_checkpoint = [&](const training_position& at) { save_checkpoint(ckpt, model, opt, at, {{"noise", &noise}}); };
  o.resume = start;
  long steps = start ? start->global_step : 0;
  const auto h = fit(model, n, o, [&](std::span<const std::size_t> items) -> double {
    if (steps++ == kill_at) throw interrupted{};
    const auto rows = static_cast<Eigen::Index>(items.size());
    xb.resize(rows, 2);
    yb.resize(rows, 1);
    for (Eigen::Index k = 0; k < rows; ++k) {
      xb.row(k) = x.row(static_cast<Eigen::Index>(items[static_cast<std::size_t>(k)]));
      xb(k, 1) += static_cast<float>(0.1 * noise.normal());
      yb.row(k) = y.row(static_cast<Eigen::Index>(items[static_cast<std::size_t>(k)]));
    }
    zero_grad(model);
    model.forward(xb, out, c);
    const float loss = bce_with_logits(out, yb, {}, &dout);
    model.backward(xb, out, dout, c, nullptr);
    opt.step(model);
    return loss;
  }, [&] { return 1.0 / static_cast<double>(steps); });
  if (history) *history = h;
  std::vector<float> w;
  model.for_each_param("", [&](const std::string&, auto p) { w.insert(w.end(), p.value, p.value + p.size()); });
  return w;
}

TEST_CASE("a run killed mid-epoch and resumed from its checkpoint ends with the same bits") {
  ckpt_dir dir;
  fit_history whole, resumed;
  const auto reference = ckpt_train(dir.path / "a.safetensors", -1, false, &whole);
  REQUIRE(whole.epochs.size() == 3);
  for (long kill_at : {5L, 9L, 13L}) {  // mid-epoch 1, mid-epoch 2 (after the epoch-end checkpoint), epoch 3
    CAPTURE(kill_at);
    const auto ckpt = dir.path / ("k" + std::to_string(kill_at) + ".safetensors");
    CHECK_THROWS_AS(ckpt_train(ckpt, kill_at, false), interrupted);
    REQUIRE(fs::exists(ckpt));
    for (const auto& e : fs::directory_iterator(dir.path))  // nothing half-written left behind
      CHECK(e.path().string().find(".tmp") == std::string::npos);
    const auto w = ckpt_train(ckpt, -1, true, &resumed);
    CHECK(w == reference);
    REQUIRE(!resumed.epochs.empty());
    CHECK(resumed.epochs.back().train_loss == whole.epochs.back().train_loss);
    CHECK(resumed.best_epoch == whole.best_epoch);
  }
}

TEST_CASE("optimizer state round-trips: adam moments and step, sgd momentum, rmsprop averages") {
  ckpt_dir dir;
  rng g(2);
  mlp<double> model(g, {2, 3, 1});
  model.for_each_param("", [&](const std::string&, auto p) {
    for (std::int64_t i = 0; i < p.size(); ++i) p.grad[i] = 0.1 * static_cast<double>(i + 1);
  });
  const auto round_trip = [&](auto& opt, auto& fresh) {
    opt.step(model);
    opt.step(model);
    const auto path = dir.path / "opt.safetensors";
    save_checkpoint(path, model, opt, {});
    load_checkpoint(path, model, fresh);
    CHECK(fresh.steps() == opt.steps());
    std::vector<double> a, b;
    opt.for_each_state(model, [&](const std::string&, auto v) { a.insert(a.end(), v.begin(), v.end()); });
    fresh.for_each_state(model, [&](const std::string&, auto v) { b.insert(b.end(), v.begin(), v.end()); });
    CHECK(!a.empty());
    CHECK(a == b);
    // both take the same next step
    std::vector<double> wa, wb;
    mlp<double> copy = model;
    opt.step(model);
    fresh.step(copy);
    model.for_each_param("", [&](const std::string&, auto p) { wa.insert(wa.end(), p.value, p.value + p.size()); });
    copy.for_each_param("", [&](const std::string&, auto p) { wb.insert(wb.end(), p.value, p.value + p.size()); });
    CHECK(wa == wb);
  };
  adam<double> a1({.lr = 0.1}), a2({.lr = 0.3});
  round_trip(a1, a2);
  CHECK(a2.lr() == 0.1);
  sgd<double> s1({.lr = 0.1, .momentum = 0.9}), s2({.lr = 0.1, .momentum = 0.9});
  round_trip(s1, s2);
  rmsprop<double> r1({.lr = 0.01, .momentum = 0.5, .centered = true}), r2({.lr = 0.01, .momentum = 0.5, .centered = true});
  round_trip(r1, r2);
}

TEST_CASE("damaged, foreign and other-model checkpoints are refused with a clear error, changing nothing") {
  ckpt_dir dir;
  rng g(4);
  mlp<float> model(g, {2, 4, 1});
  adam<float> opt;
  zero_grad(model);
  opt.step(model);
  const auto path = dir.path / "good.safetensors";
  save_checkpoint(path, model, opt, {.epoch = 2, .next_item = 8, .global_step = 7});
  mlp<float> other(g, {2, 5, 1});
  adam<float> other_opt;
  CHECK_THROWS_WITH_AS(load_checkpoint(path, other, other_opt), doctest::Contains("optimizer.exp_avg.0.weight"), error);
  sgd<float> momentum_sgd({.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH_AS(load_checkpoint(path, model, momentum_sgd), doctest::Contains("momentum_buffer"), error);
  rng r(1);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, model, opt, {{"dropout", &r}}), doctest::Contains("rng.dropout"), error);
  // one flipped bit in the weights
  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto write = [&](const fs::path& p, const std::vector<char>& b) {
    std::ofstream out(p, std::ios::binary);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  auto flipped = bytes;
  flipped[flipped.size() - 3] = static_cast<char>(flipped[flipped.size() - 3] ^ 0x10);
  write(dir.path / "flipped.safetensors", flipped);
  std::vector<float> before;
  model.for_each_param("", [&](const std::string&, auto p) { before.insert(before.end(), p.value, p.value + p.size()); });
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "flipped.safetensors", model, opt), doctest::Contains("damaged"),
                       error);
  write(dir.path / "cut.safetensors", std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2)));
  CHECK_THROWS_AS(load_checkpoint(dir.path / "cut.safetensors", model, opt), error);
  save_weights(model, dir.path / "weights.safetensors");
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "weights.safetensors", model, opt),
                       doctest::Contains("not a hepgnn training checkpoint"), error);
  std::vector<float> after;
  model.for_each_param("", [&](const std::string&, auto p) { after.insert(after.end(), p.value, p.value + p.size()); });
  CHECK(before == after);
  // a good one still loads, with its position
  const training_position at = load_checkpoint(path, model, opt);
  CHECK(at.epoch == 2);
  CHECK(at.next_item == 8);
  CHECK(at.global_step == 7);
  CHECK(opt.steps() == 1);
  CHECK_THROWS_WITH_AS(save_checkpoint(dir.path / "no" / "such" / "dir.safetensors", model, opt, at),
                       doctest::Contains("cannot create"), error);
  rng zero(1);
  CHECK_THROWS_WITH_AS(zero.set_state({0, 0, 0, 0}), doctest::Contains("must not be all zero"), error);
}

}  // namespace hepgnn_test_checkpoint
