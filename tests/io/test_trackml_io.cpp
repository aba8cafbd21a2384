// TrackML CSV reading and writing: the real sample event, round trips (plain and gzip), malformed files.
#include "support/doctest.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "hepgnn/io/trackml.hpp"
#include "support/data.hpp"

namespace hepgnn_test_trackml_io {  // this file's names, apart from the other files of its unity build

namespace fs = std::filesystem;
using namespace hepgnn;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("hepgnn_test_trackml_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

const char* hits_ok = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1.5,2,3,8,2,1\n2,-4,5.25,6,8,4,7\n3,7,8,9,9,2,3\n";
const char* truth_ok =
    "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n1,100,1,2,3,0.1,0.2,0.3,0.5\n2,100,4,5,6,0.1,0.2,0.3,0.5\n"
    "3,0,7,8,9,0,0,0,0\n";
const char* particles_ok = "particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits\n100,211,0,0,0,3,4,0,1,2\n";

fs::path small_event(const std::string& name, const std::string& hits = hits_ok, const std::string& truth = truth_ok,
                     const std::string& particles = particles_ok) {
  const auto d = temp_dir(name);
  write(d / "event1-hits.csv", hits);
  write(d / "event1-truth.csv", truth);
  write(d / "event1-particles.csv", particles);
  return d / "event1";
}

}  // namespace

TEST_CASE("trackml: the real sample event loads with the documented facts") {
  const fs::path prefix = hepgnn_test::source_path("tests/data/trackml/event000000001");
  if (!have_zlib()) {
    CHECK_THROWS_WITH_AS(trackml::read_event(prefix), doctest::Contains("has no zlib"), hepgnn::error);
    return;
  }
  trackml::read_options opt;
  opt.cells = true;
  const auto ev = trackml::read_event(prefix, opt);
  CHECK(ev.num_hits() == 5527);
  CHECK(ev.has_truth());
  CHECK(ev.has_weights());
  CHECK(ev.particles.size() == 548);
  CHECK(ev.cells.size() == 18564);
  std::size_t noise = 0;
  std::set<std::int64_t> with_hits;
  double wsum = 0;
  for (std::size_t i = 0; i < ev.num_hits(); ++i) {
    if (ev.particle_id[i] == 0) ++noise; else with_hits.insert(ev.particle_id[i]);
    wsum += ev.weight[i];
  }
  CHECK(noise == 829);
  CHECK(with_hits.size() == 468);
  CHECK(wsum == doctest::Approx(0.051).epsilon(0.02));
  CHECK(ev.hit_id.front() == 6);
  CHECK(ev.x.front() == -76.566);
  CHECK(ev.volume_id.front() == 7);
  // nhits equals the per-particle truth count
  std::map<std::int64_t, int> count;
  for (auto p : ev.particle_id) ++count[p];
  for (const auto& p : ev.particles) CHECK(p.nhits == count[p.particle_id]);
  CHECK(ev.particles.front().particle_type == -211);
}

TEST_CASE("trackml: the ACTS-Fatras event (no weights, no particle_type/nhits) loads") {
  HEPGNN_REQUIRE_DATA(dir, "acts_fatras_sample_event000000000");
  // This real file has 75 hits with NaN coordinates: rejected by default, skipped on request.
  CHECK_THROWS_WITH_AS(trackml::read_event(dir / "event000000000"),
                       doctest::Contains("line 96, column 2 ('x'): expected a finite number, got 'nan'"),
                       hepgnn::error);
  trackml::read_options opt;
  opt.drop_non_finite_hits = true;
  const auto ev = trackml::read_event(dir / "event000000000", opt);
  CHECK(ev.num_hits() == 630 - 75);  // 630 rows: the last line has no newline (its README says 629)
  CHECK(ev.has_truth());
  CHECK_FALSE(ev.has_weights());
  CHECK(ev.particles.size() == 100);
  int total = 0;  // particle_id 0 is listed as a particle here, but in truth 0 means noise (TrackML convention)
  for (const auto& p : ev.particles) total += p.particle_id != 0 ? p.nhits : 0;  // recomputed from truth
  std::size_t noise = 0;
  for (auto p : ev.particle_id) noise += p == 0;
  CHECK(static_cast<std::size_t>(total) + noise == ev.num_hits());
}

TEST_CASE("trackml: write then read gives identical columns (plain and gzip)") {
  const auto prefix = small_event("roundtrip_src");
  auto ev = trackml::read_event(prefix);
  ev.x[0] = 0.1 + 0.2;  // a value whose shortest text needs 17 digits
  ev.cells.push_back({2, 5, 6, 0.25});
  for (bool compress : {false, true}) {
    if (compress && !have_zlib()) continue;
    const auto out = temp_dir(compress ? "roundtrip_gz" : "roundtrip_plain") / "event7";
    trackml::write_event(out, ev, compress);
    CHECK(fs::exists(fs::path(out.string() + (compress ? "-hits.csv.gz" : "-hits.csv"))));
    if (compress) CHECK(is_gzip_file(fs::path(out.string() + "-truth.csv.gz")));
    trackml::read_options opt;
    opt.cells = true;
    const auto back = trackml::read_event(out, opt);
    CHECK(back.hit_id == ev.hit_id);
    CHECK(back.x == ev.x);
    CHECK(back.y == ev.y);
    CHECK(back.z == ev.z);
    CHECK(back.volume_id == ev.volume_id);
    CHECK(back.layer_id == ev.layer_id);
    CHECK(back.module_id == ev.module_id);
    CHECK(back.particle_id == ev.particle_id);
    CHECK(back.tpz == ev.tpz);
    CHECK(back.weight == ev.weight);
    REQUIRE(back.particles.size() == 1);
    CHECK(back.particles[0].pt() == 5.0);
    CHECK(back.particles[0].nhits == 2);
    REQUIRE(back.cells.size() == 1);
    CHECK(back.cells[0].value == 0.25);
  }
}

TEST_CASE("trackml: truth rows are aligned to the hits by hit_id, in any order") {
  const std::string truth = "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n3,0,7,8,9,0,0,0,0\n"
                            "1,100,1,2,3,0.1,0.2,0.3,0.5\n2,100,4,5,6,0.1,0.2,0.3,0.25\n";
  const auto ev = trackml::read_event(small_event("order", hits_ok, truth));
  CHECK(ev.particle_id == std::vector<std::int64_t>{100, 100, 0});
  CHECK(ev.weight == std::vector<double>{0.5, 0.25, 0});
}

TEST_CASE("trackml: malformed files name the file, line and column") {
  SUBCASE("bad number") {
    const std::string hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1.5,2,3,8,2,1\n2,-4,abc,6,8,4,7\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("bad_number", hits)),
                         doctest::Contains("event1-hits.csv' line 3, column 3 ('y'): expected a number, got 'abc'"),
                         hepgnn::error);
  }
  SUBCASE("NaN coordinate") {
    const std::string hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,nan,2,3,8,2,1\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("nan", hits)),
                         doctest::Contains("line 2, column 2 ('x'): expected a finite number, got 'nan'"),
                         hepgnn::error);
  }
  SUBCASE("wrong field count") {
    const std::string hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("fields", hits)),
                         doctest::Contains("line 2: expected 7 comma-separated fields (as in the header), got 6"),
                         hepgnn::error);
  }
  SUBCASE("missing column") {
    const std::string hits = "hit_id,x,y,volume_id,layer_id,module_id\n1,1,2,8,2,1\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("column", hits)), doctest::Contains("has no column 'z'"),
                         hepgnn::error);
  }
  SUBCASE("integer with a fraction") {
    const std::string hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8.5,2,1\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("int", hits)),
                         doctest::Contains("column 5 ('volume_id'): expected an integer, got '8.5'"), hepgnn::error);
  }
  SUBCASE("duplicate hit id") {
    const std::string hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2,1\n1,1,2,3,8,2,1\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("dup", hits)),
                         doctest::Contains("hit_id 1 appears more than once"), hepgnn::error);
  }
  SUBCASE("truth for an unknown hit") {
    const std::string truth = std::string(truth_ok) + "9,100,1,1,1,0,0,0,0\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("unknown_hit", hits_ok, truth)),
                         doctest::Contains("line 5: hit_id 9 is not in the hits file"), hepgnn::error);
  }
  SUBCASE("hit without truth") {
    const std::string truth = "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n1,100,1,2,3,0.1,0.2,0.3,0.5\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("no_truth", hits_ok, truth)),
                         doctest::Contains("has 1 truth rows for 3 hits; hit_id 2 has none"), hepgnn::error);
  }
  SUBCASE("unknown particle id in truth") {
    const std::string truth = "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n1,100,1,2,3,0,0,0,0\n"
                              "2,555,4,5,6,0,0,0,0\n3,0,7,8,9,0,0,0,0\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("unknown_particle", hits_ok, truth)),
                         doctest::Contains("hit 2 has truth particle_id 555 that is not in the particles table"),
                         hepgnn::error);
    trackml::read_options lenient;
    lenient.check_particle_ids = false;
    CHECK(trackml::read_event(small_event("unknown_particle2", hits_ok, truth), lenient).particle_id[1] == 555);
  }
  SUBCASE("negative weight") {
    const std::string truth = "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n1,100,1,2,3,0,0,0,-1\n";
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("neg_weight", hits_ok, truth)),
                         doctest::Contains("weight must be >= 0, got -1"), hepgnn::error);
  }
  SUBCASE("empty file and missing file") {
    CHECK_THROWS_WITH_AS(trackml::read_event(small_event("empty", "")),
                         doctest::Contains("is empty (expected a header line)"), hepgnn::error);
    CHECK_THROWS_WITH_AS(trackml::read_event(temp_dir("missing") / "event1"),
                         doctest::Contains("no '"), hepgnn::error);
  }
  SUBCASE("corrupt gzip") {
    if (!have_zlib()) return;
    const auto d = temp_dir("corrupt_gz");
    write(d / "event1-hits.csv.gz", std::string("\x1f\x8b\x08\x00garbage-garbage-garbage", 27));
    CHECK_THROWS_WITH_AS(trackml::read_event(d / "event1"), doctest::Contains("event1-hits.csv.gz"), hepgnn::error);
  }
}

