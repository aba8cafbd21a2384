// Jet autoencoders: parameter gradients by finite differences (double) for the pooled and per-particle graph
// autoencoders with Chamfer, EMD and Sinkhorn losses and for the dense baseline; a short training run on toy
// QCD jets whose loss must fall; bad input.
#include "support/doctest.hpp"

#include <limits>

#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/data/toy_jets.hpp"
#include "hepgnn/io/model_file.hpp"
#include "hepgnn/models/autoencoder.hpp"
#include "hepgnn/optim/adam.hpp"
#include "hepgnn/train/gradient_check.hpp"

namespace hepgnn_test_autoencoder {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
/// Runs a test case single-threaded: these tests make thousands of tiny calls, each an OpenMP region that costs
/// milliseconds of barrier spinning on a loaded machine; thread-count independence is tested per layer.
struct single_thread {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  single_thread() { omp_set_num_threads(1); }
  ~single_thread() { omp_set_num_threads(saved); }
#endif
};

/// Random packed jets: coordinates spread like jet constituents, sizes as given.
void random_jets(rng& g, const std::vector<index_t>& sizes, matrix<double>& x, batch& b) {
  b = batch::from_sizes(sizes);
  x.resize(b.num_nodes(), 3);
  for (index_t i = 0; i < b.num_nodes(); ++i) x.row(i) << g.normal(0, 0.3), g.normal(0, 0.3), g.uniform(0.0, 0.5);
}

double check_graph_ae(graph_autoencoder_options o, reconstruction_loss_options lo, std::uint64_t seed) {
  rng g(seed);
  graph_autoencoder<double> model(g, o);
  matrix<double> x;
  batch b;
  random_jets(g, {5, 6, 4}, x, b);
  const graph gr = model.build_graph(x, b);
  graph_autoencoder<double>::cache c;
  matrix<double> recon, drecon;
  auto loss = [&] {
    model.forward(x, gr, b, recon, c);
    return reconstruction_loss(recon, x, b, lo).mean();
  };
  auto backward = [&] {
    zero_grad(model);
    model.forward(x, gr, b, recon, c);
    reconstruction_loss(recon, x, b, lo, &drecon);
    model.backward(x, gr, b, recon, drecon, c);
  };
  const auto r = check_parameter_gradients(model, loss, backward);
  MESSAGE("worst ", r.worst, " analytic ", r.analytic, " numeric ", r.numeric, " error ", r.max_error);
  return r.max_error;
}
}  // namespace

TEST_CASE("graph autoencoder: parameter gradients (finite differences, double)") {
  single_thread one;
  graph_autoencoder_options o;
  o.hidden = 6;
  o.latent = 2;
  o.max_particles = 6;
  o.k = 3;
  reconstruction_loss_options chamfer_loss;
  SUBCASE("pooled latent, kNN graph, Chamfer") { CHECK(check_graph_ae(o, chamfer_loss, 1) < 1e-6); }
  SUBCASE("pooled latent, max pooling and max aggregation, fully connected, Chamfer") {
    o.graph_kind = jet_graph::fully_connected;
    o.pool_aggr = aggregation::max;
    o.edge_aggr = aggregation::max;
    CHECK(check_graph_ae(o, chamfer_loss, 2) < 1e-6);
  }
  SUBCASE("per-particle latent, kNN graph, Chamfer") {
    o.latent_mode = ae_latent::per_particle;
    CHECK(check_graph_ae(o, chamfer_loss, 3) < 1e-6);
  }
  SUBCASE("pooled latent, exact EMD") {
    reconstruction_loss_options lo;
    lo.kind = set_loss_kind::emd;
    CHECK(check_graph_ae(o, lo, 4) < 1e-6);
  }
  SUBCASE("pooled latent, energy-weighted EMD (coordinates and pt weights through the softplus)") {
    reconstruction_loss_options lo;
    lo.kind = set_loss_kind::energy_emd;
    lo.emd_beta = 2.0;
    CHECK(check_graph_ae(o, lo, 6) < 1e-6);
  }
  SUBCASE("per-particle latent, energy-weighted EMD, beta 1") {
    o.latent_mode = ae_latent::per_particle;
    reconstruction_loss_options lo;
    lo.kind = set_loss_kind::energy_emd;
    lo.emd_beta = 1.0;
    CHECK(check_graph_ae(o, lo, 7) < 1e-6);
  }
  SUBCASE("pooled latent, Sinkhorn") {
    reconstruction_loss_options lo;
    lo.kind = set_loss_kind::sinkhorn;
    lo.sinkhorn_reg = 0.05;
    lo.sinkhorn_iterations = 5000;
    CHECK(check_graph_ae(o, lo, 5) < 1e-6);
  }
}

