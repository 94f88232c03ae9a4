// Memo (memo.hpp): a result kept with the identity of its inputs, checked at every call.
#include "hyperad/autodiff/memo.hpp"

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor_list.hpp"
#include "tape_engine.hpp"

namespace hyperad {

using detail::TapeEngine;
using detail::VarRef;

struct Memo::Entry {
  std::uint64_t tape = 0;  // 0: computed unrecorded, for every thread; else the serial of the tape recording it
  TensorList inputs;       // held, so that their storages cannot be reused by other tensors
  std::vector<std::uint64_t> versions;
  Tensor result;
  std::uint64_t result_version = 0;
};

namespace {

bool same_var(const VarRef& a, const VarRef& b) { return a.tape == b.tape && a.gen == b.gen && a.id == b.id; }

}  // namespace

Memo::Memo() = default;
Memo::~Memo() = default;

Tensor Memo::get(const TensorList& inputs, const std::function<Tensor()>& compute) {
  const Tape& tape = Tape::current();
  const bool recorded = list::any_requires_grad(inputs);  // throws for a rewound or foreign input
  const std::uint64_t owner = recorded ? TapeEngine::serial(tape) : 0;
  auto matches = [&](const Entry& e) {
    if (e.tape != owner || e.inputs.size() != inputs.size() || e.result.version() != e.result_version) return false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor &a = inputs[i], &b = e.inputs[i];
      if (a.defined() != b.defined()) return false;
      if (!a.defined()) continue;
      if (!a.shares_storage(b) || a.version() != e.versions[i] || a.shape() != b.shape() || a.dtype() != b.dtype())
        return false;
      if (recorded && !same_var(TapeEngine::var(a), TapeEngine::var(b))) return false;
    }
    const VarRef& v = TapeEngine::var(e.result);
    return !recorded || v.tape == nullptr || TapeEngine::alive(tape, v);
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Entry& e : entries_)
      if (matches(e)) {
        ++hits_;
        return e.result;
      }
  }
  Tensor result = compute();
  if (!result.defined()) throw ValueError("Memo::get: compute returned an undefined tensor");
  if (!recorded && TapeEngine::var(result).tape != nullptr)
    throw ValueError(
        "Memo::get: the result requires gradients but none of the inputs does: compute read a recorded tensor "
        "that is not among the inputs; pass every tensor the result depends on as an input");
  Entry e{owner, inputs, {}, result, result.version()};
  for (const Tensor& t : inputs) e.versions.push_back(t.defined() ? t.version() : 0);
  std::lock_guard<std::mutex> lock(mutex_);
  ++misses_;
  for (Entry& old : entries_)
    if (old.tape == owner) {
      old = std::move(e);
      return result;
    }
  entries_.push_back(std::move(e));
  return result;
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
