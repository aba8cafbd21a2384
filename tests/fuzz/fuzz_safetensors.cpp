// libFuzzer target: safetensors_file::parse on arbitrary bytes must either succeed or throw hepgnn::error, never
// read out of bounds (ASan) or hit undefined behaviour (UBSan). Accepted files must survive a
// serialize -> parse round trip unchanged and load (non-strictly) into a small model, or be refused by name
// for a non-finite value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/nn/dense.hpp"

namespace {
struct tiny_model {
  hepgnn::dense<double, 3, 4> fc{};
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { fc.for_each_param(prefix + "0.", f); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hepgnn::safetensors_file file;
  try {
    file = hepgnn::safetensors_file::parse({data, size});
  } catch (const hepgnn::error&) {
    return 0;
  }
  for (const auto& t : file.tensors()) {
    (void)t.values<double>();
    (void)t.values<float>();
    try {
      (void)t.values<std::int64_t>();  // may refuse NaN / huge values, with hepgnn::error
    } catch (const hepgnn::error&) {
    }
  }
  const auto again = hepgnn::safetensors_file::parse(file.serialize());
  if (again.names() != file.names() || again.metadata != file.metadata) std::abort();
  for (const auto& t : file.tensors()) {
    const auto& u = again.at(t.name);
    if (u.dtype != t.dtype || u.shape != t.shape || u.data != t.data) std::abort();
  }
  // A matching tensor with a NaN or an infinity is refused by name unless allow_non_finite says load it.
  tiny_model model;
  try {
    (void)hepgnn::load_weights(model, file, false);
  } catch (const hepgnn::error&) {
  }
  (void)hepgnn::load_weights(model, file, hepgnn::load_options{.strict = false, .allow_non_finite = true});
  return 0;
}
