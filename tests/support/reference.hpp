#pragma once
// Reads reference files written by tests/reference/*.py: lines `<name> <count> v0 v1 ...`.
#include "support/doctest.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/data.hpp"

namespace hepgnn_test {

inline std::map<std::string, std::vector<double>> read_reference(const std::string& relative) {
  std::ifstream in(source_path(relative));
  REQUIRE_MESSAGE(in.good(), "cannot open reference file " << relative);
  std::map<std::string, std::vector<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    std::size_t n = 0;
    if (!(ls >> name >> n)) continue;
    std::vector<double> v(n);
    for (auto& x : v) ls >> x;
    REQUIRE_MESSAGE(!ls.fail(), "reference entry " << name << " is truncated");
    out[name] = std::move(v);
  }
  return out;
}

/// Largest |a - b| / max(1, |b|) over two equally long sequences.
template <class A>
double max_rel_diff(const A& a, const std::vector<double>& b) {
  REQUIRE(static_cast<std::size_t>(a.size()) == b.size());
  double m = 0;
  for (std::size_t i = 0; i < b.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - b[i]) / std::max(1.0, std::abs(b[i])));
  return m;
}

/// value(i) = scale * sin(0.37 i + offset): the closed-form inputs of the reference scripts.
template <class M>
M wave(long rows, long cols, double offset, double scale = 2.0) {
  M m(rows, cols);
  for (long i = 0; i < rows * cols; ++i) m.data()[i] = static_cast<typename M::Scalar>(scale * std::sin(0.37 * i + offset));
  return m;
}

}  // namespace hepgnn_test
