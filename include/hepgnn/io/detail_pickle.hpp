#pragma once
/// @file detail_pickle.hpp
/// @brief Internal: a restricted pickle machine for PyTorch state dicts (io/torch_pt.hpp). It runs only the opcodes
/// a state dict needs and builds objects in a flat arena (indices, no reference counts), so a hostile pickle can
/// neither build a reference cycle nor recurse deeply; it resolves no global itself (the caller decides which
/// names it accepts) and executes nothing.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hepgnn/io/detail_bytes.hpp"

namespace hepgnn::detail {

/// @brief One unpickled object. Containers hold arena indices.
struct pickle_object {
  enum class kind : std::uint8_t { none, boolean, integer, big_integer, floating, string, tuple, list, dict, global,
                                   persistent, reduced };
  kind k = kind::none;
  std::int64_t i = 0;             ///< boolean / integer value; for `reduced`: the caller's result tag
  double f = 0;                   ///< floating value
  std::string s;                  ///< string; global "module.name"; big_integer: its little-endian bytes
  std::vector<std::uint32_t> items;  ///< tuple / list items; dict: key, value, key, value, ...; persistent: {pid}
};

/// @brief Runs one pickle from `data[pos]` to its STOP (pos is left after it).
/// The Policy decides what globals mean (the caller's allow-list): `global(name)` returns false to refuse a name;
/// `reduce(callable, args, arena)` and `persistent(pid, arena)` return the index of the result object (they may
/// append to the arena) or throw; `build(target, state, arena)` checks a BUILD.
/// Limits: at most `max_objects` objects (bounds memory whatever the bytes); memo keys are any 32-bit value.
template <class Policy>
class pickle_machine {
 public:
  using kind = pickle_object::kind;
  static constexpr std::size_t max_objects = std::size_t{1} << 21;

  pickle_machine(byte_view data, std::size_t& pos, Policy& policy, const std::string& who)
      : d_(data), pos_(pos), policy_(policy), who_(who) {}

  std::vector<pickle_object>& arena() { return arena_; }

