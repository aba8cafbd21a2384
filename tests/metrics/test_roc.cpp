// ROC / AUC: hand-made cases, ties as the Mann-Whitney statistic, brute-force oracle, working points, bad input.
#include "support/doctest.hpp"

#include <cmath>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/rng.hpp"
#include "hepgnn/metrics/roc.hpp"

namespace hepgnn_test_roc {  // this file's names, apart from the other files of its unity build

using namespace hepgnn;

namespace {
double brute_auc(const std::vector<double>& s, const std::vector<double>& b) {
  double u = 0;
  for (double x : s)
    for (double y : b) u += x > y ? 1.0 : x == y ? 0.5 : 0.0;
  return u / (static_cast<double>(s.size()) * static_cast<double>(b.size()));
}
}  // namespace

TEST_CASE("auc: hand-made cases") {
  CHECK(auc(std::vector<double>{3, 4, 5}, std::vector<double>{0, 1, 2}) == 1.0);
  CHECK(auc(std::vector<double>{0, 1}, std::vector<double>{2, 3, 4}) == 0.0);
  CHECK(auc(std::vector<double>{1, 1, 1}, std::vector<double>{1, 1}) == 0.5);
  // pairs: (1,2)=0 (1,0)=1 (2,2)=.5 (2,0)=1 (3,2)=1 (3,0)=1 -> 4.5 / 6
  CHECK(auc(std::vector<double>{1, 2, 3}, std::vector<double>{2, 0}) == doctest::Approx(0.75));
  CHECK(auc(std::vector<float>{0.5f}, std::vector<float>{0.5f}) == 0.5);
  const std::vector<double> scores{0.1, 0.9, 0.4, 0.4};
  const std::vector<int> labels{0, 1, 1, 0};
  // sig {0.9, 0.4}, bkg {0.1, 0.4}: 1 + 1 + 1 + 0.5 -> 3.5 / 4
  CHECK(auc(std::span<const double>(scores), std::span<const int>(labels)) == doctest::Approx(0.875));
}

TEST_CASE("auc and roc area agree with the brute-force Mann-Whitney statistic, with many ties") {
  rng g(7);
  for (int rep = 0; rep < 20; ++rep) {
    std::vector<double> s(1 + g.below(60)), b(1 + g.below(60));
    for (double& x : s) x = static_cast<double>(g.below(8)) + 1.0;  // integer scores: lots of ties
    for (double& x : b) x = static_cast<double>(g.below(8));
    const double ref = brute_auc(s, b);
    CHECK(auc(s, b) == doctest::Approx(ref).epsilon(1e-12));
    CHECK(area(roc(s, b)) == doctest::Approx(ref).epsilon(1e-12));
  }
}

TEST_CASE("roc: points, thresholds and working points") {
  const auto c = roc(std::vector<double>{3, 1}, std::vector<double>{2, 0});
  REQUIRE(c.thresholds.size() == 5);
  CHECK(std::isinf(c.thresholds[0]));
  CHECK(c.thresholds[1] == 3);
  CHECK(c.thresholds[4] == 0);
  CHECK(c.signal_eff == std::vector<double>{0, 0.5, 0.5, 1, 1});
  CHECK(c.background_eff == std::vector<double>{0, 0, 0.5, 0.5, 1});
  CHECK(signal_efficiency_at_background_efficiency(c, 0.0) == 0.5);  // top of the vertical segment
  CHECK(signal_efficiency_at_background_efficiency(c, 0.5) == 1.0);
  CHECK(signal_efficiency_at_background_efficiency(c, 1.0) == 1.0);
  CHECK(signal_efficiency_at_rejection(c, 2.0) == 1.0);
  CHECK(std::isinf(rejection_at_signal_efficiency(c, 0.5)));
  CHECK(rejection_at_signal_efficiency(c, 1.0) == doctest::Approx(2.0));
  // diagonal (tied) step: s = b = {1}: (0,0) -> (1,1); eps_b = 0.3 interpolates to 0.3
  const auto d = roc(std::vector<double>{1}, std::vector<double>{1});
  CHECK(signal_efficiency_at_background_efficiency(d, 0.3) == doctest::Approx(0.3));
  CHECK(rejection_at_signal_efficiency(d, 0.25) == doctest::Approx(4.0));
}

TEST_CASE("roc/auc: bad input is rejected with a message") {
  const std::vector<double> empty, one{1.0}, bad{1.0, NAN};
  CHECK_THROWS_WITH_AS(auc(empty, one), doctest::Contains("need at least one signal"), hepgnn::error);
  CHECK_THROWS_WITH_AS(auc(bad, one), doctest::Contains("signal score 1 is not finite"), hepgnn::error);
  CHECK_THROWS_WITH_AS(roc(one, bad), doctest::Contains("background score 1 is not finite"), hepgnn::error);
  const std::vector<int> labels{0, 2};
  const std::vector<double> s2{1.0, 2.0};
  CHECK_THROWS_WITH_AS(auc(std::span<const double>(s2), std::span<const int>(labels)),
                       doctest::Contains("labels must be 0 or 1"), hepgnn::error);
  const std::vector<int> l1{0};
  CHECK_THROWS_WITH_AS(auc(std::span<const double>(s2), std::span<const int>(l1)),
                       doctest::Contains("same size"), hepgnn::error);
  const auto c = roc(one, one);
  CHECK_THROWS_WITH_AS(signal_efficiency_at_background_efficiency(c, 1.5), doctest::Contains("eps_b must be in [0, 1]"),
                       hepgnn::error);
  CHECK_THROWS_WITH_AS(signal_efficiency_at_rejection(c, 0.5), doctest::Contains("must be >= 1"), hepgnn::error);
  CHECK_THROWS_WITH_AS(rejection_at_signal_efficiency(c, 0.0), doctest::Contains("eps_s must be in (0, 1]"),
                       hepgnn::error);
}

}  // namespace hepgnn_test_roc
