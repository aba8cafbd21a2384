#pragma once
/// @file checkpoint.hpp
/// @brief Training checkpoints: model, optimizer state, position in the data (train/trainer.hpp's
/// training_position: epoch, batch, schedule step, early stopping) and named RNG states in one safetensors file,
/// written atomically, from which a killed run resumes with the same bits as a run never interrupted.
///
/// Layout: "model.<name>" (parameters and buffers), "optimizer.<state>.<name>" (PyTorch's state names, e.g.
/// exp_avg), "optimizer.step" (i64[1]), "optimizer.lr" (f64[1]), "position.counters" (i64[6]: epoch, next_item,
/// global_step, epoch_items, best_epoch, since_best), "position.values" (f64[2]: epoch_loss_sum, best_val_loss),
/// "rng.<name>" (i64[4], the xoshiro state). Metadata: "hepgnn.checkpoint" = "1" and "hepgnn.checksum", a 64-bit
/// hash of every tensor's name and bytes, so a damaged file is refused rather than half-trusted.

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/train/trainer.hpp"

namespace hepgnn {

/// @brief Named generators a checkpoint saves and restores (a model's dropout stream, a sampler's, ...).
using checkpoint_rngs = std::map<std::string, rng*>;

namespace checkpoint_detail {

inline std::uint64_t content_hash(const safetensors_file& f) {
  std::uint64_t h = 0x243F6A8885A308D3ULL;
  const auto absorb = [&h](const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = mix64(h ^ w) + i;
    }
    std::uint64_t tail = n;
    for (; i < n; ++i) tail = (tail << 8) | p[i];
    h = mix64(h ^ tail);
  };
  for (const auto& t : f.tensors()) {
    absorb(reinterpret_cast<const unsigned char*>(t.name.data()), t.name.size());
    absorb(t.data.data(), t.data.size());
  }
  return h;
}

inline std::string hex(std::uint64_t v) {
  char buf[17];
  for (int i = 15; i >= 0; --i, v >>= 4) buf[i] = "0123456789abcdef"[v & 15];
  buf[16] = 0;
  return buf;
}

/// Writes `data` to `path` so that a reader sees the old file or the new one, never a part: a temporary file in
/// the same folder, fsync, rename over the target, fsync of the folder.
inline void write_atomically(const std::filesystem::path& path, const detail::bytes& data) {
  const std::filesystem::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  HEPGNN_CHECK(fd >= 0, "save_checkpoint: cannot create '", tmp.string(), "': ", std::strerror(errno));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      hepgnn::fail("save_checkpoint: writing '", tmp.string(), "' failed: ", std::strerror(e));
    }
    done += static_cast<std::size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    hepgnn::fail("save_checkpoint: cannot move '", tmp.string(), "' to '", path.string(), "': ", std::strerror(e));
  }
  const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace checkpoint_detail

/// @brief Saves a training checkpoint atomically (see the file comment). `Optimizer` is adam, adamw, sgd or
/// rmsprop (anything with for_each_state(model, f), steps() and lr()).
template <class Model, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, Model& model, Optimizer& opt, const training_position& at,
                     const checkpoint_rngs& rngs = {}) {
  safetensors_file f;
  for_each_state(model, "", [&](const std::string& name, auto p) { f.add("model." + name, p.shape, p.value); });
  opt.for_each_state(model, [&](const std::string& name, auto values) {
    f.add("optimizer." + name, {static_cast<std::int64_t>(values.size())}, values.data());
  });
  const std::int64_t step = opt.steps();
  const double lr = opt.lr();
  f.add("optimizer.step", {1}, &step);
  f.add("optimizer.lr", {1}, &lr);
  const std::array<std::int64_t, 6> counters = {at.epoch, static_cast<std::int64_t>(at.next_item), at.global_step,
                                                static_cast<std::int64_t>(at.epoch_items), at.best_epoch,
                                                at.since_best};
  const std::array<double, 2> values = {at.epoch_loss_sum, at.best_val_loss};
  f.add("position.counters", {6}, counters.data());
  f.add("position.values", {2}, values.data());
  for (const auto& [name, gen] : rngs) {
    HEPGNN_CHECK(gen, "save_checkpoint: rng '", name, "' is null");
    std::array<std::int64_t, 4> s;
    const auto st = gen->state();
    for (std::size_t i = 0; i < 4; ++i) s[i] = std::bit_cast<std::int64_t>(st[i]);
    f.add("rng." + name, {4}, s.data());
  }
  f.metadata["hepgnn.checkpoint"] = "1";
  f.metadata["hepgnn.checksum"] = checkpoint_detail::hex(checkpoint_detail::content_hash(f));
  checkpoint_detail::write_atomically(path, f.serialize());
}

