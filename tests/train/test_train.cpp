// Training helpers: fit() (minibatches, early stopping, CSV log), schedules, clipping, parameter naming, rng.
#include "support/doctest.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>

#include "hepgnn/loss/classification.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/optim/sgd.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/train/summary.hpp"
#include "hepgnn/train/trainer.hpp"

namespace hepgnn_test_train {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using M = matrix<float>;

TEST_CASE("fit trains a small classifier: loss falls by 5x and every item is seen once per epoch") {
  rng g(7);
  const int n = 512;
  M x(n, 2);
  M y(n, 1);
  for (int i = 0; i < n; ++i) {  // two Gaussian blobs
    const int cls = i % 2;
    x(i, 0) = static_cast<float>(g.normal(cls ? 1.0 : -1.0, 0.5));
    x(i, 1) = static_cast<float>(g.normal(cls ? -0.5 : 0.5, 0.5));
    y(i, 0) = static_cast<float>(cls);
  }
  mlp<float> model(g, {2, 16, 1});
  adam<float> opt({.lr = 0.02});
  std::multiset<std::size_t> seen;
  M xb, yb, out, dout;
  mlp<float>::cache c;
  const auto csv = std::filesystem::temp_directory_path() / "hepgnn_fit_test.csv";
  fit_options o{.epochs = 12, .batch_size = 64, .csv_log = csv.string(), .progress = false};
  auto h = fit(n, o, [&](std::span<const std::size_t> items) {
    xb.resize(static_cast<long>(items.size()), 2);
    yb.resize(static_cast<long>(items.size()), 1);
    for (std::size_t k = 0; k < items.size(); ++k) {
      xb.row(static_cast<long>(k)) = x.row(static_cast<long>(items[k]));
      yb.row(static_cast<long>(k)) = y.row(static_cast<long>(items[k]));
      if (seen.size() < static_cast<std::size_t>(n)) seen.insert(items[k]);
    }
    zero_grad(model);
    model.forward(xb, out, c);
    const float loss = bce_with_logits(out, yb, {}, &dout);
    model.backward(xb, out, dout, c, nullptr);
    opt.step(model);
    return static_cast<double>(loss);
  });
  REQUIRE(h.epochs.size() == 12);
  CHECK(h.epochs.back().train_loss < h.epochs.front().train_loss / 5);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) CHECK(seen.count(static_cast<std::size_t>(i)) == 1);
  std::ifstream in(csv);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == 13);  // header + one row per epoch
  std::filesystem::remove(csv);
}

TEST_CASE("fit(model, ...) stops at the first non-finite gradient or weight, naming the parameter and the step") {
  rng g(8);
  const int n = 256;
  M x(n, 2);
  M y(n, 1);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = static_cast<float>(g.normal());
    x(i, 1) = static_cast<float>(g.normal());
    y(i, 0) = static_cast<float>(i % 2);
  }
  mlp<float> model(g, {2, 8, 1});
  std::string poisoned;
  model.for_each_param("", [&](const std::string& name, auto) { poisoned = name; });  // the last one
  adam<float> opt({.lr = 0.01});
  M xb, yb, out, dout;
  mlp<float>::cache c;
  long steps = 0;
  const auto step = [&](std::span<const std::size_t> items) {
    xb.resize(static_cast<long>(items.size()), 2);
    yb.resize(static_cast<long>(items.size()), 1);
    for (std::size_t k = 0; k < items.size(); ++k) {
      xb.row(static_cast<long>(k)) = x.row(static_cast<long>(items[k]));
      yb.row(static_cast<long>(k)) = y.row(static_cast<long>(items[k]));
    }
    zero_grad(model);
    model.forward(xb, out, c);
    const float loss = bce_with_logits(out, yb, {}, &dout);
    model.backward(xb, out, dout, c, nullptr);
    if (steps++ == 5)  // one NaN gradient entry: the loss of this step is still finite
      model.for_each_param("", [&](const std::string& name, auto p) {
        if (name == poisoned) p.grad[0] = std::numeric_limits<float>::quiet_NaN();
      });
    opt.step(model);
    return static_cast<double>(loss);
  };
  const fit_options o{.epochs = 3, .batch_size = 64, .progress = false};
  CHECK_THROWS_WITH_AS(fit(model, n, o, step),
                       doctest::Contains(("fit: parameter '" + poisoned + "' has a non-finite").c_str()), error);
  CHECK(steps == 6);  // stopped right after the poisoned step (global step 5, in epoch 2)
  // Without the model (or with check_parameters off) the loop cannot see the weights: the loss check fires later.
  mlp<float> fresh(g, {2, 8, 1});
  steps = 0;
  fit_options off = o;
  off.check_parameters = false;
  model = fresh;
  opt = adam<float>({.lr = 0.01});  // its moments hold the NaN too
  CHECK_THROWS_WITH_AS(fit(model, n, off, step), doctest::Contains("fit: the loss became non-finite"), error);
  CHECK(steps > 6);
}

