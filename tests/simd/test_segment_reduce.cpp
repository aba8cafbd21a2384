// simd/segment_reduce.hpp: the concatenated reduction (several aggregations of the same rows in one pass) against
// reduce_segment block by block, bit for bit; each row computed once; empty segments; its backward against the
// single-aggregation backward and against finite differences (double).
#include "support/doctest.hpp"

#include <array>
#include <vector>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/simd/segment_reduce.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test_segment_reduce {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

constexpr aggregation concat_blocks[] = {aggregation::mean, aggregation::max, aggregation::sum, aggregation::max};
constexpr long f = 5;

/// Segments [0, 0), [0, 1), [1, 4), [4, 11) over 11 rows of f values.
const std::vector<index_t> bounds{0, 0, 1, 4, 11};

matrix<double> random_rows(rng& gen) {
  matrix<double> m(11, f);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = gen.normal();
  return m;
}

/// The concatenation of every segment: one row of 4 f values per segment, arg-max f ids per max block.
void concat_all(const matrix<double>& m, matrix<double>& y, std::vector<index_t>& arg, long* calls = nullptr) {
  const long blocks = std::size(concat_blocks);
  y.resize(long(bounds.size()) - 1, blocks * f);
  arg.assign((bounds.size() - 1) * 2 * f, -7);
  for (std::size_t s = 0; s + 1 < bounds.size(); ++s) {
    auto row = [&](index_t r) {
      if (calls) ++*calls;
      return m.data() + long(r) * f;
    };
    simd::reduce_segment_concat(bounds[s], bounds[s + 1], f, row, concat_blocks, y.data() + long(s) * blocks * f,
                                arg.data() + s * 2 * f);
  }
}

}  // namespace

TEST_CASE("reduce_segment_concat equals reduce_segment block by block and computes each row once") {
  rng gen(3);
  matrix<double> m = random_rows(gen);
  m(6, 2) = m(8, 2) = 10;  // a tie for the max: the first row wins
  matrix<double> y;
  std::vector<index_t> arg;
  long calls = 0;
  concat_all(m, y, arg, &calls);
  CHECK(calls == m.rows());
  for (std::size_t s = 0; s + 1 < bounds.size(); ++s) {
    CAPTURE(s);
    long max_block = 0;
    for (std::size_t k = 0; k < std::size(concat_blocks); ++k) {
      CAPTURE(k);
      std::array<double, f> one;
      std::array<index_t, f> one_arg;
      simd::reduce_segment(bounds[s], bounds[s + 1], f, [&](index_t r) { return m.data() + long(r) * f; },
                           concat_blocks[k], one.data(), one_arg.data());
      const double* got = y.data() + long(s) * y.cols() + long(k) * f;
      CHECK(std::vector<double>(got, got + f) == std::vector<double>(one.begin(), one.end()));
      if (concat_blocks[k] == aggregation::max) {
        const index_t* a = arg.data() + (s * 2 + max_block++) * f;
        CHECK(std::vector<index_t>(a, a + f) == std::vector<index_t>(one_arg.begin(), one_arg.end()));
      }
    }
  }
  CHECK(y.row(0).isZero());  // empty segment
  CHECK(arg[0] == -1);
  CHECK(arg[3 * 2 * f + 2] == 6);  // the tie in column 2 of segment 3, [4, 11), goes to the first row
  CHECK(arg[3 * 2 * f + f + 2] == 6);
}

TEST_CASE("reduce_segment_concat_backward: assign then add per block, and finite differences") {
  rng gen(4);
  matrix<double> m = random_rows(gen);
  matrix<double> y;
  std::vector<index_t> arg;
  concat_all(m, y, arg);
  matrix<double> w(y.rows(), y.cols());
  for (long i = 0; i < w.size(); ++i) w.data()[i] = gen.normal();
  matrix<double> dm = matrix<double>::Constant(m.rows(), f, 99.0), dm_blocks = dm;
  for (std::size_t s = 0; s + 1 < bounds.size(); ++s) {
    auto drow = [&](index_t r) { return dm.data() + long(r) * f; };
    simd::reduce_segment_concat_backward<simd::gradient_mode::assign>(
        bounds[s], bounds[s + 1], f, concat_blocks, w.data() + long(s) * w.cols(), arg.data() + s * 2 * f, drow);
    // the same from the single-aggregation backward: the first block assigns, the others add
    auto drow_blocks = [&](index_t r) { return dm_blocks.data() + long(r) * f; };
    const index_t* a = arg.data() + s * 2 * f;
    for (std::size_t k = 0; k < std::size(concat_blocks); ++k) {
      const double* dy = w.data() + long(s) * w.cols() + long(k) * f;
      const bool is_max = concat_blocks[k] == aggregation::max;
      if (k == 0)
        simd::reduce_segment_backward<simd::gradient_mode::assign>(bounds[s], bounds[s + 1], f, concat_blocks[k], dy,
                                                                   is_max ? a : nullptr, drow_blocks);
      else
        simd::reduce_segment_backward<simd::gradient_mode::add>(bounds[s], bounds[s + 1], f, concat_blocks[k], dy,
                                                                is_max ? a : nullptr, drow_blocks);
      if (is_max) a += f;
    }
  }
  CHECK(dm == dm_blocks);
  auto loss = [&] {
    matrix<double> yy;
    std::vector<index_t> unused;
    concat_all(m, yy, unused);
    return (yy.array() * w.array()).sum();
  };
  CHECK(check_input_gradient(m, dm, loss).max_error < 1e-6);
}

}  // namespace hepgnn_test_segment_reduce
