#pragma once
/// @file detail_state.hpp
/// @brief hepgnn::load_report and the shared logic that copies named tensors from a weight file into a model
/// (safetensors and npz readers both use it).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/io/detail_bytes.hpp"

namespace hepgnn {

/// @brief What load_weights did: tensors loaded, and (non-strict mode) what it skipped and why.
struct load_report {
  std::vector<std::string> loaded;      ///< names copied into the model
  std::vector<std::string> missing;     ///< model tensors absent from the file (kept their values)
  std::vector<std::string> unexpected;  ///< file tensors the model does not have (ignored)
  std::vector<std::string> mismatched;  ///< "name: file [..] vs model [..]" (kept their values)

  /// @brief True when every model tensor was loaded and the file had nothing else.
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }

  /// @brief One line per problem, empty when complete().
  std::string summary() const {
    std::string s;
    for (const auto& m : missing) s += "missing from the file: '" + m + "'\n";
    for (const auto& m : mismatched) s += "shape mismatch: " + m + "\n";
    for (const auto& m : unexpected) s += "unexpected in the file: '" + m + "'\n";
    return s;
  }
};

/// @brief How load_weights matches the model's tensors to the file's.
struct load_options {
  bool strict = true;  ///< a missing, unexpected or mis-shaped tensor throws (and nothing is loaded)
  /// The model is a sub-module of the file: model tensor "w" is read from "<prefix>w", and file tensors
  /// outside the prefix are not "unexpected" (e.g. "encoder." to load an encoder from a whole autoencoder).
  std::string prefix{};
  /// Maps a model tensor's name (after the prefix) to the file's, for files named by another convention
  /// (e.g. a PyTorch module with other attribute names); empty: the same name.
  std::function<std::string(const std::string&)> rename{};
  /// Load NaN or infinite values (a file saved mid-divergence); by default such a tensor is refused by name.
  bool allow_non_finite = false;
};

namespace detail {

/// @brief Copies every state tensor of `model` (parameters, then buffers) from `src`.
///
/// Source requirements: `names()` (all tensor names in the file), `find_shape(name)` (pointer to its shape or
/// null), `read<T>(name, T* dst)` (converts its values into dst, which holds the shape's element count).
/// Strict: any missing, unexpected or mis-shaped tensor throws before the model is changed, listing them all.
template <class Model, class Source>
load_report load_state(Model& model, const Source& src, const load_options& o, const std::string& who) {
  const bool strict = o.strict;
  load_report report;
  std::unordered_set<std::string> seen;
  std::vector<std::string> problems;
  const auto file_name = [&o](const std::string& name) { return o.rename ? o.rename(o.prefix + name) : o.prefix + name; };
  // First pass: match names and shapes without touching the model (report names are the file's).
  for_each_state(model, "", [&](const std::string& model_name, auto p) {
    const std::string name = file_name(model_name);
    HEPGNN_CHECK(seen.insert(name).second, who, ": two model tensors map to the file's '", name, "'");
    const std::vector<std::int64_t>* shape = src.find_shape(name);
    if (!shape) {
      report.missing.push_back(name);
      problems.push_back("tensor '" + name + "' is missing from the file (model expects shape " + shape_string(p.shape) + ")");
    } else if (*shape != p.shape) {
      report.mismatched.push_back(name + ": file " + shape_string(*shape) + " vs model " + shape_string(p.shape));
      problems.push_back("tensor '" + name + "' has shape " + shape_string(*shape) + " in the file but the model expects " +
                         shape_string(p.shape));
    }
  });
  for (const auto& name : src.names()) {
    if (seen.count(name) || name.compare(0, o.prefix.size(), o.prefix) != 0) continue;
    report.unexpected.push_back(name);
    problems.push_back("tensor '" + name + "' " + shape_string(*src.find_shape(name)) +
                       " in the file is not a tensor of the model");
  }
  if (strict && !problems.empty()) {
    std::string msg = who + ": " + std::to_string(problems.size()) + " problem(s), nothing loaded:";
    const std::size_t shown = std::min<std::size_t>(problems.size(), 20);
    for (std::size_t i = 0; i < shown; ++i) msg += "\n  " + problems[i];
    if (shown < problems.size()) msg += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    hepgnn::fail(msg);
  }
  // Non-finite values are refused before anything is copied (the model stays unchanged).
  if (!o.allow_non_finite)
    for_each_state(model, "", [&](const std::string& model_name, auto p) {
      const std::string name = file_name(model_name);
      const std::vector<std::int64_t>* shape = src.find_shape(name);
      if (!shape || *shape != p.shape) return;
      std::vector<std::remove_pointer_t<decltype(p.value)>> values(static_cast<std::size_t>(p.size()));
      src.read(name, values.data());
      for (std::size_t i = 0; i < values.size(); ++i)
        HEPGNN_CHECK(std::isfinite(values[i]), who, ": tensor '", name, "' holds a non-finite value (", values[i],
                     " at flat index ", i, "); nothing loaded (load_options::allow_non_finite loads it anyway)");
    });
  // Second pass: copy what matches.
  for_each_state(model, "", [&](const std::string& model_name, auto p) {
    const std::string name = file_name(model_name);
    const std::vector<std::int64_t>* shape = src.find_shape(name);
    if (!shape || *shape != p.shape) return;
    src.read(name, p.value);
    report.loaded.push_back(name);
  });
  return report;
}

}  // namespace detail
}  // namespace hepgnn
