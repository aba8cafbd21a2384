#pragma once
/// @file particle_flow.hpp
/// @brief Particle-flow metrics on per-element candidates: confusion matrix, per-class efficiency and fake
/// rate, pT / energy response and resolution per class, anti-kT R=0.4 jet response and resolution, and MET
/// response and resolution. Resolution is IQR / median of the reco / reference ratio throughout.

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "hepgnn/data/pf_candidates.hpp"
#include "hepgnn/metrics/jets.hpp"

namespace hepgnn::pf {

/// @brief Quantile q in [0, 1] with linear interpolation between order statistics (numpy's default).
/// NaN for an empty sample.
inline double quantile(std::vector<double> v, double q) {
  HEPGNN_CHECK(q >= 0 && q <= 1, "quantile: q must be in [0, 1], got ", q);
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// @brief Median, interquartile range and resolution (IQR / median) of a sample of response ratios.
struct response_summary {
  long count = 0;
  double median = std::numeric_limits<double>::quiet_NaN();
  double iqr = std::numeric_limits<double>::quiet_NaN();
  double resolution = std::numeric_limits<double>::quiet_NaN();  ///< iqr / median
};

/// @brief Summarises a sample of response ratios (NaN fields for an empty sample).
inline response_summary summarize_response(const std::vector<double>& ratios) {
  response_summary s;
  s.count = static_cast<long>(ratios.size());
  if (ratios.empty()) return s;
  s.median = quantile(ratios, 0.5);
  s.iqr = quantile(ratios, 0.75) - quantile(ratios, 0.25);
  s.resolution = s.median != 0 ? s.iqr / s.median : std::numeric_limits<double>::quiet_NaN();
  return s;
}

/// @brief Confusion matrix over element classes: counts[true][predicted].
struct confusion_matrix {
  std::array<std::array<long, num_classes>, num_classes> counts{};

  /// @brief Counts one element.
  void add(index_t truth, index_t predicted) { ++counts[truth][predicted]; }
  /// @brief Elements whose target is class c.
  long true_count(index_t c) const {
    long n = 0;
    for (index_t p = 0; p < num_classes; ++p) n += counts[c][p];
    return n;
  }
  /// @brief Elements predicted as class c.
  long predicted_count(index_t c) const {
    long n = 0;
    for (index_t t = 0; t < num_classes; ++t) n += counts[t][c];
    return n;
  }
  /// @brief Fraction of class-c targets predicted as class c (NaN when there are none).
  double efficiency(index_t c) const {
    const long n = true_count(c);
    return n ? static_cast<double>(counts[c][c]) / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  }
  /// @brief Fraction of class-c predictions whose target is not class c (NaN when there are none).
  double fake_rate(index_t c) const {
    const long n = predicted_count(c);
    return n ? static_cast<double>(n - counts[c][c]) / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  }
  /// @brief Row-normalised matrix (each true class sums to 1; empty rows stay 0).
  std::array<std::array<double, num_classes>, num_classes> normalized() const {
    std::array<std::array<double, num_classes>, num_classes> m{};
    for (index_t t = 0; t < num_classes; ++t) {
      const long n = true_count(t);
      for (index_t p = 0; p < num_classes; ++p) m[t][p] = n ? static_cast<double>(counts[t][p]) / static_cast<double>(n) : 0.0;
    }
    return m;
  }
};

/// @brief Options of the event-level metrics.
struct pf_metrics_config {
  double jet_r = 0.4;           ///< anti-kT radius
  double jet_ptmin = 20;        ///< reference jets below this are not evaluated
  double reco_jet_ptmin = 5;    ///< reco jets considered for matching
  double jet_match_dr = 0.2;    ///< reference-to-reco jet matching radius
  double met_min = 5;           ///< events with reference MET below this are left out of the MET ratio
};

/// @brief Everything the evaluator reports.
struct pf_report {
  confusion_matrix confusion;
  std::array<response_summary, num_classes> pt_response, energy_response;  ///< matched elements (true == predicted class)
  response_summary jet_response;   ///< matched reference jets: reco pt / reference pt
  double jet_matching_efficiency = std::numeric_limits<double>::quiet_NaN();
  response_summary met_response;   ///< reco MET / reference MET
  double met_x_sigma = std::numeric_limits<double>::quiet_NaN();  ///< IQR/1.349 of reco - reference MET_x, MET_y [GeV]
  long events = 0;
  std::vector<double> jet_ratios, met_ratios;  ///< the raw samples (for plots)
};

/// @brief Missing transverse momentum vector (-sum of candidate pT) of a candidate list.
inline std::array<double, 2> missing_pt(const candidates& c) {
  double x = 0, y = 0;
  for (index_t i = 0; i < c.size(); ++i) {
    if (c.cls[i] == none) continue;
    const double pt = c.p4(i, target::pt);
    const double phi = std::atan2(c.p4(i, target::sin_phi), c.p4(i, target::cos_phi));
    x -= pt * std::cos(phi);
    y -= pt * std::sin(phi);
  }
  return {x, y};
}

/// @brief Massless pseudojets of the non-none candidates (pt, eta, phi; the predicted energy is not used).
inline std::vector<jets::pseudojet> candidate_momenta(const candidates& c) {
  std::vector<jets::pseudojet> out;
  for (index_t i = 0; i < c.size(); ++i) {
    if (c.cls[i] == none || !(c.p4(i, target::pt) > 0)) continue;
    out.push_back(jets::pseudojet::from_pt_eta_phi(c.p4(i, target::pt), c.p4(i, target::eta),
                                                   std::atan2(c.p4(i, target::sin_phi), c.p4(i, target::cos_phi))));
  }
  return out;
}

/// @brief Accumulates per-element and per-event metrics of reconstructed candidates against reference
/// candidates (usually the event targets), event by event, and summarises them.
class pf_evaluator {
 public:
  explicit pf_evaluator(pf_metrics_config cfg = {}) : cfg_(cfg) {}

  /// @brief Adds one event. Both candidate lists are per element (same length, same element order).
  void add_event(const candidates& reference, const candidates& reco) {
    check(reference, "reference");
    check(reco, "reco");
    HEPGNN_CHECK(reference.size() == reco.size(), "pf_evaluator::add_event: reference has ", reference.size(),
                 " elements but reco has ", reco.size());
    for (index_t i = 0; i < reference.size(); ++i) {
      const index_t t = reference.cls[i], p = reco.cls[i];
      r_.confusion.add(t, p);
      if (t != none && t == p) {
        if (reference.p4(i, target::pt) > 0) pt_[t].push_back(reco.p4(i, target::pt) / reference.p4(i, target::pt));
        if (reference.p4(i, target::energy) > 0)
          e_[t].push_back(reco.p4(i, target::energy) / reference.p4(i, target::energy));
      }
    }
    const auto ref_p = candidate_momenta(reference), reco_p = candidate_momenta(reco);
    const auto ref_j = jets::cluster_antikt(ref_p, cfg_.jet_r, cfg_.jet_ptmin);
    const auto reco_j = jets::cluster_antikt(reco_p, cfg_.jet_r, cfg_.reco_jet_ptmin);
    const auto m = jets::match_jets(ref_j, reco_j, cfg_.jet_match_dr);
    for (std::size_t k = 0; k < ref_j.size(); ++k) {
      ++ref_jets_;
      if (m[k] < 0) continue;
      ++matched_jets_;
      r_.jet_ratios.push_back(reco_j[m[k]].p.pt() / ref_j[k].p.pt());
    }
    const auto a = missing_pt(reference), b = missing_pt(reco);
    const double ma = std::hypot(a[0], a[1]);
    if (ma >= cfg_.met_min) r_.met_ratios.push_back(std::hypot(b[0], b[1]) / ma);
    met_diff_.push_back(b[0] - a[0]);
    met_diff_.push_back(b[1] - a[1]);
    ++r_.events;
  }

  /// @brief The summary of all events added so far.
  pf_report report() const {
    pf_report r = r_;
    for (index_t c = 0; c < num_classes; ++c) {
      r.pt_response[c] = summarize_response(pt_[c]);
      r.energy_response[c] = summarize_response(e_[c]);
    }
    r.jet_response = summarize_response(r.jet_ratios);
    r.jet_matching_efficiency = ref_jets_ ? static_cast<double>(matched_jets_) / static_cast<double>(ref_jets_)
                                          : std::numeric_limits<double>::quiet_NaN();
    r.met_response = summarize_response(r.met_ratios);
    if (!met_diff_.empty()) r.met_x_sigma = (quantile(met_diff_, 0.75) - quantile(met_diff_, 0.25)) / 1.349;
    return r;
  }

 private:
  static void check(const candidates& c, const char* which) {
    HEPGNN_CHECK(c.p4.rows() == c.size() && c.p4.cols() == target::count, "pf_evaluator::add_event: ", which,
                 " p4 must be ", c.size(), " x ", int(target::count), ", got ", c.p4.rows(), " x ", c.p4.cols());
    for (index_t i = 0; i < c.size(); ++i) {
      HEPGNN_CHECK(c.cls[i] >= 0 && c.cls[i] < num_classes, "pf_evaluator::add_event: ", which, " class of element ",
                   i, " must be in [0, ", num_classes, "), got ", c.cls[i]);
      if (c.cls[i] == none) continue;
      for (int k = 0; k < target::count; ++k)
        HEPGNN_CHECK(std::isfinite(c.p4(i, k)), "pf_evaluator::add_event: ", which, " element ", i,
                     " has a non-finite momentum entry in column ", k);
    }
  }

  pf_metrics_config cfg_;
  pf_report r_;
  std::array<std::vector<double>, num_classes> pt_, e_;
  std::vector<double> met_diff_;
  long ref_jets_ = 0, matched_jets_ = 0;
};

}  // namespace hepgnn::pf
