// expect: hepgnn::sequential: width mismatch
// A dense 3 -> 4 followed by a dense 5 -> 2: must not compile, and the error names both layers.
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/sequential.hpp"

using namespace hepgnn;
using bad = sequential<float, dense<float, 3, 4>, relu<float>, dense<float, 5, 2>>;
constexpr int w = bad::out_width;
int main() { return w; }
