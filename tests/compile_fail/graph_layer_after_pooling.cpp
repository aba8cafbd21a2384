// expect: reads the graph or the batch, but the rows before it are no longer nodes
// An EdgeConv after global pooling: the rows are jets by then, not particles.
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/knn_builder.hpp"
#include "hepgnn/nn/pooling.hpp"

using namespace hepgnn;
using conv = edge_conv<float, sequential<float, dense<float, 6, 3>, relu<float>>>;
int main() {
  graph_sequential<float, 3, knn_builder<4>, conv, global_pool_layer<float>, conv> model;
  (void)model;
}
