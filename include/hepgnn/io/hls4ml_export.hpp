#pragma once
/// @file hls4ml_export.hpp
/// @brief A fixed-point dense network (quant::quantized_dense layers, each optionally followed by ReLU) written
/// for hls4ml, and read back. A folder gets:
///   - `hls4ml_config.json`: the `hls_config` dictionary of hls4ml's Python API (what
///     `hls4ml.utils.config_from_keras_model(model, granularity='name')` returns, filled in): `Model` {`Precision`,
///     `ReuseFactor`, `Strategy`} and `LayerName` {input layer: `Precision.result`; each dense layer:
///     `Precision` {`weight`, `bias`, `accum`, `result`}, `ReuseFactor`, `Strategy`; `<name>_relu`:
///     `Precision.result`}, precisions spelled `ap_fixed<W,I,Q,O>` (quant/precision_string.hpp);
///   - `model.json`: the layer list (name, sizes, activation, weight files), for a script that builds the
///     matching Keras model (`Dense(n_out, name=...)`, kernel layout [in, out]) before calling hls4ml;
///   - `<name>_kernel.npy` [in, out] and `<name>_bias.npy` [out], float64.
/// Why .npy and not hls4ml's own `firmware/weights/*.txt`: those files are named after hls4ml's internal layer
/// indices and written by hls4ml itself from the Keras/PyTorch weights, so the input hls4ml takes is the model's
/// weights; float64 holds every value of a <= 32-bit format exactly, so the weights are already on their grids
/// and hls4ml's conversion to `weight_t`/`bias_t` leaves them unchanged (bit-exact with quantized_dense).
/// The reader checks that every value lies on its format's grid and rebuilds the same raw integers.

#include <cctype>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/io/detail_json.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/quant/dense.hpp"
#include "hepgnn/quant/precision_string.hpp"

