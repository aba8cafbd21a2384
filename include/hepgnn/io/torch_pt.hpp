#pragma once
/// @file torch_pt.hpp
/// @brief PyTorch state dicts saved with `torch.save(model.state_dict(), path)`, read without Python: the zip
/// format (torch >= 1.6) and the legacy format (torch < 1.6), loaded into any model with for_each_param.
///
/// Zip format: `<name>/data.pkl` (the pickled dict), `<name>/data/<key>` (each storage's raw little-endian bytes),
/// `<name>/byteorder` (optional, "little"). Legacy format: pickles of the magic number, the protocol version
/// (1001) and the system info, then the pickled dict, then a pickled list of storage keys, then per key an int64
/// element count and the storage's bytes.
/// In both, a tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
/// whose storage is a persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
///
/// Like `torch.load(weights_only=True)`, only what a state dict holds is accepted: the opcodes of
/// io/detail_pickle.hpp and the globals collections.OrderedDict, torch._utils._rebuild_tensor(_v2),
/// torch._utils._rebuild_parameter and torch.<Type>Storage for float, double, half, bfloat16, int64, int32, int16,
/// int8, uint8 and bool. Anything else (os.system, builtins.eval, ...) is refused naming it. Every count, offset
/// and stride is checked against the bytes that are there before anything is allocated or read; the reader is
/// fuzzed (tests/fuzz/fuzz_torch_pt.cpp). Big-endian files are refused.
///
/// Usage:
///   auto sd = hepgnn::torch_state_dict::load("G_best_epoch.pt");
///   sd.names();  sd.at("mp_layers.0.fe.net.0.weight").values<float>();  // shape: .shape, PyTorch order
///   hepgnn::load_weights(model, sd, options);                            // as for safetensors / npz

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hepgnn/io/detail_bytes.hpp"
#include "hepgnn/io/detail_pickle.hpp"
#include "hepgnn/io/detail_state.hpp"
#include "hepgnn/io/detail_zip.hpp"
#include "hepgnn/io/safetensors.hpp"

namespace hepgnn {

/// @brief One tensor of a state dict: name, dtype, shape (PyTorch order) and its values gathered into C order
/// (the same type as a safetensors tensor: `values<T>()`, `read(T*)`, `numel()`).
using torch_tensor = safetensors_tensor;

namespace detail {

/// @brief The storage type names torch.save writes, and their dtypes.
inline std::optional<safetensors_dtype> torch_storage_dtype(std::string_view global) {
  static constexpr std::pair<std::string_view, safetensors_dtype> table[] = {
      {"torch.FloatStorage", safetensors_dtype::f32},   {"torch.DoubleStorage", safetensors_dtype::f64},
      {"torch.HalfStorage", safetensors_dtype::f16},    {"torch.BFloat16Storage", safetensors_dtype::bf16},
      {"torch.LongStorage", safetensors_dtype::i64},    {"torch.IntStorage", safetensors_dtype::i32},
      {"torch.ShortStorage", safetensors_dtype::i16},   {"torch.CharStorage", safetensors_dtype::i8},
      {"torch.ByteStorage", safetensors_dtype::u8},     {"torch.BoolStorage", safetensors_dtype::boolean}};
  for (const auto& [name, d] : table)
    if (name == global) return d;
  return std::nullopt;
}

/// @brief What the state-dict pickle may build: storages (persistent ids), tensors and OrderedDicts.
struct torch_pickle_policy {
  struct storage {
    std::string key;
    safetensors_dtype dtype;
    std::uint64_t numel = 0;
    bytes data;  ///< filled after the pickle (numel * element size bytes)
    bool loaded = false;
  };
  struct tensor {
    std::size_t storage = 0;
    std::int64_t offset = 0;
    std::vector<std::int64_t> shape, stride;
  };
  std::string who;
  std::vector<storage> storages;
  std::map<std::string, std::size_t> storage_index;
  std::vector<tensor> tensors;
  using obj = pickle_object;
  using kind = obj::kind;

  bool global(const std::string& name) const {
    return name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
           name == "torch._utils._rebuild_tensor" || name == "torch._utils._rebuild_parameter" ||
           torch_storage_dtype(name).has_value();
  }

