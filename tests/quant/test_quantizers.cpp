// Quantization-aware training: fake_quant (fixed bits, straight-through estimator) and hgq_dense (learnable
// fractional bits, HGQ surrogate gradient, pruning, EBOPs). Piecewise-constant parts are tested by their
// definition, differentiable parts (bias, EBOPs surrogate, the high-precision limit) by finite differences.
#include "support/doctest.hpp"

#include <cmath>
#include <set>
#include <string>

#include "hepgnn/nn/layer.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/quant/fake_quant.hpp"
#include "hepgnn/quant/fixed_point.hpp"
#include "hepgnn/quant/hgq.hpp"
#include "hepgnn/quant/hgq_activation.hpp"
#include "hepgnn/quant/hgq_export.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test_quantizers {

using namespace hepgnn;
using namespace hepgnn::quant;
using MD = matrix<double>;

static_assert(layer<fake_quant<float>>);
static_assert(layer<hgq_dense<double>>);
static_assert(layer<hgq_activation<float>>);

MD random_matrix(rng& g, Eigen::Index r, Eigen::Index c, double scale) {
  MD m(r, c);
  for (Eigen::Index e = 0; e < m.size(); ++e) m.data()[e] = scale * g.uniform(-1, 1);
  return m;
}

// A loss with a fixed random direction: L = sum(y .* g).
double probe_loss(const MD& y, const MD& g) { return (y.array() * g.array()).sum(); }

TEST_CASE("fake_quant: forward is ap_fixed's conversion, backward the straight-through estimator") {
  rng g(1);
  const MD x = random_matrix(g, 20, 7, 6.0);
  const fake_quant<double> sat(fixed<8, 3, AP_RND, AP_SAT>::spec());
  const fake_quant<double> wrap(fixed<8, 3>::spec());
  no_cache c;
  MD y, y2, dx, dx2;
  sat.infer(x, y, c);
  wrap.infer(x, y2, c);
  const MD dy = random_matrix(g, 20, 7, 1.0);
  sat.backward(x, y, dy, c, &dx);
  wrap.backward(x, y2, dy, c, &dx2);
  int clipped = 0;
  for (Eigen::Index e = 0; e < x.size(); ++e) {
    const double v = x.data()[e];
    CHECK(y.data()[e] == fixed<8, 3, AP_RND, AP_SAT>(v).to_double());
    CHECK(y2.data()[e] == fixed<8, 3>(v).to_double());
    const bool inside = v >= -4.0 && v <= 4.0 - 1.0 / 32;
    CHECK(dx.data()[e] == (inside ? dy.data()[e] : 0.0));
    CHECK(dx2.data()[e] == dy.data()[e]);
    clipped += !inside;
  }
  CHECK(clipped > 10);
  CHECK_THROWS_AS(fake_quant<double>(fixed_spec{64, 70}), hepgnn::error);
}

TEST_CASE("hgq_dense: forward quantizes inputs as ap_fixed<k+i+F, k+i, AP_RND, AP_SAT> and weights to F bits") {
  rng g(2);
  hgq_options o;
  o.init_weight_frac_bits = 4;
  o.init_input_frac_bits = 3;
  hgq_dense<double> layer(g, 5, 3, o);
  MD calib = random_matrix(g, 30, 5, 2.5);
  calib.col(1) = calib.col(1).cwiseAbs();  // an unsigned feature
  layer.calibrate(calib);
  const MD x = random_matrix(g, 10, 5, 4.0);  // beyond the calibrated range: clipped
  MD y;
  hgq_dense<double>::cache c;
  layer.infer(x, y, c);
  MD want = MD::Zero(10, 3);
  for (int i = 0; i < 5; ++i) {
    const int k = layer.input_sign_bit(i), ib = layer.input_integer_bits(i);
    CHECK(k == (i == 1 ? 0 : 1));
    CHECK(ib == 2);  // max |x| in [1.25, 2.5) for uniform(-2.5, 2.5) over 30 rows
    const fixed_spec s{k + ib + 3, k + ib, AP_RND, AP_SAT, k == 1};
    for (int r = 0; r < 10; ++r) {
      const double xq = raw_to_double(quantize_double(x(r, i), s), s);
      CHECK(c.xq(r, i) == xq);
      for (int o2 = 0; o2 < 3; ++o2) want(r, o2) += xq * fixed<24, 20, AP_RND>(layer.weight()(o2, i)).to_double();
    }
  }
  for (int o2 = 0; o2 < 3; ++o2) want.col(o2).array() += layer.bias()(0, o2);
  CHECK((y - want).cwiseAbs().maxCoeff() < 1e-12);
  // with 4 fractional bits the weights are multiples of 1/16 rounded half up
  CHECK(layer.quantized_weight(2, 3) == std::floor(layer.weight()(2, 3) * 16 + 0.5) / 16);
}