namespace hepgnn {

/// @brief One dense layer of an exported network; `relu`: followed by ReLU with output format `relu_result`.
struct hls4ml_dense_layer {
  std::string name;
  quant::quantized_dense layer;
  bool relu = false;
  quant::fixed_spec relu_result{};
};

/// @brief Model-wide settings of the configuration dictionary.
struct hls4ml_export_options {
  std::string input_name = "input_1";
  quant::fixed_spec model_precision{16, 6};  ///< hls4ml's default for anything not named per layer
  int reuse_factor = 1;
  std::string strategy = "Latency";  ///< "Latency" or "Resource"
};

namespace detail::hls4ml {

inline void check_name(const std::string& n, const char* who, const char* arg) {
  bool ok = !n.empty() && (std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_');
  for (char c : n) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  HEPGNN_CHECK(ok, who, ": ", arg, " must be a C identifier (hls4ml uses it as a variable name), got '", n, "'");
}

inline void check_network(const std::vector<hls4ml_dense_layer>& layers, const hls4ml_export_options& opt) {
  const char* who = "write_hls4ml_export";
  HEPGNN_CHECK(!layers.empty(), who, ": layers must not be empty");
  HEPGNN_CHECK(opt.reuse_factor >= 1, who, ": options.reuse_factor must be >= 1, got ", opt.reuse_factor);
  HEPGNN_CHECK(opt.strategy == "Latency" || opt.strategy == "Resource", who,
               ": options.strategy must be \"Latency\" or \"Resource\", got \"", opt.strategy, "\"");
  check_name(opt.input_name, who, "options.input_name");
  std::set<std::string> names{opt.input_name};
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const auto& l = layers[k];
    check_name(l.name, who, "layer name");
    HEPGNN_CHECK(names.insert(l.name).second && (!l.relu || names.insert(l.name + "_relu").second), who,
                 ": layer names must be unique (with their \"_relu\" layers), '", l.name, "' repeats");
    if (l.relu) quant::check_spec(l.relu_result, who, "relu_result");
    if (k + 1 < layers.size()) {
      // hls4ml passes each layer's output type on as the next layer's input type: they must agree
      const auto out = l.relu ? l.relu_result : l.layer.precision().result;
      HEPGNN_CHECK(layers[k + 1].layer.in_features() == l.layer.out_features() &&
                       layers[k + 1].layer.precision().input == out,
                   who, ": layer '", layers[k + 1].name, "' must take ", l.layer.out_features(), " inputs in ",
                   quant::to_string(out), " (the output of '", l.name, "'), got ",
                   layers[k + 1].layer.in_features(), " in ", quant::to_string(layers[k + 1].layer.precision().input));
    }
  }
}

inline void put_precision(std::string& s, const char* key, const quant::fixed_spec& f, bool last) {
  s += "        ";
  json::append_string(s, key);
  s += ": ";
  json::append_string(s, quant::to_string(f));
  s += last ? "\n" : ",\n";
}

inline std::string read_text(const std::filesystem::path& p, const char* who) {
  std::ifstream in(p, std::ios::binary);
  HEPGNN_CHECK(in.good(), who, ": cannot open ", p.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  HEPGNN_CHECK(out.good(), "write_hls4ml_export: cannot write ", p.string());
}

inline const json::value& member(const json::value& v, std::string_view key, json::value::kind k, const char* who) {
  const json::value* m = v.type == json::value::kind::object ? v.find(key) : nullptr;
  HEPGNN_CHECK(m && m->type == k, who, ": expected the key \"", key, "\" holding a ", json::kind_name(k));
  return *m;
}

inline int member_int(const json::value& v, std::string_view key, const char* who) {
  std::int64_t n = 0;
  HEPGNN_CHECK(json::to_nonnegative_int64(member(v, key, json::value::kind::number, who), n) && n > 0 && n < (1 << 30),
               who, ": \"", key, "\" must be a positive integer");
  return static_cast<int>(n);
}

inline quant::fixed_spec precision_of(const json::value& layer_cfg, std::string_view key, const char* who) {
  const auto& p = member(layer_cfg, "Precision", json::value::kind::object, who);
  return quant::parse_fixed_spec(member(p, key, json::value::kind::string, who).text);
}

// The values must lie on the format's grid (what the writer produced); returns the raw integers' doubles.
inline void check_on_grid(const std::vector<double>& v, const quant::fixed_spec& f, const std::string& file, const char* who) {
  for (std::size_t e = 0; e < v.size(); ++e)
    HEPGNN_CHECK(quant::raw_to_double(quant::quantize_double(v[e], f), f) == v[e], who, ": ", file, " element ", e,
                 " = ", v[e], " is not a value of ", quant::to_string(f));
}

/// Writes <name>_kernel.npy [in, out] and, with a bias, <name>_bias.npy [out] (float64, exact on their grids).
inline void write_weights(const std::filesystem::path& dir, const std::string& name, const quant::quantized_dense& q) {
  const int in = q.in_features(), out = q.out_features();
  std::vector<double> w(static_cast<std::size_t>(in) * out), b(static_cast<std::size_t>(out));
  for (int i = 0; i < in; ++i)
    for (int o = 0; o < out; ++o)
      w[static_cast<std::size_t>(i) * out + o] = quant::raw_to_double(q.weight_raw(o, i), q.precision().weight);
  for (int o = 0; o < out; ++o) b[static_cast<std::size_t>(o)] = quant::raw_to_double(q.bias_raw(o), q.precision().bias);
  write_npy(dir / (name + "_kernel.npy"), npy_array::from<double>({in, out}, w));
  if (q.has_bias()) write_npy(dir / (name + "_bias.npy"), npy_array::from<double>({out}, b));
}

/// The dense layer whose "kernel" (and optional "bias") files the layer entry `e` names, in precision p; every
/// value must lie on its format's grid.
inline quant::quantized_dense read_weights(const std::filesystem::path& dir, const json::value& e, int in, int out,
                                           const quant::dense_precision& p, const char* who) {
  using kind = json::value::kind;
  const auto kfile = member(e, "kernel", kind::string, who).text;
  const auto karr = read_npy(dir / kfile);
  HEPGNN_CHECK((karr.shape == std::vector<std::int64_t>{in, out}), who, ": ", kfile, " must have shape [", in, ", ",
               out, "]");
  const auto wk = karr.as<double>();
  check_on_grid(wk, p.weight, kfile, who);
  std::vector<double> w(wk.size()), b;
  for (int i = 0; i < in; ++i)
    for (int o = 0; o < out; ++o) w[static_cast<std::size_t>(o) * in + i] = wk[static_cast<std::size_t>(i) * out + o];
  const json::value* bias = e.find("bias");
  if (bias && bias->type == kind::string) {
    const auto barr = read_npy(dir / bias->text);
    HEPGNN_CHECK(barr.shape == std::vector<std::int64_t>{out}, who, ": ", bias->text, " must have shape [", out, "]");
    b = barr.as<double>();
    check_on_grid(b, p.bias, bias->text, who);
  }
  return quant::quantized_dense(w.data(), b.empty() ? nullptr : b.data(), in, out, p);
}

}  // namespace detail::hls4ml
/// @brief The hls4ml configuration dictionary as JSON text (see the file comment).
inline std::string hls4ml_config_json(const std::vector<hls4ml_dense_layer>& layers, const hls4ml_export_options& opt = {}) {
  namespace dj = detail::json;
  detail::hls4ml::check_network(layers, opt);
  std::string s = "{\n  \"Model\": {\n    \"Precision\": ";
  dj::append_string(s, quant::to_string(opt.model_precision));
  s += ",\n    \"ReuseFactor\": " + std::to_string(opt.reuse_factor) + ",\n    \"Strategy\": ";
  dj::append_string(s, opt.strategy);
  s += "\n  },\n  \"LayerName\": {\n    ";
  dj::append_string(s, opt.input_name);
  s += ": {\n      \"Precision\": {\n";
  detail::hls4ml::put_precision(s, "result", layers.front().layer.precision().input, true);
  s += "      }\n    }";
  for (const auto& l : layers) {
    const auto& p = l.layer.precision();
    s += ",\n    ";
    dj::append_string(s, l.name);
    s += ": {\n      \"Precision\": {\n";
    detail::hls4ml::put_precision(s, "weight", p.weight, false);
    detail::hls4ml::put_precision(s, "bias", p.bias, false);
    detail::hls4ml::put_precision(s, "accum", p.accum, false);
    detail::hls4ml::put_precision(s, "result", p.result, true);
    s += "      },\n      \"ReuseFactor\": " + std::to_string(opt.reuse_factor) + ",\n      \"Strategy\": ";
    dj::append_string(s, opt.strategy);
    s += "\n    }";
    if (l.relu) {
      s += ",\n    ";
      dj::append_string(s, l.name + "_relu");
      s += ": {\n      \"Precision\": {\n";
      detail::hls4ml::put_precision(s, "result", l.relu_result, true);
      s += "      }\n    }";
    }
  }
  s += "\n  }\n}\n";
  return s;
}

/// @brief Writes hls4ml_config.json, model.json and the weight files into `dir` (created if missing).
inline void write_hls4ml_export(const std::filesystem::path& dir, const std::vector<hls4ml_dense_layer>& layers,
                                const hls4ml_export_options& opt = {}) {
  namespace dj = detail::json;
  const std::string config = hls4ml_config_json(layers, opt);  // validates
  std::filesystem::create_directories(dir);
  std::string m = "{\n  \"format\": \"hepgnn-hls4ml-dense-1\",\n  \"input\": {\"name\": ";
  dj::append_string(m, opt.input_name);
  m += ", \"shape\": [" + std::to_string(layers.front().layer.in_features()) + "]},\n  \"layers\": [";
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const auto& l = layers[k];
    const auto& q = l.layer;
    const int in = q.in_features(), out = q.out_features();
    detail::hls4ml::write_weights(dir, l.name, q);
    m += k ? ",\n    {" : "\n    {";
    m += "\"name\": ";
    dj::append_string(m, l.name);
    m += ", \"class_name\": \"Dense\", \"n_in\": " + std::to_string(in) + ", \"n_out\": " + std::to_string(out);
    m += std::string(", \"activation\": ") + (l.relu ? "\"relu\"" : "\"linear\"") + ", \"kernel\": ";
    dj::append_string(m, l.name + "_kernel.npy");
    m += ", \"bias\": ";
    if (q.has_bias()) {
      dj::append_string(m, l.name + "_bias.npy");
    } else {
      m += "null";
    }
    m += "}";
  }
  m += "\n  ]\n}\n";
  detail::hls4ml::write_text(dir / "hls4ml_config.json", config);
  detail::hls4ml::write_text(dir / "model.json", m);
}

/// @brief Reads what write_hls4ml_export wrote: the layers with their precisions (from hls4ml_config.json) and
/// weights (from the .npy files, checked to lie on their formats' grids). Throws hepgnn::error naming the file.
inline std::vector<hls4ml_dense_layer> read_hls4ml_export(const std::filesystem::path& dir) {
  namespace dj = detail::json;
  using kind = dj::value::kind;
  const char* who = "read_hls4ml_export";
  const auto config = dj::parse(detail::hls4ml::read_text(dir / "hls4ml_config.json", who), who);
  const auto model = dj::parse(detail::hls4ml::read_text(dir / "model.json", who), who);
  const auto& names = detail::hls4ml::member(config, "LayerName", kind::object, who);
  const auto& input = detail::hls4ml::member(model, "input", kind::object, who);
  const auto& input_name = detail::hls4ml::member(input, "name", kind::string, who).text;
  quant::fixed_spec in_format =
      detail::hls4ml::precision_of(detail::hls4ml::member(names, input_name, kind::object, who), "result", who);
  std::vector<hls4ml_dense_layer> layers;
  for (const auto& e : detail::hls4ml::member(model, "layers", kind::array, who).items) {
    const std::string name = detail::hls4ml::member(e, "name", kind::string, who).text;
    const int in = detail::hls4ml::member_int(e, "n_in", who), out = detail::hls4ml::member_int(e, "n_out", who);
    const auto& cfg = detail::hls4ml::member(names, name, kind::object, who);
    quant::dense_precision p;
    p.input = in_format;
    p.weight = detail::hls4ml::precision_of(cfg, "weight", who);
    p.bias = detail::hls4ml::precision_of(cfg, "bias", who);
    p.accum = detail::hls4ml::precision_of(cfg, "accum", who);
    p.result = detail::hls4ml::precision_of(cfg, "result", who);
    const std::string act = detail::hls4ml::member(e, "activation", kind::string, who).text;
    HEPGNN_CHECK(act == "relu" || act == "linear", who, ": layer '", name, "': activation must be relu or linear, got ", act);
    hls4ml_dense_layer l{name, detail::hls4ml::read_weights(dir, e, in, out, p, who), act == "relu", {}};
    if (l.relu)
      l.relu_result = detail::hls4ml::precision_of(
          detail::hls4ml::member(names, name + "_relu", kind::object, who), "result", who);
    in_format = l.relu ? l.relu_result : p.result;
    layers.push_back(std::move(l));
  }
  HEPGNN_CHECK(!layers.empty(), who, ": model.json lists no layers");
  return layers;
}

/// @brief Runs the network on raw integers of the first layer's input format (hls4ml's order: dense, then the
/// ReLU cast); returns the last layer's output raws [batch, out].
inline std::vector<std::int32_t> hls4ml_forward_raw(const std::vector<hls4ml_dense_layer>& layers,
                                                    const std::vector<std::int32_t>& x, int batch) {
  HEPGNN_CHECK(!layers.empty() && x.size() == static_cast<std::size_t>(batch) * layers.front().layer.in_features(),
               "hls4ml_forward_raw: x must hold batch * in_features values");
  std::vector<std::int32_t> cur = x, next;
  for (const auto& l : layers) {
    next.assign(static_cast<std::size_t>(batch) * l.layer.out_features(), 0);
    l.layer.forward_raw(cur.data(), batch, next.data());
    if (l.relu)
      quant::relu_raw(next.data(), static_cast<std::int64_t>(next.size()), l.layer.precision().result, l.relu_result,
                      next.data());
    cur.swap(next);
  }
  return cur;
}

}  // namespace hepgnn
