// Search space, configurations (typed getters, JSON), random and TPE samplers.
#include "support/doctest.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "hepgnn/dist/search_sampler.hpp"
#include "hepgnn/dist/search_space.hpp"

namespace hepgnn_test_search_space {

using namespace hepgnn;

search_space search_space_example() {
  search_space s;
  s.add_log_uniform("lr", 1e-4, 1e-1)
      .add_uniform("dropout", 0.0, 0.5)
      .add_integer("width", 16, 256, true)
      .add_integer("layers", 1, 4)
      .add_choice("act", {"relu", "elu", "gelu"})
      .add_choice("bin", std::vector<double>{64, 128, 256});
  return s;
}

TEST_CASE("search_space: samples lie in range, have the right types, and follow the prior") {
  const search_space s = search_space_example();
  rng g(3);
  int low_lr = 0, layers_count[5] = {0, 0, 0, 0, 0};
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const trial_config c = s.sample(g);
    s.validate(c);
    const double lr = c.get<double>("lr");
    CHECK(lr >= 1e-4);
    CHECK(lr <= 1e-1);
    low_lr += lr < 1e-3;  // log-uniform: a third of the decades
    ++layers_count[c.get<int>("layers")];
    CHECK(c.get<std::int64_t>("width") >= 16);
    CHECK(c.get<std::int64_t>("width") <= 256);
    const std::string act = c.get<std::string>("act");
    CHECK((act == "relu" || act == "elu" || act == "gelu"));
    const double bin = c.get<double>("bin");
    CHECK((bin == 64 || bin == 128 || bin == 256));
  }
  CHECK(std::abs(low_lr / double(n) - 1.0 / 3) < 0.03);
  CHECK(layers_count[0] == 0);
  for (int k = 1; k <= 4; ++k) CHECK(std::abs(layers_count[k] / double(n) - 0.25) < 0.03);
}

