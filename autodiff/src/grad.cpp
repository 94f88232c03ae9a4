#include "hyperad/autodiff/grad.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "deferred.hpp"
#include "sweep.hpp"

namespace hyperad {

using detail::TapeEngine;

// ---- grad ---------------------------------------------------------------------------

namespace {

// With recording off, ops leave no history: an output computed here cannot depend on
// anything as far as the tape knows. Its "gradient" would be zeros or a misleading "does not
// depend on input" — refuse with the real cause instead.
const char* const kUnrecordedAdvice =
    "recording is off here (a NoGradGuard is active; inner solves, finite-difference references "
    "and checkpointed sweeps evaluate maps unrecorded), so nothing computed here has a derivative "
    "history. To differentiate inside a map (e.g. Φ(w) = w − η·∇L(w)), use gradient_of(f, w), "
    "which records its own scope when needed";

void refuse_unrecorded(std::span<const Tensor> outputs, std::span<const Tensor> inputs) {
  if (Tape::current().recording()) return;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && !inputs[i].requires_grad())
      throw TapeError(fmt::format("grad: input {} (shape {}) does not require gradients: {}", i,
                                  inputs[i].shape().str(), kUnrecordedAdvice));
  for (std::size_t k = 0; k < outputs.size(); ++k)
    if (outputs[k].defined() && !outputs[k].requires_grad())
      throw TapeError(fmt::format("grad: output {} (shape {}) was computed without recording: {}", k,
                                  outputs[k].shape().str(), kUnrecordedAdvice));
}

TensorList sweep_grad(std::span<const Tensor> outputs, std::span<const Tensor> seeds,
                      std::span<const Tensor> inputs, bool create_graph, bool allow_unused) {
  Tape& tape = Tape::current();
  if (seeds.size() != outputs.size() && !seeds.empty())
    throw ValueError(fmt::format("grad: {} seeds given for {} outputs", seeds.size(), outputs.size()));
  if (inputs.empty()) throw ValueError("grad: no inputs given");

  std::uint32_t lo = detail::kNoVar;
  std::vector<std::uint32_t> in_ids;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined()) throw ValueError(fmt::format("grad: input {} is an undefined tensor", i));
    if (!TapeEngine::is_live(tape, TapeEngine::var(x), "grad", fmt::format("input {}", i).c_str()))
      throw TapeError(fmt::format("grad: input {} (shape {}) is not on the tape: it does not require "
                                  "gradients; call requires_grad_() on it before computing the output",
                                  i, x.shape().str()));
    in_ids.push_back(TapeEngine::var(x).id);
    lo = std::min(lo, TapeEngine::var(x).id);
  }

  // Seeds, and the outputs that carry a derivative at all.
  std::vector<std::pair<std::uint32_t, Tensor>> seeded;
  std::uint32_t hi = 0;
  std::size_t rec_end = 0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& y = outputs[k];
    if (!y.defined()) throw ValueError(fmt::format("grad: output {} is an undefined tensor", k));
    Tensor seed = seeds.empty() ? Tensor{} : seeds[k];
    if (!seed.defined()) {
      if (y.numel() != 1)
        throw ShapeError(fmt::format("grad: output {} has shape {}; a seed (cotangent) of that shape is needed "
                                     "for a non-scalar output",
                                     k, y.shape().str()));
      seed = ones(y.shape(), y.dtype());
    } else if (seed.shape() != y.shape() || seed.dtype() != y.dtype()) {
      throw ShapeError(fmt::format("grad: seed {} {} does not match output {} {}", dtype_name(seed.dtype()),
                                   seed.shape().str(), dtype_name(y.dtype()), y.shape().str()));
    }
    if (!TapeEngine::is_live(tape, TapeEngine::var(y), "grad", fmt::format("output {}", k).c_str())) continue;
    const std::uint32_t id = TapeEngine::var(y).id;
    if (id < lo) continue;  // computed before every input: cannot depend on them
    seeded.emplace_back(id, std::move(seed));
    hi = std::max(hi, id);
    if (TapeEngine::record_of(tape, id) != detail::kNoRecord)
      rec_end = std::max<std::size_t>(rec_end, TapeEngine::record_of(tape, id) + 1);
  }

  TensorList result(inputs.size());
  if (!seeded.empty()) {
    detail::Sweep sweep(tape, lo, hi, create_graph, in_ids);
    sweep.mark_active(rec_end);
    for (auto& [id, s] : seeded) sweep.add(id, std::move(s), "grad", -1);
    if (create_graph) {
      EnableGradGuard on;
      sweep.run(rec_end);
    } else {
      NoGradGuard off;
      sweep.run(rec_end);
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& a = sweep.adjoint(in_ids[i]);
      if (a.defined()) result[i] = create_graph ? a : a.detach();
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (result[i].defined()) continue;
    if (!allow_unused)
      throw TapeError(fmt::format("grad: the output does not depend on input {} (shape {}); pass "
                                  "allow_unused to get zeros instead",
                                  i, inputs[i].shape().str()));
    result[i] = zeros_like(inputs[i]);
  }
  return result;
}

}  // namespace

TensorList grad(std::span<const Tensor> outputs, std::span<const Tensor> seeds,
                std::span<const Tensor> inputs, bool create_graph, bool allow_unused) {
  refuse_unrecorded(outputs, inputs);
  return sweep_grad(outputs, seeds, inputs, create_graph, allow_unused);
}