TEST_CASE("early stopping stops after `patience` epochs without improvement and reports the best epoch") {
  const std::vector<double> val{5, 4, 3, 3.5, 3.2, 3.1, 2.0};
  int epoch = 0, best_calls = 0;
  fit_options o{.epochs = 7, .batch_size = 4, .patience = 3, .progress = false};
  auto h = fit(
      8, o, [](std::span<const std::size_t>) { return 1.0; }, [&] { return val[static_cast<std::size_t>(epoch++)]; },
      [&] { ++best_calls; });
  CHECK(h.stopped_early);
  CHECK(h.epochs.size() == 6);
  CHECK(h.best_epoch == 3);
  CHECK(h.best_val_loss == 3.0);
  CHECK(best_calls == 3);
  CHECK_THROWS_WITH_AS(fit(4, o, [](std::span<const std::size_t>) { return std::nan(""); }),
                       doctest::Contains("loss became non-finite"), error);
}

TEST_CASE("fit drives a learning-rate schedule step by step, across epochs") {
  rng g(3);
  mlp<float> model(g, {2, 3, 1});
  adam<float> opt({.lr = 1.0});
  const step_schedule sched{.base_lr = 0.1, .gamma = 0.5, .step_size = 2};
  std::vector<double> seen_lr;
  std::vector<int> seen_epoch;
  fit_options o{.epochs = 3, .batch_size = 4, .shuffle = false, .progress = false,
                .before_step = learning_rate_schedule(opt, sched)};
  const auto h = fit(10, o, [&](std::span<const std::size_t>) {  // 3 steps per epoch (4 + 4 + 2 items)
    seen_lr.push_back(opt.lr());
    return 1.0;
  });
  REQUIRE(h.epochs.size() == 3);
  REQUIRE(seen_lr.size() == 9);
  for (std::size_t step = 0; step < seen_lr.size(); ++step) CHECK(seen_lr[step] == sched.lr_at(static_cast<long>(step)));
  CHECK(seen_lr.back() == doctest::Approx(0.1 / 16));
  // The hook sees the epoch (from 1) and the global step (from 0).
  fit_options o2{.epochs = 2, .batch_size = 5, .progress = false,
                 .before_step = [&](int epoch, long step) { seen_epoch.push_back(epoch * 100 + static_cast<int>(step)); }};
  fit(10, o2, [](std::span<const std::size_t>) { return 0.0; });
  CHECK(seen_epoch == std::vector<int>{100, 101, 202, 203});
}

TEST_CASE("early stopping on a metric to maximise (an AUC): best epoch, patience, non-finite metric refused") {
  const std::vector<double> auc{0.70, 0.80, 0.79, 0.81, 0.80, 0.805, 0.90};
  int epoch = 0, best_calls = 0;
  fit_options o{.epochs = 7, .batch_size = 4, .patience = 2, .min_delta = 0.005, .maximize = true, .progress = false};
  const auto h = fit(
      8, o, [](std::span<const std::size_t>) { return 1.0; }, [&] { return auc[static_cast<std::size_t>(epoch++)]; },
      [&] { ++best_calls; });
  CHECK(h.stopped_early);
  CHECK(h.epochs.size() == 6);  // 0.81 at epoch 4, then 0.80 and 0.805 (< 0.81 + min_delta): stop after epoch 6
  CHECK(h.best_epoch == 4);
  CHECK(h.best_val_loss == 0.81);
  CHECK(best_calls == 3);  // epochs 1, 2, 4
  fit_options plain{.epochs = 2, .batch_size = 4, .progress = false};
  CHECK_THROWS_WITH_AS(fit(
                           4, plain, [](std::span<const std::size_t>) { return 1.0; }, [] { return std::nan(""); }),
                       doctest::Contains("the validation loss is not finite"), error);
}