TEST_CASE("hgq_dense: surrogate gradients equal their definition; the bias by finite differences") {
  rng g(3);
  hgq_options o;
  o.init_weight_frac_bits = 3.2;  // rounds to 3
  o.init_input_frac_bits = 2.4;
  hgq_dense<double> layer(g, 6, 4, o);
  const MD x = random_matrix(g, 12, 6, 1.5);
  const MD gy = random_matrix(g, 12, 4, 1.0);
  MD y, dx;
  hgq_dense<double>::cache c;
  layer.forward(x, y, c);
  zero_grad(layer);
  layer.backward(x, y, gy, c, &dx);
  const double ln2 = std::log(2.0);
  const MD dwq = gy.transpose() * c.xq;
  const MD dxq = gy * c.wq;
  double fw_nonzero = 0;
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < 6; ++i) {
      CHECK(layer.weight_grad()(r, i) == doctest::Approx(dwq(r, i)).epsilon(1e-12));
      const double want = -ln2 * (c.wq(r, i) - layer.weight()(r, i)) * dwq(r, i);
      CHECK(layer.weight_frac_bits_grad()(r, i) == doctest::Approx(want).epsilon(1e-12));
      fw_nonzero += std::abs(want);
    }
  CHECK(fw_nonzero > 0);
  int passed = 0;
  for (int i = 0; i < 6; ++i) {
    double want = 0;
    for (int r = 0; r < 12; ++r) want += -ln2 * (c.xq(r, i) - c.act.xc(r, i)) * dxq(r, i);
    CHECK(layer.input_frac_bits_grad()(0, i) == doctest::Approx(want).epsilon(1e-12));
    for (int r = 0; r < 12; ++r) {
      // calibrated on x itself, only values within an LSB of 2^i are clipped (the range ends at 2^i - 2^-F)
      const bool clipped = c.act.xc(r, i) != x(r, i);
      CHECK(dx(r, i) == (clipped ? 0.0 : dxq(r, i)));
      passed += !clipped;
    }
  }
  CHECK(passed >= 12 * 6 - 6);
  const MD analytic_bias = layer.bias_grad();
  auto loss = [&] {
    MD yy;
    hgq_dense<double>::cache cc;
    layer.infer(x, yy, cc);
    return probe_loss(yy, gy);
  };
  CHECK(check_gradient(layer.bias().data(), analytic_bias.data(), 4, loss, "bias").max_error < 1e-7);
}

TEST_CASE("hgq_dense: at 30 fractional bits the straight-through gradients match finite differences of the layer") {
  rng g(4);
  hgq_options o;
  o.init_weight_frac_bits = 30;
  o.init_input_frac_bits = 30;
  hgq_dense<double> layer(g, 5, 3, o);
  MD x = random_matrix(g, 8, 5, 1.0);
  layer.calibrate(random_matrix(g, 50, 5, 3.0));  // wide range: nothing clipped
  const MD gy = random_matrix(g, 8, 3, 1.0);
  MD y, dx;
  hgq_dense<double>::cache c;
  layer.infer(x, y, c);
  zero_grad(layer);
  layer.backward(x, y, gy, c, &dx);
  auto loss = [&] {
    MD yy;
    hgq_dense<double>::cache cc;
    layer.infer(x, yy, cc);
    return probe_loss(yy, gy);
  };
  CHECK(check_input_gradient(x, dx, loss, "x", 1e-4).max_error < 1e-4);
  const MD dw = layer.weight_grad();
  CHECK(check_gradient(layer.weight().data(), dw.data(), dw.size(), loss, "weight", 1e-4).max_error < 1e-4);
}

