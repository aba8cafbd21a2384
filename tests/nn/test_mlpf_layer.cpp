// mlpf_graph_layer: PyTorch reference (particleflow CombinedGraphLayer equations, events within one LSH chunk),
// finite differences with several chunks per event, original order restored, gradients bit-identical at 1, 2 and 3
// threads, bad input.
#include "support/doctest.hpp"

#include "support/check_layer.hpp"
#include "support/gnn_layers_reference.hpp"
#include "hepgnn/nn/mlpf_graph_layer.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hepgnn_test_mlpf_layer {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

static_assert(batch_layer<mlpf_graph_layer<float>> && batch_layer<mlpf_graph_layer<double, 8>>,
              "mlpf_graph_layer must satisfy the batch_layer concept");

namespace {
template <class T>
mlpf_graph_layer<T> make(const gnn_ref::tensors& ref, rng& gen) {
  typename mlpf_graph_layer<T>::options o;
  const auto& opt = ref.at("options");
  o.inout_dim = static_cast<int>(ref.at("x").cols());
  o.distance_dim = static_cast<int>(opt(0, 0));
  o.ffn_dist_hidden_dim = static_cast<int>(opt(0, 1));
  o.ffn_dist_num_layers = static_cast<int>(opt(0, 2));
  o.num_node_messages = static_cast<int>(opt(0, 3));
  o.bin_size = static_cast<index_t>(opt(0, 4));
  return mlpf_graph_layer<T>(gen, o);
}

/// Sets the thread count for its lifetime, whatever OMP_NUM_THREADS says (no-op without OpenMP).
struct mlpf_threads {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  explicit mlpf_threads(int n) { omp_set_num_threads(n); }
  ~mlpf_threads() { omp_set_num_threads(saved); }
#else
  explicit mlpf_threads(int) {}
#endif
};
}  // namespace

TEST_CASE("mlpf_graph_layer matches the PyTorch reference (double: outputs and gradients)") {
  const auto ref = gnn_ref::load("mlpf");
  rng gen(1);
  auto layer = make<double>(ref, gen);
  gnn_ref::set_params(layer, ref);
  const batch b = batch::from_sizes(gnn_ref::ints(ref.at("sizes")));
  gnn_ref::check_against_reference(layer, b, ref);
  mlpf_graph_layer<double>::cache c;
  matrix<double> y;
  layer.infer(ref.at("x"), b, y, c);
  CHECK(c.bins.num_chunks() == b.num_graphs());  // one chunk per event: the binning cannot change the result
}

TEST_CASE("mlpf_graph_layer in float matches the reference to 1e-5") {
  const auto ref = gnn_ref::load("mlpf");
  rng gen(1);
  auto layer = make<float>(ref, gen);
  gnn_ref::set_params(layer, ref);
  gnn_ref::check_float_against_reference(layer, batch::from_sizes(gnn_ref::ints(ref.at("sizes"))), ref);
}

TEST_CASE("mlpf_graph_layer gradients match finite differences with several LSH chunks per event") {
  rng gen(41);
  mlpf_graph_layer<double>::options o;
  o.inout_dim = 4;
  o.distance_dim = 3;
  o.ffn_dist_hidden_dim = 5;
  o.num_node_messages = 2;
  o.bin_size = 3;
  o.lsh_seed = 7;
  mlpf_graph_layer<double> layer(gen, o);
  const batch b = batch::from_sizes({7, 5});
  matrix<double> x = gnn_ref::random_matrix(gen, 12, 4);
  const matrix<double> w = gnn_ref::random_matrix(gen, 12, 4);
  mlpf_graph_layer<double>::cache c;
  matrix<double> y;
  layer.infer(x, b, y, c);
  CHECK(c.bins.num_chunks() == 5);  // 3 + 2 chunks
  const auto perm = c.bins.permutation;
  // the steps must not move a node to another bin
  hepgnn_test::check_layer(layer, b, x, {.dy = &w},
                           [&](const mlpf_graph_layer<double>::cache& cc) { REQUIRE(cc.bins.permutation == perm); });
  // gradients reach the distance network through the kernel
  double g = 0;
  layer.for_each_param("", [&](const std::string& name, parameter<double> p) {
    if (name == "ffn_dist.0.weight")
      for (long i = 0; i < p.size(); ++i) g += std::abs(p.grad[i]);
  });
  CHECK(g > 1e-8);
}

