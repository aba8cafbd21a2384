// FastJet example event reader, JetNet conversion and .npy round trip; against the shared Pythia jets:
// constituents CSV -> JetNet features == jetnet30_particle_features.npy, and (when FastJet is found) our
// anti-kt clustering of the .dat events == the jets and constituents in fastjet_antikt/*.csv.
#include "support/doctest.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/io/fastjet_cluster.hpp"
#include "hepgnn/io/fastjet_events.hpp"
#include "hepgnn/io/jetnet_npy.hpp"
#include "support/data.hpp"

namespace hepgnn_test_fastjet_reader {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
/// Rows of a numeric CSV with a header line (all columns parsed as double).
std::vector<std::vector<double>> read_csv(const std::filesystem::path& p) {
  std::ifstream f(p);
  REQUIRE(f.good());
  std::string line;
  std::getline(f, line);
  std::vector<std::vector<double>> rows;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::vector<double> r;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) r.push_back(std::stod(cell));
    rows.push_back(r);
  }
  return rows;
}

/// Constituents per (event, jet) from a *_constituents.csv: columns event, jet, rank, px, py, pz, E, ...
std::vector<four_momenta> constituents_by_jet(const std::vector<std::vector<double>>& rows) {
  std::map<std::pair<int, int>, std::vector<std::vector<double>>> m;
  for (auto& r : rows) m[{int(r[0]), int(r[1])}].push_back(r);
  std::vector<four_momenta> out;
  for (auto& [key, rs] : m) {
    four_momenta c(static_cast<Eigen::Index>(rs.size()), 4);
    for (std::size_t i = 0; i < rs.size(); ++i) c.row(i) << rs[i][3], rs[i][4], rs[i][5], rs[i][6];
    out.push_back(c);
  }
  return out;
}
}  // namespace

TEST_CASE("parse_fastjet_events: comments, #END, blank lines, last event without #END") {
  const std::string text =
      "# header comment\n"
      "1 2 3 10\n"
      "  -0.5\t0.25 +1e1 11.0\r\n"
      "\n"
      "#END\n"
      "#END\n"                 // an empty event
      "# another comment\n"
      "4 5 6 20";              // no trailing newline, no #END
  const auto ev = parse_fastjet_events(text);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].rows() == 2);
  CHECK(ev[0](1, 0) == -0.5);
  CHECK(ev[0](1, 2) == 10.0);
  CHECK(ev[0](1, 3) == 11.0);
  CHECK(ev[1].rows() == 0);
  CHECK(ev[2].rows() == 1);
  CHECK(ev[2](0, 3) == 20.0);
  CHECK(parse_fastjet_events("# only a comment\n").empty());
}

