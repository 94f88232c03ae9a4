#pragma once
// The engine's view of the tape (private to autodiff/): the records, variable ids and
// generations, and the operations record(), the sweep and the gradient functions use.
// Users see tape.hpp (scopes, guards, memory) and record.hpp (defining ops).
#include <array>
#include <cstdint>

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
  const Shape& in_shape(int i) const { return i < kInline ? in_shapes[i] : extra_in_shapes[i - kInline]; }
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
  /// Record index that produced variable `id`, or kNoRecord for a leaf.
  static std::uint32_t record_of(const Tape& t, std::uint32_t id) { return t.id_rec_[id]; }
  static std::uint64_t gen_of(const Tape& t, std::uint32_t id) { return t.id_gen_[id]; }
  /// Accounts for a tensor saved by a record.
  static void retain_saved(Tape& t, const Tensor& x);
  /// The op whose backward rule is running (for error messages), or nullptr.
  static const char* backward_of(const Tape& t) { return t.backward_of_; }
  static void set_backward_of(Tape& t, const char* op) { t.backward_of_ = op; }

  static const VarRef& var(const Tensor& x) { return x.var_; }
  static void set_var(Tensor& x, const VarRef& v) { x.var_ = v; }
};

}  // namespace hyperad::detail