  /// @brief Executes opcodes until STOP; returns the index of the object on top of the stack.
  std::uint32_t run() {
    for (;;) {
      const std::size_t at = pos_;
      const unsigned char op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          const unsigned v = byte();
          HEPGNN_CHECK(v >= 2 && v <= 5, who_, ": pickle protocol ", v, " is not supported (2 to 5)");
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint only
        case '.': {                 // STOP
          HEPGNN_CHECK(stack_.size() == 1 && marks_.empty(), who_, ": pickle stops with ", stack_.size(),
                       " objects on its stack (expected one)");
          return stack_.back();
        }
        case '}': push(make(kind::dict)); break;   // EMPTY_DICT
        case ']': push(make(kind::list)); break;   // EMPTY_LIST
        case ')': push(make(kind::tuple)); break;  // EMPTY_TUPLE
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 't': {  // TUPLE
          const std::size_t m = pop_mark(at);
          const std::uint32_t t = make(kind::tuple);
          arena_[t].items.assign(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
          stack_.resize(m);
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const std::size_t n = static_cast<std::size_t>(op - 0x84);
          need_stack(n, at);
          const std::uint32_t t = make(kind::tuple);
          arena_[t].items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case 'q': memo_[byte()] = top(at); break;                  // BINPUT
        case 'r': memo_[load_le<std::uint32_t>(take(4))] = top(at); break;  // LONG_BINPUT
        case 0x94: memo_[static_cast<std::uint32_t>(memo_.size())] = top(at); break;  // MEMOIZE
        case 'h': push(get(byte(), at)); break;                                   // BINGET
        case 'j': push(get(load_le<std::uint32_t>(take(4)), at)); break;          // LONG_BINGET
        case 'X': string_op(load_le<std::uint32_t>(take(4))); break;              // BINUNICODE
        case 0x8c: string_op(byte()); break;                                      // SHORT_BINUNICODE
        case 'T': string_op(load_le<std::uint32_t>(take(4))); break;              // BINSTRING
        case 'U': string_op(byte()); break;                                       // SHORT_BINSTRING
        case 'J': integer(static_cast<std::int32_t>(load_le<std::uint32_t>(take(4)))); break;  // BININT
        case 'K': integer(byte()); break;                                                        // BININT1
        case 'M': integer(load_le<std::uint16_t>(take(2))); break;                               // BININT2
        case 0x8a: {  // LONG1: little-endian two's complement of n bytes
          const std::size_t n = byte();
          const unsigned char* p = take(n);
          if (n <= 8) {
            std::uint64_t u = 0;
            for (std::size_t k = 0; k < n; ++k) u |= static_cast<std::uint64_t>(p[k]) << (8 * k);
            if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * n);  // sign-extend
            integer(static_cast<std::int64_t>(u));
          } else {
            const std::uint32_t o = make(kind::big_integer);
            arena_[o].s.assign(reinterpret_cast<const char*>(p), n);
            push(o);
          }
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const unsigned char* p = take(8);
          std::uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];
          const std::uint32_t o = make(kind::floating);
          arena_[o].f = std::bit_cast<double>(u);
          push(o);
          break;
        }
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          const std::uint32_t o = make(kind::boolean);
          arena_[o].i = op == 0x88;
          push(o);
          break;
        }
        case 'N': push(make(kind::none)); break;  // NONE
        case 'c': {                               // GLOBAL "module\nname\n"
          std::string module = line(at), name = line(at);
          global(module + "." + name, at);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          need_stack(2, at);
          const auto& mod = arena_[stack_[stack_.size() - 2]];
          const auto& nam = arena_[stack_.back()];
          HEPGNN_CHECK(mod.k == kind::string && nam.k == kind::string, who_, ": STACK_GLOBAL at byte ", at,
                       " needs two strings");
          std::string full = mod.s + "." + nam.s;
          stack_.resize(stack_.size() - 2);
          global(full, at);
          break;
        }
        case 'R': {  // REDUCE
          need_stack(2, at);
          const std::uint32_t args = stack_.back(), callable = stack_[stack_.size() - 2];
          stack_.resize(stack_.size() - 2);
          HEPGNN_CHECK(arena_[callable].k == kind::global && arena_[args].k == kind::tuple, who_,
                       ": REDUCE at byte ", at, " needs an allowed global and a tuple of arguments");
          push(policy_.reduce(callable, args, arena_));
          check_size();
          break;
        }
        case 'Q': {  // BINPERSID
          need_stack(1, at);
          const std::uint32_t pid = stack_.back();
          stack_.pop_back();
          push(policy_.persistent(pid, arena_));
          check_size();
          break;
        }
        case 's': {  // SETITEM
          need_stack(3, at);
          const std::uint32_t v = stack_.back(), k = stack_[stack_.size() - 2], d = stack_[stack_.size() - 3];
          stack_.resize(stack_.size() - 2);
          container(d, kind::dict, "SETITEM", at).items.insert(arena_[d].items.end(), {k, v});
          break;
        }
        case 'u': {  // SETITEMS
          const std::size_t m = pop_mark(at);
          HEPGNN_CHECK(m >= 1 && (stack_.size() - m) % 2 == 0, who_, ": SETITEMS at byte ", at,
                       " needs a dict and key-value pairs");
          auto& dict = container(stack_[m - 1], kind::dict, "SETITEMS", at);
          dict.items.insert(dict.items.end(), stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
          stack_.resize(m);
          break;
        }
        case 'a': {  // APPEND
          need_stack(2, at);
          const std::uint32_t v = stack_.back(), l = stack_[stack_.size() - 2];
          stack_.pop_back();
          container(l, kind::list, "APPEND", at).items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          const std::size_t m = pop_mark(at);
          HEPGNN_CHECK(m >= 1, who_, ": APPENDS at byte ", at, " has no list below its mark");
          auto& list = container(stack_[m - 1], kind::list, "APPENDS", at);
          list.items.insert(list.items.end(), stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
          stack_.resize(m);
          break;
        }
        case 'b': {  // BUILD
          need_stack(2, at);
          const std::uint32_t state = stack_.back();
          stack_.pop_back();
          policy_.build(stack_.back(), state, arena_);
          break;
        }
        default:
          hepgnn::fail(who_, ": pickle opcode 0x", hex(op), opcode_name(op), " at byte ", at,
                       " is not allowed in a state dict (only the opcodes of torch.save's dicts of tensors run)");
      }
    }
  }