TEST_CASE("summary: every tensor with its shape and count, parameters and buffers apart") {
  rng g(5);
  sequential<float, dense<float, 3, 4>, batch_norm<float>, relu<float>, dense<float, 4, 2>> model{
      dense<float, 3, 4>(g), batch_norm<float>(4), relu<float>(), dense<float, 4, 2>(g)};
  const auto s = summary(model);
  CHECK(s.parameters == 3 * 4 + 4 + 4 + 4 + 4 * 2 + 2);
  CHECK(s.parameters == parameter_count(model));
  CHECK(s.buffers == 4 + 4 + 1);  // running mean, running var, num_batches_tracked
  REQUIRE(s.rows.size() == 9);
  CHECK(s.rows[0].name == "0.weight");
  CHECK(s.rows[0].shape == std::vector<std::int64_t>{4, 3});
  CHECK(s.rows[0].trainable);
  CHECK_FALSE(s.rows.back().trainable);
  const std::string t = s.table();
  CHECK(t.find("0.weight") != std::string::npos);
  CHECK(t.find("[4, 3]") != std::string::npos);
  CHECK(t.find("34 trainable parameters, 9 buffer values (9 tensors)") != std::string::npos);
}

TEST_CASE("fit calls on_epoch_end after each epoch with its record, after the epoch's steps") {
  std::vector<std::string> calls;
  fit_options o{.epochs = 3, .batch_size = 2, .shuffle = false, .progress = false};
  o.before_step = [&](int epoch, long step) {
    calls.push_back("before " + std::to_string(epoch) + " " + std::to_string(step));
  };
  o.on_epoch_end = [&](const epoch_record& r) {
    calls.push_back("end " + std::to_string(r.epoch) + " " + std::to_string(r.train_loss));
  };
  int steps = 0;
  const auto h = fit(4, o, [&](std::span<const std::size_t> items) {
    calls.push_back("step " + std::to_string(items[0]));
    return static_cast<double>(++steps);  // epoch e: steps 2e - 1 and 2e, mean 2e - 0.5
  });
  REQUIRE(h.epochs.size() == 3);
  const std::vector<std::string> expected{
      "before 1 0", "step 0", "before 1 1", "step 2", "end 1 1.500000",
      "before 2 2", "step 0", "before 2 3", "step 2", "end 2 3.500000",
      "before 3 4", "step 0", "before 3 5", "step 2", "end 3 5.500000"};
  CHECK(calls == expected);
}

TEST_CASE("schedules") {
  step_schedule s{.base_lr = 1.0, .gamma = 0.5, .step_size = 10};
  CHECK(s.lr_at(0) == 1.0);
  CHECK(s.lr_at(25) == 0.25);
  cosine_schedule c{.base_lr = 1.0, .total_steps = 100, .min_lr = 0.1};
  CHECK(c.lr_at(0) == doctest::Approx(1.0));
  CHECK(c.lr_at(50) == doctest::Approx(0.55));
  CHECK(c.lr_at(100) == doctest::Approx(0.1));
  warmup_schedule<cosine_schedule> w{c, 10};
  CHECK(w.lr_at(0) == doctest::Approx(0.1));
  CHECK(w.lr_at(9) == doctest::Approx(1.0));
  CHECK(w.lr_at(60) == doctest::Approx(0.55));
}