  std::uint32_t persistent(std::uint32_t pid, std::vector<obj>& a) {
    const auto& t = a[pid];
    const auto is = [&](std::size_t k, kind want) { return a[t.items[k]].k == want; };
    HEPGNN_CHECK(t.k == kind::tuple && (t.items.size() == 5 || t.items.size() == 6) && is(0, kind::string) &&
                     a[t.items[0]].s == "storage" && is(1, kind::global) && is(2, kind::string) &&
                     is(3, kind::string) && is(4, kind::integer) && (t.items.size() == 5 || is(5, kind::none)),
                 who, ": persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
    const auto dtype = torch_storage_dtype(a[t.items[1]].s);
    HEPGNN_CHECK(dtype.has_value(), who, ": persistent id names '", a[t.items[1]].s, "', not a storage type");
    const std::string key = a[t.items[2]].s;  // a copy: the arena grows below
    const std::int64_t numel = a[t.items[4]].i;
    HEPGNN_CHECK(numel >= 0, who, ": storage '", key, "' has a negative size ", numel);
    auto [it, fresh] = storage_index.emplace(key, storages.size());
    if (fresh) {
      storages.push_back(storage{key, *dtype, static_cast<std::uint64_t>(numel), {}, false});
    } else {
      const auto& s = storages[it->second];
      HEPGNN_CHECK(s.dtype == *dtype && s.numel == static_cast<std::uint64_t>(numel), who, ": storage '", key,
                   "' is named twice with different types or sizes");
    }
    a.push_back(obj{});
    a.back().k = kind::persistent;
    a.back().i = static_cast<std::int64_t>(it->second);
    return static_cast<std::uint32_t>(a.size() - 1);
  }

  std::vector<std::int64_t> int_tuple(const std::vector<obj>& a, std::uint32_t o, const char* what) const {
    HEPGNN_CHECK(a[o].k == kind::tuple && a[o].items.size() <= 64, who, ": tensor ", what,
                 " must be a tuple of at most 64 integers");
    std::vector<std::int64_t> v;
    for (auto i : a[o].items) {
      HEPGNN_CHECK(a[i].k == kind::integer && a[i].i >= 0, who, ": tensor ", what, " must hold integers >= 0");
      v.push_back(a[i].i);
    }
    return v;
  }

  std::uint32_t reduce(std::uint32_t callable, std::uint32_t args, std::vector<obj>& a) {
    const std::string f = a[callable].s;                 // copies: the arena may grow below
    const std::vector<std::uint32_t> x = a[args].items;
    if (f == "collections.OrderedDict") {
      HEPGNN_CHECK(x.empty(), who, ": OrderedDict is only built empty in a state dict");
      a.push_back(obj{});
      a.back().k = kind::dict;
    } else if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const bool v2 = f.back() == '2';
      const bool ok = v2 ? (x.size() == 6 || x.size() == 7) : x.size() == 4;
      HEPGNN_CHECK(ok, who, ": ", f, " called with ", x.size(), " arguments");
      HEPGNN_CHECK(a[x[0]].k == kind::persistent && a[x[1]].k == kind::integer, who, ": ", f,
                   " needs a storage and an integer offset");
      if (v2)
        HEPGNN_CHECK(a[x[4]].k == kind::boolean && a[x[5]].k == kind::dict &&
                         (x.size() == 6 || a[x[6]].k == kind::none || a[x[6]].k == kind::dict),
                     who, ": ", f, " needs requires_grad (bool), hooks (dict) and optional metadata");
      tensor t{static_cast<std::size_t>(a[x[0]].i), a[x[1]].i, int_tuple(a, x[2], "size"),
               int_tuple(a, x[3], "stride")};
      HEPGNN_CHECK(t.offset >= 0 && t.shape.size() == t.stride.size(), who, ": tensor with offset ", t.offset,
                   ", size ", shape_string(t.shape), " and stride ", shape_string(t.stride), " is malformed");
      tensors.push_back(std::move(t));
      a.push_back(obj{});
      a.back().k = kind::reduced;
      a.back().i = static_cast<std::int64_t>(tensors.size() - 1);
    } else if (f == "torch._utils._rebuild_parameter") {
      HEPGNN_CHECK(x.size() == 3 && a[x[0]].k == kind::reduced && a[x[1]].k == kind::boolean &&
                       a[x[2]].k == kind::dict,
                   who, ": _rebuild_parameter needs (tensor, requires_grad, hooks)");
      return x[0];
    } else {
      hepgnn::fail(who, ": calling '", f, "' is not allowed");
    }
    return static_cast<std::uint32_t>(a.size() - 1);
  }