TEST_CASE("hgq_dense: EBOPs by hand, pruning at 0 bits, and the surrogate's gradient by finite differences") {
  rng g(5);
  hgq_options o;
  o.init_weight_frac_bits = 4;
  o.init_input_frac_bits = 4;
  hgq_dense<double> small(g, 2, 1, o);
  small.weight()(0, 0) = 0.75;  // 12/16: 4 magnitude bits + sign = 5 bits
  small.weight()(0, 1) = 0.01;  // rounds to 0: pruned
  MD calib(2, 2);
  calib << 3.0, 0.5, -1.0, 0.25;  // feature 0: i = 2, signed: 2 + 4 + 1 = 7 bits; feature 1: i = 0, unsigned: 4
  small.calibrate(calib);
  CHECK(small.weight_bits(0, 0) == 5);
  CHECK(small.weight_bits(0, 1) == 0);
  CHECK(small.input_bits(0) == 7);
  CHECK(small.input_bits(1) == 4);
  CHECK(small.ebops() == 5 * 7);
  CHECK(small.pruned_fraction() == 0.5);

  o.init_weight_frac_bits = 3.3;
  o.init_input_frac_bits = 2.7;
  hgq_dense<double> layer(g, 7, 5, o);
  layer.calibrate(random_matrix(g, 40, 7, 2.0));
  zero_grad(layer);
  const double value = layer.add_ebops_gradient(1.0);
  CHECK(value == doctest::Approx(layer.ebops_surrogate()));
  CHECK(layer.ebops_surrogate() > 0);
  const MD afw = layer.weight_frac_bits_grad(), afx = layer.input_frac_bits_grad();
  auto loss = [&] { return layer.ebops_surrogate(); };
  CHECK(check_gradient(layer.weight_frac_bits().data(), afw.data(), afw.size(), loss, "fw", 1e-5).max_error < 1e-6);
  CHECK(check_gradient(layer.input_frac_bits().data(), afx.data(), afx.size(), loss, "fx", 1e-5).max_error < 1e-6);
}

TEST_CASE("hgq_dense: adam trains weights and bit widths through for_each_param; EBOPs fall under the regulariser") {
  rng g(6);
  hgq_options o;
  o.init_weight_frac_bits = 8;
  o.init_input_frac_bits = 8;
  o.inputs = granularity::per_channel;
  o.weights = granularity::per_channel;
  hgq_dense<double> layer(g, 4, 2, o);
  std::set<std::string> names;
  layer.for_each_param("fc.", [&](const std::string& n, auto) { names.insert(n); });
  CHECK(names == std::set<std::string>{"fc.weight", "fc.bias", "fc.weight_frac_bits", "fc.input_frac_bits"});
  CHECK(layer.weight_frac_bits().size() == 2);
  // target: a fixed linear map; loss = MSE + beta * EBOPs surrogate
  const MD x = random_matrix(g, 256, 4, 1.0);
  MD wt(2, 4);
  wt << 0.5, -0.25, 0.75, 0.0, -0.5, 0.125, 0.25, 1.0;
  const MD target = x * wt.transpose();
  adam<double> opt({.lr = 0.05});
  hgq_dense<double>::cache c;
  MD y;
  layer.forward(x, y, c);
  const double ebops0 = layer.ebops();
  double mse = 0;
  for (int step = 0; step < 400; ++step) {
    layer.forward(x, y, c);
    const MD dy = 2.0 * (y - target) / static_cast<double>(y.size());
    mse = (y - target).squaredNorm() / static_cast<double>(y.size());
    zero_grad(layer);
    layer.backward(x, y, dy, c, nullptr);
    layer.add_ebops_gradient(2e-5);
    opt.step(layer);
  }
  MESSAGE("EBOPs ", ebops0, " -> ", layer.ebops(), ", mse ", mse);
  CHECK(layer.ebops() < 0.6 * ebops0);
  CHECK(mse < 1e-3);
}

