#pragma once
/// \file hyperad.hpp
/// Umbrella header: the whole public API of hyperad.
#include "hyperad/autodiff/dtype.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/finite_diff.hpp"
#include "hyperad/autodiff/format.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "hyperad/autodiff/shape.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor.hpp"
