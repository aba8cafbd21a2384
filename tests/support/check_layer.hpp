#pragma once
// The one finite-difference gradient checker of the tests (dlib's test_layer habit), for the layer contracts of
// nn/layer.hpp (row-wise layers), nn/graph_layer.hpp (graph layers, batch layers) and for anything else with
// for_each_param:
//
//   check_layer(layer, x);           // row-wise:   forward(x, y, cache),    backward(x, y, dy, cache, dx)
//   check_layer(layer, graph, x);    // graph layer: forward(x, g, y, cache), backward(x, g, y, dy, cache, dx)
//   check_layer(layer, batch, x);    // batch layer: forward(x, b, y, cache), backward(x, b, y, dy, cache, dx)
//   check_layer(chain, context, x);  // chain or block: forward(x, ctx, y, cache), backward(x, ctx, y, dy, cache, dx)
//   check_layer(layer, b, x, {.tol = 1e-7, .dy = &w, .params = only("lin_s.")}, after_forward);
//
// Double precision. The loss is L = sum(R .* y) for a fixed R (uniform in [-1, 1) from `seed`, or `dy`), computed
// by a training forward (batch statistics, dropout masks: the mode backward differentiates). Every parameter entry
// and every entry of x is compared with the central difference of L (hepgnn::check_gradient of
// train/gradient_check.hpp: error |analytic - numeric| / max(1, |numeric|)); the CHECKs fail with the worst entry
// by name and index (`nn.0.weight[2][1]`, `x[3][0]`), its analytic and numeric values, and the caller's line.
//
// State: the gradients are zeroed before the analytic pass (backward adds to them) and hold the analytic gradients
// afterwards. Layers that change with a training forward (BatchNorm running statistics, a dropout generator) are
// copied: the analytic pass runs on the layer, which is then restored to its state before the call (copy
// assignment; gradients kept), and every loss evaluation runs a fresh copy, so all forwards start from the same
// state. `after_forward(cache)` runs after every forward: layers with discrete choices (kNN in a learned space, LSH
// bins) assert there that the steps did not change them.
//
// For models outside these contracts (several inputs, other losses), gradient_errors / check_gradients take the
// loss and the backward as functions and any number of named inputs with their analytic gradients.
#include "support/doctest.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <source_location>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/nn/element.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test {

/// What check_layer and check_gradients compare, and how.
struct check_options {
  double tol = 1e-6;                              ///< largest |analytic - numeric| / max(1, |numeric|)
  double step = 1e-6;                             ///< central-difference step, relative to max(1, |value|)
  std::uint64_t seed = 11;                        ///< of R, uniform in [-1, 1)
  const hepgnn::matrix<double>* dy = nullptr;     ///< R itself (dL/dy) in place of the random one
  std::function<bool(const std::string&)> params = {};  ///< which parameters to check (empty: all)
  bool input = true;                              ///< check dL/dx too
};

/// Selects the parameters whose name starts with one of the prefixes (check_options::params).
inline std::function<bool(const std::string&)> only(std::vector<std::string> prefixes) {
  return [prefixes = std::move(prefixes)](const std::string& name) {
    for (const auto& p : prefixes)
      if (name.rfind(p, 0) == 0) return true;
    return false;
  };
}
inline std::function<bool(const std::string&)> only(std::string prefix) {
  return only(std::vector<std::string>{std::move(prefix)});
}

/// The worst parameter entry and the worst input entry of one check (no assertion made).
struct gradient_report {
  hepgnn::gradient_check_result params, inputs;
  std::int64_t param_entries = 0, input_entries = 0;  ///< entries compared
  double max_error() const { return std::max(params.max_error, inputs.max_error); }
};

/// A model input whose gradient is checked: `values` are perturbed in place (and restored); `analytic` must hold
/// dL/dvalues once backward() has run.
struct checked_input {
  std::string name;
  hepgnn::matrix<double>* values;
  const hepgnn::matrix<double>* analytic;
};

/// No check after a forward.
struct no_hook {
  template <class Cache>
  void operator()(const Cache&) const {}
};

