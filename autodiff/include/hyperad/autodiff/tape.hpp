#pragma once
/// \file tape.hpp
/// The thread-local Wengert list.
///
/// Every op whose inputs include a tensor that requires gradients appends one `Record`
/// (its name, backward rule, input variables and saved tensors) and gives its output a new
/// variable id. Ids grow along the tape, so a reverse sweep is a walk down the list; no
/// recursion over a graph. `TapeScope` rewinds the list on exit (also on exceptions);
/// variables created inside a rewound scope become stale, and using them is an error.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

class Backward;
/// A backward rule: reads the output cotangent(s) and saved tensors from `b`, and
/// adds each input's cotangent with `b.accumulate(i, g)`. Written with DSL ops, so the
/// rule is itself recorded when the sweep runs with create_graph.
using BackwardFn = void (*)(Backward& b);

/// Name and backward rule of an op; one constant per op, next to its forward code.
struct OpDef {
  const char* name;
  BackwardFn backward;
};

/// Small attributes a backward rule needs besides tensors (scalars, axes, indices) and an
/// optional shared payload for ops that need more (concat's split sizes, fixed_point's map).
struct OpAttrs {
  std::array<double, 2> real{};
  std::array<std::int64_t, 2> integer{};
  std::vector<std::int64_t> ints;
  std::shared_ptr<const void> payload;
};

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

inline constexpr std::uint32_t kNoVar = 0xffffffffu;

/// Per-thread tape. Obtain it with `Tape::current()`.
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// The calling thread's tape.
  static Tape& current();

  /// Whether ops record (false inside a NoGradGuard).
  bool recording() const { return recording_; }
  /// Whether every op checks its result for NaN/Inf (see FiniteCheckGuard).
  bool checking_finite() const { return check_finite_; }

  std::size_t num_records() const { return n_records_; }
  std::size_t num_variables() const { return id_gen_.size(); }
  /// Bytes held by the records and by the tensors they save (each distinct storage counted
  /// once, however many records save it: a data matrix used by every step counts once).
  std::size_t memory_bytes() const { return n_records_ * sizeof(Record) + saved_bytes_; }
  /// Highest memory_bytes() since the last reset_peak_memory().
  std::size_t peak_memory_bytes() const { return peak_bytes_; }
  void reset_peak_memory() { peak_bytes_ = memory_bytes(); }

  // ---- engine interface (used by record(), grad(), vjp(); not needed by users) ----
  /// A position on the tape, for rewinding.
  struct Mark {
    std::size_t records;
    std::size_t vars;
  };
  Mark mark() const { return {n_records_, id_gen_.size()}; }
  /// Drops every record and variable created after `m`.
  void rewind(const Mark& m);
  /// New leaf variable.
  detail::VarRef new_leaf();
  /// Appends a record; assigns `n_out` consecutive output ids and returns the record,
  /// whose op/inputs/saved fields the caller fills in.
  Record& push(std::uint16_t n_out);
  Record& record_at(std::size_t i) { return block(i)[i % kBlock]; }
  /// True when `v` names a live variable of this tape; throws TapeError if it names a
  /// rewound one or one of another thread's tape (`what` describes the tensor's role).
  bool is_live(const detail::VarRef& v, const char* op, const char* what) const;
  /// Record index that produced variable `id`, or kNoVar for a leaf.
  std::uint32_t record_of(std::uint32_t id) const { return id_rec_[id]; }
  std::uint64_t gen_of(std::uint32_t id) const { return id_gen_[id]; }
  /// Accounts for a tensor saved by a record (engine use).
  void retain_saved(const Tensor& t);
  /// Name of the op whose backward rule is running (for error messages), or nullptr.
  const char* backward_of() const { return backward_of_; }
  void set_backward_of(const char* op) { backward_of_ = op; }

 private:
  friend class NoGradGuard;
  friend class EnableGradGuard;
  friend class FiniteCheckGuard;
  static constexpr std::size_t kBlock = 1024;
  Record* block(std::size_t i) { return blocks_[i / kBlock].get(); }

  std::vector<std::unique_ptr<Record[]>> blocks_;  // arena: stable addresses, reused after rewind
  std::size_t n_records_ = 0;
  std::vector<std::uint64_t> id_gen_;  // generation of each live variable id
  std::vector<std::uint32_t> id_rec_;  // record that produced it (kNoVar for leaves)
  std::uint64_t next_gen_ = 1;
  std::size_t saved_bytes_ = 0;
  std::unordered_map<const void*, std::uint32_t> saved_refs_;  // storage → records saving it
  std::size_t peak_bytes_ = 0;
  bool recording_ = true;
  bool check_finite_ = false;
  const char* backward_of_ = nullptr;
};

/// RAII: rewinds the current tape to where it was at construction, also when an exception
/// unwinds. Nest freely; inner scopes rewind first.
class TapeScope {
 public:
  TapeScope() : tape_(Tape::current()), mark_(tape_.mark()) {}
  ~TapeScope() { tape_.rewind(mark_); }
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape& tape_;
  Tape::Mark mark_;
};

/// RAII: ops run as plain computations (nothing recorded) until the guard dies.
class NoGradGuard {
 public:
  NoGradGuard() : tape_(Tape::current()), prev_(tape_.recording_) { tape_.recording_ = false; }
  ~NoGradGuard() { tape_.recording_ = prev_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape& tape_;
  bool prev_;
};

/// RAII: re-enables recording inside a NoGradGuard (used for nested derivatives).
class EnableGradGuard {
 public:
  EnableGradGuard() : tape_(Tape::current()), prev_(tape_.recording_) { tape_.recording_ = true; }
  ~EnableGradGuard() { tape_.recording_ = prev_; }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  Tape& tape_;
  bool prev_;
};

/// RAII: every op (forward and backward) checks its result and throws NonFiniteError
/// naming the op at the first NaN or Inf. Costs a pass over each result; for debugging.
class FiniteCheckGuard {
 public:
  explicit FiniteCheckGuard(bool on = true) : tape_(Tape::current()), prev_(tape_.check_finite_) {
    tape_.check_finite_ = on;
  }
  ~FiniteCheckGuard() { tape_.check_finite_ = prev_; }
  FiniteCheckGuard(const FiniteCheckGuard&) = delete;
  FiniteCheckGuard& operator=(const FiniteCheckGuard&) = delete;

 private:
  Tape& tape_;
  bool prev_;
};

}  // namespace hyperad
