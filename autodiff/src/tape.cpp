#include "hyperad/autodiff/tape.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/record.hpp"

namespace hyperad {

Tape::Tape() = default;
Tape::~Tape() = default;

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

detail::VarRef Tape::new_leaf() {
  auto id = static_cast<std::uint32_t>(id_gen_.size());
  if (id == kNoVar) throw TapeError("tape: too many variables (2^32); rewind the tape with a TapeScope");
  std::uint64_t gen = next_gen_++;
  id_gen_.push_back(gen);
  id_rec_.push_back(kNoVar);
  return {this, gen, id};
}

Record& Tape::push(std::uint16_t n_out) {
  if (n_records_ == blocks_.size() * kBlock) blocks_.push_back(std::make_unique<Record[]>(kBlock));
  Record& r = record_at(n_records_);
  auto rec_index = static_cast<std::uint32_t>(n_records_);
  ++n_records_;
  peak_bytes_ = std::max(peak_bytes_, memory_bytes());
  r.out_id = static_cast<std::uint32_t>(id_gen_.size());
  r.n_out = n_out;
  for (std::uint16_t k = 0; k < n_out; ++k) {
    id_gen_.push_back(next_gen_++);
    id_rec_.push_back(rec_index);
  }
  return r;
}

void Tape::retain_saved(const Tensor& t) {
  if (t.nbytes() == 0 || saved_refs_[t.raw()]++ > 0) return;
  saved_bytes_ += t.nbytes();
  peak_bytes_ = std::max(peak_bytes_, memory_bytes());
}

void Tape::rewind(const Mark& m) {
  while (n_records_ > m.records) {
    Record& r = record_at(--n_records_);
    for (int k = 0; k < r.n_saved; ++k) {
      const Tensor& t = r.saved[k];
      if (t.nbytes() == 0) continue;
      auto it = saved_refs_.find(t.raw());
      if (--it->second == 0) {
        saved_bytes_ -= t.nbytes();
        saved_refs_.erase(it);
      }
    }
    r = Record{};  // releases saved tensors; the slot stays in the arena for reuse
  }
  id_gen_.resize(std::min(id_gen_.size(), m.vars));
  id_rec_.resize(id_gen_.size());
}

bool Tape::is_live(const detail::VarRef& v, const char* op, const char* what) const {
  if (v.tape == nullptr) return false;
  if (v.tape != this)
    throw TapeError(fmt::format("{}: the {} was recorded on another thread's tape; each thread differentiates "
                                "its own tensors (detach() it to use its value here)",
                                op, what));
  if (v.id >= id_gen_.size() || id_gen_[v.id] != v.gen)
    throw TapeError(fmt::format("{}: the {} was recorded in a tape scope that has been rewound, so its "
                                "derivatives are gone (detach() it to use its value as a constant)",
                                op, what));
  return true;
}

// ---- record() -------------------------------------------------------------------------

void check_finite(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) return;
  bool ok = dispatch(t.dtype(), [&]<class T>() {
    const T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
  if (!ok) {
    const char* during = Tape::current().backward_of();
    std::string where = during ? fmt::format("{} (in the backward of '{}')", op, during) : std::string(op);
    throw NonFiniteError(fmt::format("{}: non-finite value (NaN or Inf) in {} of shape {}", where, what,
                                     t.shape().str()));
  }
}

namespace {
const char* kInputRoles[] = {"first input", "second input", "third input", "fourth input"};
const char* role(std::size_t i) { return i < 4 ? kInputRoles[i] : "input"; }

template <class Range>
bool any_live(Tape& tape, const char* op, const Range& inputs) {
  bool any = false;
  std::size_t i = 0;
  for (const Tensor* t : inputs) {
    if (t && t->var().tape && tape.is_live(t->var(), op, role(i))) any = true;
    ++i;
  }
  return any;
}

void fill_inputs(Tape& tape, Record& r, const char* op, std::size_t i, const Tensor& t) {
  std::uint32_t id = kNoVar;
  if (t.defined() && t.var().tape && tape.is_live(t.var(), op, role(i))) id = t.var().id;
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
    r.saved[r.n_saved] = s;
    r.saved_version[r.n_saved] = s.version();
    tape.retain_saved(s);
    ++r.n_saved;
  }
}
}  // namespace

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  Tape& tape = Tape::current();
  return tape.recording() && any_live(tape, "any_requires_grad", inputs);
}

Tensor record(const OpDef& def, Tensor out, std::initializer_list<const Tensor*> inputs,
              std::initializer_list<const Tensor*> saved, OpAttrs attrs) {
  Tape& tape = Tape::current();
  if (tape.checking_finite()) check_finite(out, def.name, "its result");
  if (!tape.recording() || !any_live(tape, def.name, inputs)) return out;
  Record& r = tape.push(1);
  r.op = &def;
  r.n_in = static_cast<std::uint16_t>(inputs.size());
  std::size_t i = 0;
  for (const Tensor* t : inputs) fill_inputs(tape, r, def.name, i++, *t);
  out.set_var({&tape, tape.gen_of(r.out_id), r.out_id});
  fill_saved(tape, r, saved, out);  // after set_var: a saved output keeps its identity (2nd order)
  r.attrs = std::move(attrs);
  return out;
}

std::vector<Tensor> record(const OpDef& def, std::vector<Tensor> outs, std::span<const Tensor> inputs,
                           std::initializer_list<const Tensor*> saved, OpAttrs attrs) {
  Tape& tape = Tape::current();
  if (tape.checking_finite())
    for (const Tensor& o : outs) check_finite(o, def.name, "its result");
  if (!tape.recording()) return outs;
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].var().tape && tape.is_live(inputs[i].var(), def.name, role(i))) any = true;
  if (!any) return outs;
  Record& r = tape.push(static_cast<std::uint16_t>(outs.size()));
  r.op = &def;
  r.n_in = static_cast<std::uint16_t>(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) fill_inputs(tape, r, def.name, i, inputs[i]);
  for (std::size_t k = 0; k < outs.size(); ++k) {
    auto id = static_cast<std::uint32_t>(r.out_id + k);
    outs[k].set_var({&tape, tape.gen_of(id), id});
  }
  if (outs.size() > 1)
    for (const Tensor& o : outs) r.out_shapes.push_back(o.shape());
  fill_saved(tape, r, saved, outs.front());
  r.attrs = std::move(attrs);
  return outs;
}

}  // namespace hyperad
