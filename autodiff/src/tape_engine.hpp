#pragma once
// The engine's view of the tape (private to autodiff/): the records, variable ids and
// generations, and the operations record(), the sweep and the gradient functions use.
// Users see tape.hpp (scopes, guards, memory) and record.hpp (defining ops).
#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "hyperad/autodiff/record.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::detail {

inline constexpr std::uint32_t kNoVar = 0xffffffffu;
inline constexpr std::uint32_t kNoRecord = 0xffffffffu;

/// One entry of the Wengert list.
struct Record {
  static constexpr int kInline = 4;
  const OpDef* op = nullptr;
  std::uint32_t out_id = 0;  ///< first output variable; outputs are out_id .. out_id + n_out - 1
  std::uint16_t n_out = 1;
  std::uint16_t n_in = 0;
  std::uint16_t n_saved = 0;
  std::array<std::uint32_t, kInline> in_ids{};  ///< kNoVar where the input needs no gradient
  std::array<Shape, kInline> in_shapes{};
  std::vector<std::uint32_t> extra_in_ids;  ///< inputs beyond kInline (concat of many)
  std::vector<Shape> extra_in_shapes;
  std::array<Tensor, kInline> saved{};
  std::array<std::uint64_t, kInline> saved_version{};
  std::vector<Shape> out_shapes;  ///< only for multi-output records
  OpAttrs attrs;

  std::uint32_t in_id(int i) const { return i < kInline ? in_ids[i] : extra_in_ids[i - kInline]; }
  /// Back to an empty slot (the saved tensors released), keeping the vectors' capacity.
  void clear() {
    op = nullptr;
    for (int k = 0; k < n_saved; ++k) saved[static_cast<std::size_t>(k)] = Tensor{};
    n_out = 1;
    n_in = n_saved = 0;
    extra_in_ids.clear();
    extra_in_shapes.clear();
    out_shapes.clear();
    attrs.ints.clear();
    attrs.payload.reset();
  }
  const Shape& in_shape(int i) const { return i < kInline ? in_shapes[i] : extra_in_shapes[i - kInline]; }
};

/// The storages saved by a tape's records: for each, how many records save it and whether it
/// counts as owned (created after the tape's mark). An open-addressing table keyed by the
/// storage (Tensor::storage_id), linear probing, deletion by shifting back (no tombstones): saving and
/// rewinding allocate nothing once the table has grown to the tape's working size (a node
/// map's malloc and free per saved tensor were a tenth of a small op's recorded cost).
class SavedTable {
 public:
  struct Entry {
    const void* key = nullptr;
    std::uint32_t records = 0;
    bool owned = false;
  };
  /// The entry of `key`, inserted with records = 0 if absent.
  Entry& operator[](const void* key) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    std::size_t i = home(key);
    while (slots_[i].key != nullptr && slots_[i].key != key) i = (i + 1) & mask();
    if (slots_[i].key == nullptr) {
      slots_[i].key = key;
      ++size_;
    }
    return slots_[i];
  }
  /// The entry of `key`, which must be present (an engine bug otherwise: std::logic_error).
  Entry& at(const void* key) {
    std::size_t i = home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == nullptr) throw std::logic_error("tape: a saved tensor missing from the tape's table");
      i = (i + 1) & mask();
    }
    return slots_[i];
  }
  /// Removes the entry `e` (a reference from operator[] or at()).
  void erase(Entry& e) {
    std::size_t hole = static_cast<std::size_t>(&e - slots_.data());
    slots_[hole] = Entry{};
    --size_;
    // Entries after the hole that could sit in it move back, so probes stay unbroken.
    for (std::size_t j = (hole + 1) & mask(); slots_[j].key != nullptr; j = (j + 1) & mask()) {
      const std::size_t h = home(slots_[j].key);
      const bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
      if (movable) {
        slots_[hole] = slots_[j];
        slots_[j] = Entry{};
        hole = j;
      }
    }
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(const void* key) const {
    auto h = reinterpret_cast<std::uintptr_t>(key) >> 6;  // buffers are 64-byte aligned
    h *= 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 32) & mask();
  }
  void grow() {
    std::vector<Entry> old(std::max<std::size_t>(64, 2 * slots_.size()));
    old.swap(slots_);
    size_ = 0;
    for (const Entry& e : old)
      if (e.key != nullptr) (*this)[e.key] = e;
  }
  std::vector<Entry> slots_;
  std::size_t size_ = 0;
};

/// The engine's access to a Tape's and a Tensor's internals.
struct TapeEngine {
  static constexpr std::size_t kBlock = 1024;  // records per arena block

  static Record& record_at(Tape& t, std::size_t i) { return t.blocks_[i / kBlock][i % kBlock]; }
  static const Record& record_at(const Tape& t, std::size_t i) { return t.blocks_[i / kBlock][i % kBlock]; }
  /// Appends a record; assigns `n_out` consecutive output ids and returns the record, whose
  /// op/inputs/saved fields the caller fills in.
  static Record& push(Tape& t, std::uint16_t n_out);
  /// New leaf variable.
  static VarRef new_leaf(Tape& t);
  /// True when `v` names a live variable of this tape; throws TapeError if it names a
  /// rewound one or one of another thread's tape (`what` describes the tensor's role).
  static bool is_live(const Tape& t, const VarRef& v, const char* op, const char* what);
  /// True when `v` names a live variable of this tape (false for none, a rewound one or
  /// another tape's; never throws).
  static bool alive(const Tape& t, const VarRef& v) {
    return v.tape == &t && v.id < t.id_gen_.size() && t.id_gen_[v.id] == v.gen;
  }
  /// A number no other tape of the process has had.
  static std::uint64_t serial(const Tape& t) { return t.serial_; }
  /// Expires when the tape is destroyed (its thread ended): for caches keyed by tape.
  static std::weak_ptr<const char> token(const Tape& t) { return t.token_; }
  /// Record index that produced variable `id`, or kNoRecord for a leaf.
  static std::uint32_t record_of(const Tape& t, std::uint32_t id) { return t.id_rec_[id]; }
  static std::uint64_t gen_of(const Tape& t, std::uint32_t id) { return t.id_gen_[id]; }
  /// Accounts for a tensor saved by a record.
  static void retain_saved(Tape& t, const Tensor& x);
  /// Rewinds t to `records` records and `variables` variables (as a TapeScope does).
  static void rewind(Tape& t, std::size_t records, std::size_t variables) { t.rewind(records, variables); }
  /// Records at the innermost open TapeScope (0: none): nothing may rewind below it.
  static std::size_t scope_floor(const Tape& t) { return t.scope_floor_; }
  /// The op whose backward rule is running (for error messages), or nullptr.
  static const char* backward_of(const Tape& t) { return t.backward_of_; }
  static void set_backward_of(Tape& t, const char* op) { t.backward_of_ = op; }

  static const VarRef& var(const Tensor& x) { return x.var_; }
  static void set_var(Tensor& x, const VarRef& v) { x.var_ = v; }
};

}  // namespace hyperad::detail