TEST_CASE("trackml: an event with a header only is empty and valid") {
  const auto ev = trackml::read_event(small_event("header_only", "hit_id,x,y,z,volume_id,layer_id,module_id\n",
                                                  "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz\n"));
  CHECK(ev.num_hits() == 0);
  CHECK(ev.has_truth());
  CHECK_NOTHROW(ev.validate());
}

TEST_CASE("trackml: compute_weights sums to one and zeroes noise and short tracks") {
  trackml::event ev;
  ev.resize(7, true);
  for (int i = 0; i < 7; ++i) {
    ev.hit_id[i] = i + 1;
    ev.x[i] = ev.tx[i] = 10.0 * (i + 1);
    ev.particle_id[i] = i < 5 ? 1 : i == 5 ? 2 : 0;
  }
  ev.particles.push_back({1, 211, 0, 0, 0, 5, 0, 0, 1, 5});
  ev.particles.push_back({2, 211, 0, 0, 0, 5, 0, 0, 1, 1});
  trackml::compute_weights(ev);
  double sum = 0;
  for (double w : ev.weight) sum += w;
  CHECK(sum == doctest::Approx(1.0));
  CHECK(ev.weight[5] == 0);  // particle with one hit
  CHECK(ev.weight[6] == 0);  // noise
  CHECK(ev.weight[0] > ev.weight[2]);  // ends weigh more than the middle
  CHECK(ev.weight[4] > ev.weight[2]);
}

