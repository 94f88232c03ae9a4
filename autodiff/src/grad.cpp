#include "hyperad/autodiff/grad.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "sweep.hpp"

namespace hyperad {

// ---- Backward (the rule's view of the sweep) ---------------------------------------------

Tensor Backward::grad_out_or_zeros(int k) const {
  if (gouts_[k].defined()) return gouts_[k];
  const Shape& s = rec_.n_out > 1 ? rec_.out_shapes[k] : Shape{};
  Dtype d = Dtype::f64;
  for (int j = 0; j < rec_.n_out; ++j)
    if (gouts_[j].defined()) d = gouts_[j].dtype();
  return zeros(s, d);
}

const Tensor& Backward::saved(int k) const {
  const Tensor& t = rec_.saved[k];
  if (t.version() != rec_.saved_version[k])
    throw TapeError(fmt::format("backward of '{}': a tensor of shape {} saved for the backward pass was "
                                "modified in place after it was recorded (version {} then, {} now)",
                                rec_.op->name, t.shape().str(), rec_.saved_version[k], t.version()));
  return t;
}

bool Backward::needs(int i) const { return sweep_.needs(rec_, i); }
bool Backward::create_graph() const { return sweep_.create_graph(); }
void Backward::accumulate(int i, Tensor g) { sweep_.accumulate(rec_, i, std::move(g)); }

// ---- the sweep --------------------------------------------------------------------------

namespace detail {

bool Sweep::kept(std::uint32_t id) const { return std::find(keep_.begin(), keep_.end(), id) != keep_.end(); }

void Sweep::add(std::uint32_t id, Tensor g, const char* op, int input) {
  if (tape_.checking_finite()) {
    std::string what = input < 0 ? "the seed" : fmt::format("the gradient of input {}", input);
    check_finite(g, op, what.c_str());
  }
  Tensor& a = adj_[id - lo_];
  if (!a.defined()) {
    a = std::move(g);
  } else if (!create_graph_ && a.use_count() == 1 && a.var().tape == nullptr) {
    kernels::add_inplace(a, g);  // a is the sweep's own buffer: accumulate without allocating
  } else {
    a = hyperad::add(a, g);
  }
}

void Sweep::accumulate(const Record& r, int i, Tensor g) {
  if (!g.defined() || !needs(r, i)) return;
  const Shape& s = r.in_shape(i);
  if (g.shape() != s) {
    if (broadcast_shapes(g.shape(), s, r.op->name) != g.shape())
      throw ShapeError(fmt::format("backward of '{}': gradient of shape {} for input {} of shape {}", r.op->name,
                                   g.shape().str(), i, s.str()));
    g = sum_to(g, s);  // broadcasting is undone once, here, for every op
  }
  std::string name = fmt::format("backward of '{}'", r.op->name);
  add(r.in_id(i), std::move(g), name.c_str(), i);
}

void Sweep::run(std::size_t rec_end) {
  std::vector<Tensor> gouts;
  for (std::size_t ri = rec_end; ri-- > 0;) {
    const Record& r = tape_.record_at(ri);
    if (r.out_id + r.n_out <= lo_) break;  // everything below is upstream of every input
    bool any = false;
    gouts.assign(r.n_out, Tensor{});
    for (int k = 0; k < r.n_out; ++k) {
      std::uint32_t id = r.out_id + k;
      if (id > hi_ || id < lo_) continue;
      Tensor& a = adj_[id - lo_];
      if (!a.defined()) continue;
      any = true;
      gouts[k] = kept(id) ? a : std::move(a);  // free adjoints as soon as they are consumed
    }
    if (!any) continue;  // no adjoint reaches this record
    Backward b(r, gouts.data(), *this);
    const char* outer = tape_.backward_of();
    tape_.set_backward_of(r.op->name);
    try {
      r.op->backward(b);
    } catch (...) {
      tape_.set_backward_of(outer);
      throw;
    }
    tape_.set_backward_of(outer);
  }
}

}  // namespace detail

// ---- grad ---------------------------------------------------------------------------

std::vector<Tensor> grad(std::span<const Tensor> outputs, std::span<const Tensor> seeds,
                         std::span<const Tensor> inputs, bool create_graph, bool allow_unused) {
  Tape& tape = Tape::current();
  if (seeds.size() != outputs.size() && !seeds.empty())
    throw ValueError(fmt::format("grad: {} seeds given for {} outputs", seeds.size(), outputs.size()));
  if (inputs.empty()) throw ValueError("grad: no inputs given");

  std::uint32_t lo = kNoVar;
  std::vector<std::uint32_t> in_ids;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined()) throw ValueError(fmt::format("grad: input {} is an undefined tensor", i));
    if (!tape.is_live(x.var(), "grad", fmt::format("input {}", i).c_str()))
      throw TapeError(fmt::format("grad: input {} (shape {}) is not on the tape: it does not require "
                                  "gradients; call requires_grad_() on it before computing the output",
                                  i, x.shape().str()));
    in_ids.push_back(x.var().id);
    lo = std::min(lo, x.var().id);
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
    if (!tape.is_live(y.var(), "grad", fmt::format("output {}", k).c_str())) continue;
    std::uint32_t id = y.var().id;
    if (id < lo) continue;  // computed before every input: cannot depend on them
    seeded.emplace_back(id, std::move(seed));
    hi = std::max(hi, id);
    if (tape.record_of(id) != kNoVar) rec_end = std::max<std::size_t>(rec_end, tape.record_of(id) + 1);
  }

  std::vector<Tensor> result(inputs.size());
  if (!seeded.empty()) {
    detail::Sweep sweep(tape, lo, hi, create_graph, in_ids);
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

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const GradOptions& opts) {
  return grad(std::span<const Tensor>(&output, 1), std::span<const Tensor>(&opts.seed, 1), inputs,
              opts.create_graph, opts.allow_unused);
}

