#pragma once
/// \file tensor_list.hpp
/// Operations on a `TensorList` (a model's weights, an inner state, the gradient of either)
/// taken as one vector: the concatenation of its tensors' elements.
///
/// Everything here computes plain values: nothing is recorded on the tape, and the
/// reductions accumulate in double whatever the dtypes (a list may mix float32 and float64
/// tensors). Two lists combined element-wise must have the same number of tensors and the
/// same shapes; otherwise ShapeError names the function, the tensor and both shapes.
///
///     TensorList r = list::clone(b);
///     list::axpy(-1.0, A(x), r);            // r = b − A x
///     double rel = list::norm(r) / list::norm(b);
#include <cstdint>
#include <string_view>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::list {

// ---- reductions ----------------------------------------------------------------------------
/// Σᵢ ⟨aᵢ, bᵢ⟩.
double dot(const TensorList& a, const TensorList& b);
/// √dot(a, a).
double norm(const TensorList& a);
/// ‖a − b‖, the differences taken in double (no temporary list).
double distance(const TensorList& a, const TensorList& b);
/// Total number of elements.
std::int64_t numel(const TensorList& a);
/// True when every element of every tensor is finite.
bool all_finite(const TensorList& a);
/// True when recording is on and some tensor of the list requires gradients.
bool any_requires_grad(const TensorList& a);
/// ‖a − ref‖ / ‖ref‖ over all elements (‖a − ref‖ when ref is zero): how far a result is
/// from a reference one.
double relative_error(const TensorList& a, const TensorList& ref);
/// The same on flattened values; ShapeError when the sizes differ.
double relative_error(const std::vector<double>& a, const std::vector<double>& ref);

// ---- in-place updates (the list's storage is written: pass a list the caller owns) ---------
/// y ← y + alpha · x.
void axpy(double alpha, const TensorList& x, TensorList& y);
/// x ← alpha · x.
void scale(TensorList& x, double alpha);

// ---- new lists ------------------------------------------------------------------------------
/// Zeros of x's shapes and dtypes.
TensorList zeros_like(const TensorList& x);
/// Copies of the data, without gradient identity.
TensorList clone(const TensorList& x);
/// Handles over the same storage without gradient identity (constants).
TensorList detach(const TensorList& x);
/// Fresh leaf variables over the same storage (the start of a new differentiation).
TensorList make_leaves(const TensorList& x);
/// All elements, tensor after tensor, as one float64 vector.
std::vector<double> flatten(const TensorList& x);
/// The inverse of flatten: tensors of `like`'s shapes and dtypes holding `values`.
/// ShapeError when the counts differ.
TensorList unflatten(const std::vector<double>& values, const TensorList& like);

// ---- checks -----------------------------------------------------------------------------------
/// Throws ShapeError unless x has like's number of tensors, each defined and of like's
/// shape: "<what>: tensor 1 has shape [3], expected [2]" (or "... has 2 tensors, expected 1").
void require_like(const TensorList& x, const TensorList& like, std::string_view what);

}  // namespace hyperad::list
