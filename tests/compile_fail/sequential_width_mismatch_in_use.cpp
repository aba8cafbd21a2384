// expect: hepgnn::sequential: width mismatch
// The README's pattern, used as a user does (a model object, no access to out_width): dense 5 -> 64, ReLU, then a
// dense that takes 32: must not compile.
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/sequential.hpp"

using namespace hepgnn;
int main() {
  rng g(1);
  using net = sequential<float, dense<float, 5, 64>, relu<float>, dense<float, 32, 1>>;
  net model{dense<float, 5, 64>{g}, relu<float>{}, dense<float, 32, 1>{g}};
  net::cache c;
  matrix<float> x(2, 5), y;
  model.forward(x, y, c);
}
