#pragma once
/// @file knn_builder.hpp
/// @brief The kNN graph as a chain element (knn_builder) and as a call on a column block of node features
/// (build_knn_graph): graph/knn.hpp's search inside each graph of a batch, edges j -> i from the k nearest j of i.

#include <string>

#include "hepgnn/core/batch.hpp"
#include "hepgnn/core/graph.hpp"
#include "hepgnn/graph/knn.hpp"
#include "hepgnn/graph/metric.hpp"

namespace hepgnn {

/// @brief Writes into `out` the kNN graph of the rows of x (coordinates: columns [col0, col0 + ncols)) inside
/// each graph of `b`: edges j -> i for the k nearest j of i, nearest first, ranked by (squared metric distance,
/// index): graph/knn.hpp's knn_graph_into(). include_self counts i itself (PyG DynamicEdgeConv) or not
/// (knn_graph loop=False). Graphs with too few nodes give every node all candidates. Reuses the storage of `out`
/// and `ws`: no allocation once sizes repeat.
template <class Metric = metric::euclidean, class T>
void build_knn_graph(const matrix<T>& x, const batch& b, int k, bool include_self, graph& out, knn_workspace<T>& ws,
                     Eigen::Index col0 = 0, Eigen::Index ncols = -1) {
  if (ncols < 0) ncols = x.cols() - col0;
  HEPGNN_CHECK(k > 0, "build_knn_graph: k must be positive, got ", k);
  HEPGNN_CHECK(col0 >= 0 && ncols > 0 && col0 + ncols <= x.cols(), "build_knn_graph: coordinate columns [", col0, ", ",
               col0 + ncols, ") must lie inside the ", x.cols(), " columns of x");
  b.validate_offsets("build_knn_graph");
  HEPGNN_CHECK(b.num_nodes() == x.rows(), "build_knn_graph: the batch must cover the ", x.rows(), " rows of x, it covers ",
               b.num_nodes());
  knn_options opt;
  opt.include_self = include_self;
  knn_graph_into<Metric>(x.data() + col0, static_cast<index_t>(x.rows()), static_cast<int>(ncols), x.cols(), k, b,
                         opt, out, ws);
}

/// @brief Chain element: builds the kNN graph of the current node features (or of a block of their columns)
/// within each graph of the batch; the elements after it read that graph. Features pass through unchanged.
///
/// @tparam K       neighbours per node (node itself excluded unless include_self), or `dynamic` to give it at
///                 construction
/// @tparam Metric  metric::euclidean or metric::delta_r (two columns: eta, phi)
/// @tparam Col0, NCols  the coordinate columns [Col0, Col0 + NCols); NCols = dynamic: all columns from Col0
/// Like PyG's knn_graph(loop=False) followed by the layer; the graph is piecewise constant in x, so no gradient
/// flows through it.
template <int K = dynamic, class Metric = metric::euclidean, int Col0 = 0, int NCols = dynamic>
class knn_builder {
  static_assert(K == dynamic || K > 0, "hepgnn::knn_builder: K must be positive (or dynamic)");
  static_assert(Col0 >= 0 && (NCols == dynamic || NCols > 0), "hepgnn::knn_builder: bad coordinate columns");
  static_assert(Metric::dims == dynamic || NCols == dynamic || NCols == Metric::dims,
                "hepgnn::knn_builder: the metric fixes the number of coordinate columns");

 public:
  static constexpr bool builds_graph = true;
  /// Columns the features must have at least (checked at compile time against the chain's width).
  static constexpr int min_width = Col0 + (NCols == dynamic ? (Metric::dims == dynamic ? 1 : Metric::dims) : NCols);
  template <class T>
  using workspace = knn_workspace<T>;

  /// @brief k neighbours on columns [col0, col0 + ncols) (ncols < 0: to the last column).
  explicit knn_builder(int k = K, int col0 = Col0, int ncols = NCols == dynamic ? Metric::dims : NCols,
                       bool include_self = false)
      : k_(k), col0_(col0), ncols_(ncols), include_self_(include_self) {
    HEPGNN_CHECK(k > 0, "knn_builder: k must be positive (give it when K is dynamic), got ", k);
    HEPGNN_CHECK(K == dynamic || k == K, "knn_builder: runtime k = ", k, " contradicts the compile-time K = ", K);
    HEPGNN_CHECK(col0 >= 0 && ncols != 0, "knn_builder: coordinate columns must start at >= 0 and be non-empty, got [",
                 col0, ", +", ncols, ")");
  }

  int k() const { return k_; }

  template <class T>
  void build(const matrix<T>& x, const batch& b, graph& g, knn_workspace<T>& ws) const {
    build_knn_graph<Metric>(x, b, k_, include_self_, g, ws, col0_, ncols_);
  }

 private:
  int k_, col0_, ncols_;
  bool include_self_;
};

}  // namespace hepgnn
