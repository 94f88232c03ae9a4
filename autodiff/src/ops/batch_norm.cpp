// Batch normalization and dropout (ops/batch_norm.hpp) as composites of DSL ops.
#include "hyperad/autodiff/ops/batch_norm.hpp"

#include <fmt/format.h>

#include <cmath>
#include <utility>
#include <vector>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "kernels/elementwise.hpp"

namespace hyperad {

namespace {

// The axes a channel's statistics run over, and the [1, C, 1, 1] (or [1, C]) shape its
// per-channel tensors broadcast from.
struct ChannelAxes {
  std::vector<int> axes;
  std::vector<std::int64_t> bshape;
};

ChannelAxes channel_axes(const char* op, const Tensor& x) {
  kernels::require_defined(x, op, "input");
  if (x.rank() != 2 && x.rank() != 4)
    throw ShapeError(fmt::format("{}: input must be [N, C] or [N, C, H, W], got {}", op, x.shape().str()));
  if (x.rank() == 2) return {{0}, {1, x.size(1)}};
  return {{0, 2, 3}, {1, x.size(1), 1, 1}};
}

// x with the batch split into G parts along a new leading axis ([G, N/G, C, ...]), and
// the axes each part's statistics run over.
std::pair<Tensor, std::vector<int>> grouped(const Tensor& x, std::int64_t G) {
  std::vector<std::int64_t> dims{G, x.size(0) / G};
  for (int a = 1; a < x.rank(); ++a) dims.push_back(x.size(a));
  std::vector<int> axes{1};
  for (int a = 3; a <= x.rank(); ++a) axes.push_back(a);
  return {reshape(x, dims), axes};
}

// A per-channel tensor ([C], or undefined: `none`) checked and shaped to broadcast.
Tensor per_channel(const char* op, const char* role, const Tensor& t, const Tensor& x, const ChannelAxes& a) {
  if (!t.defined()) return t;
  kernels::require_same_dtype(x, t, op);
  if (t.rank() != 1 || t.size(0) != x.size(1))
    throw ShapeError(fmt::format("{}: {} must be [{}] (one per channel of input {}), got {}", op, role, x.size(1),
                                 x.shape().str(), t.shape().str()));
  return reshape(t, a.bshape);
}

// (x − mean) · scale · weight + bias, the parts that are defined (scale undefined: 1).
Tensor affine(const Tensor& centred, const Tensor& inv_std, const Tensor& weight, const Tensor& bias) {
  Tensor y = inv_std.defined() ? mul(centred, inv_std) : centred;
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

}  // namespace

BatchNormStats BatchNormStats::init(std::int64_t channels, Dtype dtype) {
  return {zeros({channels}, dtype), ones({channels}, dtype)};
}

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, BatchNormStats* running,
                  const BatchNormOptions& options) {
  const char* op = "batch_norm";
  const ChannelAxes a = channel_axes(op, input);
  if (!(options.eps > 0) || !(options.momentum >= 0 && options.momentum <= 1))
    throw ValueError(fmt::format("{}: eps must be > 0 and momentum in [0, 1], got eps {} and momentum {}", op,
                                 options.eps, options.momentum));
  const std::int64_t G = options.batch_groups;
  if (G < 1 || input.size(0) % G != 0)
    throw ValueError(fmt::format("{}: batch_groups = {} must be >= 1 and divide the batch of input {}", op, G,
                                 input.shape().str()));
  const std::int64_t count = input.numel() / std::max<std::int64_t>(1, input.size(1) * G);
  if (count < 2)
    throw ValueError(fmt::format("{}: training mode needs at least two values per channel{}, input {} has {}", op,
                                 G > 1 ? " and batch group" : "", input.shape().str(), count));
  const Tensor w = per_channel(op, "weight", weight, input, a), b = per_channel(op, "bias", bias, input, a);
  if (running) {
    per_channel(op, "running mean", running->mean, input, a);
    per_channel(op, "running var", running->var, input, a);
    if (!running->mean.defined() || !running->var.defined())
      throw ValueError(fmt::format("{}: running statistics must hold a mean and a var (BatchNormStats::init)", op));
  }
  // Statistics per channel (and per part of the batch), broadcast back over the values.
  const auto [xg, axes] = G == 1 ? std::pair{input, a.axes} : grouped(input, G);
  const Tensor mu = mean(xg, axes, true);
  const Tensor centred = sub(xg, mu);
  const Tensor var = mean(square(centred), axes, true);
  const Tensor normal = mul(centred, rdiv_scalar(1.0, sqrt(add_scalar(var, options.eps))));
  const Tensor y = affine(G == 1 ? normal : reshape(normal, input.shape()), {}, w, b);
  if (running) {
    NoGradGuard off;
    const double m = options.momentum, unbias = double(count) / double(count - 1);
    const std::int64_t C = input.size(1);
    const Tensor batch_mu = mean(reshape(mu, {G, C}), {0}), batch_var = mean(reshape(var, {G, C}), {0});
    Tensor mean_next = add(mul_scalar(running->mean, 1 - m), mul_scalar(batch_mu, m)).detach();
    Tensor var_next = add(mul_scalar(running->var, 1 - m), mul_scalar(batch_var, m * unbias)).detach();
    running->mean = std::move(mean_next);  // both or neither
    running->var = std::move(var_next);
  }
  return y;
}

Tensor batch_norm_eval(const Tensor& input, const Tensor& weight, const Tensor& bias, const BatchNormStats& running,
                       double eps) {
  const char* op = "batch_norm_eval";
  const ChannelAxes a = channel_axes(op, input);
  if (!(eps > 0)) throw ValueError(fmt::format("{}: eps must be > 0, got {}", op, eps));
  if (!running.mean.defined() || !running.var.defined())
    throw ValueError(fmt::format("{}: running statistics must hold a mean and a var (BatchNormStats::init)", op));
  const Tensor mu = per_channel(op, "running mean", running.mean.detach(), input, a);
  const Tensor var = per_channel(op, "running var", running.var.detach(), input, a);
  const Tensor w = per_channel(op, "weight", weight, input, a), b = per_channel(op, "bias", bias, input, a);
  return affine(sub(input, mu), rdiv_scalar(1.0, sqrt(add_scalar(var, eps))), w, b);
}

Tensor dropout(const Tensor& input, double p, Generator& gen) {
  kernels::require_defined(input, "dropout", "input");
  if (!(p >= 0 && p < 1)) throw ValueError(fmt::format("dropout: p must be in [0, 1), got {}", p));
  if (p == 0) return input;
  std::vector<double> u = rand(input.shape(), gen).to_vector();
  for (double& v : u) v = v >= p ? 1.0 / (1.0 - p) : 0.0;
  return mul(input, tensor(u, input.shape(), input.dtype()));
}

}  // namespace hyperad
