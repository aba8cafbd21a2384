#pragma once
/// @file dynamic_edge_conv.hpp
/// @brief hepgnn::dynamic_edge_conv: EdgeConv on the kNN graph rebuilt in the layer's input feature space, per
/// graph of a batch (PyTorch Geometric DynamicEdgeConv), and the allocation-free kNN builder it uses.

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/core/batch.hpp"
#include "hepgnn/nn/edge_conv.hpp"

namespace hepgnn {

/// @brief Reusable buffers of build_knn_graph (one candidate list per thread), so repeated calls with the
/// same sizes do not allocate.
template <class T>
struct knn_workspace {
  std::vector<std::vector<std::pair<T, index_t>>> candidates;
};

/// @brief Writes into `out` the kNN graph of the rows of x (coordinates: columns [col0, col0 + ncols)) inside
/// each graph of `b`: edges j -> i for the k nearest j of i, nearest first, ranked by (squared Euclidean
/// distance, index) as graph/knn.hpp. include_self counts i itself (PyG DynamicEdgeConv) or not (knn_graph
/// loop=False). Graphs with too few nodes give every node all candidates. Brute force per graph (the layers
/// using it work on jets and similar small graphs); OpenMP over nodes, result independent of the thread count.
/// Reuses the storage of `out` and `ws`: no allocation once sizes repeat.
template <class T>
void build_knn_graph(const matrix<T>& x, const batch& b, int k, bool include_self, graph& out, knn_workspace<T>& ws,
                     Eigen::Index col0 = 0, Eigen::Index ncols = -1) {
  if (ncols < 0) ncols = x.cols() - col0;
  HEPGNN_CHECK(k > 0, "build_knn_graph: k must be positive, got ", k);
  HEPGNN_CHECK(col0 >= 0 && ncols > 0 && col0 + ncols <= x.cols(), "build_knn_graph: coordinate columns [", col0, ", ",
               col0 + ncols, ") must lie inside the ", x.cols(), " columns of x");
  HEPGNN_CHECK(!b.node_offsets.empty() && b.node_offsets.front() == 0 && b.num_nodes() == x.rows(),
               "build_knn_graph: the batch must cover the ", x.rows(), " rows of x, it covers ", b.num_nodes());
  for (index_t g = 0; g < b.num_graphs(); ++g)
    HEPGNN_CHECK(b.node_offsets[g] <= b.node_offsets[g + 1], "build_knn_graph: batch node_offsets must be non-decreasing");
  const index_t n = static_cast<index_t>(x.rows());
  out.num_nodes = n;
  out.offsets.resize(static_cast<std::size_t>(n) + 1);
  out.offsets[0] = 0;
  for (index_t g = 0; g < b.num_graphs(); ++g) {
    const index_t size = b.size(g);
    const index_t kk = std::min<index_t>(k, include_self ? size : std::max<index_t>(size - 1, 0));
    for (index_t i = b.begin(g); i < b.end(g); ++i) out.offsets[i + 1] = out.offsets[i] + kk;
  }
  out.sources.resize(static_cast<std::size_t>(out.offsets[n]));
  int nthreads = 1;
#ifdef _OPENMP
  nthreads = omp_get_max_threads();
#endif
  if (ws.candidates.size() < static_cast<std::size_t>(nthreads)) ws.candidates.resize(nthreads);
  const long d = ncols;
  auto body = [&](index_t g, std::vector<std::pair<T, index_t>>& top) {
    const index_t s = b.begin(g), e = b.end(g);
    for (index_t i = s; i < e; ++i) {
      const index_t kk = out.offsets[i + 1] - out.offsets[i];
      if (kk == 0) continue;
      // Sorted top-kk by (distance, index); j increases, so a tie never displaces an earlier (lower) index.
      top.clear();
      const T* xi = x.data() + long(i) * x.cols() + col0;
      for (index_t j = s; j < e; ++j) {
        if (j == i && !include_self) continue;
        const T* xj = x.data() + long(j) * x.cols() + col0;
        // Eigen's reduction is vectorised (a plain loop is not: strict float order).
        const T d2 = (Eigen::Map<const row_vector<T>>(xi, d) - Eigen::Map<const row_vector<T>>(xj, d)).squaredNorm();
        if (static_cast<index_t>(top.size()) == kk) {
          if (!(d2 < top.back().first)) continue;
          top.pop_back();
        }
        auto pos = top.end();
        while (pos != top.begin() && d2 < (pos - 1)->first) --pos;
        top.insert(pos, {d2, j});
      }
      for (index_t r = 0; r < kk; ++r) out.sources[out.offsets[i] + r] = top[r].second;
    }
  };
  if (long(n) * 32 * d >= detail::parallel_min_work && b.num_graphs() > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16)
#endif
    for (index_t g = 0; g < b.num_graphs(); ++g) {
      int me = 0;
#ifdef _OPENMP
      me = omp_get_thread_num();
#endif
      body(g, ws.candidates[me]);
    }
  } else {
    for (index_t g = 0; g < b.num_graphs(); ++g) body(g, ws.candidates[0]);
  }
}