// ---- vjp -------------------------------------------------------------------------

std::vector<Tensor> detach_all(const std::vector<Tensor>& xs) {
  std::vector<Tensor> out;
  out.reserve(xs.size());
  for (const Tensor& x : xs) out.push_back(x.detach());
  return out;
}

std::vector<Tensor> make_leaves(const std::vector<Tensor>& xs) {
  std::vector<Tensor> out = detach_all(xs);
  for (Tensor& x : out) x.requires_grad_();
  return out;
}

struct VjpBuilder {
  static Pullback make(std::vector<Tensor> in, std::vector<Tensor> out) {
    Pullback p;
    p.inputs_ = std::move(in);
    p.outputs_ = std::move(out);
    return p;
  }
};

std::vector<Tensor> Pullback::operator()(std::span<const Tensor> cotangents, bool create_graph) const {
  if (inputs_.empty()) throw ValueError("Pullback: called on an empty pullback (not made by vjp)");
  if (cotangents.size() != outputs_.size())
    throw ValueError(fmt::format("Pullback: {} cotangents given for {} outputs", cotangents.size(),
                                 outputs_.size()));
  Tape& tape = Tape::current();
  for (const Tensor& x : inputs_) tape.is_live(x.var(), "Pullback", "recorded function");
  ++calls_;
  for (std::size_t k = 0; k < outputs_.size(); ++k)
    if (!cotangents[k].defined())
      throw ValueError(fmt::format("Pullback: cotangent {} is undefined (pass zeros for an unused output)", k));
  return grad(outputs_, cotangents, inputs_, create_graph, /*allow_unused=*/true);
}

Vjp vjp(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
        const std::vector<Tensor>& inputs) {
  std::vector<Tensor> xs = make_leaves(inputs);
  std::vector<Tensor> out;
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


ValueAndGrad value_and_grad(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                            const std::vector<Tensor>& inputs) {
  TapeScope scope;
  EnableGradGuard on;
  auto xs = make_leaves(inputs);
  Tensor y = fn(xs);
  GradOptions o;
  o.allow_unused = true;
  auto g = grad(y, xs, o);
  return {y.detach(), std::move(g)};
}

std::vector<Tensor> hvp(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& x,
                        const std::vector<Tensor>& v) {
  if (x.size() != v.size())
    throw ValueError(fmt::format("hvp: {} directions given for {} inputs", v.size(), x.size()));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i].shape() != v[i].shape())
      throw ShapeError(fmt::format("hvp: direction {} has shape {} but input {} has shape {}", i,
                                   v[i].shape().str(), i, x[i].shape().str()));
  TapeScope scope;
  EnableGradGuard on;
  auto xs = make_leaves(x);
  Tensor y = f(xs);
  GradOptions o;
  o.create_graph = true;
  o.allow_unused = true;
  auto g = grad(y, xs, o);
  // A gradient that does not depend on x (f linear in x) contributes a zero block.
  std::vector<Tensor> outs, seeds;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (g[i].requires_grad()) {
      outs.push_back(g[i]);
      seeds.push_back(v[i]);
    }
  if (outs.empty()) {
    std::vector<Tensor> z;
    for (const Tensor& xi : x) z.push_back(zeros_like(xi));
    return z;
  }
  return grad(outs, seeds, xs, false, true);
}

Tensor hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v) {
  return hvp([&f](const std::vector<Tensor>& xs) { return f(xs[0]); }, std::vector<Tensor>{x},
             std::vector<Tensor>{v})[0];
}

}  // namespace hyperad
