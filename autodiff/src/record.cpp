// record(): how an op appends itself to the tape (record.hpp).
#include "hyperad/autodiff/record.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "deferred.hpp"
#include "tape_engine.hpp"

namespace hyperad {

using detail::Record;
using detail::Deferral;
using detail::TapeEngine;

void check_finite(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) return;
  const bool ok = dispatch(t.dtype(), [&]<class T>() {
    const T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
  if (!ok) {
    const char* during = TapeEngine::backward_of(Tape::current());
    const std::string where = during ? fmt::format("{} (in the backward of '{}')", op, during) : std::string(op);
    throw NonFiniteError(fmt::format("{}: non-finite value (NaN or Inf) in {} of shape {}", where, what,
                                     t.shape().str()));
  }
}

namespace {
const char* kInputRoles[] = {"first input", "second input", "third input", "fourth input"};
const char* role(std::size_t i) { return i < 4 ? kInputRoles[i] : "input"; }

// A live variable of this tape behind input i (throws for a stale or foreign one).
bool live(const Tape& tape, const Tensor& t, const char* op, std::size_t i) {
  return t.defined() && TapeEngine::is_live(tape, TapeEngine::var(t), op, role(i));
}

void fill_input(const Tape& tape, Record& r, const char* op, std::size_t i, const Tensor& t) {
  const std::uint32_t id = live(tape, t, op, i) ? TapeEngine::var(t).id : detail::kNoVar;
  if (i < Record::kInline) {
    r.in_ids[i] = id;
    r.in_shapes[i] = t.shape();
  } else {
    r.extra_in_ids.push_back(id);
    r.extra_in_shapes.push_back(t.shape());
  }
}

void fill_saved(Tape& tape, Record& r, std::initializer_list<const Tensor*> saved, const Tensor& out) {
  if (saved.size() > Record::kInline)
    throw Error(fmt::format("{}: an op may save at most {} tensors (use OpAttrs::payload)", r.op->name,
                            Record::kInline));
  for (const Tensor* p : saved) {
    const Tensor& s = p ? *p : out;
    // A backward rule will read it: computed now, so the tape keeps no lazy value's inputs.
    if (Deferral::lazy_depth(s) > 0) Deferral::complete(s);
    TapeEngine::retain_saved(tape, s);  // first: if it throws (bad_alloc), nothing has changed
    r.saved[r.n_saved] = s;
    r.saved_version[r.n_saved] = s.version();
    ++r.n_saved;
  }
}

void name_output(Tape& tape, Tensor& out, std::uint32_t id) {
  TapeEngine::set_var(out, {&tape, TapeEngine::gen_of(tape, id), id});
}
}  // namespace

const Tensor* saved_for(const Tensor& x, const Tensor& other) {
  static const Tensor none;
  // A tape identity, even a stale one (record() then rejects it with the op's name).
  return TapeEngine::var(other).tape != nullptr ? &x : &none;
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  const Tape& tape = Tape::current();
  if (!tape.recording()) return false;
  bool any = false;
  std::size_t i = 0;
  for (const Tensor* t : inputs) {
    any = (t && live(tape, *t, "any_requires_grad", i)) || any;
    ++i;
  }
  return any;
}

Tensor record(const OpDef& def, Tensor out, std::initializer_list<const Tensor*> inputs,
              std::initializer_list<const Tensor*> saved, OpAttrs attrs) {
  Tape& tape = Tape::current();
  if (tape.checking_finite()) check_finite(out, def.name, "its result");
  if (!tape.recording()) return out;
  bool any = false;
  std::size_t i = 0;
  for (const Tensor* t : inputs) {
    any = (t && live(tape, *t, def.name, i)) || any;
    ++i;
  }
  if (!any) return out;
  Record& r = TapeEngine::push(tape, 1);
  r.op = &def;
  r.n_in = static_cast<std::uint16_t>(inputs.size());
  i = 0;
  for (const Tensor* t : inputs) fill_input(tape, r, def.name, i++, *t);
  name_output(tape, out, r.out_id);
  fill_saved(tape, r, saved, out);  // after naming: a saved output keeps its identity (2nd order)
  r.attrs = std::move(attrs);
  return out;
}

TensorList record(const OpDef& def, TensorList outs, std::span<const Tensor> inputs,
                           std::initializer_list<const Tensor*> saved, OpAttrs attrs) {
  Tape& tape = Tape::current();
  if (tape.checking_finite())
    for (const Tensor& o : outs) check_finite(o, def.name, "its result");
  if (!tape.recording()) return outs;
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) any = live(tape, inputs[i], def.name, i) || any;
  if (!any) return outs;
  Record& r = TapeEngine::push(tape, static_cast<std::uint16_t>(outs.size()));
  r.op = &def;
  r.n_in = static_cast<std::uint16_t>(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) fill_input(tape, r, def.name, i, inputs[i]);
  for (std::size_t k = 0; k < outs.size(); ++k) name_output(tape, outs[k], static_cast<std::uint32_t>(r.out_id + k));
  if (outs.size() > 1)
    for (const Tensor& o : outs) r.out_shapes.push_back(o.shape());
  fill_saved(tape, r, saved, outs.front());
  r.attrs = std::move(attrs);
  return outs;
}

}  // namespace hyperad
