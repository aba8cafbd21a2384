#pragma once
/// @file tracking.hpp
/// @brief An Exa.TrkX-style tracking pipeline, each stage usable alone:
///  1. embedding: an MLP maps hit features (r, cos phi, sin phi, z, eta, phi) into a space where hits of one
///     particle are close; trained with a hinge loss on pairs (truth-graph neighbours pulled within the margin,
///     random and hard negatives pushed beyond it);
///  2. graph: radius graph in the embedding (radius, max neighbours), kept as directed edges from the hit nearer
///     the origin to the farther one;
///  3. filter (optional): an MLP on both hits' features and the edge geometry drops most fake edges cheaply;
///  4. GNN: an interaction network with the hit features as node inputs and the edge geometry as edge inputs
///     classifies the remaining edges (weighted BCE or focal loss); its logit is added to the filter logit of the
///     edge, so it learns a correction to the filter's decision from each edge's neighbourhood;
///  5. track building: connected components over edges above a score cut, or a walkthrough that follows the
///     best-scored edge outward from each track start (over an edge above a lower extension cut where none passes
///     the cut); then a track selection (hits, pT of a fitted circle).
/// All stages' weights go to one safetensors file, with the configuration in its metadata.
/// This header includes the stages' headers in models/tracking/; the generic algorithms they use live in
/// core/radix_sort.hpp, graph/orientation.hpp, graph/edge_selection.hpp, graph/label_groups.hpp,
/// graph/connected_components.hpp, loss/embedding.hpp and simd/segment_geometry.hpp.

#include "hepgnn/models/tracking/config.hpp"
#include "hepgnn/models/tracking/features.hpp"
#include "hepgnn/models/tracking/helix.hpp"
#include "hepgnn/models/tracking/mending.hpp"
#include "hepgnn/models/tracking/pipeline.hpp"
#include "hepgnn/models/tracking/track_building.hpp"
#include "hepgnn/models/tracking/training.hpp"