 private:
  unsigned char byte() { return *take(1); }
  const unsigned char* take(std::size_t n) {
    HEPGNN_CHECK(n <= d_.size() - pos_, who_, ": the pickle is truncated (", n, " bytes needed at byte ", pos_,
                 " of ", d_.size(), ")");
    const unsigned char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string line(std::size_t at) {
    std::string s;
    for (;;) {
      HEPGNN_CHECK(pos_ < d_.size() && s.size() < 256, who_, ": GLOBAL at byte ", at, " has no name line");
      const char ch = static_cast<char>(d_[pos_++]);
      if (ch == '\n') return s;
      s.push_back(ch);
    }
  }
  void check_size() {
    HEPGNN_CHECK(arena_.size() <= max_objects, who_, ": the pickle builds more than ", max_objects, " objects");
  }
  std::uint32_t make(kind k) {
    check_size();
    arena_.push_back(pickle_object{});
    arena_.back().k = k;
    return static_cast<std::uint32_t>(arena_.size() - 1);
  }
  void push(std::uint32_t o) { stack_.push_back(o); }
  void need_stack(std::size_t n, std::size_t at) {
    const std::size_t floor = marks_.empty() ? 0 : marks_.back();
    HEPGNN_CHECK(stack_.size() >= floor + n, who_, ": opcode at byte ", at, " needs ", n,
                 " objects on the stack above the last mark");
  }
  std::uint32_t top(std::size_t at) {
    HEPGNN_CHECK(!stack_.empty(), who_, ": memo store at byte ", at, " with an empty stack");
    return stack_.back();
  }
  std::uint32_t get(std::uint32_t key, std::size_t at) {
    const auto it = memo_.find(key);
    HEPGNN_CHECK(it != memo_.end(), who_, ": memo get at byte ", at, " of key ", key, ", which was never stored");
    return it->second;
  }
  std::size_t pop_mark(std::size_t at) {
    HEPGNN_CHECK(!marks_.empty(), who_, ": opcode at byte ", at, " needs a MARK");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    return m;
  }
  pickle_object& container(std::uint32_t o, kind k, const char* op, std::size_t at) {
    HEPGNN_CHECK(arena_[o].k == k, who_, ": ", op, " at byte ", at, " on an object that is not a ",
                 k == kind::dict ? "dict" : "list");
    return arena_[o];
  }
  void string_op(std::size_t n) {
    const unsigned char* p = take(n);
    const std::uint32_t o = make(kind::string);
    arena_[o].s.assign(reinterpret_cast<const char*>(p), n);
    push(o);
  }
  void integer(std::int64_t v) {
    const std::uint32_t o = make(kind::integer);
    arena_[o].i = v;
    push(o);
  }
  void global(const std::string& name, std::size_t at) {
    HEPGNN_CHECK(policy_.global(name), who_, ": global '", name, "' at byte ", at,
                 " is not allowed (a state dict holds only OrderedDicts, tensors and their storages)");
    const std::uint32_t o = make(kind::global);
    arena_[o].s = name;
    push(o);
  }
  static std::string hex(unsigned char op) {
    const char* digits = "0123456789abcdef";
    return {digits[op >> 4], digits[op & 15]};
  }
  static const char* opcode_name(unsigned char op) {
    switch (op) {
      case 'i': return " (INST)";
      case 'o': return " (OBJ)";
      case 0x81: return " (NEWOBJ)";
      case 0x92: return " (NEWOBJ_EX)";
      case 'I': return " (INT)";
      case 'L': return " (LONG)";
      case 'F': return " (FLOAT)";
      case 'S': return " (STRING)";
      case 'V': return " (UNICODE)";
      case 'P': return " (PERSID)";
      case 'g': return " (GET)";
      case 'p': return " (PUT)";
      case '0': return " (POP)";
      case '1': return " (POP_MARK)";
      case '2': return " (DUP)";
      case 0x82: return " (EXT1)";
      case 0x8b: return " (LONG4)";
      default: return "";
    }
  }

  byte_view d_;
  std::size_t& pos_;
  Policy& policy_;
  const std::string& who_;
  std::vector<pickle_object> arena_;
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, std::uint32_t> memo_;
};

}  // namespace hepgnn::detail