TEST_CASE("hgq_exact_precision: the fixed-point dense gives hgq_dense's forward exactly (bias: to its format)") {
  rng g(7);
  hgq_options o;
  o.init_weight_frac_bits = 5;
  o.init_input_frac_bits = 4;
  o.bias = false;
  hgq_dense<double> layer(g, 9, 6, o);
  for (int k = 0; k < 9; ++k) layer.weight_frac_bits()(k % 6, k) = 2.2 + k % 4;  // per-weight widths differ
  layer.input_frac_bits()(0, 3) = 1.4;
  const MD x = random_matrix(g, 40, 9, 3.0);
  MD y, yq;
  hgq_dense<double>::cache c;
  layer.forward(x, y, c);
  const dense_precision p = hgq_exact_precision(layer);
  CHECK(p.weight.frac() == 5);
  CHECK(p.input.frac() == 4);
  CHECK(p.accum.frac() == 9);
  const quantized_dense fixed_layer = to_quantized_dense(layer, p);
  fixed_layer.forward(c.xq, yq);
  CHECK((yq - y).cwiseAbs().maxCoeff() == 0.0);
  CHECK(y.cwiseAbs().maxCoeff() > 0.5);

  o.bias = true;
  hgq_dense<double> with_bias(g, 9, 6, o);
  with_bias.forward(x, y, c);
  const dense_precision pb = hgq_exact_precision(with_bias);
  to_quantized_dense(with_bias, pb).forward(c.xq, yq);
  CHECK((yq - y).cwiseAbs().maxCoeff() <= std::ldexp(1.0, -pb.bias.frac() - 1));
  o.init_weight_frac_bits = 40;
  hgq_dense<double> too_wide(g, 9, 6, o);
  CHECK_THROWS_WITH_AS(hgq_exact_precision(too_wide), doctest::Contains("at most 32 are supported"), hepgnn::error);
}

TEST_CASE("hgq_activation: forward as ap_fixed<k+i+F, k+i, AP_RND, AP_SAT> per feature, surrogate gradients, bits") {
  rng g(8);
  hgq_activation<double> act(4, 3.0);
  act.frac_bits()(0, 2) = 1.2;   // 1 fractional bit
  act.frac_bits()(0, 3) = -2.6;  // F = -3: feature 3 (|x| < 2) rounds to 0 or +-8: pruned to 0 bits when i + F <= 0
  MD calib = random_matrix(g, 50, 4, 1.9);
  calib.col(0) = calib.col(0).cwiseAbs();
  act.calibrate(calib);
  const MD x = random_matrix(g, 30, 4, 2.5);  // partly beyond the calibrated range
  MD y, dx;
  hgq_activation<double>::cache c;
  act.infer(x, y, c);
  CHECK(act.sign_bit(0) == 0);
  CHECK(act.integer_bits(1) == 1);
  CHECK(act.bits(1) == 1 + 3 + 1);
  CHECK(act.bits(2) == 1 + 1 + 1);
  CHECK(act.bits(3) == 0 + 1);  // i = max(1, 3) = 3, i + F = 0: only the sign bit is left
  int clipped = 0;
  for (int i = 0; i < 4; ++i) {
    const int k = act.sign_bit(i), ib = act.integer_bits(i), f = act.frac(i);
    const fixed_spec s{k + ib + f, k + ib, AP_RND, AP_SAT, k == 1};
    for (int r = 0; r < 30; ++r) CHECK(y(r, i) == raw_to_double(quantize_double(x(r, i), s), s));
  }
  const MD gy = random_matrix(g, 30, 4, 1.0);
  zero_grad(act);
  act.backward(x, y, gy, c, &dx);
  for (int i = 0; i < 4; ++i) {
    double want = 0;
    for (int r = 0; r < 30; ++r) {
      want += -std::log(2.0) * (y(r, i) - c.xc(r, i)) * gy(r, i);
      const bool inside = c.xc(r, i) == x(r, i);
      CHECK(dx(r, i) == (inside ? gy(r, i) : 0.0));
      clipped += !inside;
    }
    CHECK(act.frac_bits_grad()(0, i) == doctest::Approx(want).epsilon(1e-12));
  }
  CHECK(clipped > 5);
  std::set<std::string> names;
  act.for_each_param("q.", [&](const std::string& n, auto p) { names.insert(n + std::to_string(p.size())); });
  CHECK(names == std::set<std::string>{"q.frac_bits4"});
  hgq_activation<double> shared(4, 2.0, granularity::per_tensor);
  CHECK(shared.frac_bits().size() == 1);
  CHECK_THROWS_AS(hgq_activation<double>(0), hepgnn::error);
}

}  // namespace hepgnn_test_quantizers