namespace detail {

/// `name[i][j]` of flat entry `flat` of a tensor with the given (row-major) shape.
inline std::string entry_name(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t flat) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    const std::int64_t n = shape[d] > 0 ? shape[d] : 1;
    idx[d] = flat % n;
    flat /= n;
  }
  std::string s = name;
  if (shape.empty()) return s + "[" + std::to_string(flat) + "]";
  for (auto i : idx) s += "[" + std::to_string(i) + "]";
  return s;
}

/// hepgnn::check_gradient over n values, the worst entry renamed with its multi-index.
template <class Loss>
hepgnn::gradient_check_result check_values(double* values, const double* analytic, std::int64_t n, Loss& loss,
                                           const std::string& name, const std::vector<std::int64_t>& shape,
                                           double step) {
  auto r = hepgnn::check_gradient(values, analytic, n, loss, name, step);
  const auto open = r.worst.rfind('[');
  if (open != std::string::npos) r.worst = entry_name(name, shape, std::stoll(r.worst.substr(open + 1)));
  return r;
}

/// Parameters by visiting order: names, shapes and the gradients they hold now.
template <class Model>
std::vector<std::pair<std::string, std::vector<double>>> gradients_of(Model& model) {
  std::vector<std::pair<std::string, std::vector<double>>> g;
  model.for_each_param("", [&](const std::string& name, hepgnn::parameter<double> p) {
    g.emplace_back(name, std::vector<double>(p.grad, p.grad + p.size()));
  });
  return g;
}

/// Differences loss() in every selected parameter of `model` against `analytic` (gradients_of order).
template <class Model, class Loss>
void check_params(Model& model, Loss& loss, const std::vector<std::pair<std::string, std::vector<double>>>& analytic,
                  const check_options& o, gradient_report& r) {
  std::size_t k = 0;
  model.for_each_param("", [&](const std::string& name, hepgnn::parameter<double> p) {
    const auto& a = analytic.at(k++).second;
    if (o.params && !o.params(name)) return;
    REQUIRE(static_cast<std::int64_t>(a.size()) == p.size());
    r.params.merge(check_values(p.value, a.data(), p.size(), loss, name, p.shape, o.step));
    r.param_entries += p.size();
  });
}

template <class Loss>
void check_inputs(std::vector<std::pair<checked_input, hepgnn::matrix<double>>>& inputs, Loss& loss,
                  const check_options& o, gradient_report& r) {
  for (auto& [in, analytic] : inputs) {
    REQUIRE_MESSAGE((analytic.rows() == in.values->rows() && analytic.cols() == in.values->cols()),
                    "the gradient of ", in.name, " is ", analytic.rows(), " x ", analytic.cols(), ", the input ",
                    in.values->rows(), " x ", in.values->cols());
    r.inputs.merge(check_values(in.values->data(), analytic.data(), in.values->size(), loss, in.name,
                                {in.values->rows(), in.values->cols()}, o.step));
    r.input_entries += in.values->size();
  }
}

inline void assert_report(const gradient_report& r, const check_options& o, const char* who,
                          const std::source_location& where) {
  const auto at = [&] {
    std::ostringstream s;
    s << " (" << who << " called at " << where.file_name() << ":" << where.line() << ")";
    return s.str();
  };
  CHECK_MESSAGE(r.params.max_error < o.tol, "worst parameter entry ", r.params.worst, ": analytic ",
                r.params.analytic, ", numeric ", r.params.numeric, ", error ", r.params.max_error, " of ",
                r.param_entries, " entries", at());
  if (o.input)
    CHECK_MESSAGE(r.inputs.max_error < o.tol, "worst input entry ", r.inputs.worst, ": analytic ",
                  r.inputs.analytic, ", numeric ", r.inputs.numeric, ", error ", r.inputs.max_error, " of ",
                  r.input_entries, " entries", at());
}

