#pragma once
/// @file hepgnn.hpp
/// @brief Umbrella header: everything in hepgnn that needs no optional dependency.
/// Including single headers instead keeps compile times down; this one is for convenience.

#include "hepgnn/version.hpp"

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/error.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/core/parameter.hpp"
#include "hepgnn/core/product.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/core/tensor.hpp"

#include "hepgnn/nn/activation.hpp"
#include "hepgnn/nn/batch_norm.hpp"
#include "hepgnn/nn/dense.hpp"
#include "hepgnn/nn/dropout.hpp"
#include "hepgnn/nn/layer.hpp"
#include "hepgnn/nn/layer_norm.hpp"
#include "hepgnn/nn/mlp.hpp"
#include "hepgnn/nn/sequential.hpp"

#include "hepgnn/loss/classification.hpp"
#include "hepgnn/loss/regression.hpp"

#include "hepgnn/optim/adam.hpp"
#include "hepgnn/optim/clip.hpp"
#include "hepgnn/optim/schedule.hpp"
#include "hepgnn/optim/sgd.hpp"

#include "hepgnn/train/gradient_check.hpp"
#include "hepgnn/train/progress.hpp"
#include "hepgnn/train/trainer.hpp"

#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/safetensors.hpp"
