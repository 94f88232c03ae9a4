// Batch normalization (one op: kernels/batch_norm.hpp forward and first-order backward, its
// rule in DSL ops for create_graph), evaluation mode and dropout as composites of DSL ops.
#include "hyperad/autodiff/ops/batch_norm.hpp"

#include <fmt/format.h>

#include <cmath>
#include <utility>
#include <vector>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "kernels/batch_norm.hpp"
#include "kernels/elementwise.hpp"
#include "hyperad/autodiff/record.hpp"

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

// (x − mean) · inv_std · weight + bias; weight and bias may be undefined (1 and 0).
Tensor affine(const Tensor& centred, const Tensor& inv_std, const Tensor& weight, const Tensor& bias) {
  Tensor y = mul(centred, inv_std);
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

// [N, C, H, W] (or [N, C]) in G batch groups as the kernels' [G, n, C, S].
kernels::BatchNormGeometry geometry(const Tensor& x, std::int64_t G) {
  const std::int64_t S = x.rank() == 4 ? x.size(2) * x.size(3) : 1;
  return {G, x.size(0) / G, x.size(1), S};
}

// The op: statistics, normalization and the affine map in one kernel. Saved: the input,
// γ, and the per-unit mean and 1/√(var + eps) ([G·C]). A first-order sweep runs the
// backward kernel on them; a sweep that records itself (create_graph) writes the same
// rule in DSL ops from the saved input, recomputing the statistics, so it differentiates
// again (the statistics depend on x).
void batch_norm_backward(Backward& b) {
  const Tensor& x = b.saved(0);
  const Tensor& w = b.saved(1);
  const Tensor& gy = b.grad_out();
  const double eps = b.real(0);
  const std::int64_t G = b.integer(0), C = x.size(1);
  if (b.create_graph()) {
    const ChannelAxes a = channel_axes("batch_norm", x);
    const auto [xg, axes] = G == 1 ? std::pair{x, a.axes} : grouped(x, G);
    const Tensor mu = mean(xg, axes, true);
    const Tensor centred = sub(xg, mu);
    const Tensor s = rdiv_scalar(1.0, sqrt(add_scalar(mean(square(centred), axes, true), eps)));
    const Tensor xhat = mul(centred, s);
    const Tensor gyg = G == 1 ? gy : reshape(gy, xg.shape());
    // Every axis of the grouped view but the channel's (the sums for γ and β).
    std::vector<int> others;
    for (int d = 0; d < xg.rank(); ++d)
      if (d != (G == 1 ? 1 : 2)) others.push_back(d);
    if (b.needs(0)) {
      const Tensor gxhat = w.defined() ? mul(gyg, reshape(w, a.bshape)) : gyg;
      const Tensor gx = mul(s, sub(sub(gxhat, mean(gxhat, axes, true)), mul(xhat, mean(mul(gxhat, xhat), axes, true))));
      b.accumulate(0, G == 1 ? gx : reshape(gx, x.shape()));
    }
    if (b.needs(1)) b.accumulate(1, reshape(sum(mul(gyg, xhat), others), {C}));
    if (b.needs(2)) b.accumulate(2, reshape(sum(gyg, others), {C}));
    return;
  }
  const kernels::BatchNormGeometry geo = geometry(x, G);
  Tensor gx, gw, gb;
  if (b.needs(0)) gx = Tensor(x.shape(), x.dtype());
  if (b.needs(1)) gw = Tensor(Shape{C}, x.dtype());
  if (b.needs(2)) gb = Tensor(Shape{C}, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::batch_norm_backward<T>(geo, x.data<T>(), gy.data<T>(), b.saved(2).data<double>(), b.saved(3).data<double>(),
                                    w.defined() ? w.data<T>() : nullptr, gx.defined() ? gx.mutable_data<T>() : nullptr,
                                    gw.defined() ? gw.mutable_data<T>() : nullptr,
                                    gb.defined() ? gb.mutable_data<T>() : nullptr);
  });
  if (gx.defined()) b.accumulate(0, std::move(gx));
  if (gw.defined()) b.accumulate(1, std::move(gw));
  if (gb.defined()) b.accumulate(2, std::move(gb));
}

}  // namespace

BatchNormStats BatchNormStats::init(std::int64_t channels, Dtype dtype) {
  return {zeros({channels}, dtype), ones({channels}, dtype)};
}

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, BatchNormStats* running,
                  const BatchNormOptions& options) {
  static constexpr OpDef def{"batch_norm", batch_norm_backward};
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
  per_channel(op, "weight", weight, input, a);
  per_channel(op, "bias", bias, input, a);
  if (running) {
    per_channel(op, "running mean", running->mean, input, a);
    per_channel(op, "running var", running->var, input, a);
    if (!running->mean.defined() || !running->var.defined())
      throw ValueError(fmt::format("{}: running statistics must hold a mean and a var (BatchNormStats::init)", op));
  }
  const kernels::BatchNormGeometry geo = geometry(input, G);
  // Per-unit statistics in float64 whatever the input's dtype (kernels/batch_norm.hpp).
  Tensor mu(Shape{G * geo.C}, Dtype::f64), var(Shape{G * geo.C}, Dtype::f64), inv_std(Shape{G * geo.C}, Dtype::f64),
      y(input.shape(), input.dtype());
  dispatch(input.dtype(), [&]<class T>() {
    kernels::batch_norm_stats<T>(geo, input.data<T>(), options.eps, mu.mutable_data<double>(), var.mutable_data<double>(),
                                 inv_std.mutable_data<double>());
    kernels::batch_norm_forward<T>(geo, input.data<T>(), mu.data<double>(), inv_std.data<double>(),
                                   weight.defined() ? weight.data<T>() : nullptr,
                                   bias.defined() ? bias.data<T>() : nullptr,
                                   y.mutable_data<T>());
  });
  if (running) {
    NoGradGuard off;
    const double m = options.momentum, unbias = double(count) / double(count - 1);
    const std::int64_t C = input.size(1);
    const Dtype d = input.dtype();
    const Tensor batch_mu = mean(reshape(mu, {G, C}), {0}).to(d), batch_var = mean(reshape(var, {G, C}), {0}).to(d);
    Tensor mean_next = add(mul_scalar(running->mean, 1 - m), mul_scalar(batch_mu, m)).detach();
    Tensor var_next = add(mul_scalar(running->var, 1 - m), mul_scalar(batch_var, m * unbias)).detach();
    running->mean = std::move(mean_next);  // both or neither
    running->var = std::move(var_next);
  }
  OpAttrs attrs;
  attrs.real[0] = options.eps;
  attrs.integer[0] = G;
  return record(def, std::move(y), {&input, &weight, &bias}, {&input, &weight, &mu, &inv_std}, std::move(attrs));
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