TEST_CASE("dense autoencoder: parameter gradients (finite differences, double)") {
  rng g(9);
  dense_autoencoder<double> model(g, {.features = 3, .max_particles = 5, .hidden = 7, .latent = 2});
  jet_array<double> jets = make_toy_jets<double>(3, jet_kind::qcd, g, {.max_particles = 5});
  matrix<double> flat, recon, grad;
  std::vector<index_t> counts;
  model.flatten(jets, 0, 3, flat, counts);
  dense_autoencoder<double>::cache c;
  auto loss = [&] {
    model.forward(flat, recon, c);
    const auto l = model.masked_mse(recon, flat, counts);
    return (l[0] + l[1] + l[2]) / 3;
  };
  auto backward = [&] {
    zero_grad(model);
    model.forward(flat, recon, c);
    model.masked_mse(recon, flat, counts, &grad);
    model.backward(flat, recon, grad, c);
  };
  const auto r = check_parameter_gradients(model, loss, backward);
  MESSAGE("worst ", r.worst, " error ", r.max_error);
  CHECK(r.max_error < 1e-6);
}

TEST_CASE("graph autoencoder: a short training run on toy QCD jets halves the Chamfer loss") {
  single_thread one;
  rng g(2024);
  const auto jets = make_toy_jets<float>(256, jet_kind::qcd, g);
  graph_autoencoder<float> model(g, {.hidden = 16, .latent = 4});
  adam<float> opt({.lr = 5e-3});
  reconstruction_loss_options lo;
  graph_autoencoder<float>::cache c;
  matrix<float> x, recon, drecon;
  batch b;
  std::vector<graph> graphs;
  std::vector<matrix<float>> xs;
  std::vector<batch> bs;
  for (index_t s = 0; s < jets.num_jets; s += 32) {
    pack_jets(jets, s, 32, x, b);
    // scale eta/phi/pt_rel to O(1) spreads
    x.col(0) *= 5.f;
    x.col(1) *= 5.f;
    x.col(2) *= 5.f;
    graphs.push_back(model.build_graph(x, b));
    xs.push_back(x);
    bs.push_back(b);
  }
  auto epoch_loss = [&] {
    double l = 0;
    for (std::size_t s = 0; s < xs.size(); ++s) {
      model.infer(xs[s], graphs[s], bs[s], recon, c);
      l += reconstruction_loss(recon, xs[s], bs[s], lo).mean();
    }
    return l / static_cast<double>(xs.size());
  };
  const double before = epoch_loss();
  for (int epoch = 0; epoch < 25; ++epoch)
    for (std::size_t s = 0; s < xs.size(); ++s) {
      zero_grad(model);
      model.forward(xs[s], graphs[s], bs[s], recon, c);
      reconstruction_loss(recon, xs[s], bs[s], lo, &drecon);
      model.backward(xs[s], graphs[s], bs[s], recon, drecon, c);
      opt.step(model);
    }
  const double after = epoch_loss();
  MESSAGE("Chamfer loss before ", before, " after ", after);
  CHECK(after < before / 2);
}

TEST_CASE("graph autoencoder: the pt column comes out non-negative (softplus)") {
  rng g(4);
  graph_autoencoder<double> model(g, {.hidden = 8, .latent = 2});
  matrix<double> x, recon;
  batch b;
  random_jets(g, {7, 3}, x, b);
  graph_autoencoder<double>::cache c;
  model.infer(x, model.build_graph(x, b), b, recon, c);
  CHECK(recon.rows() == 10);
  CHECK(recon.col(2).minCoeff() > 0.0);
  // softplus(v) = log(1 + e^v) of the raw decoder output
  const matrix<double>& raw = model.decoder_output(c);
  for (Eigen::Index i = 0; i < 10; ++i) CHECK(recon(i, 2) == doctest::Approx(std::log1p(std::exp(raw(i, 2)))));
  CHECK(recon.leftCols(2) == raw.leftCols(2));
}

