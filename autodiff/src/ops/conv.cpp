// Convolution ops (ops/conv.hpp): conv2d, conv_transpose2d and conv2d_weight, three
// bilinear maps whose derivatives are each other (the table in the header), so each
// backward is two calls of the other ops and a CNN differentiates to any order. Bias is a
// broadcast add outside the three records.
#include "hyperad/autodiff/ops/conv.hpp"

#include <fmt/format.h>

#include <string>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/conv.hpp"
#include "kernels/elementwise.hpp"

namespace hyperad {

namespace {

// The options as record attributes (ints) and back.
OpAttrs conv_attrs(const ConvOptions& o, std::int64_t kh, std::int64_t kw) {
  OpAttrs a;
  a.ints = {o.stride[0],   o.stride[1],         o.padding[0],        o.padding[1], o.dilation[0],
            o.dilation[1], o.groups,            o.output_padding[0], o.output_padding[1], kh,
            kw};
  return a;
}
ConvOptions options_of(const Backward& b) {
  const std::vector<std::int64_t>& v = b.ints();
  return {{v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}, v[6], {v[7], v[8]}};
}
std::array<std::int64_t, 2> kernel_of(const Backward& b) { return {b.ints()[9], b.ints()[10]}; }

std::string options_str(const ConvOptions& o) {
  return fmt::format("stride ({}, {}), padding ({}, {}), dilation ({}, {}), groups {}", o.stride[0], o.stride[1],
                     o.padding[0], o.padding[1], o.dilation[0], o.dilation[1], o.groups);
}

void check_options(const char* op, const ConvOptions& o) {
  for (int i = 0; i < 2; ++i)
    if (o.stride[i] < 1 || o.dilation[i] < 1 || o.padding[i] < 0 || o.output_padding[i] < 0)
      throw ValueError(fmt::format("{}: strides and dilations must be >= 1 and paddings >= 0, got {}, output "
                                   "padding ({}, {})",
                                   op, options_str(o), o.output_padding[0], o.output_padding[1]));
  if (o.groups < 1) throw ValueError(fmt::format("{}: groups must be >= 1, got {}", op, o.groups));
}

void check_rank4(const char* op, const Tensor& t, const char* role, const char* layout) {
  kernels::require_defined(t, op, role);
  if (t.rank() != 4) throw ShapeError(fmt::format("{}: {} must be 4-D {}, got {}", op, role, layout, t.shape().str()));
}

// The geometry of conv2d(input of shape x, weight of shape w); what() names the operands
// for the messages, formatted only when one is thrown (conv_transpose2d and conv2d_weight
// check theirs through it too).
template <class What>
kernels::ConvGeometry geometry(const char* op, const Shape& x, const Shape& w, const ConvOptions& o,
                               const What& what) {
  const std::int64_t C = x[1], O = w[0], G = o.groups;
  if (C % G != 0 || O % G != 0)
    throw ShapeError(fmt::format("{}: {} input and {} output channels are not divisible by groups = {} ({})", op, C, O,
                                 G, what()));
  if (w[1] * G != C)
    throw ShapeError(fmt::format("{}: the weight has {} input channels per group, the input {} / {} groups = {} ({})",
                                 op, w[1], C, G, C / G, what()));
  if (w[2] < 1 || w[3] < 1)
    throw ShapeError(fmt::format("{}: the kernel must be at least 1×1, got {}×{} ({})", op, w[2], w[3], what()));
  kernels::ConvGeometry g{x[0], C, x[2], x[3], O, w[2], w[3], 0, 0, G, {}, {}, {}};
  for (int i = 0; i < 2; ++i) {
    g.stride[i] = o.stride[i];
    g.pad[i] = o.padding[i];
    g.dil[i] = o.dilation[i];
  }
  g.Ho = conv_output_size(g.H, g.kh, o.stride[0], o.padding[0], o.dilation[0]);
  g.Wo = conv_output_size(g.W, g.kw, o.stride[1], o.padding[1], o.dilation[1]);
  if (g.Ho < 1 || g.Wo < 1)
    throw ShapeError(fmt::format("{}: kernel {}×{} (dilation ({}, {})) is larger than the padded input {}×{} ({})", op,
                                 g.kh, g.kw, o.dilation[0], o.dilation[1], g.H + 2 * o.padding[0],
                                 g.W + 2 * o.padding[1], what()));
  return g;
}

Tensor conv_op(const Tensor& x, const Tensor& w, const ConvOptions& o);
Tensor transpose_op(const Tensor& u, const Tensor& w, const ConvOptions& o);
Tensor weight_op(const Tensor& x, const Tensor& dy, std::array<std::int64_t, 2> k, const ConvOptions& o);

// conv_transpose2d of u with the output padding that gives exactly H × W (the adjoint of a
// conv2d whose input was H × W).
Tensor transpose_to(const Tensor& u, const Tensor& w, ConvOptions o, std::int64_t H, std::int64_t W) {
  for (int i = 0; i < 2; ++i)
    o.output_padding[i] = (i == 0 ? H : W) - conv_transpose_output_size(u.size(2 + i), w.size(2 + i), o.stride[i],
                                                                        o.padding[i], o.dilation[i]);
  return transpose_op(u, w, o);
}

Tensor conv_op(const Tensor& x, const Tensor& w, const ConvOptions& o) {
  // y = conv(x, w): dx = conv_transpose(dy, w) sized like x, dw = conv2d_weight(x, dy).
  static const OpDef def{"conv2d", [](Backward& b) {
                           const Tensor &x = b.saved(0), &w = b.saved(1);
                           const ConvOptions o = options_of(b);
                           if (b.needs(0)) b.accumulate(0, transpose_to(b.grad_out(), w, o, x.size(2), x.size(3)));
                           if (b.needs(1)) b.accumulate(1, weight_op(x, b.grad_out(), kernel_of(b), o));
                         }};
  const char* op = "conv2d";
  const kernels::ConvGeometry g = geometry(op, x.shape(), w.shape(), o, [&] {
    return fmt::format("input {}, weight {}, {}", x.shape().str(), w.shape().str(), options_str(o));
  });
  Tensor y(Shape{g.N, g.O, g.Ho, g.Wo}, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), y.mutable_data<T>());
  });
  return record(def, std::move(y), {&x, &w}, {&x, &w}, conv_attrs(o, g.kh, g.kw));
}

