#pragma once
// How doctest prints the values of a failed CHECK for the containers the tests compare: std::vector, std::array,
// std::pair, std::tuple, std::optional and Eigen matrices, arrays, blocks, maps and refs. Without these, doctest
// prints `{?} == {?}` for every type without an operator<< (and Eigen's operator<< writes every entry of a large
// matrix). Long sequences show their first `hepgnn_test::print_limit` entries and their size:
// `{0, 1, 2, ... (40 entries)}`; matrices show their shape and their first entries in row-major order:
// `3x4 {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}`.
// Included by support/doctest.hpp (every test's first include), so a test never includes it itself.
#include <doctest/doctest.h>

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace hepgnn_test {

/// Entries printed of a sequence or a matrix before the rest is summarised by its size.
inline constexpr std::size_t print_limit = 16;

namespace detail {

/// `{a, b, c}` of the first print_limit entries of [first, last), then `... (n entries)` when there are more.
template <class It>
doctest::String print_range(It first, It last) {
  std::string s = "{";
  std::size_t n = 0;
  for (It it = first; it != last; ++it, ++n) {
    if (n < print_limit) {
      if (n) s += ", ";
      using V = std::decay_t<decltype(*it)>;
      s += doctest::toString(static_cast<V>(*it)).c_str();
    }
  }
  if (n > print_limit) s += ", ... (" + std::to_string(n) + " entries)";
  s += "}";
  return s.c_str();
}

/// `rows x cols {{..row 0..}, {..row 1..}}`, at most print_limit entries in all (row-major order).
template <class Derived>
doctest::String print_matrix(const Eigen::DenseBase<Derived>& m) {
  const Eigen::Index rows = m.rows(), cols = m.cols();
  std::string s = std::to_string(rows) + "x" + std::to_string(cols) + " {";
  std::size_t printed = 0;
  bool cut = false;
  for (Eigen::Index r = 0; r < rows && !cut; ++r) {
    s += r ? ", {" : "{";
    for (Eigen::Index c = 0; c < cols; ++c) {
      if (printed == print_limit) {
        cut = true;
        s += c ? ", ..." : "...";
        break;
      }
      if (c) s += ", ";
      s += doctest::toString(static_cast<typename Derived::Scalar>(m(r, c))).c_str();
      ++printed;
    }
    s += "}";
  }
  if (cut) s += ", ... (" + std::to_string(rows * cols) + " entries)";
  s += "}";
  return s.c_str();
}

template <class Tuple, std::size_t... I>
doctest::String print_tuple(const Tuple& t, std::index_sequence<I...>) {
  std::string s = "(";
  ((s += std::string(I ? ", " : "") + doctest::toString(std::get<I>(t)).c_str()), ...);
  s += ")";
  return s.c_str();
}

}  // namespace detail
}  // namespace hepgnn_test

namespace doctest {

template <class T, class A>
struct StringMaker<std::vector<T, A>> {
  static String convert(const std::vector<T, A>& v) { return hepgnn_test::detail::print_range(v.begin(), v.end()); }
};

template <class T, std::size_t N>
struct StringMaker<std::array<T, N>> {
  static String convert(const std::array<T, N>& v) { return hepgnn_test::detail::print_range(v.begin(), v.end()); }
};

template <class A, class B>
struct StringMaker<std::pair<A, B>> {
  static String convert(const std::pair<A, B>& p) {
    return String("(") + toString(p.first) + ", " + toString(p.second) + ")";
  }
};

template <class... T>
struct StringMaker<std::tuple<T...>> {
  static String convert(const std::tuple<T...>& t) {
    return hepgnn_test::detail::print_tuple(t, std::index_sequence_for<T...>{});
  }
};

template <class T>
struct StringMaker<std::optional<T>> {
  static String convert(const std::optional<T>& o) { return o ? toString(*o) : String("nullopt"); }
};

template <class S, int R, int C, int O, int MR, int MC>
struct StringMaker<Eigen::Matrix<S, R, C, O, MR, MC>> {
  static String convert(const Eigen::Matrix<S, R, C, O, MR, MC>& m) { return hepgnn_test::detail::print_matrix(m); }
};

template <class S, int R, int C, int O, int MR, int MC>
struct StringMaker<Eigen::Array<S, R, C, O, MR, MC>> {
  static String convert(const Eigen::Array<S, R, C, O, MR, MC>& m) { return hepgnn_test::detail::print_matrix(m); }
};

template <class X, int R, int C, bool I>
struct StringMaker<Eigen::Block<X, R, C, I>> {
  static String convert(const Eigen::Block<X, R, C, I>& m) { return hepgnn_test::detail::print_matrix(m); }
};

template <class X, int O, class S>
struct StringMaker<Eigen::Map<X, O, S>> {
  static String convert(const Eigen::Map<X, O, S>& m) { return hepgnn_test::detail::print_matrix(m); }
};

template <class X, int O, class S>
struct StringMaker<Eigen::Ref<X, O, S>> {
  static String convert(const Eigen::Ref<X, O, S>& m) { return hepgnn_test::detail::print_matrix(m); }
};

}  // namespace doctest