  void build(std::uint32_t target, std::uint32_t state, const std::vector<obj>& a) const {
    // OrderedDict's state is its __dict__ ({'_metadata': ...}): version numbers only, not needed.
    HEPGNN_CHECK(a[target].k == kind::dict && (a[state].k == kind::dict || a[state].k == kind::none), who,
                 ": BUILD is only allowed on a dict (a state dict's _metadata)");
  }
};

/// @brief For the header pickles of the legacy format: plain values only.
struct plain_pickle_policy {
  bool global(const std::string&) const { return false; }
  std::uint32_t persistent(std::uint32_t, std::vector<pickle_object>&) { hepgnn::fail("torch_state_dict: unexpected persistent id"); }
  std::uint32_t reduce(std::uint32_t, std::uint32_t, std::vector<pickle_object>&) { hepgnn::fail("torch_state_dict: unexpected REDUCE"); }
  void build(std::uint32_t, std::uint32_t, const std::vector<pickle_object>&) { hepgnn::fail("torch_state_dict: unexpected BUILD"); }
};

}  // namespace detail

/// @brief A PyTorch state dict read from a .pt file: named tensors in the file's order.
class torch_state_dict {
 public:
  /// @brief Parses a file's bytes (zip or legacy format); throws hepgnn::error naming the first problem.
  static torch_state_dict parse(detail::byte_view file) {
    const bool zip = file.size() >= 4 && detail::load_le<std::uint32_t>(file.data()) == 0x04034b50;
    return zip ? parse_zip(file) : parse_legacy(file);
  }

  /// @brief Reads and parses a file.
  static torch_state_dict load(const std::filesystem::path& path) {
    const auto data = detail::read_file_bytes(path, "torch_state_dict::load");
    try {
      return parse(data);
    } catch (const error& e) {
      hepgnn::fail("torch_state_dict::load('", path.string(), "'): ", std::string_view(e.what()).substr(9));
    }
  }

  /// @brief Tensor names in the file's order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }
  std::size_t size() const { return tensors_.size(); }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  /// @brief True for a file of the legacy (torch < 1.6) format.
  bool legacy() const { return legacy_; }

  /// @brief The named tensor; throws naming it when absent.
  const torch_tensor& at(const std::string& name) const {
    const auto it = index_.find(name);
    HEPGNN_CHECK(it != index_.end(), "torch_state_dict::at: no tensor named '", name, "' (", tensors_.size(),
                 " tensors in the file)");
    return tensors_[it->second];
  }

  /// @brief load_state's source interface.
  const std::vector<std::int64_t>* find_shape(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second].shape;
  }
  template <class T>
  void read(const std::string& name, T* dst) const { at(name).read(dst); }

 private:
  using policy = detail::torch_pickle_policy;
  static constexpr const char* who_zip = "torch_state_dict (zip format)";
  static constexpr const char* who_legacy = "torch_state_dict (legacy format)";

