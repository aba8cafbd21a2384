#pragma once
/// @file hepgnn.hpp
/// @brief Umbrella header: all of hepgnn. Optional parts compile to nothing without their dependency
/// (gzip reading needs HEPGNN_HAVE_ZLIB and zlib, FastJet clustering HEPGNN_HAVE_FASTJET and FastJet).
/// Including single headers instead keeps compile times down; this one is for convenience.

#include "hepgnn/version.hpp"

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/product.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

#include "hepgnn/simd/distance.hpp"
#include "hepgnn/simd/top_k.hpp"

#include "hepgnn/graph/connected_components.hpp"
#include "hepgnn/graph/fully_connected.hpp"
#include "hepgnn/graph/grid.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/graph/lsh.hpp"
#include "hepgnn/graph/metric.hpp"
#include "hepgnn/graph/radius.hpp"

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/aggregate.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/nn/dynamic_edge_conv.hpp"
#include "hepgnn/nn/edge_conv.hpp"
#include "hepgnn/nn/graph_layer.hpp"
#include "hepgnn/nn/gravnet_conv.hpp"
#include "hepgnn/nn/interaction_network.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"
#include "hepgnn/nn/mpgan_message_passing.hpp"
#include "hepgnn/nn/pooling.hpp"
#include "hepgnn/nn/sequential.hpp"

#include "hepgnn/loss/chamfer.hpp"
#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/emd.hpp"
#include "hepgnn/loss/emd_cost.hpp"
#include "hepgnn/loss/emd_simplex.hpp"
#include "hepgnn/loss/regression.hpp"
#include "hepgnn/loss/sinkhorn.hpp"
#include "hepgnn/loss/sliced_wasserstein.hpp"

#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"
#include "hepgnn/optim/optimizer_state.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/optim/sgd.hpp"

#include "hepgnn/train/gradient_check.hpp"
#include "hepgnn/train/progress.hpp"
#include "hepgnn/train/trainer.hpp"

#include "hepgnn/io/fastjet_cluster.hpp"
#include "hepgnn/io/fastjet_events.hpp"
#include "hepgnn/io/gzip.hpp"
#include "hepgnn/io/jetnet_npy.hpp"
#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/safetensors.hpp"
#include "hepgnn/io/trackml.hpp"

#include "hepgnn/data/jet_array.hpp"
#include "hepgnn/data/jet_substructure.hpp"
#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/data/toy_pf_detector.hpp"
#include "hepgnn/data/toy_tracker.hpp"

#include "hepgnn/metrics/jets.hpp"
#include "hepgnn/metrics/particle_flow.hpp"
#include "hepgnn/metrics/roc.hpp"
#include "hepgnn/metrics/tracking.hpp"

#include "hepgnn/models/autoencoder.hpp"
#include "hepgnn/models/particle_flow.hpp"
#include "hepgnn/models/particlenet.hpp"
#include "hepgnn/models/pf_baseline.hpp"
#include "hepgnn/models/tracking.hpp"
