#pragma once
/// @file hls4ml_interaction_export.hpp
/// @brief A fixed-point interaction network (quant/interaction_network.hpp) written for a firmware flow, and read
/// back bit for bit. hls4ml has no interaction-network layer of its own (JEDI-net firmware is written around its
/// dense blocks), so the folder holds what such a project needs, in hls4ml's spellings:
///   - `interaction_network.json`: "format": "hepgnn-interaction-network-1", the node input format, the
///     aggregation and pooling sums ({"accum", "result"}), and the stages of "edge", "node" and "classifier" in
///     order, each {"name", "n_in", "n_out", "Precision": {"input", "weight", "bias", "accum", "result"} (hls4ml's
///     per-layer keys, plus the dense input type), "activation": "relu" | "linear", "relu_result",
///     "input_quantizer": per-column formats or [], "kernel", "bias"}; precisions as `ap_fixed<W,I,Q,O>`;
///   - `<stage>_kernel.npy` [in, out] and `<stage>_bias.npy` [out], float64 (Keras layout, exact on their grids),
///     as io/hls4ml_export.hpp writes a dense network.
/// The reader checks every format, shape and grid, and gives the parts from which fixed_interaction_network
/// computes the same bits as the network written.

#include <filesystem>
#include <string>
#include <vector>

#include "hepgnn/io/hls4ml_export.hpp"
#include "hepgnn/quant/interaction_network.hpp"

