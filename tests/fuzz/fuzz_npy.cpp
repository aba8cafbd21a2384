// libFuzzer target: parse_npy and npz_file on arbitrary bytes must either succeed or throw hepgnn::error, never
// read out of bounds (ASan) or hit undefined behaviour (UBSan). Accepted npy arrays must survive a
// serialize -> parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hepgnn/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto a = hepgnn::parse_npy({data, size});
    (void)a.as<double>();
    (void)a.as<bool>();
    try {
      (void)a.as_matrix<float>();
    } catch (const hepgnn::error&) {
    }
    const auto b = hepgnn::parse_npy(hepgnn::serialize_npy(a));
    if (b.dtype != a.dtype || b.shape != a.shape || b.data != a.data) std::abort();
  } catch (const hepgnn::error&) {
  }
  try {
    const auto z = hepgnn::npz_file::parse(hepgnn::detail::bytes(data, data + size));
    for (const auto& name : z.names()) {
      try {
        (void)z.read(name).as<double>();
      } catch (const hepgnn::error&) {
      }
    }
  } catch (const hepgnn::error&) {
  }
  return 0;
}