TensorList gradient_of(const std::function<Tensor(const TensorList&)>& f, const TensorList& x,
                       const TensorList& closes_over) {
  if (x.empty()) throw ValueError("gradient_of: no inputs given");
  // Only y's gradient is used: its value may stay unread, and in the first form nobody
  // differentiates the gradient.
  auto scalar = [&f](const TensorList& xs, bool first_order) {
    Tensor y;
    {
      detail::GradientOnlyScope only(first_order);
      y = f(xs);
    }
    if (!y.defined() || y.numel() != 1)
      throw ShapeError(fmt::format("gradient_of: the function must return a one-element tensor, got {}",
                                   y.defined() ? y.shape().str() : std::string("an undefined tensor")));
    return y;
  };
  // Nobody will differentiate the result: compute it in a scope of its own and rewind.
  if (!Tape::current().recording() || (!list::any_requires_grad(x) && !list::any_requires_grad(closes_over)))
    return value_and_grad([&](const TensorList& xs) { return scalar(xs, true); }, x).grads;
  // The caller is recording a differentiable computation: record the gradient with its
  // backward (create_graph), so reverse-over-reverse goes through it.
  TensorList xs;
  for (const Tensor& xi : x) xs.push_back(xi.requires_grad() ? xi : xi.detach().requires_grad_());
  GradOptions o;
  o.allow_unused = true;
  o.create_graph = true;
  return grad(scalar(xs, false), xs, o);
}

TensorList grad(const Tensor& output, const TensorList& inputs, const GradOptions& opts) {
  return grad(std::span<const Tensor>(&output, 1), std::span<const Tensor>(&opts.seed, 1), inputs,
              opts.create_graph, opts.allow_unused);
}

// ---- vjp -------------------------------------------------------------------------

struct VjpBuilder {
  static Pullback make(TensorList in, TensorList out) {
    Pullback p;
    p.inputs_ = std::move(in);
    p.outputs_ = std::move(out);
    return p;
  }
};

TensorList Pullback::operator()(std::span<const Tensor> cotangents, bool create_graph) const {
  if (inputs_.empty()) throw ValueError("Pullback: called on an empty pullback (not made by vjp)");
  if (cotangents.size() != outputs_.size())
    throw ValueError(fmt::format("Pullback: {} cotangents given for {} outputs", cotangents.size(),
                                 outputs_.size()));
  Tape& tape = Tape::current();
  for (const Tensor& x : inputs_) TapeEngine::is_live(tape, TapeEngine::var(x), "Pullback", "recorded function");
  ++calls_;
  for (std::size_t k = 0; k < outputs_.size(); ++k)
    if (!cotangents[k].defined())
      throw ValueError(fmt::format("Pullback: cotangent {} is undefined (pass zeros for an unused output)", k));
  return sweep_grad(outputs_, cotangents, inputs_, create_graph, /*allow_unused=*/true);
}

Pullback Pullback::with_respect_to(const std::vector<std::size_t>& positions) const {
  if (inputs_.empty()) throw ValueError("Pullback::with_respect_to: called on an empty pullback (not made by vjp)");
  Pullback p;
  p.outputs_ = outputs_;
  for (std::size_t i : positions) {
    if (i >= inputs_.size())
      throw ValueError(fmt::format("Pullback::with_respect_to: input {} of a function of {} inputs", i, inputs_.size()));
    p.inputs_.push_back(inputs_[i]);
  }
  if (p.inputs_.empty()) throw ValueError("Pullback::with_respect_to: no inputs given");
  return p;
}

Vjp vjp(const std::function<TensorList(const TensorList&)>& fn,
        const TensorList& inputs) {
  TensorList xs = list::make_leaves(inputs);
  TensorList out;
  {
    EnableGradGuard on;
    out = fn(xs);
  }
  Vjp r;
  for (const Tensor& y : out) r.value.push_back(y.detach());
  r.pullback = VjpBuilder::make(std::move(xs), std::move(out));
  return r;
}

// ---- value_and_grad, hvp --------------------------------------------------------------


ValueAndGrad value_and_grad(const std::function<Tensor(const TensorList&)>& fn,
                            const TensorList& inputs) {
  TapeScope scope;
  EnableGradGuard on;
  auto xs = list::make_leaves(inputs);
  Tensor y = fn(xs);
  GradOptions o;
  o.allow_unused = true;
  auto g = grad(y, xs, o);
  return {y.detach(), std::move(g)};
}

TensorList hvp(const std::function<Tensor(const TensorList&)>& f, const TensorList& x,
                        const TensorList& v) {
  if (x.size() != v.size())
    throw ValueError(fmt::format("hvp: {} directions given for {} inputs", v.size(), x.size()));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i].shape() != v[i].shape())
      throw ShapeError(fmt::format("hvp: direction {} has shape {} but input {} has shape {}", i,
                                   v[i].shape().str(), i, x[i].shape().str()));
  TapeScope scope;
  EnableGradGuard on;
  auto xs = list::make_leaves(x);
  Tensor y = f(xs);
  GradOptions o;
  o.create_graph = true;
  o.allow_unused = true;
  auto g = grad(y, xs, o);
  // A gradient that does not depend on x (f linear in x) contributes a zero block.
  TensorList outs, seeds;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (g[i].requires_grad()) {
      outs.push_back(g[i]);
      seeds.push_back(v[i]);
    }
  if (outs.empty()) {
    TensorList z;
    for (const Tensor& xi : x) z.push_back(zeros_like(xi));
    return z;
  }
  return grad(outs, seeds, xs, false, true);
}

Tensor hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v) {
  return hvp([&f](const TensorList& xs) { return f(xs[0]); }, TensorList{x},
             TensorList{v})[0];
}

}  // namespace hyperad