TEST_CASE("trial_config: typed getters fail clearly on a missing name or a wrong type") {
  const search_space s = search_space_example();
  rng g(1);
  const trial_config c = s.sample(g);
  CHECK_THROWS_WITH_AS(c.get<double>("learning_rate"), doctest::Contains("no value named 'learning_rate'"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(c.get<double>("width"), doctest::Contains("'width' is an integer, not a real"), hepgnn::error);
  CHECK_THROWS_WITH_AS(c.get<int>("lr"), doctest::Contains("'lr' is a real, not an integer"), hepgnn::error);
  CHECK_THROWS_WITH_AS(c.get<std::string>("layers"), doctest::Contains("not a string"), hepgnn::error);
  CHECK_THROWS_AS(c.number("act"), hepgnn::error);
  CHECK(c.number("width") == static_cast<double>(c.get<int>("width")));
}

TEST_CASE("trial_config: JSON reads back to the same configuration, bits included") {
  const search_space s = search_space_example();
  rng g(11);
  for (int i = 0; i < 20; ++i) {
    const trial_config c = s.sample(g);
    const std::string json = c.to_json();
    CHECK(json.front() == '{');
    CHECK(json.find("\"lr\": ") != std::string::npos);
    const trial_config back = s.parse_config(json);
    CHECK(back == c);
  }
  trial_config q;
  q.set("name", std::string("a \"quoted\"\nline"));
  CHECK(q.to_json() == "{\"name\": \"a \\\"quoted\\\"\\nline\"}");
}

TEST_CASE("search_space: bad input is refused naming the dimension") {
  search_space s;
  CHECK_THROWS_WITH_AS(s.add_uniform("x", 1, 1), doctest::Contains("'x': need finite lo < hi"), hepgnn::error);
  CHECK_THROWS_WITH_AS(s.add_log_uniform("lr", 0, 1), doctest::Contains("need 0 < lo < hi"), hepgnn::error);
  CHECK_THROWS_WITH_AS(s.add_integer("n", 5, 4), doctest::Contains("need lo <= hi"), hepgnn::error);
  CHECK_THROWS_WITH_AS(s.add_integer("n", 0, 4, true), doctest::Contains("log needs lo >= 1"), hepgnn::error);
  CHECK_THROWS_WITH_AS(s.add_choice("c", std::vector<std::string>{}), doctest::Contains("at least one option"),
                       hepgnn::error);
  s.add_uniform("x", 0, 1);
  CHECK_THROWS_WITH_AS(s.add_uniform("x", 0, 2), doctest::Contains("added twice"), hepgnn::error);
  rng g(1);
  CHECK_THROWS_WITH_AS(search_space().sample(g), doctest::Contains("no dimensions"), hepgnn::error);
  CHECK_THROWS_AS(s.parse_config("{\"x\": 2.5}"), hepgnn::error);   // out of range
  CHECK_THROWS_AS(s.parse_config("{\"y\": 0.5}"), hepgnn::error);   // unknown name
  CHECK_THROWS_AS(s.parse_config("{\"x\": [1]}"), hepgnn::error);   // not flat
}

TEST_CASE("random_sampler: reproducible for a seed, independent of the order trials are asked for") {
  const search_space s = search_space_example();
  random_sampler a(42), b(42), c(43);
  const std::vector<search_observation> none;
  std::vector<trial_config> forward;
  for (std::size_t i = 0; i < 8; ++i) forward.push_back(a.sample(s, i, none));
  for (std::size_t i = 8; i-- > 0;) CHECK(b.sample(s, i, none) == forward[i]);
  int same = 0;
  for (std::size_t i = 0; i < 8; ++i) same += c.sample(s, i, none) == forward[i];
  CHECK(same == 0);
  CHECK(forward[0] != forward[1]);
}

// A 2-D quadratic bowl with its minimum off centre, plus a choice that matters.
double search_bowl(const trial_config& c) {
  const double x = c.get<double>("x"), y = c.get<double>("y");
  return (x - 0.37) * (x - 0.37) + (y + 0.61) * (y + 0.61) + (c.get<std::string>("k") == "b" ? 0.0 : 0.3);
}

double search_best_of(search_sampler& s, const search_space& space, std::size_t trials) {
  std::vector<search_observation> h;
  double best = 1e300;
  for (std::size_t i = 0; i < trials; ++i) {
    trial_config c = s.sample(space, i, h);
    const double f = search_bowl(c);
    best = std::min(best, f);
    h.push_back({std::move(c), 1.0, f});
  }
  return best;
}

TEST_CASE("tpe_sampler: finds a 2-D quadratic's minimum better than random search (fixed seeds)") {
  search_space space;
  space.add_uniform("x", -1, 1).add_uniform("y", -1, 1).add_choice("k", {"a", "b", "c"});
  double sum_tpe = 0, sum_random = 0;
  int tpe_wins = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    tpe_sampler tpe(seed);
    random_sampler rnd(seed);
    const double t = search_best_of(tpe, space, 60), r = search_best_of(rnd, space, 60);
    sum_tpe += t;
    sum_random += r;
    tpe_wins += t < r;
  }
  MESSAGE("mean best of 60: TPE ", sum_tpe / 6, ", random ", sum_random / 6, "; TPE better in ", tpe_wins, " of 6");
  CHECK(sum_tpe < 0.5 * sum_random);
  CHECK(tpe_wins >= 4);
}

TEST_CASE("tpe_sampler: random until n_startup results at one resource, then reproducible and in range") {
  const search_space s = search_space_example();
  tpe_sampler t(5), u(5);
  random_sampler r(5);
  std::vector<search_observation> h;
  for (std::size_t i = 0; i < 9; ++i) {
    trial_config c = t.sample(s, i, h);
    CHECK(c == r.sample(s, i, h));  // startup: the prior, the same draws as random search
    h.push_back({c, 1.0, c.get<double>("lr")});
  }
  rng g9(9);
  h.push_back({s.sample(g9), 2.0, 0.0});  // another resource: does not count
  CHECK(t.sample(s, 9, h) == r.sample(s, 9, h));
  h.push_back({t.sample(s, 9, h), 1.0, 0.5});
  for (std::size_t i = 10; i < 30; ++i) {
    const trial_config c = t.sample(s, i, h);
    s.validate(c);
    CHECK(c == u.sample(s, i, h));
    h.push_back({c, 1.0, c.get<double>("lr")});
  }
  CHECK(t.n_below(10) == 1);
  CHECK(t.n_below(100) == 10);
  CHECK(t.n_below(1000) == 25);
  CHECK_THROWS_AS(tpe_sampler(1, tpe_options{10, 0}), hepgnn::error);
}

TEST_CASE("tpe_sampler: constant liar keeps proposals away from trials still training") {
  search_space s;
  s.add_uniform("x", 0, 1);
  std::vector<search_observation> h;
  rng g(3);
  for (int i = 0; i < 40; ++i) {  // results of a bowl at x = 0.3
    trial_config c = s.sample(g);
    const double x = c.get<double>("x");
    h.push_back({std::move(c), 1.0, (x - 0.3) * (x - 0.3)});
  }
  std::vector<search_observation> with_pending = h;
  for (int i = 0; i < 12; ++i) {  // 12 workers busy right at the optimum
    trial_config c;
    c.set("x", 0.29 + 0.002 * i);
    with_pending.push_back({std::move(c), 0, std::nan(""), true});
  }
  tpe_options lo;
  lo.constant_liar = true;
  tpe_sampler plain(7), liar(7, lo);
  double near_plain = 0, near_liar = 0;
  for (std::size_t id = 100; id < 160; ++id) {
    const trial_config p = plain.sample(s, id, with_pending);
    CHECK(p == plain.sample(s, id, h));  // without the liar, pending trials change nothing
    CHECK(liar.sample(s, id, h) == p);   // with the liar but none pending: plain TPE
    near_plain += std::abs(p.get<double>("x") - 0.3) < 0.02;
    near_liar += std::abs(liar.sample(s, id, with_pending).get<double>("x") - 0.3) < 0.02;
  }
  MESSAGE("proposals within 0.02 of the busy optimum, of 60: plain TPE ", near_plain, ", constant liar ", near_liar);
  CHECK(near_liar < 0.5 * near_plain);
  // a pending trial already measured at the level TPE fits keeps its real value (no lie on top)
  std::vector<search_observation> measured = h;
  measured.push_back({h[0].config, 0, std::nan(""), true});
  CHECK(liar.sample(s, 5, measured) == liar.sample(s, 5, h));
}

}  // namespace hepgnn_test_search_space
