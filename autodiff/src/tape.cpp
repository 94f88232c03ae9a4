// The tape: its arena of records, variable ids with generations, rewinding, memory figures.
#include "hyperad/autodiff/tape.hpp"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "tape_engine.hpp"

namespace hyperad {

using detail::Record;
using detail::TapeEngine;

Tape::Tape() : saved_refs_(std::make_unique<detail::SavedTable>()) {
  static std::atomic<std::uint64_t> tapes{0};
  serial_ = ++tapes;
}
Tape::~Tape() = default;

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

std::size_t Tape::owned_bytes() const { return n_records_ * sizeof(Record) + saved_owned_; }
std::size_t Tape::record_bytes() { return sizeof(Record); }

void Tape::note_peaks() {
  peak_bytes_ = std::max(peak_bytes_, memory_bytes());
  peak_owned_ = std::max(peak_owned_, owned_bytes());
  peak_referenced_ = std::max(peak_referenced_, referenced_bytes());
}

void Tape::reset_peak_memory() {
  owned_from_ = detail::Storage::serial_mark();
  peak_bytes_ = memory_bytes();
  peak_owned_ = owned_bytes();
  peak_referenced_ = referenced_bytes();
}

void Tape::rewind(std::size_t records, std::size_t variables) {
  while (n_records_ > records) {
    Record& r = TapeEngine::record_at(*this, --n_records_);
    for (int k = 0; k < r.n_saved; ++k) {
      const Tensor& t = r.saved[k];
      if (!t.defined() || t.nbytes() == 0) continue;
      detail::SavedTable::Entry& e = saved_refs_->at(t.storage_id());
      if (--e.records == 0) {
        (e.owned ? saved_owned_ : saved_referenced_) -= t.nbytes();
        saved_refs_->erase(e);
      }
    }
    r.clear();  // releases saved tensors; the slot and its vectors' capacity stay for reuse
  }
  id_gen_.resize(std::min(id_gen_.size(), variables));
  id_rec_.resize(id_gen_.size());
}

namespace detail {

VarRef TapeEngine::new_leaf(Tape& t) {
  auto id = static_cast<std::uint32_t>(t.id_gen_.size());
  if (id == kNoVar) throw TapeError("tape: too many variables (2^32); rewind the tape with a TapeScope");
  const std::uint64_t gen = t.next_gen_++;
  t.id_gen_.push_back(gen);
  t.id_rec_.push_back(kNoRecord);
  return {&t, gen, id};
}

Record& TapeEngine::push(Tape& t, std::uint16_t n_out) {
  if (t.n_records_ == t.blocks_.size() * kBlock) t.blocks_.push_back(std::make_unique<Record[]>(kBlock));
  Record& r = record_at(t, t.n_records_);
  const auto rec_index = static_cast<std::uint32_t>(t.n_records_);
  ++t.n_records_;
  t.note_peaks();
  r.out_id = static_cast<std::uint32_t>(t.id_gen_.size());
  r.n_out = n_out;
  for (std::uint16_t k = 0; k < n_out; ++k) {
    t.id_gen_.push_back(t.next_gen_++);
    t.id_rec_.push_back(rec_index);
  }
  return r;
}

void TapeEngine::retain_saved(Tape& t, const Tensor& x) {
  if (!x.defined() || x.nbytes() == 0) return;  // an undefined tensor (an absent optional input) holds nothing
  SavedTable::Entry& ref = (*t.saved_refs_)[x.storage_id()];
  if (ref.records++ > 0) return;
  ref.owned = x.storage_->serial >= t.owned_from_;
  (ref.owned ? t.saved_owned_ : t.saved_referenced_) += x.nbytes();
  t.note_peaks();
}

bool TapeEngine::is_live(const Tape& t, const VarRef& v, const char* op, const char* what) {
  if (v.tape == nullptr) return false;
  if (v.tape != &t)
    throw TapeError(fmt::format("{}: the {} was recorded on another thread's tape; each thread differentiates "
                                "its own tensors (detach() it to use its value here)",
                                op, what));
  if (!alive(t, v))
    throw TapeError(fmt::format("{}: the {} was recorded in a tape scope that has been rewound, so its "
                                "derivatives are gone (detach() it to use its value as a constant)",
                                op, what));
  return true;
}

}  // namespace detail
}  // namespace hyperad