/// @brief Restores a checkpoint into the model, the optimizer and the named generators and returns the position
/// to pass as fit_options::resume. Refuses (hepgnn::error, nothing changed) a file that is not a hepgnn checkpoint,
/// whose checksum does not match, or that was written for another model (names or shapes), another optimizer
/// or other generators.
template <class Model, class Optimizer>
training_position load_checkpoint(const std::filesystem::path& path, Model& model, Optimizer& opt,
                                  const checkpoint_rngs& rngs = {}) {
  const std::string who = "load_checkpoint('" + path.string() + "')";
  const safetensors_file f = safetensors_file::load(path);
  const auto tag = f.metadata.find("hepgnn.checkpoint");
  HEPGNN_CHECK(tag != f.metadata.end() && tag->second == "1", who,
               ": not a hepgnn training checkpoint (no \"hepgnn.checkpoint\": \"1\" in its metadata)");
  const auto sum = f.metadata.find("hepgnn.checksum");
  HEPGNN_CHECK(sum != f.metadata.end() && sum->second == checkpoint_detail::hex(checkpoint_detail::content_hash(f)),
               who, ": the checksum does not match the contents: the file is damaged");
  // check everything before changing anything
  const auto need = [&](const std::string& name, std::int64_t numel) -> const safetensors_tensor& {
    const safetensors_tensor* t = f.find(name);
    HEPGNN_CHECK(t, who, ": the checkpoint has no '", name, "' (was it written for another model, optimizer or "
                 "set of generators?)");
    HEPGNN_CHECK(t->numel() == numel, who, ": '", name, "' has ", t->numel(), " values, this run needs ", numel);
    return *t;
  };
  opt.for_each_state(model, [&](const std::string& name, auto values) {
    need("optimizer." + name, static_cast<std::int64_t>(values.size()));
  });
  const auto counters = need("position.counters", 6).template values<std::int64_t>();
  const auto values = need("position.values", 2).template values<double>();
  const auto step = need("optimizer.step", 1).template values<std::int64_t>();
  const auto lr = need("optimizer.lr", 1).template values<double>();
  std::map<std::string, std::array<std::uint64_t, 4>> states;
  for (const auto& [name, gen] : rngs) {
    HEPGNN_CHECK(gen, who, ": rng '", name, "' is null");
    const auto s = need("rng." + name, 4).template values<std::int64_t>();
    auto& st = states[name];
    for (std::size_t i = 0; i < 4; ++i) st[i] = std::bit_cast<std::uint64_t>(s[i]);
    HEPGNN_CHECK((st[0] | st[1] | st[2] | st[3]) != 0, who, ": rng '", name, "' has the all-zero state");
  }
  HEPGNN_CHECK(counters[0] >= 1 && counters[1] >= 0 && counters[2] >= 0 && counters[3] >= 0 && step[0] >= 0, who,
               ": position.counters or optimizer.step hold negative values");
  load_weights(model, f, load_options{.strict = true, .prefix = "model."});
  opt.for_each_state(model, [&](const std::string& name, auto v) { f.at("optimizer." + name).read(v.data()); });
  opt.set_steps(static_cast<long>(step[0]));
  opt.set_lr(lr[0]);
  for (const auto& [name, gen] : rngs) gen->set_state(states[name]);
  training_position at;
  at.epoch = static_cast<int>(counters[0]);
  at.next_item = static_cast<std::size_t>(counters[1]);
  at.global_step = counters[2];
  at.epoch_items = static_cast<std::size_t>(counters[3]);
  at.best_epoch = static_cast<int>(counters[4]);
  at.since_best = static_cast<int>(counters[5]);
  at.epoch_loss_sum = values[0];
  at.best_val_loss = values[1];
  return at;
}

}  // namespace hepgnn
