#pragma once
/// @file trainer.hpp
/// @brief hepgnn::fit: the minibatch loop every model family shares (shuffling, batching, progress line, CSV loss
/// log, learning-rate schedules, early stopping on a validation loss or metric, and a stop at the first non-finite
/// loss, gradient or weight). The model-specific work is the caller's `step` function.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/train/progress.hpp"

namespace hepgnn {

/// @brief What happened in one epoch.
struct epoch_record {
  int epoch = 0;
  double train_loss = 0;  ///< mean of the step losses, weighted by batch size
  double val_loss = std::numeric_limits<double>::quiet_NaN();  ///< validate()'s value (a metric when maximize)
  double seconds = 0;
};

/// @brief Where fit() stands: what a checkpoint saves besides the weights and the optimizer, so a resumed run
/// continues with the same batches, schedule and early-stopping state as one never interrupted.
struct training_position {
  int epoch = 1;               ///< the epoch in progress (from 1)
  std::size_t next_item = 0;   ///< where in that epoch's shuffled order the next minibatch starts
  long global_step = 0;        ///< minibatches done so far (the learning-rate schedules' clock)
  double epoch_loss_sum = 0;   ///< the epoch's loss so far (sum of batch loss x batch size) ...
  std::size_t epoch_items = 0; ///< ... over this many items
  int best_epoch = -1;         ///< early stopping: fit_history's best epoch and value, and epochs since it
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();
  int since_best = 0;
};

/// @brief Options of fit().
struct fit_options {
  int epochs = 10;
  std::size_t batch_size = 32;
  bool shuffle = true;
  std::uint64_t seed = 1;
  std::string csv_log{};   ///< when set: one row per epoch (epoch, train_loss, val_loss, seconds, items_per_second)
  int patience = 0;        ///< early stopping: epochs without validation improvement before stopping (0 = off)
  double min_delta = 0;    ///< improvement smaller than this does not count
  bool maximize = false;   ///< validate() returns a metric to maximise (an AUC, an efficiency), not a loss
  std::string label = "train";
  bool progress = isatty(STDERR_FILENO) != 0;
  /// Called before every minibatch with the epoch (from 1) and the global step (from 0), e.g.
  /// `learning_rate_schedule(opt, cosine_schedule{...})`; may be empty.
  std::function<void(int epoch, long step)> before_step{};
  /// Called after every minibatch (its loss checked) with the epoch and the global step; may be empty.
  std::function<void(int epoch, long step)> after_step{};
  /// fit(model, ...) only: after every step, stop with an error naming the first parameter whose value or
  /// gradient is NaN or infinite (one pass over the parameters: small next to a step's products).
  bool check_parameters = true;
  /// Called after every epoch with its record (a loss curve reported as it grows); may be empty.
  std::function<void(const epoch_record&)> on_epoch_end{};
  /// Checkpoints: on_checkpoint(position) is called every `checkpoint_every` steps (0: never inside an epoch)
  /// and after every epoch (its validation done), with the position a resumed run starts from; the caller
  /// saves the position with the model and the optimizer (io/checkpoint.hpp: save_checkpoint).
  long checkpoint_every = 0;
  std::function<void(const training_position&)> on_checkpoint{};
  /// Resume from a checkpoint's position (same n_items, batch_size, shuffle and seed as the interrupted run).
  std::optional<training_position> resume{};
};

/// @brief The loss curve and the early-stopping outcome.
struct fit_history {
  std::vector<epoch_record> epochs;
  bool stopped_early = false;
  int best_epoch = -1;  ///< epoch with the best validation value (-1 without validation)
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();  ///< that value (lowest loss, or highest metric)
};

/// @brief Trains over `n_items` items in minibatches.
/// @param step    double(std::span<const std::size_t> items): forward, backward and optimizer step on those items;
///                returns the batch's mean loss.
/// @param validate double(): validation loss (or metric, with `maximize`) after each epoch, or an empty function.
/// @param on_best void(): called when the validation value improves (e.g. to snapshot the weights); may be empty.
inline fit_history fit(std::size_t n_items, const fit_options& o,
                       const std::function<double(std::span<const std::size_t>)>& step,
                       const std::function<double()>& validate = {}, const std::function<void()>& on_best = {}) {
  HEPGNN_CHECK(o.batch_size > 0, "fit: batch_size must be > 0");
  HEPGNN_CHECK(o.epochs >= 0, "fit: epochs must be >= 0, got ", o.epochs);
  HEPGNN_CHECK(static_cast<bool>(step), "fit: step function is empty");
  std::vector<std::size_t> order(n_items);
  std::iota(order.begin(), order.end(), std::size_t{0});
  rng gen(o.seed);
  progress bar(o.label, o.progress);
  fit_history h;
  std::ofstream csv;
  if (!o.csv_log.empty()) {
    csv.open(o.csv_log);
    HEPGNN_CHECK(csv.good(), "fit: cannot open csv_log '", o.csv_log, "' for writing");
    csv << "epoch,train_loss,val_loss,seconds,items_per_second\n";
  }
  int since_best = o.resume ? o.resume->since_best : 0;
  training_position at = o.resume.value_or(training_position{});
  HEPGNN_CHECK(at.epoch >= 1 && at.next_item <= n_items && at.epoch_items <= n_items && at.global_step >= 0,
               "fit: resume position is not one of this run (epoch ", at.epoch, ", item ", at.next_item, " of ",
               n_items, ", step ", at.global_step, "); was the checkpoint written with other data?");
  h.best_epoch = at.best_epoch;
  h.best_val_loss = at.best_val_loss;
  if (o.patience > 0 && since_best >= o.patience) {  // the checkpoint was written as the run stopped early
    h.stopped_early = true;
    return h;
  }
  // the order of epoch e is the identity shuffled e times: replay the epochs already done
  if (o.shuffle)
    for (int e = 1; e < at.epoch; ++e) gen.shuffle(order);
  for (int epoch = at.epoch; epoch <= o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.shuffle)
      gen.shuffle(order);
    const bool resumed = epoch == at.epoch;
    double sum = resumed ? at.epoch_loss_sum : 0;
    std::size_t seen = resumed ? at.epoch_items : 0;
    bar.new_epoch();
    for (std::size_t b = resumed ? at.next_item : 0; b < n_items; b += o.batch_size) {
      const std::size_t e = std::min(n_items, b + o.batch_size);
      if (o.before_step) o.before_step(epoch, at.global_step);
      ++at.global_step;
      const double loss = step(std::span<const std::size_t>(order.data() + b, e - b));
      HEPGNN_CHECK(std::isfinite(loss), "fit: the loss became non-finite (", loss, ") in epoch ", epoch, " at step ",
                   at.global_step - 1, "; lower the learning rate or check the inputs");
      if (o.after_step) o.after_step(epoch, at.global_step - 1);
      sum += loss * static_cast<double>(e - b);
      seen += e - b;
      bar.update(epoch, o.epochs, e, n_items, sum / static_cast<double>(seen));
      if (o.on_checkpoint && o.checkpoint_every > 0 && at.global_step % o.checkpoint_every == 0 && e < n_items) {
        at.epoch = epoch;
        at.next_item = e;
        at.epoch_loss_sum = sum;
        at.epoch_items = seen;
        at.since_best = since_best;
        o.on_checkpoint(at);
      }
    }
    epoch_record r;
    r.epoch = epoch;
    r.train_loss = seen ? sum / static_cast<double>(seen) : 0;
    if (validate) r.val_loss = validate();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.update(epoch, o.epochs, seen, n_items, r.train_loss, true);
    h.epochs.push_back(r);
    if (csv.is_open())
      csv << epoch << ',' << r.train_loss << ',' << r.val_loss << ',' << r.seconds << ','
          << (r.seconds > 0 ? static_cast<double>(n_items) / r.seconds : 0) << '\n'
          << std::flush;
    if (o.on_epoch_end) o.on_epoch_end(r);
    if (validate) {
      HEPGNN_CHECK(std::isfinite(r.val_loss), "fit: the validation ", o.maximize ? "metric" : "loss",
                   " is not finite (", r.val_loss, ") after epoch ", epoch);
      const bool better = h.best_epoch < 0 || (o.maximize ? r.val_loss > h.best_val_loss + o.min_delta
                                                          : r.val_loss < h.best_val_loss - o.min_delta);
      if (better) {
        h.best_val_loss = r.val_loss;
        h.best_epoch = epoch;
        since_best = 0;
        if (on_best) on_best();
      } else if (o.patience > 0 && ++since_best >= o.patience) {
        h.stopped_early = true;
      }
    }
    if (o.on_checkpoint) {
      at = {.epoch = epoch + 1, .next_item = 0, .global_step = at.global_step, .epoch_loss_sum = 0, .epoch_items = 0,
            .best_epoch = h.best_epoch, .best_val_loss = h.best_val_loss, .since_best = since_best};
      o.on_checkpoint(at);
    }
    if (h.stopped_early) break;
  }
  bar.finish();
  return h;
}

