// expect: hepgnn::residual: the wrapped layer must keep the width
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/sequential.hpp"

using namespace hepgnn;
residual<dense<float, 3, 4>>* p = nullptr;
int main() { return residual<dense<float, 3, 4>>::out_width; }
