#pragma once
// Strided copy that reorders axes (the data movement of permute/transpose).
#include <span>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::kernels {

/// A new contiguous tensor y with y.shape()[i] = x.shape()[perm[i]] and
/// y[i0, ..., ir] = x at index i_j along axis perm[j]. `perm` must already be validated.
Tensor permute(const Tensor& x, std::span<const int> perm);

}  // namespace hyperad::kernels
