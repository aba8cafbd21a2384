// Workload mlp_train: MLP 64-128-128-1 (ReLU), forward + backward + Adam step on 32768 x 64 inputs.
// Inputs x[i][c] = s(701, 64 i + c), targets y[i] = u(702, i), loss = MSE; Linear layers seeded 7100, 7102, 7104
// with the WORKLOADS.md rule. Same definition in mlp.py. hepgnn::mlp fuses each ReLU into its Linear's product
// (forward epilogue, and a mask on the next layer's input gradient); `sequential<dense, relu, ...>` computes the
// same numbers with separate ReLU passes (HEPGNN_MLP_SEQUENTIAL=1 runs that form instead).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hepgnn/loss/regression.hpp"
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"
#include "hepgnn/optim/adam.hpp"
#include "rb.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif

using namespace hepgnn;
using T = float;
using stack = sequential<T, dense<T, 64, 128>, relu<T>, dense<T, 128, 128>, relu<T>, dense<T, 128, 1>>;

template <class Net>
void run(const std::string& workload, Net& model) {
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const long n = 32768;
  matrix<T> x(n, 64), y(n, 1);
  for (long i = 0; i < n * 64; ++i) x.data()[i] = rb::upm1(701, static_cast<std::uint64_t>(i));
  for (long i = 0; i < n; ++i) y(i, 0) = rb::u01(702, static_cast<std::uint64_t>(i));
  adam<T> opt({.lr = 1e-3});
  typename Net::cache c;
  matrix<T> out, grad;
  T loss = 0;
  const double s = rb::median_seconds([&] {
    zero_grad(model);
    model.forward(x, out, c);
    loss = mse(out, y, {}, &grad);
    model.backward(x, out, grad, c, nullptr);
    opt.step(model);
  });
  rb::report(workload, "hepgnn", threads, s);
  std::fprintf(stderr, "mlp_train hepgnn: last loss %.6f\n", static_cast<double>(loss));
}

int main(int argc, char** argv) {
  const std::string workload = argc > 1 ? argv[1] : "mlp_train";
  rng g(1);
  const char* form = std::getenv("HEPGNN_MLP_SEQUENTIAL");
  if (form && std::string(form) == "1") {
    stack model{dense<T, 64, 128>{g}, relu<T>{}, dense<T, 128, 128>{g}, relu<T>{}, dense<T, 128, 1>{g}};
    rb::init_linear(model.get<0>(), 7100);
    rb::init_linear(model.get<2>(), 7102);
    rb::init_linear(model.get<4>(), 7104);
    run(workload, model);
  } else {
    mlp<T> model(g, {64, 128, 128, 1});
    rb::init_linear(model.linear(0), 7100);
    rb::init_linear(model.linear(1), 7102);
    rb::init_linear(model.linear(2), 7104);
    run(workload, model);
  }
}
