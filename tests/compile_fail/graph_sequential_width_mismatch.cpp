// expect: hepgnn::graph_sequential: width mismatch
// A tagger whose second EdgeConv expects 2 x 16 inputs after a first one that writes 8 features.
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"

using namespace hepgnn;
using conv_a = edge_conv<float, sequential<float, dense<float, 6, 8>, relu<float>>>;
using conv_b = edge_conv<float, sequential<float, dense<float, 32, 8>, relu<float>>>;
int main() {
  graph_sequential<float, 3, knn_builder<4>, conv_a, knn_builder<4>, conv_b, global_pool_layer<float>> model;
  (void)model;
}