Tensor transpose_op(const Tensor& u, const Tensor& w, const ConvOptions& o) {
  // x = conv_transpose(u, w): du = conv(dx, w), dw = conv2d_weight(dx, u).
  static const OpDef def{"conv_transpose2d", [](Backward& b) {
                           const Tensor &u = b.saved(0), &w = b.saved(1);
                           const ConvOptions o = options_of(b);
                           if (b.needs(0)) b.accumulate(0, conv_op(b.grad_out(), w, o));
                           if (b.needs(1)) b.accumulate(1, weight_op(b.grad_out(), u, kernel_of(b), o));
                         }};
  const char* op = "conv_transpose2d";
  const auto what = [&] {
    return fmt::format("input {}, weight {}, {}, output padding ({}, {})", u.shape().str(), w.shape().str(),
                       options_str(o), o.output_padding[0], o.output_padding[1]);
  };
  if (u.size(1) != w.size(0))
    throw ShapeError(fmt::format("{}: the input has {} channels, the weight's first axis {} ({})", op, u.size(1),
                                 w.size(0), what()));
  std::int64_t HW[2];
  for (int i = 0; i < 2; ++i) {
    if (o.output_padding[i] >= std::max(o.stride[i], o.dilation[i]))
      throw ValueError(fmt::format("{}: output padding must be smaller than the stride or the dilation ({})", op, what()));
    HW[i] = conv_transpose_output_size(u.size(2 + i), w.size(2 + i), o.stride[i], o.padding[i], o.dilation[i],
                                       o.output_padding[i]);
  }
  if (HW[0] < 1 || HW[1] < 1)
    throw ShapeError(fmt::format("{}: the output would be {}×{} ({})", op, HW[0], HW[1], what()));
  const kernels::ConvGeometry g =
      geometry(op, Shape{u.size(0), w.size(1) * o.groups, HW[0], HW[1]}, w.shape(), o, what);
  if (g.Ho != u.size(2) || g.Wo != u.size(3))  // an output padding >= stride, within the dilation
    throw ShapeError(fmt::format("{}: no conv2d input of size {}×{} gives the input's {}×{} ({})", op, HW[0], HW[1],
                                 u.size(2), u.size(3), what()));
  Tensor x(Shape{g.N, g.C, g.H, g.W}, u.dtype());
  dispatch(u.dtype(), [&]<class T>() {
    kernels::conv2d_input_grad<T>(g, u.data<T>(), w.data<T>(), x.mutable_data<T>());
  });
  return record(def, std::move(x), {&u, &w}, {&u, &w}, conv_attrs(o, g.kh, g.kw));
}