namespace hepgnn {

namespace detail::hls4ml {

inline void put_stage(std::string& s, const quant::fixed_stage& st, const std::string& name) {
  namespace dj = detail::json;
  const auto& p = st.dense.precision();
  const auto str = [&](const quant::fixed_spec& f) { dj::append_string(s, quant::to_string(f)); };
  s += "      {\"name\": ";
  dj::append_string(s, name);
  s += ", \"n_in\": " + std::to_string(st.dense.in_features()) + ", \"n_out\": " + std::to_string(st.dense.out_features());
  s += ",\n       \"Precision\": {\"input\": ";
  str(p.input);
  s += ", \"weight\": ";
  str(p.weight);
  s += ", \"bias\": ";
  str(p.bias);
  s += ", \"accum\": ";
  str(p.accum);
  s += ", \"result\": ";
  str(p.result);
  s += "},\n       \"activation\": ";
  s += st.relu ? "\"relu\", \"relu_result\": " : "\"linear\", \"relu_result\": ";
  if (st.relu) str(st.relu_result); else s += "null";
  s += ", \"input_quantizer\": [";
  for (std::size_t c = 0; c < st.input_quantizer.size(); ++c) {
    if (c) s += ", ";
    str(st.input_quantizer[c]);
  }
  s += "],\n       \"kernel\": ";
  dj::append_string(s, name + "_kernel.npy");
  s += ", \"bias\": ";
  if (st.dense.has_bias()) dj::append_string(s, name + "_bias.npy"); else s += "null";
  s += "}";
}

inline quant::fixed_spec spec_of(const json::value& v, std::string_view key, const char* who) {
  return quant::parse_fixed_spec(member(v, key, json::value::kind::string, who).text);
}

inline std::vector<quant::fixed_stage> read_stages(const std::filesystem::path& dir, const json::value& root,
                                                   std::string_view chain, const char* who) {
  using kind = json::value::kind;
  std::vector<quant::fixed_stage> out;
  for (const auto& e : member(root, chain, kind::array, who).items) {
    const std::string name = member(e, "name", kind::string, who).text;
    const int in = member_int(e, "n_in", who), n = member_int(e, "n_out", who);
    const auto& pr = member(e, "Precision", kind::object, who);
    quant::dense_precision p;
    p.input = spec_of(pr, "input", who);
    p.weight = spec_of(pr, "weight", who);
    p.bias = spec_of(pr, "bias", who);
    p.accum = spec_of(pr, "accum", who);
    p.result = spec_of(pr, "result", who);
    quant::fixed_stage st{read_weights(dir, e, in, n, p, who), false, {}, {}};
    const std::string act = member(e, "activation", kind::string, who).text;
    HEPGNN_CHECK(act == "relu" || act == "linear", who, ": stage '", name, "': activation must be relu or linear, got ",
                 act);
    st.relu = act == "relu";
    if (st.relu) st.relu_result = spec_of(e, "relu_result", who);
    for (const auto& q : member(e, "input_quantizer", kind::array, who).items) {
      HEPGNN_CHECK(q.type == kind::string, who, ": stage '", name, "': input_quantizer must hold precision strings");
      st.input_quantizer.push_back(quant::parse_fixed_spec(q.text));
    }
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace detail::hls4ml

/// @brief Writes the network's parts into `dir` (created if missing): interaction_network.json and the stages'
/// weights (see the file comment).
inline void write_hls4ml_interaction_export(const std::filesystem::path& dir,
                                           const quant::fixed_interaction_network& net) {
  namespace dj = detail::json;
  const auto& parts = net.parts();
  std::filesystem::create_directories(dir);
  std::string s = "{\n  \"format\": \"hepgnn-interaction-network-1\",\n  \"input\": ";
  dj::append_string(s, quant::to_string(parts.input));
  for (const auto& [key, sum] : {std::pair{"aggregate", &parts.aggregate}, std::pair{"pool", &parts.pool}}) {
    s += ",\n  \"" + std::string(key) + "\": {\"accum\": ";
    dj::append_string(s, quant::to_string(sum->accum));
    s += ", \"result\": ";
    dj::append_string(s, quant::to_string(sum->result));
    s += "}";
  }
  for (const auto& [key, chain] : {std::pair{"edge", &parts.edge}, std::pair{"node", &parts.node},
                                   std::pair{"classifier", &parts.classifier}}) {
    s += ",\n  \"" + std::string(key) + "\": [\n";
    for (std::size_t k = 0; k < chain->size(); ++k) {
      const std::string name = std::string(key) + "_" + std::to_string(k);
      detail::hls4ml::put_stage(s, (*chain)[k], name);
      detail::hls4ml::write_weights(dir, name, (*chain)[k].dense);
      s += k + 1 < chain->size() ? ",\n" : "\n";
    }
    s += "  ]";
  }
  s += "\n}\n";
  detail::hls4ml::write_text(dir / "interaction_network.json", s);
}

/// @brief Reads what write_hls4ml_interaction_export wrote; throws hepgnn::error naming the file and the entry
/// (missing or malformed entries, shapes, values off their formats' grids, inconsistent widths).
inline quant::fixed_interaction_network read_hls4ml_interaction_export(const std::filesystem::path& dir) {
  namespace dj = detail::json;
  using kind = dj::value::kind;
  const char* who = "read_hls4ml_interaction_export";
  const auto root = dj::parse(detail::hls4ml::read_text(dir / "interaction_network.json", who), who);
  const std::string format = detail::hls4ml::member(root, "format", kind::string, who).text;
  HEPGNN_CHECK(format == "hepgnn-interaction-network-1", who, ": format must be \"hepgnn-interaction-network-1\", got \"",
               format, "\"");
  quant::fixed_interaction_parts parts;
  parts.input = detail::hls4ml::spec_of(root, "input", who);
  for (auto [key, sum] : {std::pair{"aggregate", &parts.aggregate}, std::pair{"pool", &parts.pool}}) {
    const auto& v = detail::hls4ml::member(root, key, kind::object, who);
    sum->accum = detail::hls4ml::spec_of(v, "accum", who);
    sum->result = detail::hls4ml::spec_of(v, "result", who);
  }
  parts.edge = detail::hls4ml::read_stages(dir, root, "edge", who);
  parts.node = detail::hls4ml::read_stages(dir, root, "node", who);
  parts.classifier = detail::hls4ml::read_stages(dir, root, "classifier", who);
  return quant::fixed_interaction_network(std::move(parts));  // checks widths and formats
}

}  // namespace hepgnn