/// @brief DynamicEdgeConv: edge_conv on the k-nearest-neighbour graph of x itself (rebuilt every call, per graph
/// of the batch; PyG counts the node among its own k neighbours, include_self = true).
///
/// The graph is piecewise constant in x, so the gradient w.r.t. x is edge_conv's with the graph held fixed
/// (as in PyG). Parameters "nn.<name>" as PyG's DynamicEdgeConv.nn.
template <class T, class NN>
class dynamic_edge_conv {
 public:
  using conv_type = edge_conv<T, NN>;
  using scalar = T;
  static constexpr int in_width = conv_type::in_width;
  static constexpr int out_width = conv_type::out_width;
  struct cache {
    graph g;  ///< the kNN graph of the last call
    knn_workspace<T> knn;
    typename conv_type::cache conv;
  };

  /// @brief `nn` maps 2F -> F'; `k` neighbours (self included unless include_self is false); PyG default max.
  dynamic_edge_conv(NN nn, int k, aggregation aggr = aggregation::max, bool include_self = true)
      : conv_(std::move(nn), aggr), k_(k), include_self_(include_self) {
    HEPGNN_CHECK(k > 0, "dynamic_edge_conv: k must be positive, got ", k);
  }

  conv_type& conv() { return conv_; }
  NN& nn() { return conv_.nn(); }
  int k() const { return k_; }

  void forward(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) {
    build(x, b, c);
    conv_.forward(x, c.g, y, c.conv);
  }
  void infer(const matrix<T>& x, const batch& b, matrix<T>& y, cache& c) const {
    build(x, b, c);
    conv_.infer(x, c.g, y, c.conv);
  }
  void backward(const matrix<T>& x, const batch& b, const matrix<T>& y, const matrix<T>& dy, cache& c,
                matrix<T>* dx) {
    HEPGNN_CHECK(b.num_nodes() == x.rows() && c.g.num_nodes == x.rows(), "dynamic_edge_conv::backward: x has ",
                 x.rows(), " rows, the batch covers ", b.num_nodes(), " nodes and the cached graph has ", c.g.num_nodes,
                 " (call forward with this batch first)");
    conv_.backward(x, c.g, y, dy, c.conv, dx);
  }
  template <class F>
  void for_each_param(const std::string& prefix, F&& f) {
    conv_.for_each_param(prefix, f);
  }
  template <class F>
  void for_each_buffer(const std::string& prefix, F&& f) requires has_buffers<NN> {
    conv_.for_each_buffer(prefix, f);
  }

 private:
  void build(const matrix<T>& x, const batch& b, cache& c) const {
    HEPGNN_CHECK(b.num_nodes() == x.rows(), "dynamic_edge_conv: the batch covers ", b.num_nodes(),
                 " nodes but x has ", x.rows(), " rows");
    check_finite(x, "dynamic_edge_conv: input x");
    build_knn_graph(x, b, k_, include_self_, c.g, c.knn);
  }

  conv_type conv_;
  int k_;
  bool include_self_;
};

}  // namespace hepgnn
