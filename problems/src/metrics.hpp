#pragma once
// Classification accuracies shared by the problem families (reported by `validation` and
// `evaluate`); computed without recording.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::problems::detail {

/// Fraction of rows of logits [n, C] whose largest entry (the first, on ties) is at the
/// row's label.
double multiclass_accuracy(const Tensor& logits, const std::vector<std::int64_t>& labels);
/// Fraction of examples with sign(score) == y (y ∈ {−1, +1}).
double binary_accuracy(const Tensor& scores, const Tensor& signs);

}  // namespace hyperad::problems::detail
