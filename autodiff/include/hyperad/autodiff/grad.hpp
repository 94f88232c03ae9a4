#pragma once
/// \file grad.hpp
/// The functional differentiation API: grad, vjp (reusable pullbacks), hvp.
#include <functional>
#include <span>
#include <vector>

#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor_list.hpp"

namespace hyperad {

/// Options of grad().
struct GradOptions {
  /// Cotangent of the output; required unless the output has one element (then 1).
  Tensor seed{};
  /// Record the backward pass so its results can be differentiated again.
  bool create_graph = false;
  /// An input the output does not depend on gets zeros instead of a TapeError.
  bool allow_unused = false;
};

/// Gradients of `output` (seeded by opts.seed) with respect to each of `inputs`, which
/// must require gradients on this thread's tape. One reverse sweep over the records
/// between the earliest input and the output. Results are new tensors; nothing is
/// accumulated into the inputs. Without create_graph the results do not require gradients.
/// With recording off (inside a NoGradGuard) an output computed there has no history, so
/// grad refuses it (TapeError, also with allow_unused) rather than return zeros; inside a
/// function that others evaluate unrecorded, use gradient_of.
TensorList grad(const Tensor& output, const TensorList& inputs,
                         const GradOptions& opts = {});

/// Several outputs at once, each with its seed (an undefined seed means "ones" for a
/// one-element output); the cotangents of all outputs are propagated in one sweep.
TensorList grad(std::span<const Tensor> outputs, std::span<const Tensor> seeds,
                         std::span<const Tensor> inputs, bool create_graph = false,
                         bool allow_unused = false);

/// A recorded function, ready to pull cotangents back through it any number of times.
/// Each call is one reverse sweep over the recorded segment; fn is not run again. The
/// segment lives on the tape: it must not be rewound (by a TapeScope) while the pullback
/// is used, or the call throws TapeError.
class Pullback {
 public:
  Pullback() = default;
  /// Cotangents of the inputs given cotangents of the outputs (one per output). With
  /// create_graph the results are recorded and differentiable (e.g. with respect to the
  /// cotangents, if those require gradients).
  TensorList operator()(std::span<const Tensor> cotangents, bool create_graph = false) const;
  /// Single-output form.
  TensorList operator()(const Tensor& cotangent, bool create_graph = false) const {
    return (*this)(std::span<const Tensor>(&cotangent, 1), create_graph);
  }
  /// The same recording, pulling back to the inputs at the given positions only (their
  /// cotangents, in that order): the sweep then skips every record that depends on none of
  /// them, e.g. a pullback of Φ(w, λ) through w alone does none of λ's work.
  Pullback with_respect_to(const std::vector<std::size_t>& positions) const;
  std::size_t num_inputs() const { return inputs_.size(); }
  std::size_t num_outputs() const { return outputs_.size(); }
  /// Number of times the pullback was called.
  std::size_t calls() const { return calls_; }

 private:
  friend struct VjpBuilder;
  TensorList inputs_;   // fresh leaves the function was recorded on
  TensorList outputs_;  // its recorded outputs
  mutable std::size_t calls_ = 0;
};

/// Value and pullback of a function of several tensors.
struct Vjp {
  TensorList value;  ///< fn's outputs, detached
  Pullback pullback;
};

/// Records fn once at `inputs` (on fresh leaf copies of them, so the result does not
/// depend on whether the inputs require gradients) and returns its value and pullback.
Vjp vjp(const std::function<TensorList(const TensorList&)>& fn,
        const TensorList& inputs);

/// Single-output convenience: `vjp([](const Tensor& w, const Tensor& l) {...}, w, l)`.
template <class Fn, class... Ts>
Vjp vjp(Fn&& fn, const Tensor& first, const Ts&... rest) {
  return vjp(
      [&fn](const TensorList& xs) {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
          return TensorList{fn(xs[I]...)};
        }(std::make_index_sequence<1 + sizeof...(Ts)>{});
      },
      TensorList{first, rest...});
}

/// ∇f(x) for use inside a map, such as a gradient step Φ(w) = w − η·gradient_of(L, w)[0],
/// that is evaluated both unrecorded (inner solves, finite differences: the gradient is
/// then computed in a scope of its own and detached) and recorded (ITD, AID's pullbacks:
/// the gradient is recorded with its backward, so the map's derivative includes ∇²f).
/// `closes_over` lists tensors f captures (e.g. λ): if one requires gradients and recording
/// is on, the recorded form is used even when x does not. f must return one element.
/// Work on f's value that nothing reads is skipped: the fused linear-model losses
/// (ops/linear_model.hpp) leave their value, and one-element elementwise ops of it (a
/// penalty added), to be computed when read, which a gradient step never does. Values f
/// keeps and reads later are computed then, the same bits.
TensorList gradient_of(const std::function<Tensor(const TensorList&)>& f, const TensorList& x,
                       const TensorList& closes_over = {});

/// Value and gradient of a scalar function at `inputs` (recorded in its own scope).
struct ValueAndGrad {
  Tensor value;
  TensorList grads;
};
ValueAndGrad value_and_grad(const std::function<Tensor(const TensorList&)>& fn,
                            const TensorList& inputs);

/// Hessian-vector product ∇²f(x) v of a scalar function by reverse-over-reverse
/// differentiation (the gradient is recorded, then differentiated along v). Several
/// inputs: v holds one direction per input and the result one block per input.
TensorList hvp(const std::function<Tensor(const TensorList&)>& f,
                        const TensorList& x, const TensorList& v);
/// Single-input form.
Tensor hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v);

}  // namespace hyperad
