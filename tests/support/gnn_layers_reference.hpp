#pragma once
// Shared by the gnn-layer tests: reads tests/data/gnn_layers_<case>.txt (written by
// tests/reference/gnn_layers_reference.py) and compares hepgnn parameters and gradients with it.
#include <doctest/doctest.h>

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

/// All tensors of one reference case, by name.
inline tensors load(const std::string& name) {
  const auto path = hepgnn_test::source_path("tests/data/gnn_layers_" + name + ".txt");
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing reference file ", path.string());
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
    t[key] = m;
  }
  return t;
}

inline std::vector<hepgnn::index_t> ints(const hepgnn::matrix<double>& m) {
  std::vector<hepgnn::index_t> v(static_cast<std::size_t>(m.size()));
  for (long i = 0; i < m.size(); ++i) v[i] = static_cast<hepgnn::index_t>(m.data()[i]);
  return v;
}

/// max |a - b| / max(1, |b|)
template <class A>
double rel_diff(const A& a, const hepgnn::matrix<double>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  double worst = 0;
  for (long r = 0; r < b.rows(); ++r)
    for (long c = 0; c < b.cols(); ++c)
      worst = std::max(worst, std::abs(static_cast<double>(a(r, c)) - b(r, c)) / std::max(1.0, std::abs(b(r, c))));
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
    const auto& g = ref.at("grad:" + name);
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

}  // namespace gnn_ref