TEST_CASE("trackml: a gzip file that inflates past the limit is refused; the limit can be raised") {
  if (!have_zlib()) return;
  const auto prefix = small_event("inflate_src");
  const auto ev = trackml::read_event(prefix);
  const auto out = temp_dir("inflate_gz") / "event8";
  trackml::write_event(out, ev, true);
  const auto hits = fs::path(out.string() + "-hits.csv.gz");
  const std::string text = read_text_file(hits);
  REQUIRE(text.size() > 20);
  const std::size_t half = text.size() / 2;
  CHECK_THROWS_WITH_AS(read_text_file(hits, "reader", half),
                       doctest::Contains(("inflates to more than " + std::to_string(half) + " bytes").c_str()), hepgnn::error);
  CHECK(read_text_file(hits, "reader", text.size()) == text);  // exactly at the limit is fine
  trackml::read_options small;
  small.max_inflated_bytes = half;
  CHECK_THROWS_WITH_AS(trackml::read_event(out, small), doctest::Contains("trackml::read_hits: gzip file"),
                       hepgnn::error);
  CHECK(trackml::read_event(out).hit_id == ev.hit_id);
  CHECK_THROWS_WITH_AS(read_text_file(fs::temp_directory_path()), doctest::Contains("is a directory, not a file"),
                       hepgnn::error);
}

}  // namespace hepgnn_test_trackml_io
