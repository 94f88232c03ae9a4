#pragma once
/// \file record.hpp
/// How an op puts itself on the tape — the API for writing an op of your own. Each op's
/// forward code computes its value, then calls `record(def, out, {inputs}, {saved})`;
/// `def` names the op and its backward rule, defined right beside it. The rule is written
/// with DSL ops, so a sweep with create_graph records it too and second order works:
///
/// \code
/// // cube(x) = x³ elementwise; d cube = 3x² dx.
/// hyperad::Tensor cube(const hyperad::Tensor& x) {
///   static constexpr hyperad::OpDef def{"cube", [](hyperad::Backward& b) {
///     const hyperad::Tensor& x = b.saved(0);
///     b.accumulate(0, b.grad_out() * (3.0 * x * x));
///   }};
///   const hyperad::Tensor v = x.detach();  // the value, computed without recording
///   return hyperad::record(def, v * v * v, {&x}, {&x});
/// }
/// \endcode
///
/// (tests/autodiff/test_custom_op.cpp compiles this very block and checks its first and
/// second derivatives against finite differences.)
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "hyperad/autodiff/tape.hpp"

namespace hyperad {

class Backward;
namespace detail {
class Sweep;
}

/// A backward rule: reads the output cotangent(s) and saved tensors from `b`, and adds each
/// input's cotangent with `b.accumulate(i, g)`. Written with DSL ops, so the rule is itself
/// recorded when the sweep runs with create_graph.
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

/// What a backward rule sees: the output cotangents, the saved tensors and attributes of
/// its record, and a sink for the input cotangents. A rule adds (never assigns) into each
/// input's cotangent, so an input used twice is right by construction; cotangents may have
/// the broadcast (output) shape: the engine sums them back to the input's shape.
class Backward {
 public:
  Backward(const detail::Record& rec, const Tensor* grad_outs, detail::Sweep& sweep)
      : rec_(rec), gouts_(grad_outs), sweep_(sweep) {}

  const char* op_name() const;
  int num_inputs() const;
  int num_outputs() const;
  /// Cotangent of output k (undefined when nothing downstream reached that output of a
  /// multi-output record; use grad_out_or_zeros then).
  const Tensor& grad_out(int k = 0) const { return gouts_[k]; }
  Tensor grad_out_or_zeros(int k) const;
  /// Saved tensor k; throws TapeError if it was modified in place since it was saved.
  const Tensor& saved(int k) const;
  const OpAttrs& attrs() const;
  double real(int k) const { return attrs().real[k]; }
  std::int64_t integer(int k) const { return attrs().integer[k]; }
  const std::vector<std::int64_t>& ints() const { return attrs().ints; }
  template <class T>
  const T& payload() const {
    return *static_cast<const T*>(attrs().payload.get());
  }
  /// Whether input i's cotangent is wanted by this sweep: false when the input does not
  /// depend on any variable the sweep differentiates with respect to (skip computing it).
  bool needs(int i) const;
  const Shape& input_shape(int i) const;
  /// True when the sweep records itself (create_graph): rules that step outside the DSL
  /// (e.g. an inner solve) must then stay differentiable or refuse.
  bool create_graph() const;
  /// Adds `g` to input i's cotangent (reduced to input i's shape if it was broadcast).
  void accumulate(int i, Tensor g);

 private:
  const detail::Record& rec_;
  const Tensor* gouts_;
  detail::Sweep& sweep_;
};

/// In a `saved` list, stands for the op's own output (which `record` receives by value,
/// so a pointer to the caller's variable would see it moved away).
inline constexpr const Tensor* kSaveOutput = nullptr;

/// In a `saved` list, for a tensor `x` that only the gradient of input `other` reads (a
/// product's factor): `&x` when `other` may require gradients, else an undefined tensor, so
/// that a constant partner keeps nothing alive (x·a with a constant a does not hold x). The
/// backward rule must then read that slot only under `needs(other's index)`.
const Tensor* saved_for(const Tensor& x, const Tensor& other);

/// Records op `def` producing `out` from `inputs`, saving `saved` (at most four tensors)
/// for the backward rule. Returns `out`, with a new variable when recorded. Nothing is
/// recorded when no input requires gradients or recording is off (NoGradGuard). With
/// FiniteCheckGuard on, `out` is checked for NaN/Inf first. Inputs may be undefined tensors
/// (ignored).
Tensor record(const OpDef& def, Tensor out, std::initializer_list<const Tensor*> inputs,
              std::initializer_list<const Tensor*> saved = {}, OpAttrs attrs = {});
/// Same, for a variable number of inputs (concat, stack) or several outputs
/// (fixed_point over a tuple of state tensors). Returns the outputs.
TensorList record(const OpDef& def, TensorList outs, std::span<const Tensor> inputs,
                           std::initializer_list<const Tensor*> saved = {}, OpAttrs attrs = {});

/// True when recording is on and any of `inputs` requires gradients (cheap; ops may use it
/// to skip work only the backward pass needs).
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// Throws NonFiniteError naming `op` (and `what`) if `t` holds a NaN or Inf.
void check_finite(const Tensor& t, const char* op, const char* what);

}  // namespace hyperad