TEST_CASE("autoencoders: bad input") {
  rng g(1);
  graph_autoencoder<float> model(g, {.max_particles = 4});
  matrix<float> x = matrix<float>::Zero(5, 3), recon;
  const batch b = batch::single(5);
  graph_autoencoder<float>::cache c;
  const graph gr = fully_connected(b);
  CHECK_THROWS_WITH_AS(model.forward(x, gr, b, recon, c), doctest::Contains("jet 0 has 5 constituents, more than"),
                       hepgnn::error);
  matrix<float> x2 = matrix<float>::Zero(4, 2);
  CHECK_THROWS_WITH_AS(model.forward(x2, gr, batch::single(4), recon, c), doctest::Contains("x must have 3 columns, got 2"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(graph_autoencoder<float>(g, {.latent = 0}), doctest::Contains("latent=0"), hepgnn::error);
  CHECK_THROWS_WITH_AS(graph_autoencoder<float>(g, {.positive_column = 3}),
                       doctest::Contains("positive_column must be -1 or a column index below features=3, got 3"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(reconstruction_loss(matrix<float>(3, 3), matrix<float>(4, 3), batch::single(4), {}),
                       doctest::Contains("recon must have the shape of x (4 x 3), got 3 x 3"), hepgnn::error);
  dense_autoencoder<float> dense(g, {.max_particles = 10});
  const auto jets = make_toy_jets<float>(2, jet_kind::qcd, g);
  matrix<float> flat;
  std::vector<index_t> counts;
  CHECK_THROWS_WITH_AS(dense.flatten(jets, 0, 2, flat, counts), doctest::Contains("jets have 30 slots, the model expects 10"),
                       hepgnn::error);
  // first + n past INT_MAX: refused (it used to wrap and pass the range check)
  dense_autoencoder<float> d30(g, {.max_particles = 30});
  CHECK_THROWS_WITH_AS(d30.flatten(jets, 1, std::numeric_limits<index_t>::max(), flat, counts),
                       doctest::Contains("out of range for 2 jets"), hepgnn::error);
}

TEST_CASE("autoencoders: save_model / load_model round trip (config from the metadata, identical output)") {
  rng g(9);
  matrix<double> xd;
  batch b;
  random_jets(g, {7, 5, 6}, xd, b);
  const matrix<float> x = xd.cast<float>();
  const auto path = std::filesystem::temp_directory_path() / "hepgnn_test_autoencoder_model.safetensors";
  for (const ae_latent mode : {ae_latent::pooled, ae_latent::per_particle}) {
    CAPTURE(static_cast<int>(mode));
    const graph_autoencoder_options o{.hidden = 12, .latent = 3, .max_particles = 8, .latent_mode = mode,
                                      .graph_kind = jet_graph::knn, .k = 3, .edge_aggr = aggregation::max, .seed = 41};
    graph_autoencoder<float> model(o);
    save_model(model, path);
    const auto back = load_model<graph_autoencoder<float>>(path);
    CHECK(back.config().latent_mode == mode);
    CHECK(back.config().edge_aggr == aggregation::max);
    CHECK(back.config().k == 3);
    graph_autoencoder<float>::workspace w1, w2;
    const matrix<float>& r1 = model.infer(x, b, w1);
    CHECK(r1.rows() == x.rows());
    CHECK(r1 == back.infer(x, b, w2));
  }
  dense_autoencoder<float> dense({.max_particles = 7, .hidden = 9, .latent = 2, .seed = 5});
  save_model(dense, path);
  const auto dense_back = load_model<dense_autoencoder<float>>(path);
  matrix<float> flat = matrix<float>::Random(3, 21);
  dense_autoencoder<float>::workspace d1, d2;
  CHECK(dense.infer(flat, d1) == dense_back.infer(flat, d2));
  // A file of one family does not load as another.
  CHECK_THROWS_WITH_AS(load_model<graph_autoencoder<float>>(path),
                       doctest::Contains("holds a 'dense_autoencoder' model, not 'graph_autoencoder'"), hepgnn::error);
  std::filesystem::remove(path);
}

}  // namespace hepgnn_test_autoencoder
