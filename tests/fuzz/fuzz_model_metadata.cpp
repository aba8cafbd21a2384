// libFuzzer target: a model file's config metadata ("<family>.<field>" = value, one per line of the input) read
// into every family's config must either succeed or throw hepgnn::error, never hit undefined behaviour (UBSan with
// clang includes float-cast-overflow: "1e30" into an int field). An accepted config lies within its bounds and
// survives a write -> read round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "hepgnn/io/model_file.hpp"
#include "hepgnn/models/autoencoder.hpp"
#include "hepgnn/models/mpgan.hpp"
#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/models/particlenet.hpp"
#include "hepgnn/models/tracking/pipeline.hpp"

namespace {

template <class Config>
void read_as(const std::map<std::string, std::string>& m, std::string_view family) {
  Config cfg;
  try {
    cfg = hepgnn::config_from_metadata<Config>(m, family, true);
  } catch (const hepgnn::error&) {
    return;
  }
  hepgnn::check_config(cfg, "fuzz");  // within bounds, or config_from_metadata let a value through
  const auto written = hepgnn::config_to_metadata(cfg, family);
  if (hepgnn::config_to_metadata(hepgnn::config_from_metadata<Config>(written, family), family) != written)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> m;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    const std::size_t eq = line.find('=');
    if (eq != std::string_view::npos) m[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    start = end + 1;
  }
  read_as<hepgnn::particlenet_config>(m, "particlenet");
  read_as<hepgnn::graph_autoencoder_options>(m, "graph_autoencoder");
  read_as<hepgnn::dense_autoencoder_options>(m, "dense_autoencoder");
  read_as<hepgnn::pf::mlpf_config>(m, "mlpf");
  read_as<hepgnn::mpgan_generator_config>(m, "mpgan_generator");
  read_as<hepgnn::tracking::pipeline_config>(m, "tracking");
  return 0;
}
