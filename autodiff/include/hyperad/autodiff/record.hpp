#pragma once
/// \file record.hpp
/// How an op puts itself on the tape. Each op's forward code computes its value with the
/// kernels, then calls `record(def, out, {inputs}, {saved}, attrs)`; `def` names the op and
/// its backward rule, defined right beside it. Users can define their own ops the same way.
///
///     Tensor exp(const Tensor& x) {
///       Tensor y = kernels::exp(x);
///       static constexpr OpDef def{"exp", [](Backward& b) {
///         b.accumulate(0, b.grad_out() * b.saved(0)); }};
///       return record(def, std::move(y), {&x}, {kSaveOutput});
///     }
#include <initializer_list>
#include <span>
#include <vector>

#include "hyperad/autodiff/tape.hpp"

namespace hyperad {

namespace detail {
class Sweep;
}

/// What a backward rule sees: the output cotangents, the saved tensors and attributes of
/// its record, and a sink for the input cotangents. A rule adds (never assigns) into each
/// input's cotangent, so an input used twice is right by construction; cotangents may have
/// the broadcast (output) shape: the engine sums them back to the input's shape.
class Backward {
 public:
  Backward(const Record& rec, const Tensor* grad_outs, detail::Sweep& sweep)
      : rec_(rec), gouts_(grad_outs), sweep_(sweep) {}

  const char* op_name() const { return rec_.op->name; }
  int num_inputs() const { return rec_.n_in; }
  int num_outputs() const { return rec_.n_out; }
  /// Cotangent of output k (undefined when nothing downstream reached that output of a
  /// multi-output record; use grad_out_or_zeros then).
  const Tensor& grad_out(int k = 0) const { return gouts_[k]; }
  Tensor grad_out_or_zeros(int k) const;
  /// Saved tensor k; throws TapeError if it was modified in place since it was saved.
  const Tensor& saved(int k) const;
  const OpAttrs& attrs() const { return rec_.attrs; }
  double real(int k) const { return rec_.attrs.real[k]; }
  std::int64_t integer(int k) const { return rec_.attrs.integer[k]; }
  const std::vector<std::int64_t>& ints() const { return rec_.attrs.ints; }
  template <class T>
  const T& payload() const {
    return *static_cast<const T*>(rec_.attrs.payload.get());
  }
  /// Whether input i's cotangent is wanted by this sweep (skip computing it otherwise).
  bool needs(int i) const;
  const Shape& input_shape(int i) const { return rec_.in_shape(i); }
  /// True when the sweep records itself (create_graph): rules that step outside the DSL
  /// (e.g. an inner solve) must then stay differentiable or refuse.
  bool create_graph() const;
  /// Adds `g` to input i's cotangent (reduced to input i's shape if it was broadcast).
  void accumulate(int i, Tensor g);

 private:
  const Record& rec_;
  const Tensor* gouts_;
  detail::Sweep& sweep_;
};

/// In a `saved` list, stands for the op's own output (which `record` receives by value,
/// so a pointer to the caller's variable would see it moved away).
inline constexpr const Tensor* kSaveOutput = nullptr;

/// Records op `def` producing `out` from `inputs`, saving `saved` for the backward rule.
/// Returns `out`, with a new variable id when recorded. Nothing is recorded when no input
/// requires gradients or recording is off (NoGradGuard). With FiniteCheckGuard on, `out`
/// is checked for NaN/Inf first. Inputs may be undefined tensors (ignored).
Tensor record(const OpDef& def, Tensor out, std::initializer_list<const Tensor*> inputs,
              std::initializer_list<const Tensor*> saved = {}, OpAttrs attrs = {});
/// Same, for a variable number of inputs (concat, stack) or several outputs
/// (fixed_point over a tuple of state tensors). Returns the outputs.
std::vector<Tensor> record(const OpDef& def, std::vector<Tensor> outs, std::span<const Tensor> inputs,
                           std::initializer_list<const Tensor*> saved = {}, OpAttrs attrs = {});

/// True when recording is on and any of `inputs` requires gradients (cheap; ops may use it
/// to skip work only the backward pass needs).
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// Throws NonFiniteError naming `op` (and `what`) if `t` holds a NaN or Inf.
void check_finite(const Tensor& t, const char* op, const char* what);

}  // namespace hyperad
