#pragma once
// Shared by the gnn-layer tests: reads reference tensor files (tests/data/gnn_layers_<case>.txt written by
// tests/reference/gnn_layers_reference.py, and the same format from the other reference scripts), compares
// hepgnn outputs, parameters and gradients with them (finite differences: support/check_layer.hpp).
#include "support/doctest.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "support/data.hpp"

namespace gnn_ref {

using tensors = std::map<std::string, hepgnn::matrix<double>>;

/// All tensors of a reference file (lines `tensor <name> <rows> <cols>` followed by the values), by name.
inline tensors load_file(const std::string& relative_path) {
  const auto path = hepgnn_test::source_path(relative_path);
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing reference file ", path.string(), " (run the script in tests/reference/)");
  tensors t;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("tensor ", 0) != 0) continue;
    std::istringstream h(line.substr(7));
    std::string key;
    long r = 0, c = 0;
    h >> key >> r >> c;
    hepgnn::matrix<double> m(r, c);
    for (long i = 0; i < r * c; ++i) in >> m.data()[i];
    REQUIRE_MESSAGE(!in.fail(), "truncated tensor ", key, " in ", path.string());
    t[key] = m;
  }
  return t;
}

/// All tensors of one gnn-layer reference case, by name.
inline tensors load(const std::string& name) { return load_file("tests/data/gnn_layers_" + name + ".txt"); }

/// The tensor `name` of `ref`, failing the test with its name when the file lacks it.
inline const hepgnn::matrix<double>& at(const tensors& ref, const std::string& name) {
  auto it = ref.find(name);
  REQUIRE_MESSAGE(it != ref.end(), "reference tensor missing: ", name);
  return it->second;
}

inline std::vector<hepgnn::index_t> ints(const hepgnn::matrix<double>& m) {
  std::vector<hepgnn::index_t> v(static_cast<std::size_t>(m.size()));
  for (long i = 0; i < m.size(); ++i) v[i] = static_cast<hepgnn::index_t>(m.data()[i]);
  return v;
}

/// max |a - b| / max(floor, |b|)
template <class A, class B>
double rel_diff(const A& a, const B& b, double floor = 1.0) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  double worst = 0;
  for (long r = 0; r < b.rows(); ++r)
    for (long c = 0; c < b.cols(); ++c) {
      const double bv = static_cast<double>(b(r, c));
      worst = std::max(worst, std::abs(static_cast<double>(a(r, c)) - bv) / std::max(floor, std::abs(bv)));
    }
  return worst;
}

/// Loads every parameter of `model` from the file ("param:<name>"); fails on a name the file lacks or a count mismatch.
template <class Model>
void set_params(Model& model, const tensors& ref) {
  int count = 0, file_count = 0;
  for (auto& kv : ref) file_count += kv.first.rfind("param:", 0) == 0;
  model.for_each_param("", [&](const std::string& name, auto p) {
    auto it = ref.find("param:" + name);
    REQUIRE_MESSAGE(it != ref.end(), "parameter ", name, " not in the reference file");
    REQUIRE(it->second.size() == p.size());
    using S = std::remove_pointer_t<decltype(p.value)>;
    for (long i = 0; i < it->second.size(); ++i) p.value[i] = static_cast<S>(it->second.data()[i]);
    ++count;
  });
  CHECK(count == file_count);
}

/// Worst relative difference between the model's gradients and the file's "grad:<name>".
template <class Model>
double grad_diff(Model& model, const tensors& ref) {
  double worst = 0;
  model.for_each_param("", [&](const std::string& name, hepgnn::parameter<double> p) {
    const auto& g = at(ref, "grad:" + name);
    for (long i = 0; i < g.size(); ++i)
      worst = std::max(worst, std::abs(p.grad[i] - g.data()[i]) / std::max(1.0, std::abs(g.data()[i])));
  });
  return worst;
}

inline hepgnn::matrix<double> random_matrix(hepgnn::rng& gen, long r, long c, double scale = 1.0) {
  hepgnn::matrix<double> m(r, c);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = scale * gen.normal();
  return m;
}

/// Double precision against a reference case holding x, y, dy, grad_x and grad:<param>: training forward, backward
/// (input and parameter gradients), and inference equal to the training forward.
template <class Layer, class Context>
void check_against_reference(Layer& layer, const Context& context, const tensors& ref, double tol = 1e-10) {
  typename Layer::cache c;
  hepgnn::matrix<double> x = at(ref, "x"), y, dx, yi;
  layer.forward(x, context, y, c);
  CHECK(rel_diff(y, at(ref, "y")) < tol);
  hepgnn::zero_grad(layer);
  layer.backward(x, context, y, at(ref, "dy"), c, &dx);
  CHECK(rel_diff(dx, at(ref, "grad_x")) < tol);
  CHECK(grad_diff(layer, ref) < tol);
  layer.infer(x, context, yi, c);
  CHECK(rel_diff(yi, y) < 1e-14);
}

/// Single-precision inference against the reference output.
template <class Layer, class Context>
void check_float_against_reference(const Layer& layer, const Context& context, const tensors& ref, double tol = 1e-5) {
  typename Layer::cache c;
  const hepgnn::matrix<float> x = at(ref, "x").cast<float>();
  hepgnn::matrix<float> y;
  layer.infer(x, context, y, c);
  CHECK(rel_diff(y, at(ref, "y")) < tol);
}

}  // namespace gnn_ref
