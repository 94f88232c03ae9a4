#pragma once
/// \file hyperad.hpp
/// Umbrella header of the autodiff layer (target hyperad::autodiff): tensors, ops, the tape
/// and grad, linear solvers and implicit differentiation. The bilevel layer adds
/// hyperad/bilevel.hpp; the problem families are under hyperad/problems/.
#include "hyperad/autodiff/checkpoint.hpp"
#include "hyperad/autodiff/dense_lu.hpp"
#include "hyperad/autodiff/dtype.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/finite_diff.hpp"
#include "hyperad/autodiff/fixed_point.hpp"
#include "hyperad/autodiff/format.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/implicit.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/names.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/linear_model.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/autodiff/shape.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/autodiff/tolerance.hpp"
