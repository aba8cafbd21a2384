// Built against the installed package in CI: includes the umbrella header, trains one step, checks the loss falls
// and that the package config's version is the headers' version; uses the zlib and fastjet components, and reads a
// gzip file from a unit built without the zlib component (plain_unit.cpp).
#include <hepgnn/hepgnn.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

std::string read_in_plain_unit(const std::string& path);  // plain_unit.cpp

namespace {

int check_components() {
  const std::string path = (std::filesystem::temp_directory_path() / "hepgnn_consumer.txt.gz").string();
  hepgnn::write_text_file(path, "gzip through the hepgnn::zlib component\n", /*compress=*/true);
  if (read_in_plain_unit(path) != "gzip through the hepgnn::zlib component\n") {
    std::printf("hepgnn consumer: a unit without the zlib component did not read the gzip file\n");
    return 1;
  }
  std::filesystem::remove(path);
  // Two particles 0.2 apart in (eta, phi): one anti-kt R = 0.4 jet, from FastJet as from the built-in clustering.
  const hepgnn::jets::pseudojet p[2] = {{10, 0, 0, 10}, {10 * std::cos(0.2), 10 * std::sin(0.2), 0, 10}};
  const auto fj = hepgnn::jets::cluster_antikt_fastjet(p, 0.4), own = hepgnn::jets::cluster_antikt(p, 0.4);
  if (fj.size() != 1 || own.size() != 1 || fj[0].constituents != own[0].constituents) {
    std::printf("hepgnn consumer: FastJet found %zu jets, the built-in clustering %zu\n", fj.size(), own.size());
    return 1;
  }
  return 0;
}

}  // namespace

int main() {
  if (std::strcmp(hepgnn::version, HEPGNN_PACKAGE_VERSION) != 0) {
    std::printf("hepgnn consumer: headers say %s, package config says %s\n", hepgnn::version, HEPGNN_PACKAGE_VERSION);
    return 1;
  }
  if (check_components() != 0) return 1;
  using T = float;
  hepgnn::rng g(1);
  hepgnn::sequential<T, hepgnn::dense<T, 3, 8>, hepgnn::relu<T>, hepgnn::dense<T, 8, 1>> model{
      hepgnn::dense<T, 3, 8>{g}, hepgnn::relu<T>{}, hepgnn::dense<T, 8, 1>{g}};
  hepgnn::matrix<T> x = hepgnn::matrix<T>::Random(16, 3), y = x.rowwise().sum(), out, grad;
  decltype(model)::cache c;
  hepgnn::adam<T> opt({.lr = 1e-2});
  T first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    hepgnn::zero_grad(model);
    model.forward(x, out, c);
    last = hepgnn::mse(out, y, {}, &grad);
    if (step == 0) first = last;
    model.backward(x, out, grad, c, nullptr);
    opt.step(model);
  }
  std::printf("hepgnn consumer: mse %.4f -> %.4f\n", first, last);
  return last < first ? 0 : 1;
}