TEST_CASE("mlpf_graph_layer with hash_dims: bins from the coordinate columns, local kernel, exact gradients") {
  rng gen(43);
  mlpf_graph_layer<double>::options o;
  o.inout_dim = 4;
  o.distance_dim = 3;
  o.ffn_dist_hidden_dim = 5;
  o.bin_size = 3;
  o.lsh_seed = 9;
  o.hash_dims = 2;
  o.hash_kernel_width = 0.8;
  mlpf_graph_layer<double> layer(gen, o);
  const batch b = batch::from_sizes({7, 5});
  matrix<double> x = gnn_ref::random_matrix(gen, 12, 4), y;
  const matrix<double> w = gnn_ref::random_matrix(gen, 12, 4);
  mlpf_graph_layer<double>::cache c;
  layer.infer(x, b, y, c);
  const auto perm = c.bins.permutation;
  for (std::size_t p = 1; p < perm.size(); ++p) {  // inside a bin (and graph), nodes are ordered along column 0
    const index_t i = perm[p - 1], j = perm[p];
    if (c.bins.bin[i] == c.bins.bin[j] && (i < 7) == (j < 7)) CHECK(x(i, 0) <= x(j, 0));
  }
  // the binning ignores the other columns
  matrix<double> x2 = x;
  x2.rightCols(2) = gnn_ref::random_matrix(gen, 12, 2);
  layer.infer(x2, b, y, c);
  CHECK(c.bins.permutation == perm);
  // a very wide locality factor is 1: same output as the plain kernel
  auto op = o;
  op.hash_kernel_width = 0;
  auto ow = o;
  ow.hash_kernel_width = 1e9;
  rng g2(43);
  mlpf_graph_layer<double> ref_plain(g2, op);
  rng g3(43);
  mlpf_graph_layer<double> ref_wide(g3, ow);
  matrix<double> yp, yw;
  ref_plain.infer(x, b, yp, c);
  ref_wide.infer(x, b, yw, c);
  CHECK(gnn_ref::rel_diff(yw, yp) < 1e-12);
  // and a finite width changes it
  layer.infer(x, b, y, c);
  CHECK(gnn_ref::rel_diff(y, yp) > 1e-3);
  // finite differences include the locality factor's dependence on the coordinates
  hepgnn_test::check_layer(layer, b, x, {.dy = &w},
                           [&](const mlpf_graph_layer<double>::cache& cc) { REQUIRE(cc.bins.permutation == perm); });
}

TEST_CASE("mlpf_graph_layer returns rows in the original order") {
  rng gen(5);
  mlpf_graph_layer<double>::options o;
  o.inout_dim = 4;
  o.distance_dim = 3;
  o.ffn_dist_hidden_dim = 6;
  o.bin_size = 16;
  mlpf_graph_layer<double> layer(gen, o);
  matrix<double> x = gnn_ref::random_matrix(gen, 9, 4), y, yp;
  mlpf_graph_layer<double>::cache c;
  layer.infer(x, batch::single(9), y, c);
  // reversing the input rows reverses the output rows (one chunk: the result is permutation-equivariant)
  const matrix<double> xr = x.colwise().reverse();
  layer.infer(xr, batch::single(9), yp, c);
  const matrix<double> ypr = yp.colwise().reverse();
  CHECK(gnn_ref::rel_diff(ypr, y) < 1e-12);
}

