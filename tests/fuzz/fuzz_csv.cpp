// libFuzzer target for the text readers: TrackML CSV (hits, truth, particles, cells) and FastJet event files.
// Arbitrary bytes must either parse or throw hepgnn::error, never read out of bounds (ASan) or hit undefined
// behaviour (UBSan). The input is cut at form feeds into the hits, truth, particles and cells texts, parsed in
// the order read_event uses; whatever parsed must pass the event's own consistency check or throw.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hepgnn/io/fastjet_events.hpp"
#include "hepgnn/io/trackml.hpp"

namespace {
std::string_view next_part(std::string_view& rest) {
  const std::size_t cut = rest.find('\f');
  const std::string_view part = rest.substr(0, cut);
  rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + 1);
  return part;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)hepgnn::parse_fastjet_events(text, "fuzz");
  } catch (const hepgnn::error&) {
  }
  std::string_view rest = text;
  const std::string_view hits = next_part(rest), truth = next_part(rest), particles = next_part(rest),
                         cells = next_part(rest);
  hepgnn::trackml::event ev;
  try {
    std::vector<std::int64_t> dropped;
    hepgnn::trackml::parse_hits(hits, "hits", ev, size % 2 ? &dropped : nullptr);
    if (!truth.empty()) hepgnn::trackml::parse_truth(truth, "truth", ev, &dropped);
    if (!particles.empty()) hepgnn::trackml::parse_particles(particles, "particles", ev);
    if (!cells.empty()) hepgnn::trackml::parse_cells(cells, "cells", ev);
    if (ev.has_truth() && !ev.particles.empty()) ev.validate("fuzz");
    if (ev.has_truth()) hepgnn::trackml::compute_weights(ev);
  } catch (const hepgnn::error&) {
  }
  return 0;
}
