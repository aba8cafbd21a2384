// libFuzzer target: torch_state_dict::parse (PyTorch .pt, zip and legacy formats, restricted unpickler) on arbitrary
// bytes must either succeed or throw hepgnn::error, never read out of bounds (ASan), hit undefined behaviour (UBSan),
// leak (a pickle cannot build reference cycles) or allocate without bound (-rss_limit_mb). Accepted files must give
// tensors whose bytes match their shape and dtype, and load (non-strictly) into a small model.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hepgnn/io/torch_pt.hpp"
#include "hepgnn/nn/dense.hpp"

namespace {
struct tiny_model {
  hepgnn::dense<double, 3, 2> fc{};
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) { fc.for_each_param(prefix + "fc.", f); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hepgnn::torch_state_dict sd;
  try {
    sd = hepgnn::torch_state_dict::parse({data, size});
  } catch (const hepgnn::error&) {
    return 0;
  }
  for (const auto& name : sd.names()) {
    const auto& t = sd.at(name);
    if (t.data.size() != static_cast<std::size_t>(t.numel()) * hepgnn::dtype_size(t.dtype)) std::abort();
    (void)t.values<double>();
    (void)t.values<float>();
    try {
      (void)t.values<std::int64_t>();  // may refuse NaN / huge values, with hepgnn::error
    } catch (const hepgnn::error&) {
    }
  }
  tiny_model model;
  try {
    (void)hepgnn::load_weights(model, sd, false);
  } catch (const hepgnn::error&) {
  }
  (void)hepgnn::load_weights(model, sd, hepgnn::load_options{.strict = false, .allow_non_finite = true});
  return 0;
}