/// The layer check on forward(l, x, y, c) and backward(l, x, y, dy, c, dx) (the context bound in by the caller).
template <class L, class Forward, class Backward, class Hook>
gradient_report layer_errors(L& layer, const hepgnn::matrix<double>& x0, const check_options& o, Hook& hook,
                             Forward forward, Backward backward) {
  static_assert(std::is_same_v<typename L::scalar, double>, "check_layer: double-precision layers only");
  constexpr bool copyable = std::is_copy_constructible_v<L>;
  constexpr bool restorable = copyable && std::is_copy_assignable_v<L>;
  using M = hepgnn::matrix<double>;
  M x = x0;

  // one training forward of `l`, then the after_forward hook on its cache
  auto run = [&](L& l, M& y, typename L::cache& c) {
    forward(l, x, y, c);
    hook(static_cast<const typename L::cache&>(c));
  };
  // R: dL/dy
  M r;
  {
    M y;
    typename L::cache c;
    if constexpr (copyable) {
      L copy = layer;
      run(copy, y, c);
    } else {
      run(layer, y, c);
    }
    if (o.dy) {
      REQUIRE_MESSAGE((o.dy->rows() == y.rows() && o.dy->cols() == y.cols()), "check_layer: dy is ", o.dy->rows(),
                      " x ", o.dy->cols(), " but the layer's output is ", y.rows(), " x ", y.cols());
      r = *o.dy;
    } else {
      hepgnn::rng gen(o.seed);
      r = M::NullaryExpr(y.rows(), y.cols(), [&] { return gen.uniform(-1, 1); });
    }
  }

  // analytic pass on the layer itself, then back to its state before it (its gradients kept)
  std::optional<L> before;
  if constexpr (restorable) before.emplace(layer);
  hepgnn::zero_grad(layer);
  M dx;
  {
    M y;
    typename L::cache c;
    run(layer, y, c);
    backward(layer, x, y, r, c, o.input ? &dx : nullptr);
  }
  const auto analytic = gradients_of(layer);
  if constexpr (restorable) {
    layer = *before;
    std::size_t k = 0;
    layer.for_each_param("", [&](const std::string&, hepgnn::parameter<double> p) {
      const auto& g = analytic.at(k++).second;
      std::copy(g.begin(), g.end(), p.grad);
    });
  }

  auto loss = [&] {
    M y;
    typename L::cache c;
    if constexpr (copyable) {
      L copy = layer;
      run(copy, y, c);
    } else {
      run(layer, y, c);
    }
    return (y.array() * r.array()).sum();
  };
  gradient_report rep;
  check_params(layer, loss, analytic, o, rep);
  if (o.input) {
    std::vector<std::pair<checked_input, M>> inputs;
    inputs.emplace_back(checked_input{"x", &x, &dx}, dx);
    check_inputs(inputs, loss, o, rep);
  }
  return rep;
}

}  // namespace detail

/// Finite differences of loss() against the gradients backward() leaves in `model` (zeroed before it) and in the
/// inputs' `analytic` matrices. loss() must recompute the loss from the current parameters and input values.
template <class Model, class Loss, class Backward>
gradient_report gradient_errors(Model& model, Loss&& loss, Backward&& backward, std::vector<checked_input> inputs = {},
                                const check_options& o = {}) {
  hepgnn::zero_grad(model);
  backward();
  const auto analytic = detail::gradients_of(model);
  std::vector<std::pair<checked_input, hepgnn::matrix<double>>> in;
  for (auto& i : inputs) in.emplace_back(i, *i.analytic);
  gradient_report r;
  detail::check_params(model, loss, analytic, o, r);
  if (o.input) detail::check_inputs(in, loss, o, r);
  return r;
}

/// gradient_errors, and CHECKs that parameters and inputs are within o.tol (the worst entry in the message).
template <class Model, class Loss, class Backward>
gradient_report check_gradients(Model& model, Loss&& loss, Backward&& backward, std::vector<checked_input> inputs = {},
                                const check_options& o = {},
                                std::source_location where = std::source_location::current()) {
  const auto r = gradient_errors(model, loss, backward, std::move(inputs), o);
  detail::assert_report(r, o, "check_gradients", where);
  return r;
}

/// Row-wise layer (nn/layer.hpp): the errors without assertion.
template <class L, class Hook = no_hook>
gradient_report layer_gradient_errors(L& layer, const hepgnn::matrix<double>& x, const check_options& o = {},
                                      Hook hook = {}) {
  return detail::layer_errors(
      layer, x, o, hook, [](L& l, const auto& xx, auto& y, auto& c) { l.forward(xx, y, c); },
      [](L& l, const auto& xx, const auto& y, const auto& dy, auto& c, auto* dx) { l.backward(xx, y, dy, c, dx); });
}