/// @brief Throws naming the first parameter of `model` (anything with for_each_param) whose value or gradient
/// holds a NaN or an infinity; `when` says where training is (e.g. "after step 17 of epoch 2").
template <class Model>
void check_finite_parameters(Model& model, std::string_view when) {
  model.for_each_param("", [&](const std::string& name, auto p) {
    const auto n = static_cast<std::size_t>(p.size());
    const auto check = [&](const auto* values, const char* what) {
      if (!values) return;
      for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(values[i]))
          hepgnn::fail("fit: parameter '", name, "' has a non-finite ", what, " (", values[i], " at flat index ", i,
                       ") ", when, "; lower the learning rate, clip the gradients or check the inputs");
    };
    check(p.value, "value");
    check(p.grad, "gradient");
  });
}

/// @brief fit() with the model it trains: also stops at the first non-finite gradient or weight
/// (fit_options::check_parameters, on by default), naming the parameter and the step.
template <class Model>
  requires requires(Model& m) { m.for_each_param(std::string{}, [](const std::string&, auto) {}); }
fit_history fit(Model& model, std::size_t n_items, fit_options o,
                const std::function<double(std::span<const std::size_t>)>& step,
                const std::function<double()>& validate = {}, const std::function<void()>& on_best = {}) {
  if (o.check_parameters)
    o.after_step = [&model, user = std::move(o.after_step)](int epoch, long global_step) {
      if (user) user(epoch, global_step);
      check_finite_parameters(model, "after step " + std::to_string(global_step) + " (epoch " +
                                         std::to_string(epoch) + ")");
    };
  return fit(n_items, o, step, validate, on_best);
}

/// @brief A fit_options::before_step that sets the optimizer's learning rate from a schedule of the global step
/// (optim/schedule.hpp: step_schedule, cosine_schedule, warmup_schedule, or anything with lr_at(long)).
template <class Optimizer, class Schedule>
std::function<void(int, long)> learning_rate_schedule(Optimizer& opt, Schedule schedule) {
  return [&opt, schedule](int, long step) { opt.set_lr(schedule.lr_at(step)); };
}

}  // namespace hepgnn
