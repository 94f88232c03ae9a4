#pragma once
// What the loss ops share: reductions, their scale and attributes, operand checks.
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::detail {

/// The factor each per-example cotangent is scaled by: 1/count for mean, else 1. Throws
/// ValueError naming `op` for a mean over nothing and for a Reduction outside the enum.
double reduction_scale(Reduction r, std::int64_t count, const char* op);
/// reduction_scale for an op whose result is a gradient (or a Hessian-vector product) of
/// the reduced loss: a reduction of none has one per example, not a single vector, so it
/// is a ValueError naming `op`.
double gradient_scale(Reduction r, std::int64_t count, const char* op);
/// Per-example losses reduced to a scalar (summed in double, times scale) or kept (none).
Tensor reduce_losses(Tensor per, Reduction r, double scale);
/// integer[0] = the reduction, real[0] = its scale.
OpAttrs reduction_attr(Reduction r, double scale);
/// Two operands of one loss must agree in shape and dtype (ShapeError / DtypeError
/// naming `op` and the operands' roles).
void require_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* ra, const char* rb);

}  // namespace hyperad::detail