/// Graph layer (nn/graph_layer.hpp): the errors without assertion.
template <class L, class Hook = no_hook>
gradient_report layer_gradient_errors(L& layer, const hepgnn::graph& g, const hepgnn::matrix<double>& x,
                                      const check_options& o = {}, Hook hook = {}) {
  return detail::layer_errors(
      layer, x, o, hook, [&g](L& l, const auto& xx, auto& y, auto& c) { l.forward(xx, g, y, c); },
      [&g](L& l, const auto& xx, const auto& y, const auto& dy, auto& c, auto* dx) {
        l.backward(xx, g, y, dy, c, dx);
      });
}

/// Batch layer (nn/graph_layer.hpp; also models such as particlenet): the errors without assertion.
template <class L, class Hook = no_hook>
gradient_report layer_gradient_errors(L& layer, const hepgnn::batch& b, const hepgnn::matrix<double>& x,
                                      const check_options& o = {}, Hook hook = {}) {
  return detail::layer_errors(
      layer, x, o, hook, [&b](L& l, const auto& xx, auto& y, auto& c) { l.forward(xx, b, y, c); },
      [&b](L& l, const auto& xx, const auto& y, const auto& dy, auto& c, auto* dx) {
        l.backward(xx, b, y, dy, c, dx);
      });
}

/// Chain or block (nn/element.hpp) with a context (batch, graph, edge features): the errors without assertion.
template <class L, class Hook = no_hook>
gradient_report layer_gradient_errors(L& layer, const hepgnn::chain_context& ctx, const hepgnn::matrix<double>& x,
                                      const check_options& o = {}, Hook hook = {}) {
  return detail::layer_errors(
      layer, x, o, hook, [&ctx](L& l, const auto& xx, auto& y, auto& c) { l.forward(xx, ctx, y, c); },
      [&ctx](L& l, const auto& xx, const auto& y, const auto& dy, auto& c, auto* dx) {
        l.backward(xx, ctx, y, dy, c, dx);
      });
}

/// Row-wise layer: CHECKs its parameter and input gradients (see the top of this file).
template <class L, class Hook = no_hook>
gradient_report check_layer(L& layer, const hepgnn::matrix<double>& x, const check_options& o = {}, Hook hook = {},
                            std::source_location where = std::source_location::current()) {
  const auto r = layer_gradient_errors(layer, x, o, hook);
  detail::assert_report(r, o, "check_layer", where);
  return r;
}

/// Graph layer: CHECKs its parameter and input gradients.
template <class L, class Hook = no_hook>
gradient_report check_layer(L& layer, const hepgnn::graph& g, const hepgnn::matrix<double>& x,
                            const check_options& o = {}, Hook hook = {},
                            std::source_location where = std::source_location::current()) {
  const auto r = layer_gradient_errors(layer, g, x, o, hook);
  detail::assert_report(r, o, "check_layer", where);
  return r;
}

/// Chain or block with a context: CHECKs its parameter and input gradients.
template <class L, class Hook = no_hook>
gradient_report check_layer(L& layer, const hepgnn::chain_context& ctx, const hepgnn::matrix<double>& x,
                            const check_options& o = {}, Hook hook = {},
                            std::source_location where = std::source_location::current()) {
  const auto r = layer_gradient_errors(layer, ctx, x, o, hook);
  detail::assert_report(r, o, "check_layer", where);
  return r;
}

/// Batch layer: CHECKs its parameter and input gradients.
template <class L, class Hook = no_hook>
gradient_report check_layer(L& layer, const hepgnn::batch& b, const hepgnn::matrix<double>& x,
                            const check_options& o = {}, Hook hook = {},
                            std::source_location where = std::source_location::current()) {
  const auto r = layer_gradient_errors(layer, b, x, o, hook);
  detail::assert_report(r, o, "check_layer", where);
  return r;
}

}  // namespace hepgnn_test