Tensor weight_op(const Tensor& x, const Tensor& dy, std::array<std::int64_t, 2> k, const ConvOptions& o) {
  // w = conv2d_weight(x, dy): dx = conv_transpose(dy, dw) sized like x, d(dy) = conv(x, dw).
  static const OpDef def{"conv2d_weight", [](Backward& b) {
                           const Tensor &x = b.saved(0), &dy = b.saved(1);
                           const ConvOptions o = options_of(b);
                           if (b.needs(0)) b.accumulate(0, transpose_to(dy, b.grad_out(), o, x.size(2), x.size(3)));
                           if (b.needs(1)) b.accumulate(1, conv_op(x, b.grad_out(), o));
                         }};
  const char* op = "conv2d_weight";
  const auto what = [&] {
    return fmt::format("input {}, output gradient {}, kernel {}×{}, {}", x.shape().str(), dy.shape().str(), k[0],
                       k[1], options_str(o));
  };
  if (x.size(0) != dy.size(0))
    throw ShapeError(fmt::format("{}: batch sizes differ ({})", op, what()));
  if (dy.size(1) % o.groups != 0)
    throw ShapeError(fmt::format("{}: {} output channels are not divisible by groups = {} ({})", op, dy.size(1),
                                 o.groups, what()));
  if (x.size(1) % o.groups != 0)
    throw ShapeError(fmt::format("{}: {} input channels are not divisible by groups = {} ({})", op, x.size(1),
                                 o.groups, what()));
  const Shape wshape{dy.size(1), x.size(1) / o.groups, k[0], k[1]};
  const kernels::ConvGeometry g = geometry(op, x.shape(), wshape, o, what);
  if (g.Ho != dy.size(2) || g.Wo != dy.size(3))
    throw ShapeError(fmt::format("{}: conv2d's output would be {}×{}, not the gradient's {}×{} ({})", op, g.Ho, g.Wo,
                                 dy.size(2), dy.size(3), what()));
  Tensor w(wshape, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::conv2d_weight_grad<T>(g, x.data<T>(), dy.data<T>(), w.mutable_data<T>());
  });
  return record(def, std::move(w), {&x, &dy}, {&x, &dy}, conv_attrs(o, k[0], k[1]));
}

// y + bias[channel], bias [channels] or undefined (none).
Tensor add_bias(const Tensor& y, const Tensor& bias, const char* op) {
  if (!bias.defined()) return y;
  kernels::require_same_dtype(y, bias, op);
  if (bias.rank() != 1 || bias.size(0) != y.size(1))
    throw ShapeError(fmt::format("{}: bias must be [{}] (one per output channel), got {}", op, y.size(1),
                                 bias.shape().str()));
  return add(y, reshape(bias, {1, y.size(1), 1, 1}));
}

}  // namespace

std::int64_t conv_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t padding,
                              std::int64_t dilation) {
  const std::int64_t span = in + 2 * padding - dilation * (k - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

std::int64_t conv_transpose_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t padding,
                                        std::int64_t dilation, std::int64_t output_padding) {
  return (in - 1) * stride - 2 * padding + dilation * (k - 1) + 1 + output_padding;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvOptions& options) {
  const char* op = "conv2d";
  check_rank4(op, input, "input", "[N, C, H, W]");
  check_rank4(op, weight, "weight", "[O, C/groups, kh, kw]");
  kernels::require_same_dtype(input, weight, op);
  check_options(op, options);
  if (options.output_padding[0] != 0 || options.output_padding[1] != 0)
    throw ValueError("conv2d: output_padding is an option of conv_transpose2d only");
  return add_bias(conv_op(input, weight, options), bias, op);
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvOptions& options) {
  const char* op = "conv_transpose2d";
  check_rank4(op, input, "input", "[N, C_in, H, W]");
  check_rank4(op, weight, "weight", "[C_in, C_out/groups, kh, kw]");
  kernels::require_same_dtype(input, weight, op);
  check_options(op, options);
  return add_bias(transpose_op(input, weight, options), bias, op);
}

Tensor conv2d_weight(const Tensor& input, const Tensor& grad_output, std::array<std::int64_t, 2> kernel,
                     const ConvOptions& options) {
  const char* op = "conv2d_weight";
  check_rank4(op, input, "input", "[N, C, H, W]");
  check_rank4(op, grad_output, "output gradient", "[N, O, Ho, Wo]");
  kernels::require_same_dtype(input, grad_output, op);
  check_options(op, options);
  if (kernel[0] < 1 || kernel[1] < 1)
    throw ValueError(fmt::format("{}: the kernel must be at least 1×1, got {}×{}", op, kernel[0], kernel[1]));
  return weight_op(input, grad_output, kernel, options);
}

}  // namespace hyperad