TEST_CASE("mlpf_graph_layer: output, input and parameter gradients are bit-identical at 1, 2 and 3 threads") {
  // Large enough that every parallel loop and the split weight-gradient products run on several threads
  // (3000 nodes x 32 features; Eigen's threaded (N x 32)^T (N x 32) product rounded by the thread count).
  rng gen(77);
  mlpf_graph_layer<float>::options o;
  o.inout_dim = 32;
  o.distance_dim = 16;
  o.ffn_dist_hidden_dim = 32;
  o.bin_size = 64;
  o.hash_dims = 2;
  o.hash_kernel_width = 0.5;
  o.lsh_seed = 3;
  const mlpf_graph_layer<float> proto(gen, o);
  const batch b = batch::from_sizes({1700, 1300});
  const matrix<float> x = gnn_ref::random_matrix(gen, 3000, 32).cast<float>();
  const matrix<float> dy = gnn_ref::random_matrix(gen, 3000, 32).cast<float>();
  auto run = [&](int threads) {
    const mlpf_threads set(threads);
    mlpf_graph_layer<float> layer = proto;
    mlpf_graph_layer<float>::cache c;
    matrix<float> y, dx;
    layer.forward(x, b, y, c);
    layer.backward(x, b, y, dy, c, &dx);
    std::vector<std::pair<std::string, matrix<float>>> out{{"y", y}, {"dx", dx}};
    layer.for_each_param("", [&](const std::string& name, parameter<float> p) {
      out.emplace_back(name, Eigen::Map<const matrix<float>>(p.grad, 1, p.size()));
    });
    return out;
  };
  const auto one = run(1);
  REQUIRE(one.size() == 2 + 6 + 8);  // y, dx, ffn_dist 3 x {weight, bias}, 2 GHConv x {W_t, b_t, W_h, theta}
  for (int threads : {2, 3}) {
    const auto many = run(threads);
    REQUIRE(many.size() == one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO(threads, " threads: ", one[i].first);
      CHECK(many[i].second == one[i].second);
    }
  }
}

TEST_CASE("mlpf_graph_layer rejects bad input with a clear message") {
  rng gen(2);
  mlpf_graph_layer<double>::options o;
  o.inout_dim = 4;
  o.distance_dim = 2;
  o.ffn_dist_hidden_dim = 3;
  mlpf_graph_layer<double> layer(gen, o);
  mlpf_graph_layer<double>::cache c;
  matrix<double> y;
  const matrix<double> x_cols = matrix<double>::Ones(5, 3);
  CHECK_THROWS_WITH_AS(layer.forward(x_cols, batch::single(5), y, c),
                       doctest::Contains("mlpf_graph_layer::forward: expected 4 columns"), hepgnn::error);
  const matrix<double> x = matrix<double>::Ones(5, 4);
  CHECK_THROWS_WITH_AS(layer.infer(x, batch::single(4), y, c), doctest::Contains("the batch covers 4 nodes but x has 5"),
                       hepgnn::error);
  matrix<double> x_inf = x;
  x_inf(1, 2) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(layer.forward(x_inf, batch::single(5), y, c), doctest::Contains("non-finite value"),
                       hepgnn::error);
  const matrix<double> dy = matrix<double>::Ones(5, 4);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(5), y, dy, c, nullptr), doctest::Contains("call forward"),
                       hepgnn::error);
  layer.forward(x, batch::single(5), y, c);
  const matrix<double> dy_bad = matrix<double>::Ones(5, 2);
  CHECK_THROWS_WITH_AS(layer.backward(x, batch::single(5), y, dy_bad, c, nullptr),
                       doctest::Contains("output gradient dy"), hepgnn::error);
  o.hash_dims = 5;
  CHECK_THROWS_WITH_AS(mlpf_graph_layer<double>(gen, o), doctest::Contains("hash_dims must be in [0, inout_dim = 4]"),
                       hepgnn::error);
  o.hash_dims = 2;
  o.hash_kernel_width = -1;
  CHECK_THROWS_WITH_AS(mlpf_graph_layer<double>(gen, o), doctest::Contains("hash_kernel_width must be >= 0"),
                       hepgnn::error);
  o.bin_size = 0;
  CHECK_THROWS_WITH_AS(mlpf_graph_layer<double>(gen, o), doctest::Contains("must be positive"), hepgnn::error);
}

}  // namespace hepgnn_test_mlpf_layer