TEST_CASE("parse_fastjet_events: malformed lines name the line") {
  CHECK_THROWS_WITH_AS(parse_fastjet_events("1 2 3 4\n1 2 3\n"), doctest::Contains("line 2: expected 4 numbers"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(parse_fastjet_events("1 2 3 4 5\n"), doctest::Contains("line 1: expected 4 numbers"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(parse_fastjet_events("#c\n1 2 x 4\n"), doctest::Contains("line 2: column 3 is not a number"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(parse_fastjet_events("1 2 3 4abc\n"), doctest::Contains("column 4 is not a number"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(parse_fastjet_events("1 nan 3 4\n"), doctest::Contains("column 2 is not finite"), hepgnn::error);
  CHECK_THROWS_WITH_AS(read_fastjet_events("/nonexistent/file.dat"), doctest::Contains("cannot open"), hepgnn::error);
}

TEST_CASE("parse_fastjet_events: random bytes either parse or throw hepgnn::error") {
  hepgnn::rng g(99);
  const char alphabet[] = "0123456789 \t\n\r#END+-.eEinfa\0\xff";
  int parsed = 0, rejected = 0;
  for (int rep = 0; rep < 2000; ++rep) {
    std::string text(g.below(200), ' ');
    for (char& ch : text) ch = alphabet[g.below(sizeof alphabet - 1)];
    try {
      const auto ev = parse_fastjet_events(text);
      for (const auto& e : ev) CHECK((e.cols() == 4 && e.allFinite()));
      ++parsed;
    } catch (const hepgnn::error&) {
      ++rejected;
    }
  }
  CHECK(parsed + rejected == 2000);
  CHECK(rejected > 0);
}

TEST_CASE("jetnet_from_constituents: hand-made jet") {
  // two massless particles at phi = pi - 0.1 and -pi + 0.1 (across the wrap), eta = 0
  const double pi = std::numbers::pi;
  four_momenta c(3, 4);
  auto put = [&](int i, double pt, double eta, double phi) {
    c.row(i) << pt * std::cos(phi), pt * std::sin(phi), pt * std::sinh(eta), pt * std::cosh(eta);
  };
  put(0, 30, 0.0, pi - 0.1);
  put(1, 60, 0.2, -pi + 0.1);
  put(2, 10, -0.1, pi - 0.05);
  const auto jets = jetnet_from_constituents<double>({c}, 2);
  const auto jk = jet_kinematics::of(c.col(0).sum(), c.col(1).sum(), c.col(2).sum(), c.col(3).sum());
  REQUIRE(jets.count(0) == 2);  // truncated to the 2 hardest
  CHECK(jets.row(0, 0)(jet_col::pt_rel) == doctest::Approx(60 / jk.pt));
  CHECK(jets.row(0, 1)(jet_col::pt_rel) == doctest::Approx(30 / jk.pt));
  CHECK(jets.row(0, 0)(jet_col::eta_rel) == doctest::Approx(0.2 - jk.eta));
  CHECK(std::fabs(jets.row(0, 0)(jet_col::phi_rel)) < 0.2);  // wrapped, not ~2 pi
  CHECK(std::fabs(jets.row(0, 1)(jet_col::phi_rel)) < 0.2);
  CHECK(jets.jet_features(0, 3) == 3);
  CHECK(jets.jet_features(0, 2) > 0);
  four_momenta bad(1, 4);
  bad << 0, 0, 5, 5;
  CHECK_THROWS_WITH_AS(jetnet_from_constituents<float>({bad}), doctest::Contains("jet 0 has zero transverse momentum"),
                       hepgnn::error);
}

TEST_CASE("jetnet npy: write/read round trip and bad shapes") {
  auto jets = jet_array<float>::zeros(2, 3);
  jets.row(0, 0) << 0.1f, -0.2f, 0.7f, 1.f;
  jets.row(0, 1) << 0.0f, 0.1f, 0.3f, 1.f;
  jets.row(1, 0) << -0.3f, 0.3f, 1.0f, 1.f;
  jets.jet_features = matrix<float>::Ones(2, 4);
  const auto dir = std::filesystem::temp_directory_path();
  const auto p = dir / "hepgnn_test_jetnet_p.npy", q = dir / "hepgnn_test_jetnet_j.npy";
  write_jetnet_npy(jets, p, q);
  const auto back = read_jetnet_npy<float>(p, q);
  CHECK(back.particles == jets.particles);
  CHECK(back.jet_features == jets.jet_features);
  // padding before a real particle is compacted; 3-feature arrays derive the mask from pt_rel
  const std::vector<float> v3{0.f, 0.f, 0.f, 0.5f, 0.5f, 0.25f};
  const auto j3 = jets_from_npy<float>(npy_array::from({1, 2, 3}, v3));
  CHECK(j3.count(0) == 1);
  CHECK(j3.row(0, 0)(jet_col::pt_rel) == 0.25f);
  const std::vector<float> v2{1.f, 2.f};
  CHECK_THROWS_WITH_AS(jets_from_npy<float>(npy_array::from({1, 2}, v2)),
                       doctest::Contains("must have shape [n_jets, P, 3 or 4]"), hepgnn::error);
  const std::vector<float> vm{0.f, 0.f, 0.1f, 0.5f};
  CHECK_THROWS_WITH_AS(jets_from_npy<float>(npy_array::from({1, 1, 4}, vm)), doctest::Contains("mask must be 0 or 1"),
                       hepgnn::error);
  std::filesystem::remove(p);
  std::filesystem::remove(q);
}

TEST_CASE("shared Pythia jets: event files, constituents -> JetNet == the .npy") {
  HEPGNN_REQUIRE_DATA(dir, "jets_fastjet_pythia");
  const auto ev = read_fastjet_events(dir / "source" / "Pythia-PtMin1000-LHC-10ev.dat");
  REQUIRE(ev.size() == 10);
  Eigen::Index total = 0;
  for (auto& e : ev) total += e.rows();
  CHECK(total == 5460);  // the file's 4-column lines
  CHECK(read_fastjet_events(dir / "source" / "boosted_top_event.dat").size() == 1);

  const auto npy = read_jetnet_npy<double>(dir / "jetnet30_particle_features.npy", dir / "jetnet30_jet_features.npy");
  REQUIRE(npy.num_jets == 26);
  auto cons = constituents_by_jet(read_csv(dir / "fastjet_antikt" / "pythia_ptmin1000_10ev_constituents.csv"));
  const auto top = constituents_by_jet(read_csv(dir / "fastjet_antikt" / "boosted_top_constituents.csv"));
  cons.insert(cons.end(), top.begin(), top.end());  // rows 24, 25 of jets_index.csv
  REQUIRE(cons.size() == 26);
  const auto ours = jetnet_from_constituents<double>(cons, 30);
  // the .npy is float32: compare to float precision
  CHECK((ours.particles - npy.particles).cwiseAbs().maxCoeff() < 2e-6);
  for (index_t j = 0; j < 26; ++j) {
    CAPTURE(j);
    CHECK(ours.jet_features(j, 0) == doctest::Approx(npy.jet_features(j, 0)).epsilon(1e-6));
    CHECK(ours.jet_features(j, 1) == doctest::Approx(npy.jet_features(j, 1)).epsilon(1e-5));
    CHECK(ours.jet_features(j, 2) == doctest::Approx(npy.jet_features(j, 2)).epsilon(1e-5));
    CHECK(ours.jet_features(j, 3) == npy.jet_features(j, 3));
  }
}

TEST_CASE("shared Pythia jets: FastJet clustering of the .dat events reproduces the reference jets") {
#ifndef HEPGNN_HAVE_FASTJET
  MESSAGE("skipped: built without FastJet (the hepgnn::fastjet component defines HEPGNN_HAVE_FASTJET)");
#else
  HEPGNN_REQUIRE_DATA(dir, "jets_fastjet_pythia");
  for (const std::string src : {"pythia_ptmin1000_10ev", "boosted_top"}) {
    CAPTURE(src);
    const auto file = src == "boosted_top" ? "boosted_top_event.dat" : "Pythia-PtMin1000-LHC-10ev.dat";
    const auto events = read_fastjet_events(dir / "source" / file);
    const auto ref_jets = read_csv(dir / "fastjet_antikt" / (src + "_jets.csv"));
    const auto ref_cons = read_csv(dir / "fastjet_antikt" / (src + "_constituents.csv"));
    std::size_t jrow = 0, crow = 0;
    for (std::size_t e = 0; e < events.size(); ++e) {
      const auto jets = cluster_jets(events[e]);  // anti-kt R = 0.8, pt > 200
      for (std::size_t k = 0; k < jets.size(); ++k, ++jrow) {
        REQUIRE(jrow < ref_jets.size());
        const auto& rj = ref_jets[jrow];
        CHECK(int(rj[0]) == int(e));
        CHECK(int(rj[1]) == int(k));
        const Eigen::RowVector4d s = jets[k].colwise().sum();
        const auto kin = jet_kinematics::of(s(0), s(1), s(2), s(3));
        CHECK(kin.pt == doctest::Approx(rj[2]).epsilon(1e-8));
        CHECK(kin.eta == doctest::Approx(rj[3]).epsilon(1e-8));
        CHECK(kin.phi == doctest::Approx(rj[4]).epsilon(1e-8));
        CHECK(kin.mass == doctest::Approx(rj[5]).epsilon(1e-6));
        CHECK(jets[k].rows() == int(rj[10]));
        for (Eigen::Index i = 0; i < jets[k].rows(); ++i, ++crow) {
          REQUIRE(crow < ref_cons.size());
          const auto& rc = ref_cons[crow];
          CHECK(int(rc[2]) == int(i));
          for (int c = 0; c < 4; ++c) CHECK(jets[k](i, c) == doctest::Approx(rc[3 + c]).epsilon(1e-8));
        }
      }
    }
    CHECK(jrow == ref_jets.size());
    CHECK(crow == ref_cons.size());
  }
  // and straight to the JetNet arrays
  auto all = read_fastjet_events(dir / "source" / "Pythia-PtMin1000-LHC-10ev.dat");
  const auto top = read_fastjet_events(dir / "source" / "boosted_top_event.dat");
  all.insert(all.end(), top.begin(), top.end());
  const auto ours = cluster_to_jetnet<double>(all);
  const auto npy = read_jetnet_npy<double>(dir / "jetnet30_particle_features.npy");
  REQUIRE(ours.num_jets == npy.num_jets);
  CHECK((ours.particles - npy.particles).cwiseAbs().maxCoeff() < 2e-6);
  CHECK_THROWS_WITH_AS(cluster_jets(four_momenta(2, 3)), doctest::Contains("event must be n x 4"), hepgnn::error);
#endif
}

}  // namespace hepgnn_test_fastjet_reader