  static torch_state_dict parse_zip(detail::byte_view file) {
    const auto entries = detail::zip_directory(file, who_zip);
    const detail::zip_entry* pkl = nullptr;
    for (const auto& e : entries) {
      const std::string_view n = e.name;
      if (n.size() >= 9 && n.substr(n.size() - 9) == "/data.pkl" && n.find('/') == n.size() - 9) {
        HEPGNN_CHECK(!pkl, who_zip, ": two data.pkl entries ('", pkl ? pkl->name : "", "', '", e.name, "')");
        pkl = &e;
      }
    }
    HEPGNN_CHECK(pkl, who_zip, ": no '<name>/data.pkl' entry (not a file of torch.save)");
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);
    std::map<std::string_view, const detail::zip_entry*> by_name;  // names are unique (zip_directory checks)
    for (const auto& e : entries) by_name.emplace(e.name, &e);
    const auto find = [&](const std::string& name) -> const detail::zip_entry* {
      const auto it = by_name.find(name);
      return it == by_name.end() ? nullptr : it->second;
    };
    if (const auto* bo = find(prefix + "byteorder")) {
      const auto text = detail::zip_extract(file, *bo, who_zip);
      HEPGNN_CHECK(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()) == "little", who_zip,
                   ": byte order '", std::string(text.begin(), text.end()), "' is not supported (only little)");
    }
    const auto pickle = detail::zip_extract(file, *pkl, who_zip);
    policy p;
    p.who = who_zip;
    std::size_t pos = 0;
    detail::pickle_machine<policy> m(pickle, pos, p, p.who);
    const std::uint32_t root = m.run();
    for (auto& s : p.storages) {
      const auto* e = find(prefix + "data/" + s.key);
      HEPGNN_CHECK(e, who_zip, ": storage '", s.key, "' has no entry '", prefix, "data/", s.key, "'");
      std::uint64_t nbytes = 0;
      HEPGNN_CHECK(detail::checked_mul(s.numel, dtype_size(s.dtype), nbytes) && e->uncompressed_size == nbytes,
                   who_zip, ": storage '", s.key, "' of ", s.numel, " ", dtype_name(s.dtype), " elements has ",
                   e->uncompressed_size, " bytes");
      s.data = detail::zip_extract(file, *e, who_zip);
      s.loaded = true;
    }
    return assemble(m.arena(), root, p, file.size(), false);
  }

  static torch_state_dict parse_legacy(detail::byte_view file) {
    using kind = detail::pickle_object::kind;
    std::size_t pos = 0;
    const std::string who = who_legacy;
    detail::plain_pickle_policy plain;
    {
      detail::pickle_machine<detail::plain_pickle_policy> m(file, pos, plain, who);
      const auto r = m.run();
      static constexpr unsigned char magic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
      const auto& o = m.arena()[r];
      HEPGNN_CHECK(o.k == kind::big_integer && o.s.size() == sizeof magic && std::memcmp(o.s.data(), magic, sizeof magic) == 0,
                   who, ": not a PyTorch file (no magic number; neither zip nor legacy format)");
    }
    {
      detail::pickle_machine<detail::plain_pickle_policy> m(file, pos, plain, who);
      const auto& o = m.arena()[m.run()];
      HEPGNN_CHECK(o.k == kind::integer && o.i == 1001, who, ": protocol version ", o.i, " (expected 1001)");
    }
    {
      detail::pickle_machine<detail::plain_pickle_policy> m(file, pos, plain, who);
      const auto& a = m.arena();
      const auto& info = a[m.run()];
      HEPGNN_CHECK(info.k == kind::dict, who, ": the system info is not a dict");
      bool little = false;
      for (std::size_t k = 0; k + 1 < info.items.size(); k += 2)
        if (a[info.items[k]].k == kind::string && a[info.items[k]].s == "little_endian")
          little = a[info.items[k + 1]].k == kind::boolean && a[info.items[k + 1]].i == 1;
      HEPGNN_CHECK(little, who, ": the file was written on a big-endian machine, which is not supported");
    }
    policy p;
    p.who = who;
    detail::pickle_machine<policy> m(file, pos, p, p.who);
    const std::uint32_t root = m.run();
    {
      detail::pickle_machine<detail::plain_pickle_policy> km(file, pos, plain, who);
      const auto& a = km.arena();
      const auto& keys = a[km.run()];
      HEPGNN_CHECK(keys.k == kind::list, who, ": the storage key list is not a list");
      for (auto k : keys.items) {
        HEPGNN_CHECK(a[k].k == kind::string, who, ": a storage key is not a string");
        const auto it = p.storage_index.find(a[k].s);
        HEPGNN_CHECK(it != p.storage_index.end(), who, ": storage key '", a[k].s, "' is used by no tensor");
        auto& s = p.storages[it->second];
        HEPGNN_CHECK(!s.loaded, who, ": storage '", s.key, "' is listed twice");
        HEPGNN_CHECK(file.size() - pos >= 8, who, ": the file ends before storage '", s.key, "'");
        const std::uint64_t count = detail::load_le<std::uint64_t>(file.data() + pos);
        pos += 8;
        std::uint64_t nbytes = 0;
        HEPGNN_CHECK(count == s.numel && detail::checked_mul(count, dtype_size(s.dtype), nbytes) &&
                         nbytes <= file.size() - pos,
                     who, ": storage '", s.key, "' claims ", count, " elements (its tensors say ", s.numel, ") with ",
                     file.size() - pos, " bytes left");
        s.data.assign(file.data() + pos, file.data() + pos + nbytes);
        pos += nbytes;
        s.loaded = true;
      }
    }
    for (const auto& s : p.storages)
      HEPGNN_CHECK(s.loaded, who, ": storage '", s.key, "' has no data (missing from the key list)");
    return assemble(m.arena(), root, p, file.size(), true);
  }

  /// The dict's tensors gathered into C order, each bounds-checked against its storage.
  static torch_state_dict assemble(const std::vector<detail::pickle_object>& a, std::uint32_t root, const policy& p,
                                   std::size_t file_size, bool legacy) {
    using kind = detail::pickle_object::kind;
    const auto& d = a[root];
    HEPGNN_CHECK(d.k == kind::dict, p.who, ": the file does not hold a dict (a state dict) at its top");
    torch_state_dict out;
    out.legacy_ = legacy;
    // Tensors may share storages (views, tied weights): bound what the gathered copies may total.
    const std::uint64_t budget = 16 * static_cast<std::uint64_t>(file_size) + (1u << 20);
    std::uint64_t total = 0;
    for (std::size_t k = 0; k + 1 < d.items.size(); k += 2) {
      const auto& key = a[d.items[k]];
      const auto& val = a[d.items[k + 1]];
      HEPGNN_CHECK(key.k == kind::string, p.who, ": a key of the state dict is not a string");
      HEPGNN_CHECK(val.k == kind::reduced, p.who, ": entry '", key.s, "' is not a tensor");
      HEPGNN_CHECK(out.index_.emplace(key.s, out.tensors_.size()).second, p.who, ": tensor '", key.s,
                   "' appears twice");
      const auto& t = p.tensors[static_cast<std::size_t>(val.i)];
      const auto& s = p.storages[t.storage];
      std::uint64_t numel = 0;
      HEPGNN_CHECK(detail::checked_numel(t.shape, numel), p.who, ": tensor '", key.s, "' has size ",
                   detail::shape_string(t.shape), " (too many elements)");
      const std::size_t es = dtype_size(s.dtype);
      if (numel > 0) {  // the last element it reads: offset + sum (size_i - 1) stride_i, within the storage
        std::uint64_t last = static_cast<std::uint64_t>(t.offset);
        bool ok = last < s.numel;
        for (std::size_t i = 0; ok && i < t.shape.size(); ++i) {
          std::uint64_t step = 0;
          ok = detail::checked_mul(static_cast<std::uint64_t>(t.shape[i] - 1), static_cast<std::uint64_t>(t.stride[i]), step) &&
               step < s.numel && last + step < s.numel;
          last += step;
        }
        HEPGNN_CHECK(ok, p.who, ": tensor '", key.s, "' (offset ", t.offset, ", size ", detail::shape_string(t.shape),
                     ", stride ", detail::shape_string(t.stride), ") reads outside its storage of ", s.numel,
                     " elements");
      }
      // Stride-0 views and shared storages can make a tensor larger than its storage: bound the copies' total.
      HEPGNN_CHECK(numel <= budget && (total += numel * es) <= budget, p.who, ": tensor '", key.s,
                   "' brings the gathered tensors to more than ", budget,
                   " bytes (16 times the file): refused as a hostile file");
      torch_tensor tt;
      tt.name = key.s;
      tt.dtype = s.dtype;
      tt.shape = t.shape;
      tt.data.resize(numel * es);
      gather(s.data.data(), es, t, numel, tt.data.data());
      out.tensors_.push_back(std::move(tt));
    }
    return out;
  }

  /// Copies a strided view into C order (one element size at a time; the innermost run is one memcpy when its
  /// stride is 1).
  static void gather(const unsigned char* src, std::size_t es, const policy::tensor& t, std::uint64_t numel,
                     unsigned char* dst) {
    if (numel == 0) return;
    const std::size_t nd = t.shape.size();
    if (nd == 0) {
      std::memcpy(dst, src + static_cast<std::size_t>(t.offset) * es, es);
      return;
    }
    const auto inner = static_cast<std::size_t>(t.shape[nd - 1]);
    const auto inner_stride = static_cast<std::size_t>(t.stride[nd - 1]);
    std::vector<std::int64_t> idx(nd, 0);
    std::uint64_t done = 0;
    while (done < numel) {
      std::size_t base = static_cast<std::size_t>(t.offset);
      for (std::size_t i = 0; i + 1 < nd; ++i) base += static_cast<std::size_t>(idx[i] * t.stride[i]);
      if (inner_stride == 1) {
        std::memcpy(dst, src + base * es, inner * es);
      } else {
        for (std::size_t j = 0; j < inner; ++j) std::memcpy(dst + j * es, src + (base + j * inner_stride) * es, es);
      }
      dst += inner * es;
      done += inner;
      for (std::size_t i = nd - 1; i-- > 0;) {  // odometer over the outer dimensions
        if (++idx[i] < t.shape[i]) break;
        idx[i] = 0;
      }
    }
  }

  std::vector<torch_tensor> tensors_;
  std::map<std::string, std::size_t> index_;
  bool legacy_ = false;
};

/// @brief Loads a model's parameters and buffers from a PyTorch state dict, strict by default (as the safetensors
/// load_weights: a missing, unexpected or mis-shaped tensor throws naming it and both shapes).
template <class Model>
load_report load_weights(Model& model, const torch_state_dict& sd, const load_options& options) {
  return detail::load_state(model, sd, options, "load_weights(torch state dict)");
}

/// @brief As above with only the strictness chosen.
template <class Model>
load_report load_weights(Model& model, const torch_state_dict& sd, bool strict = true) {
  return load_weights(model, sd, load_options{.strict = strict});
}

}  // namespace hepgnn
