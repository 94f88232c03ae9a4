#pragma once
/// \file tape.hpp
/// The thread-local Wengert list, as users see it: scopes that rewind it, guards that stop
/// recording or check every result, and its memory figures.
///
/// Every op whose inputs include a tensor that requires gradients appends one record (its
/// backward rule, input variables and saved tensors) and gives its output a new variable.
/// Variables are numbered along the tape, so a reverse sweep is a walk down the list; no
/// recursion over a graph. `TapeScope` rewinds the list on exit (also on exceptions);
/// variables created inside a rewound scope become stale, and using them is an error. How
/// an op records itself is record.hpp; the records themselves are the engine's business.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

namespace detail {
struct Record;
struct TapeEngine;
class SavedTable;
}  // namespace detail

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
  /// once, however many records save it: a data matrix used by every step counts once):
  /// owned_bytes() + referenced_bytes().
  std::size_t memory_bytes() const { return owned_bytes() + referenced_bytes(); }
  /// The memory the tape keeps alive that it owns: its records, and the saved tensors that
  /// were created after the mark in force when a record first saved them (the last
  /// reset_peak_memory(); before any, every saved tensor). Differences of this figure
  /// across a computation are what recording it cost: the process grows by them.
  std::size_t owned_bytes() const;
  /// The saved tensors created before the last reset_peak_memory() (data matrices, λ, a
  /// state computed earlier): the tape holds references to them, they take no new memory.
  std::size_t referenced_bytes() const { return saved_referenced_; }
  /// The fixed bytes of one record (its share of memory_bytes() besides the saved tensors).
  static std::size_t record_bytes();
  /// Highest memory_bytes(), owned_bytes() and referenced_bytes() since the last
  /// reset_peak_memory() (each its own maximum).
  std::size_t peak_memory_bytes() const { return peak_bytes_; }
  std::size_t peak_owned_bytes() const { return peak_owned_; }
  std::size_t peak_referenced_bytes() const { return peak_referenced_; }
  /// Starts a measurement: tensors created from now on count as owned when saved (those
  /// already saved keep their class), and the peaks restart from the current figures.
  void reset_peak_memory();

 private:
  friend struct detail::TapeEngine;
  friend class TapeScope;
  friend class NoGradGuard;
  friend class EnableGradGuard;
  friend class FiniteCheckGuard;

  void rewind(std::size_t records, std::size_t variables);

  std::vector<std::unique_ptr<detail::Record[]>> blocks_;  // arena: stable addresses, reused after rewind
  std::size_t n_records_ = 0;
  std::size_t scope_floor_ = 0;  // records at the innermost open TapeScope (0: none)
  std::vector<std::uint64_t> id_gen_;  // generation of each live variable id
  std::vector<std::uint32_t> id_rec_;  // record that produced it (kNoRecord for leaves)
  std::uint64_t next_gen_ = 1;
  std::uint64_t serial_;  // unique in the process: tells a tape from a later one at the same address
  std::shared_ptr<const char> token_ = std::make_shared<const char>();  // expires with the tape
  std::size_t saved_owned_ = 0, saved_referenced_ = 0;
  std::unique_ptr<detail::SavedTable> saved_refs_;  // storage → records saving it, owned or not
  std::uint64_t owned_from_ = 0;  // storages with a serial at least this are owned
  std::size_t peak_bytes_ = 0, peak_owned_ = 0, peak_referenced_ = 0;
  void note_peaks();
  bool recording_ = true;
  bool check_finite_ = false;
  const char* backward_of_ = nullptr;  // op whose backward rule is running (for messages)
};

/// RAII: rewinds the current tape to where it was at construction, also when an exception
/// unwinds. Nest freely; inner scopes rewind first.
class TapeScope {
 public:
  TapeScope()
      : tape_(Tape::current()), records_(tape_.n_records_), variables_(tape_.id_gen_.size()),
        outer_floor_(tape_.scope_floor_) {
    tape_.scope_floor_ = records_;
  }
  ~TapeScope() {
    tape_.rewind(records_, variables_);
    tape_.scope_floor_ = outer_floor_;
  }
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape& tape_;
  std::size_t records_, variables_, outer_floor_;
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
