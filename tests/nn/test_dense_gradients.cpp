// Finite-difference gradient checks (double) for every dense building block, composition and loss.
#include "support/doctest.hpp"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/train/gradient_check.hpp"
#include "support/check_layer.hpp"

namespace hepgnn_test_dense_gradients {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;
using hepgnn_test::check_layer;
using M = matrix<double>;

namespace {
constexpr double tol = 1e-6;

M input(long n = 7, long f = 4, std::uint64_t seed = 5) {
  rng g(seed);
  return M::NullaryExpr(n, f, [&] { return g.normal(); });
}
}  // namespace

TEST_CASE("dense gradients, with and without bias") {
  rng g(1);
  dense<double, 4, 3> d(g);
  check_layer(d, input());
  dense<double> nb(g, 4, 5, false);
  check_layer(nb, input());
}

TEST_CASE_TEMPLATE("activation gradients", P, act::relu, act::leaky_relu, act::elu, act::gelu, act::silu, act::tanh,
                   act::sigmoid) {
  activation<double, P> a;
  check_layer(a, input());
}

namespace {
/// Largest error of the vectorised act::apply (value) and act::apply_gradient (derivative for dy = 1) against the
/// portable std:: path on [-20, 20] (saturation included) and special values, in units of T's epsilon: values
/// relative (to max(|reference|, 1e-30)), derivatives relative to max(|reference|, 1). NaN and inf must come out
/// where the reference has them.
template <class P, class T>
std::pair<double, double> simd_error() {
  std::vector<T> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(T(i) / T(10000));
  constexpr T inf = std::numeric_limits<T>::infinity();
  for (T v : {T(-0.0), T(1e-30), T(-1e-30), T(100), T(-100), T(1e6), T(-1e6), inf, -inf,
              std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::denorm_min()})
    x.push_back(v);
  const long n = static_cast<long>(x.size());
  const T a = T(act::default_parameter<P>());
  std::vector<T> ref(n), got(n), ones(n, T(1)), dref(n), dgot(n);
  act::apply<P, simd::scalar>(x.data(), ref.data(), n, a);
  act::apply<P>(x.data(), got.data(), n, a);
  act::apply_gradient<P, simd::scalar>(x.data(), ref.data(), ones.data(), dref.data(), n, a);
  act::apply_gradient<P>(x.data(), ref.data(), ones.data(), dgot.data(), n, a);
  const double eps = std::numeric_limits<T>::epsilon();
  const auto error = [&](double r, double g, double floor) {
    if (!std::isfinite(r)) return (std::isnan(r) ? std::isnan(g) : r == g) ? 0.0 : HUGE_VAL;
    return std::abs(g - r) / std::max(std::abs(r), floor) / eps;
  };
  double value = 0, slope = 0;
  for (long i = 0; i < n; ++i) {
    value = std::max(value, error(ref[i], got[i], 1e-30));
    slope = std::max(slope, error(dref[i], dgot[i], 1.0));
  }
  return {value, slope};
}
}  // namespace

TEST_CASE_TEMPLATE("vectorised activations stay within a few ulp of std::, NaN and inf included", P, act::relu,
                   act::leaky_relu, act::elu, act::gelu, act::silu, act::tanh, act::sigmoid) {
  // measured worst cases: value 2.3 eps (sigmoid, silu), derivative 8 eps (silu); float gelu's negative tail
  // drifts to 36 eps (xsimd's erfcf; 5 eps at x = -2.4, 36 eps at x = -11.4 where gelu(x) = -2e-29)
  const auto [vf, df] = simd_error<P, float>();
  const auto [vd, dd] = simd_error<P, double>();
  CHECK(vf <= (std::is_same_v<P, act::gelu> ? 40 : 4));
  CHECK(vd <= 4);
  CHECK(df <= 12);
  CHECK(dd <= 12);
}

TEST_CASE("activation layers apply the same values in whole SIMD registers and in the padded tail") {
  rng g(3);
  const matrix<float> x = matrix<float>::NullaryExpr(37, 3, [&] { return static_cast<float>(4 * g.normal()); });
  matrix<float> y;
  no_cache c;
  tanh_layer<float>().infer(x, y, c);
  const matrix<float> tail = x.bottomRows(1);  // the last row alone lies entirely in a padded register
  matrix<float> ytail;
  tanh_layer<float>().infer(tail, ytail, c);
  CHECK(ytail == y.bottomRows(1));
  for (Eigen::Index i = 0; i < x.size(); ++i) CHECK(std::abs(y(i) - std::tanh(x(i))) <= 4e-7f * std::abs(y(i)));
}

TEST_CASE("layer_norm and batch_norm gradients (training mode)") {
  layer_norm<double> ln(4);
  ln.weight() = input(1, 4, 8);
  check_layer(ln, input());
  batch_norm<double> bn(4);
  bn.weight() = input(1, 4, 9);
  bn.bias() = input(1, 4, 10);
  check_layer(bn, input());
}

TEST_CASE("dropout routes the gradient through the kept entries, scaled by 1/(1-p)") {
  dropout<double> d(0.4, 77);
  const M x = input(50, 8);
  M y, dx;
  dropout<double>::cache c;
  d.forward(x, y, c);
  const M dy = M::Ones(50, 8);
  d.backward(x, y, dy, c, &dx);
  long kept = 0;
  for (long i = 0; i < x.size(); ++i) {
    const bool keep = c.mask.data()[i] != 0;
    kept += keep;
    CHECK(y.data()[i] == doctest::Approx(keep ? x.data()[i] / 0.6 : 0.0));
    CHECK(dx.data()[i] == doctest::Approx(keep ? 1 / 0.6 : 0.0));
  }
  CHECK(kept > 200);  // about 60% of 400 entries
  CHECK(kept < 280);
  M yi;
  d.infer(x, yi, c);
  CHECK(yi == x);
}

TEST_CASE("compositions: sequential, residual, concat, mlp") {
  rng g(2);
  using D = double;
  sequential<D, dense<D, 4, 6>, tanh_layer<D>, residual<sequential<D, dense<D, 6, 6>, gelu<D>>>, dense<D, 6, 2>> s{
      dense<D, 4, 6>{g}, tanh_layer<D>{},
      residual<sequential<D, dense<D, 6, 6>, gelu<D>>>{sequential<D, dense<D, 6, 6>, gelu<D>>{dense<D, 6, 6>{g}, gelu<D>{}}},
      dense<D, 6, 2>{g}};
  check_layer(s, input());

  concat<dense<D, 4, 2>, sequential<D, dense<D, 4, 3>, relu<D>>> c{dense<D, 4, 2>{g},
                                                                   sequential<D, dense<D, 4, 3>, relu<D>>{dense<D, 4, 3>{g}, relu<D>{}}};
  check_layer(c, input());

  mlp<D> m(g, {4, 8, 8, 3}, {.activation = activation_kind::silu, .activate_last = true});
  check_layer(m, input());
}

TEST_CASE("mlp: dropout in training forwards only, its masks fixed per cache, gradients match finite differences") {
  using D = double;
  const M x = input(40, 4, 9);
  for (const activation_kind k : {activation_kind::relu, activation_kind::elu, activation_kind::none}) {
    INFO("activation ", static_cast<int>(k));
    rng g(4), g0(4);
    const mlp<D> m(g, {4, 16, 16, 3}, {.activation = k, .activate_last = false, .dropout = 0.4, .dropout_seed = 3});
    const mlp<D> plain(g0, {4, 16, 16, 3}, {.activation = k});
    mlp<D>::cache c, c0;
    M y_infer, y_plain, y1, y2, y3;
    m.infer(x, y_infer, c);
    plain.infer(x, y_plain, c0);
    CHECK(y_infer == y_plain);  // the rate changes neither the weights nor inference
    plain.forward(x, y1, c0);
    CHECK(y1 == y_plain);  // rate 0: forward is infer
    m.forward(x, y1, c);
    m.forward(x, y2, c);  // the second forward through a cache draws new masks
    mlp<D>::cache fresh;
    m.forward(x, y3, fresh);  // a fresh cache repeats the first ones
    CHECK((y1 - y_infer).cwiseAbs().maxCoeff() > 1e-3);
    CHECK((y1 - y2).cwiseAbs().maxCoeff() > 1e-3);
    CHECK(y1 == y3);
    // about 40 % of the nonzero hidden outputs are zeroed (c0: the same layer without dropout)
    const M& h = k == activation_kind::elu ? c.drop[0] : c.post[0];
    const auto alive = c0.post[0].array() != 0;
    const double zeros = static_cast<double>((alive && h.array() == 0).count()) / static_cast<double>(alive.count());
    CHECK(zeros > 0.3);
    CHECK(zeros < 0.5);
    mlp<D> trained = m;
    check_layer(trained, x);  // a fresh cache per evaluation: the masks the backward redraws
  }
  rng g(1);
  CHECK_THROWS_WITH_AS(mlp<D>(g, {4, 3}, {.dropout = 1.0}),
                       doctest::Contains("mlp: options.dropout must be in [0, 1), got 1"), hepgnn::error);
}

TEST_CASE("heads: separate outputs, gradients of both heads reach the shared input") {
  rng g(3);
  using D = double;
  heads<dense<D, 4, 3>, dense<D, 4, 1>> h{dense<D, 4, 3>{g}, dense<D, 4, 1>{g}};
  M x = input();
  std::vector<index_t> labels{0, 1, 2, 1, 0, 2, 2};
  M target = input(7, 1, 3);
  auto loss = [&] {
    decltype(h)::outputs y;
    decltype(h)::cache c;
    h.infer(x, y, c);
    return cross_entropy<D>(y[0], labels) + huber<D>(y[1], target, {.delta = 0.5});
  };
  M dx;
  hepgnn_test::check_gradients(
      h, loss,
      [&] {
        decltype(h)::outputs y, dy;
        decltype(h)::cache c;
        h.forward(x, y, c);
        cross_entropy<D>(y[0], labels, {}, &dy[0]);
        huber<D>(y[1], target, {.delta = 0.5}, &dy[1]);
        h.backward(x, y, dy, c, &dx);
      },
      {{"x", &x, &dx}}, {.tol = tol});
}

TEST_CASE("loss gradients by finite differences") {
  M p = input(6, 3, 21), t = input(6, 3, 22);
  const vector<double> w = (input(6, 1, 23).array().abs()).matrix();
  M g;
  mse(p, t, {.row_weights = &w}, &g);
  CHECK(check_input_gradient(p, g, [&] { return mse<double>(p, t, {.row_weights = &w}); }).max_error < tol);
  huber(p, t, {.delta = 0.8, .row_weights = &w}, &g);
  CHECK(check_input_gradient(p, g, [&] { return huber<double>(p, t, {.delta = 0.8, .row_weights = &w}); }).max_error < tol);

  M z = input(8, 1, 24);
  M y = (input(8, 1, 25).array() > 0).cast<double>();
  bce_with_logits(z, y, {.pos_weight = 3.0}, &g);
  CHECK(check_input_gradient(z, g, [&] { return bce_with_logits<double>(z, y, {.pos_weight = 3.0}); }).max_error < tol);
  binary_focal_loss(z, y, {.gamma = 2.0, .alpha = 0.25}, &g);
  CHECK(check_input_gradient(z, g, [&] { return binary_focal_loss<double>(z, y, {.gamma = 2.0, .alpha = 0.25}); }).max_error < tol);

  M logits = input(8, 5, 26);
  const std::vector<index_t> labels{0, 4, 2, 2, 1, 3, 0, 4};
  const std::vector<double> cw{1, 2, 0.5, 1, 3};
  focal_loss<double>(logits, labels, {.gamma = 2.0, .class_weights = &cw}, &g);
  CHECK(check_input_gradient(logits, g, [&] { return focal_loss<double>(logits, labels, {.gamma = 2.0, .class_weights = &cw}); }).max_error < tol);
  // gamma = 0 is exactly the weighted cross entropy
  CHECK(focal_loss<double>(logits, labels, {.gamma = 0.0, .class_weights = &cw}) == doctest::Approx(cross_entropy<double>(logits, labels, {.class_weights = &cw})));
}

TEST_CASE("the gradient checker catches a wrong backward") {
  // A deliberately broken layer (backward off by 1%) must be flagged: the checker itself can fail.
  struct broken : dense<double, 3, 2> {
    using dense::dense;
    void backward(const M& x, const M& y, const M& dy, cache& c, M* dx) {
      dense::backward(x, y, dy, c, dx);
      weight_grad() *= 1.01;
    }
  };
  rng g(4);
  broken b(g);
  M x = input(5, 3);
  const M ones = M::Ones(5, 2);  // loss = sum(y)
  const auto r = hepgnn_test::layer_gradient_errors(b, x, {.dy = &ones});
  CHECK(r.params.max_error > 1e-3);
  CHECK(r.inputs.max_error < tol);  // dx is right
}

}  // namespace hepgnn_test_dense_gradients
