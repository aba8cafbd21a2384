// libFuzzer target: parse_npy, npz_file and the row reader (read_npy_rows, on the bytes written to a file) on
// arbitrary bytes must either succeed or throw hepgnn::error, never read out of bounds (ASan) or hit undefined
// behaviour (UBSan). Accepted npy arrays must survive a serialize -> parse round trip unchanged, and the row
// reader must return the same rows as the whole-file parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "hepgnn/io/npy.hpp"
#include "hepgnn/io/npy_rows.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  struct scratch_file {  // on tmpfs when there is one: a disk file costs 50x the parse
    std::filesystem::path path =
        (std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path()) /
        ("hepgnn_fuzz_npy_rows_" + std::to_string(::getpid()) + ".npy");
    ~scratch_file() { std::filesystem::remove(path); }
  };
  static const scratch_file scratch;
  const std::filesystem::path& file = scratch.path;
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  bool whole_ok = false;
  hepgnn::npy_array whole;
  try {
    whole = hepgnn::parse_npy({data, size});
    whole_ok = true;
  } catch (const hepgnn::error&) {
  }
  try {
    const auto shape = hepgnn::read_npy_shape(file);
    const auto rows = hepgnn::read_npy_rows(file, 0, shape[0]);
    if (!whole_ok || rows.shape != whole.shape || rows.data != whole.data) std::abort();
    if (shape[0] > 1) (void)hepgnn::read_npy_rows(file, 1, shape[0] - 1);
  } catch (const hepgnn::error&) {
    if (whole_ok && whole.ndim() >= 1) std::abort();  // the row reader refuses only what the parser refuses
  }
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
