// Memo (memo.hpp): a result kept with the identity of its inputs, checked at every call.
#include "hyperad/autodiff/memo.hpp"

#include <algorithm>
#include <unordered_set>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "tape_engine.hpp"

namespace hyperad {

using detail::TapeEngine;
using detail::VarRef;

namespace {

// The kinds of entries (memo.hpp); a recorded entry's kind is its tape's serial (≥ 1).
constexpr std::uint64_t kRecordingOff = 0;
constexpr std::uint64_t kNothingRecorded = ~std::uint64_t{0};

bool same_var(const VarRef& a, const VarRef& b) { return a.tape == b.tape && a.gen == b.gen && a.id == b.id; }

[[noreturn]] void refuse_hidden() {
  throw ValueError(
      "Memo::get: compute read a recorded tensor that is not among the inputs (its result would carry wrong "
      "derivatives when reused); pass every tensor the result depends on as an input");
}

}  // namespace

struct Memo::Entry {
  std::uint64_t kind = kRecordingOff;
  std::weak_ptr<const char> tape;  // a recorded entry's tape: expired when its thread has ended
  TensorList inputs;               // held, so that their storages cannot be reused by other tensors
  std::vector<std::uint64_t> versions;
  Tensor result;
  std::uint64_t result_version = 0;
};

Memo::Memo() = default;
Memo::~Memo() = default;

Tensor Memo::get(const TensorList& inputs, const std::function<Tensor()>& compute) {
  Tape& tape = Tape::current();
  // Every input that requires gradients must be live on this tape (requires_grad throws
  // for a rewound or foreign one); with recording off, their variables do not matter.
  bool recorded = false;
  if (tape.recording())
    for (const Tensor& t : inputs) recorded = (t.defined() && t.requires_grad()) || recorded;
  const std::uint64_t kind = !tape.recording() ? kRecordingOff : recorded ? TapeEngine::serial(tape) : kNothingRecorded;
  std::vector<std::uint64_t> versions;  // read before compute, which might write an input
  for (const Tensor& t : inputs) versions.push_back(t.defined() ? t.version() : 0);

  auto matches = [&](const Entry& e) {
    if (e.kind != kind || e.inputs.size() != inputs.size() || e.result.version() != e.result_version) return false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor &a = inputs[i], &b = e.inputs[i];
      if (a.defined() != b.defined()) return false;
      if (!a.defined()) continue;
      if (!a.shares_storage(b) || versions[i] != e.versions[i] || a.shape() != b.shape() || a.dtype() != b.dtype())
        return false;
      if (recorded && !same_var(TapeEngine::var(a), TapeEngine::var(b))) return false;
    }
    const VarRef& v = TapeEngine::var(e.result);
    return !recorded || v.tape == nullptr || TapeEngine::alive(tape, v);
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Entries of ended threads, and this thread's recorded entry once rewound, are dropped.
    std::erase_if(entries_, [&](const Entry& e) {
      if (e.kind == kRecordingOff || e.kind == kNothingRecorded) return false;
      if (e.tape.expired()) return true;
      const VarRef& v = TapeEngine::var(e.result);
      return e.kind == TapeEngine::serial(tape) && v.tape != nullptr && !TapeEngine::alive(tape, v);
    });
    for (const Entry& e : entries_)
      if (matches(e)) {
        ++hits_;
        return e.result;
      }
  }

  const std::size_t records0 = tape.num_records(), variables0 = tape.num_variables();
  Tensor result = compute();
  if (!result.defined()) throw ValueError("Memo::get: compute returned an undefined tensor");
  if (kind == kRecordingOff) {
    result = result.detach();  // an input returned as it is keeps no variable
  } else {
    // What compute recorded may read only the inputs' variables and its own.
    std::unordered_set<std::uint32_t> allowed;
    for (const Tensor& t : inputs)
      if (t.defined() && recorded && TapeEngine::alive(tape, TapeEngine::var(t))) allowed.insert(TapeEngine::var(t).id);
    for (std::size_t r = records0; r < tape.num_records(); ++r) {
      const detail::Record& rec = TapeEngine::record_at(tape, r);
      for (int i = 0; i < rec.n_in; ++i) {
        const std::uint32_t id = rec.in_id(i);
        if (id != detail::kNoVar && id < variables0 && !allowed.count(id)) refuse_hidden();
      }
    }
    const VarRef& v = TapeEngine::var(result);
    if (v.tape != nullptr && TapeEngine::alive(tape, v) && v.id < variables0 && !allowed.count(v.id))
      refuse_hidden();  // a recorded tensor returned as it is
  }

  Entry e{kind, {}, inputs, std::move(versions), result, result.version()};
  if (recorded) e.tape = TapeEngine::token(tape);
  std::lock_guard<std::mutex> lock(mutex_);
  ++misses_;
  for (Entry& old : entries_)
    if (old.kind == kind) {
      old = std::move(e);
      return result;
    }
  entries_.push_back(std::move(e));
  return result;
}

void Memo::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

std::int64_t Memo::misses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

std::int64_t Memo::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

}  // namespace hyperad
