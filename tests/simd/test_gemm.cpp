// simd/gemm.hpp: the dense-layer products against a naive triple loop in double, on odd sizes (tile edges,
// partial registers, narrow outputs, row counts that split into several parts), for the AVX-512 kernels and the
// Eigen fallback, in float and double; results must not depend on the thread count.
#include "support/doctest.hpp"

#include <algorithm>
#include <cmath>

#include "hepgnn/core/rng.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/simd/gemm.hpp"
#include "support/thread_count.hpp"

namespace hepgnn_test_gemm {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {

template <class T>
matrix<T> random_matrix(long r, long c, std::uint64_t seed, double lo = -1) {
  rng g(seed);
  matrix<T> m(r, c);
  for (long i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(g.uniform(lo, 1));
  return m;
}

using ref = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// C = A B by the definition, in double. ta / tb read A / B transposed.
template <class TA, class TB>
ref naive(const matrix<TA>& A, bool ta, const matrix<TB>& B, bool tb) {
  const long M = ta ? A.cols() : A.rows(), K = ta ? A.rows() : A.cols(), N = tb ? B.rows() : B.cols();
  ref C = ref::Zero(M, N);
  for (long m = 0; m < M; ++m)
    for (long n = 0; n < N; ++n) {
      double s = 0;
      for (long k = 0; k < K; ++k)
        s += static_cast<double>(ta ? A(k, m) : A(m, k)) * static_cast<double>(tb ? B(n, k) : B(k, n));
      C(m, n) = s;
    }
  return C;
}

/// Max |got - want| relative to the product's scale (K terms of magnitude <= 1).
template <class T>
double rel_error(const matrix<T>& got, const ref& want, long K) {
  REQUIRE(got.rows() == want.rows());
  REQUIRE(got.cols() == want.cols());
  if (got.size() == 0) return 0;
  return (got.template cast<double>() - want).cwiseAbs().maxCoeff() / std::max(1.0, std::sqrt(double(K)));
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-13;
}

template <class T, class Arch>
void check_forward(long M, long K, long N, bool bias, bool relu) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(bias);
  CAPTURE(relu);
  const matrix<T> x = random_matrix<T>(M, K, 1 + M), w = random_matrix<T>(N, K, 2 + N);
  const matrix<T> b = random_matrix<T>(1, N, 3);
  matrix<T> y = matrix<T>::Constant(3, 5, T(7));  // wrong shape and stale values: must be overwritten
  simd::linear_forward<T, Arch>(x, w, bias ? b.data() : nullptr, y, relu);
  ref want = naive(x, false, w, true);
  if (bias) want.rowwise() += b.template cast<double>().row(0);
  if (relu) want = want.cwiseMax(0.0);
  CHECK(rel_error(y, want, K) < tolerance<T>());
}

template <class T, class Arch>
void check_multiply(long M, long K, long N, bool accumulate) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(accumulate);
  const matrix<T> dy = random_matrix<T>(M, K, 4 + M), w = random_matrix<T>(K, N, 5 + N);
  const matrix<T> start = random_matrix<T>(M, N, 6);
  matrix<T> dx = accumulate ? start : matrix<T>::Constant(2, 2, T(9));
  simd::multiply<T, Arch>(dy, w, dx, accumulate);
  ref want = naive(dy, false, w, false);
  if (accumulate) want += start.template cast<double>();
  CHECK(rel_error(dx, want, K) < tolerance<T>());
}

template <class T, class Arch>
void check_backward(long R, long I, long O, bool with_dx, bool with_mask) {
  CAPTURE(R);
  CAPTURE(I);
  CAPTURE(O);
  CAPTURE(with_dx);
  CAPTURE(with_mask);
  const matrix<T> x = random_matrix<T>(R, I, 7 + R), dy = random_matrix<T>(R, O, 8 + O), w = random_matrix<T>(O, I, 9);
  const matrix<T> mask = random_matrix<T>(R, I, 10);
  const matrix<T> dw0 = random_matrix<T>(O, I, 11), db0 = random_matrix<T>(1, O, 12);
  matrix<T> dw = dw0, db = db0, dx;
  simd::linear_backward<T, Arch>(x, dy, w, dw, db.data(), with_dx ? &dx : nullptr, with_mask ? &mask : nullptr);
  // dW accumulates onto its old value; db gets the column sums of dy.
  CHECK(rel_error(dw, naive(dy, true, x, false) + dw0.template cast<double>(), R) < tolerance<T>());
  ref sums = db0.template cast<double>();
  for (long r = 0; r < R; ++r) sums += dy.template cast<double>().row(r);
  CHECK(rel_error(db, sums, R) < tolerance<T>());
  if (with_dx) {
    ref want = naive(dy, false, w, false);
    if (with_mask) want = (mask.template cast<double>().array() > 0).select(want, 0.0);
    CHECK(rel_error(dx, want, O) < tolerance<T>());
  }
}

// Sizes around the tile edges: 1, a register (8 doubles, 16 floats) +- 1, 4 registers (a panel) +- 1, and beyond.
constexpr long widths[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 150};
constexpr long row_counts[] = {1, 5, 6, 7, 13, 121};

template <class T, class Arch>
void check_all() {
  for (long M : row_counts)
    for (long K : widths)
      for (long N : widths) {
        if ((M * 7 + K * 3 + N) % 4 != 0 && M > 7) continue;  // a quarter of the large cases keeps the test fast
        check_forward<T, Arch>(M, K, N, (K + N) % 2 == 0, N % 3 == 0);
        check_multiply<T, Arch>(M, K, N, (M + N) % 2 == 0);
        check_backward<T, Arch>(M, N, K, (M + K) % 3 != 0, K % 2 == 1);
      }
  // Row counts that split the weight-gradient reduction into several parts, with partial chunks.
  for (long R : {512L, 2047L, 4100L, 9000L}) {
    check_backward<T, Arch>(R, 17, 64, true, true);
    check_backward<T, Arch>(R, 64, 33, false, false);
    check_forward<T, Arch>(R, 33, 70, true, true);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("gemm kernels match a naive product", T, float, double) {
  SUBCASE("native") { check_all<T, simd::native>(); }
  SUBCASE("eigen fallback") { check_all<T, simd::scalar>(); }
}

TEST_CASE("gemm: an input of zero rows or zero width") {
  matrix<float> x(0, 8), w = random_matrix<float>(4, 8, 1), y, dw = matrix<float>::Zero(4, 8), dx;
  simd::linear_forward(x, w, nullptr, y);
  CHECK(y.rows() == 0);
  CHECK(y.cols() == 4);
  matrix<float> dy(0, 4);
  simd::linear_backward(x, dy, w, dw, nullptr, &dx);
  CHECK(dw.isZero());
  CHECK(dx.rows() == 0);
  // K = 0: the product is zero.
  matrix<float> a(5, 0), b(0, 20);
  simd::multiply(a, b, dx);
  CHECK(dx.rows() == 5);
  CHECK(dx.isZero());
}

TEST_CASE("gemm: mismatched shapes are rejected with the shapes in the message") {
  matrix<float> x = random_matrix<float>(10, 8, 1), w = random_matrix<float>(4, 7, 2), y;
  CHECK_THROWS_WITH(simd::linear_forward(x, w, nullptr, y), doctest::Contains("linear_forward"));
  matrix<float> dy = random_matrix<float>(10, 5, 3), w2 = random_matrix<float>(4, 8, 4), dw = w2, dx;
  CHECK_THROWS_WITH(simd::multiply(dy, w2, dx), doctest::Contains("multiply: dy has 5 columns"));
  CHECK_THROWS_WITH(simd::linear_backward(x, dy, w2, dw, nullptr, &dx), doctest::Contains("linear_backward"));
}

TEST_CASE_TEMPLATE("gemm: results do not depend on the thread count, and match a plain loop", T, float, double) {
  const long R = 20000, I = 48, O = 80;
  const matrix<T> x = random_matrix<T>(R, I, 21), dy = random_matrix<T>(R, O, 22), w = random_matrix<T>(O, I, 23);
  matrix<T> y[2], dx[2], dw[2], db[2];
  for (int t = 0; t < 2; ++t) {
    hepgnn_test::at_threads(t == 0 ? 1 : 3, [&] {
      simd::linear_forward(x, w, nullptr, y[t], true);
      dw[t] = matrix<T>::Zero(O, I);
      db[t] = matrix<T>::Zero(1, O);
      simd::linear_backward(x, dy, w, dw[t], db[t].data(), &dx[t]);
    });
  }
  CHECK(y[0] == y[1]);
  CHECK(dx[0] == dx[1]);
  CHECK(dw[0] == dw[1]);
  CHECK(db[0] == db[1]);
  // The plain loop (in double) as the oracle, so that a build without OpenMP compares with something too.
  CHECK(rel_error(dw[1], naive(dy, true, x, false), R) < tolerance<T>());
  CHECK(rel_error(dx[1], naive(dy, false, w, false), O) < tolerance<T>());
  const ref pre = naive(x, false, w, true);
  CHECK(rel_error(y[1], pre.cwiseMax(0.0), I) < tolerance<T>());
}

namespace {
/// mlp<double> {9, 20, 17, 3} with ReLU against the same weights in `S` (dense/relu layers in sequence).
template <class S>
void check_fused_mlp(bool activate_last) {
  using D = double;
  rng g(5);
  mlp<D> m(g, {9, 20, 17, 3}, {.activation = activation_kind::relu, .activate_last = activate_last});
  const auto make = [&](std::size_t i) {
    dense<D> d(g, static_cast<int>(m.linear(i).in_features()), static_cast<int>(m.linear(i).out_features()));
    d.weight() = m.linear(i).weight();
    d.bias() = m.linear(i).bias();
    return d;
  };
  S s = [&] {
    if constexpr (S::size() == 6)
      return S{make(0), relu<D>{}, make(1), relu<D>{}, make(2), relu<D>{}};
    else
      return S{make(0), relu<D>{}, make(1), relu<D>{}, make(2)};
  }();
  const matrix<D> x = random_matrix<D>(300, 9, 31), dy = random_matrix<D>(300, 3, 32);
  matrix<D> ym, ys, dxm, dxs;
  typename mlp<D>::cache cm;
  typename S::cache cs;
  m.forward(x, ym, cm);
  s.forward(x, ys, cs);
  CHECK((ym - ys).cwiseAbs().maxCoeff() < 1e-12);
  zero_grad(m);
  zero_grad(s);
  m.backward(x, ym, dy, cm, &dxm);
  s.backward(x, ys, dy, cs, &dxs);
  CHECK((dxm - dxs).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((m.linear(0).weight_grad() - s.template get<0>().weight_grad()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((m.linear(1).bias_grad() - s.template get<2>().bias_grad()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((m.linear(2).weight_grad() - s.template get<4>().weight_grad()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(m.linear(0).weight_grad().cwiseAbs().maxCoeff() > 0.1);  // the comparison is not vacuous
}
}  // namespace

TEST_CASE("mlp with its ReLUs fused into the products matches dense and relu layers in sequence") {
  using D = double;
  check_fused_mlp<sequential<D, dense<D>, relu<D>, dense<D>, relu<D>, dense<D>>>(false);
  check_fused_mlp<sequential<D, dense<D>, relu<D>, dense<D>, relu<D>, dense<D>, relu<D>>>(true);
}

TEST_CASE("mlp: activations other than ReLU run on each finished block of rows, with the bits of a separate pass") {
  // 1000 rows: several row blocks of the product, each activated by the thread that made it; the reference is
  // linear_forward then the activation over the whole matrix, on one thread
  const matrix<float> x = random_matrix<float>(1000, 6, 41);
  for (const auto kind : {activation_kind::tanh, activation_kind::gelu, activation_kind::sigmoid}) {
    rng g(3);
    const mlp<float> m(g, {6, 64, 48, 3}, {.activation = kind});
    matrix<float> want = x;
    for (std::size_t i = 0; i < m.depth(); ++i) {
      matrix<float> pre;
      simd::linear_forward(want, m.linear(i).weight(), m.linear(i).bias().data(), pre);
      if (i + 1 == m.depth()) {
        want = pre;
        break;
      }
      detail::with_activation<float>(kind, [&](auto p) {
        using P = decltype(p);
        no_cache nc;
        activation<float, P>().infer(pre, want, nc);
      });
    }
    for (const int threads : {1, 2}) {
      matrix<float> y;
      typename mlp<float>::cache c;
      hepgnn_test::at_threads(threads, [&] { m.infer(x, y, c); });
      CAPTURE(threads);
      CHECK(y == want);
      CHECK(y.cwiseAbs().maxCoeff() > 0.01f);  // not vacuous
      // the training cache keeps the pre-activations for the backward
      CHECK(c.post[0] == c.pre[0].unaryExpr([&](float v) {
        matrix<float> one(1, 1), out;
        one(0, 0) = v;
        detail::with_activation<float>(kind, [&](auto p) {
          no_cache nc;
          activation<float, decltype(p)>().infer(one, out, nc);
        });
        return out(0, 0);
      }));
    }
  }
}

}  // namespace hepgnn_test_gemm
