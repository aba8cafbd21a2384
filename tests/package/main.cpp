// Built against the installed package in CI: includes the umbrella header, trains one step, checks the loss falls
// and that the package config's version is the headers' version.
#include <hepgnn/hepgnn.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(hepgnn::version, HEPGNN_PACKAGE_VERSION) != 0) {
    std::printf("hepgnn consumer: headers say %s, package config says %s\n", hepgnn::version, HEPGNN_PACKAGE_VERSION);
    return 1;
  }
  using T = float;
  hepgnn::rng g(1);
  hepgnn::sequential<T, hepgnn::dense<T, 3, 8>, hepgnn::relu<T>, hepgnn::dense<T, 8, 1>> model{
      hepgnn::dense<T, 3, 8>{g}, hepgnn::relu<T>{}, hepgnn::dense<T, 8, 1>{g}};
  hepgnn::matrix<T> x = hepgnn::matrix<T>::Random(16, 3), y = x.rowwise().sum(), out, grad;
  decltype(model)::cache c;
  hepgnn::adam<T> opt({.lr = 1e-2});
  T first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    hepgnn::zero_grad(model);
    model.forward(x, out, c);
    last = hepgnn::mse(out, y, {}, &grad);
    if (step == 0) first = last;
    model.backward(x, out, grad, c, nullptr);
    opt.step(model);
  }
  std::printf("hepgnn consumer: mse %.4f -> %.4f\n", first, last);
  return last < first ? 0 : 1;
}
