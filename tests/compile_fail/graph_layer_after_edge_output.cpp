// expect: reads the graph or the batch, but the rows before it are no longer nodes
// An EdgeConv after an interaction network: its output has one row per edge, not per node.
#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_sequential.hpp"
#include "hepgnn/nn/interaction_network.hpp"

using namespace hepgnn;
using conv = edge_conv<float, sequential<float, dense<float, 2, 3>, relu<float>>>;
int main() {
  graph_sequential<float, 3, interaction_network<float>, conv> model;
  (void)model;
}