TEST_CASE("clip_grad_norm scales the global norm down to max_norm and leaves small gradients alone") {
  rng g(1);
  dense<double> d(g, 2, 2);
  d.weight_grad() << 3, 0, 0, 0;
  d.bias_grad() << 4, 0;
  CHECK(clip_grad_norm(d, 1.0) == doctest::Approx(5.0));
  CHECK(d.weight_grad()(0, 0) == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(d.bias_grad()(0, 0) == doctest::Approx(0.8).epsilon(1e-5));
  CHECK(clip_grad_norm(d, 10.0) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(d.weight_grad()(0, 0) == doctest::Approx(0.6).epsilon(1e-5));
}

TEST_CASE("parameter names follow torch.nn.Sequential, activations counted") {
  rng g(1);
  using D = float;
  sequential<D, dense<D, 3, 4>, relu<D>, dense<D, 4, 2>> s{dense<D, 3, 4>{g}, relu<D>{}, dense<D, 4, 2>{g}};
  std::vector<std::string> names;
  std::vector<std::vector<std::int64_t>> shapes;
  s.for_each_param("model.", [&](const std::string& n, parameter<D> p) {
    names.push_back(n);
    shapes.push_back(p.shape);
  });
  CHECK(names == std::vector<std::string>{"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"});
  CHECK(shapes == std::vector<std::vector<std::int64_t>>{{4, 3}, {4}, {2, 4}, {2}});
  mlp<D> m(g, {3, 4, 2});
  names.clear();
  m.for_each_param("", [&](const std::string& n, parameter<D>) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(parameter_count(s) == 12 + 4 + 8 + 2);
}

TEST_CASE("rng: deterministic per seed, different across seeds, sane moments") {
  rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) CHECK(a() == b());
  CHECK(rng(42)() != c());
  rng g(1);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double v = g.normal();
    s += v;
    s2 += v * v;
  }
  CHECK(std::abs(s / n) < 0.01);
  CHECK(std::abs(s2 / n - 1) < 0.02);
  std::vector<int> hist(10, 0);
  for (int i = 0; i < 100000; ++i) ++hist[g.below(10)];
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);
}

TEST_CASE("rng::shuffle: a permutation, reproducible per seed, every position reachable") {
  std::vector<int> v(50), w(50);
  for (int i = 0; i < 50; ++i) v[i] = w[i] = i;
  rng a(7), b(7);
  a.shuffle(v);
  b.shuffle(w);
  CHECK(v == w);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) CHECK(sorted[i] == i);
  CHECK(v != sorted);
  // element 0 lands in every one of 5 places about equally often
  std::vector<int> where(5, 0);
  rng g(3);
  for (int t = 0; t < 50000; ++t) {
    int small[5] = {0, 1, 2, 3, 4};
    g.shuffle(small);
    for (int p = 0; p < 5; ++p) where[p] += small[p] == 0;
  }
  for (int c : where) CHECK(std::abs(c - 10000) < 500);
  std::vector<int> empty;
  g.shuffle(empty);
  CHECK(empty.empty());
}

TEST_CASE("fit refuses a resume position that is not one of this run; optimizers refuse a negative step count") {
  const auto step = [](std::span<const std::size_t>) { return 1.0; };
  fit_options o{.epochs = 2, .batch_size = 4, .progress = false};
  o.resume = training_position{.epoch = 1, .next_item = 20};  // past the 10 items of this run
  CHECK_THROWS_WITH_AS(fit(10, o, step), doctest::Contains("resume position is not one of this run"), error);
  o.resume = training_position{.epoch = 0};
  CHECK_THROWS_WITH_AS(fit(10, o, step), doctest::Contains("resume position"), error);
  o.resume = training_position{.epoch = 2, .next_item = 8, .global_step = 5, .epoch_loss_sum = 8, .epoch_items = 8};
  long calls = 0;
  const auto h = fit(10, o, [&](std::span<const std::size_t> items) {
    ++calls;
    CHECK(items.size() == 2);  // the last minibatch of epoch 2: items 8 and 9
    return 1.0;
  });
  CHECK(calls == 1);
  REQUIRE(h.epochs.size() == 1);
  CHECK(h.epochs[0].train_loss == 1.0);  // (8 + 1 * 2) / 10
  adam<float> a;
  sgd<float> s;
  CHECK_THROWS_WITH_AS(a.set_steps(-1), doctest::Contains("adam::set_steps: t must be >= 0"), error);
  CHECK_THROWS_WITH_AS(s.set_steps(-3), doctest::Contains("sgd::set_steps: t must be >= 0"), error);
}

}  // namespace hepgnn_test_train
