#pragma once
/// \file ops/batch_norm.hpp
/// Batch normalization of [N, C, H, W] (or [N, C]) tensors per channel, and dropout.
/// Functional: the caller owns the running statistics. batch_norm is one kernel whose
/// backward rule is written in DSL ops (a first-order sweep runs it as a kernel too), the
/// others are composites; all differentiate to any order.
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Running statistics of batch_norm, one value per channel ([C] each), kept outside the
/// tape: batch_norm replaces both with new tensors (other handles to the old ones keep the
/// old values), batch_norm_eval reads them.
struct BatchNormStats {
  Tensor mean;  ///< starts at zeros
  Tensor var;   ///< starts at ones
  /// Zeros and ones for `channels` channels.
  static BatchNormStats init(std::int64_t channels, Dtype dtype = Dtype::f64);
};

struct BatchNormOptions {
  double eps = 1e-5;       ///< added to the variance, > 0
  double momentum = 0.1;   ///< running ← (1 − momentum)·running + momentum·batch, in [0, 1]
  /// The batch as this many consecutive equal parts, each normalized with its own
  /// statistics (the tasks of a meta-batch stacked along N stay independent); N must be
  /// divisible by it. The running statistics take the parts' mean.
  std::int64_t batch_groups = 1;
};

/// Training mode: y = (x − μ) / √(σ² + eps) · weight + bias with μ and σ² (biased) the
/// mean and variance of each channel over N (and H, W); weight and bias are [C] or
/// undefined (1 and 0). If `running` is given its mean and var are replaced by their moving
/// averages with the batch's μ and unbiased variance (no gradient flows there). At least two values per
/// channel (ValueError otherwise); shapes are checked (ShapeError naming them).
Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, BatchNormStats* running = nullptr,
                  const BatchNormOptions& options = {});

/// Evaluation mode: the same normalization with the running statistics (constants).
Tensor batch_norm_eval(const Tensor& input, const Tensor& weight, const Tensor& bias, const BatchNormStats& running,
                       double eps = 1e-5);

/// Inverted dropout: each element kept with probability 1 − p and scaled by 1/(1 − p), the
/// mask drawn from `gen` (a constant of the result's derivative). p in [0, 1) (ValueError).
Tensor dropout(const Tensor& input, double p, Generator& gen);

}  // namespace hyperad
