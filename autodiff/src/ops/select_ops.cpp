// Selection ops: copies of parts of a tensor and their adjoints, in pairs whose backward
// rules call each other (narrow ↔ pad, slice ↔ unslice, index_select ↔ index_add,
// gather ↔ scatter_add), so every rule is itself differentiable (second order).
#include <memory>
#include <span>
#include <tuple>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/select.hpp"

namespace hyperad {

namespace {
using Indices = std::shared_ptr<const std::vector<std::int64_t>>;

Shape with_extent(const Shape& s, int axis, std::int64_t n) {
  std::vector<std::int64_t> d = s.vec();
  d[static_cast<std::size_t>(axis)] = n;
  return Shape(d);
}

OpAttrs axis_attrs(int axis, std::int64_t start, std::vector<std::int64_t> ints = {}) {
  OpAttrs a;
  a.integer = {axis, start};
  a.ints = std::move(ints);
  return a;
}

// The index list travels as a shared payload: the backward rules (and theirs, under
// create_graph) reuse it instead of copying it into every record.
OpAttrs index_attrs(int axis, const std::vector<std::int64_t>& idx, Indices shared) {
  OpAttrs a;
  a.integer[0] = axis;
  a.payload = shared ? std::move(shared) : std::make_shared<const std::vector<std::int64_t>>(idx);
  return a;
}
Indices indices_of(const Backward& b) {
  return std::static_pointer_cast<const std::vector<std::int64_t>>(b.attrs().payload);
}

void check_indices(const char* op, const std::vector<std::int64_t>& idx, const Shape& s, int axis) {
  const std::int64_t ext = s[axis];
  for (std::size_t j = 0; j < idx.size(); ++j)
    if (idx[j] < 0 || idx[j] >= ext)
      throw ValueError(fmt::format("{}: index {} at position {} is out of range [0, {}) for axis {} of shape {}", op,
                                   idx[j], j, ext, axis, s.str()));
}
}  // namespace

// ---- narrow ↔ pad ----------------------------------------------------------------------

Tensor narrow(const Tensor& x, int axis, std::int64_t start, std::int64_t length) {
  // Backward: the cotangent padded back to the input's extent.
  static const OpDef def{"narrow", [](Backward& b) {
                           const int a = static_cast<int>(b.integer(0));
                           const std::int64_t s0 = b.integer(1);
                           const std::int64_t rest = b.input_shape(0)[a] - s0 - b.grad_out().shape()[a];
                           b.accumulate(0, pad(b.grad_out(), a, s0, rest));
                         }};
  kernels::require_defined(x, "narrow", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "narrow");
  const std::int64_t ext = x.shape()[a];
  if (start < 0 || length < 0)
    throw ValueError(fmt::format("narrow: negative {} {} for axis {} of shape {}", start < 0 ? "start" : "length",
                                 start < 0 ? start : length, a, x.shape().str()));
  if (start + length > ext)
    throw ValueError(fmt::format("narrow: start {} + length {} exceeds extent {} of axis {} of shape {}", start, length,
                                 ext, a, x.shape().str()));
  Tensor y(with_extent(x.shape(), a, length), x.dtype());
  kernels::move_range(x, y, a, length, start, 0);
  return record(def, std::move(y), {&x}, {}, axis_attrs(a, start));
}

Tensor pad(const Tensor& x, int axis, std::int64_t before, std::int64_t after) {
  // Backward: the cotangent narrowed to the input's positions.
  static const OpDef def{"pad", [](Backward& b) {
                           const int a = static_cast<int>(b.integer(0));
                           b.accumulate(0, narrow(b.grad_out(), a, b.integer(1), b.input_shape(0)[a]));
                         }};
  kernels::require_defined(x, "pad", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "pad");
  if (before < 0 || after < 0)
    throw ValueError(fmt::format("pad: negative padding (before {}, after {}) for axis {} of shape {}", before, after,
                                 a, x.shape().str()));
  const std::int64_t n = x.shape()[a];
  Tensor y = zeros(with_extent(x.shape(), a, before + n + after), x.dtype());
  kernels::move_range(x, y, a, n, 0, before);
  return record(def, std::move(y), {&x}, {}, axis_attrs(a, before));
}

// ---- slice ↔ unslice --------------------------------------------------------------------

Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  static const OpDef def{"slice", [](Backward& b) {
                           b.accumulate(0, unslice(b.grad_out(), b.input_shape(0), static_cast<int>(b.integer(0)),
                                                   b.integer(1), b.ints()[0]));
                         }};
  kernels::require_defined(x, "slice", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "slice");
  const std::int64_t ext = x.shape()[a];
  if (step < 1)
    throw ValueError(fmt::format("slice: step {} must be at least 1 (axis {} of shape {})", step, a, x.shape().str()));
  const std::int64_t s = start < 0 ? start + ext : start, e = stop < 0 ? stop + ext : stop;
  for (auto [what, given, v] : {std::tuple{"start", start, s}, std::tuple{"stop", stop, e}})
    if (v < 0 || v > ext)
      throw ValueError(fmt::format("slice: {} {} out of range for extent {} of axis {} of shape {}", what, given, ext,
                                   a, x.shape().str()));
  if (s > e)
    throw ValueError(fmt::format("slice: start {} is after stop {} for axis {} of shape {}", start, stop, a,
                                 x.shape().str()));
  if (step == 1) return narrow(x, a, s, e - s);
  const std::int64_t n = (e - s + step - 1) / step;
  Tensor y(with_extent(x.shape(), a, n), x.dtype());
  kernels::move_slices(
      x, y, a, n, [s, step](std::int64_t j) { return s + j * step; }, [](std::int64_t j) { return j; }, false);
  return record(def, std::move(y), {&x}, {}, axis_attrs(a, s, {step}));
}

Tensor unslice(const Tensor& src, const Shape& shape, int axis, std::int64_t start, std::int64_t step) {
  // Backward: the same positions sliced out of the cotangent.
  static const OpDef def{"unslice", [](Backward& b) {
                           const int a = static_cast<int>(b.integer(0));
                           const std::int64_t s0 = b.integer(1), st = b.ints()[0];
                           const std::int64_t n = b.input_shape(0)[a];
                           const std::int64_t stop = n > 0 ? s0 + (n - 1) * st + 1 : s0;
                           b.accumulate(0, slice(b.grad_out(), a, s0, stop, st));
                         }};
  kernels::require_defined(src, "unslice", "src");
  const int a = Shape::normalize_axis(axis, shape.rank(), "unslice");
  const std::int64_t ext = shape[a];
  if (src.rank() != shape.rank() || with_extent(src.shape(), a, ext) != shape)
    throw ShapeError(fmt::format("unslice: src of shape {} does not match shape {} off axis {}", src.shape().str(),
                                 shape.str(), a));
  if (step < 1 || start < 0)
    throw ValueError(fmt::format("unslice: need start ≥ 0 and step ≥ 1, got start {} and step {}", start, step));
  const std::int64_t n = src.shape()[a];
  const std::int64_t last = n > 0 ? start + (n - 1) * step : start - 1;
  if (last >= ext || start > ext)
    throw ValueError(fmt::format("unslice: {} slices from start {} with step {} do not fit extent {} of axis {} of "
                                 "shape {}",
                                 n, start, step, ext, a, shape.str()));
  if (step == 1) return pad(src, a, start, ext - start - n);
  Tensor y = zeros(shape, src.dtype());
  kernels::move_slices(
      src, y, a, n, [](std::int64_t j) { return j; }, [start, step](std::int64_t j) { return start + j * step; },
      false);
  return record(def, std::move(y), {&src}, {}, axis_attrs(a, start, {step}));
}

// ---- index_select ↔ index_add -----------------------------------------------------------

namespace {
Tensor index_add_impl(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src,
                      Indices shared);

Tensor index_select_impl(const Tensor& x, int axis, const std::vector<std::int64_t>& idx, Indices shared) {
  static const OpDef def{"index_select", [](Backward& b) {
                           Indices ix = indices_of(b);
                           b.accumulate(0, index_add_impl(b.input_shape(0), static_cast<int>(b.integer(0)), *ix,
                                                          b.grad_out(), ix));
                         }};
  kernels::require_defined(x, "index_select", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "index_select");
  check_indices("index_select", idx, x.shape(), a);
  const auto n = static_cast<std::int64_t>(idx.size());
  Tensor y(with_extent(x.shape(), a, n), x.dtype());
  const std::int64_t* ip = idx.data();
  kernels::move_slices(
      x, y, a, n, [ip](std::int64_t j) { return ip[j]; }, [](std::int64_t j) { return j; }, false);
  if (!any_requires_grad({&x})) return y;
  return record(def, std::move(y), {&x}, {}, index_attrs(a, idx, std::move(shared)));
}

Tensor index_add_impl(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src,
                      Indices shared) {
  static const OpDef def{"index_add", [](Backward& b) {
                           Indices ix = indices_of(b);
                           b.accumulate(0, index_select_impl(b.grad_out(), static_cast<int>(b.integer(0)), *ix, ix));
                         }};
  kernels::require_defined(src, "index_add", "src");
  const int a = Shape::normalize_axis(axis, shape.rank(), "index_add");
  const auto n = static_cast<std::int64_t>(idx.size());
  const Shape want = with_extent(shape, a, n);
  if (src.shape() != want)
    throw ShapeError(fmt::format("index_add: src of shape {} does not fit shape {} with {} indices along axis {} "
                                 "(expected src of shape {})",
                                 src.shape().str(), shape.str(), n, a, want.str()));
  check_indices("index_add", idx, shape, a);
  Tensor y = zeros(shape, src.dtype());
  const std::int64_t* ip = idx.data();
  kernels::move_slices(
      src, y, a, n, [](std::int64_t j) { return j; }, [ip](std::int64_t j) { return ip[j]; }, true);
  if (!any_requires_grad({&src})) return y;
  return record(def, std::move(y), {&src}, {}, index_attrs(a, idx, std::move(shared)));
}
}  // namespace

Tensor index_select(const Tensor& x, int axis, const std::vector<std::int64_t>& idx) {
  return index_select_impl(x, axis, idx, nullptr);
}

Tensor index_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src) {
  return index_add_impl(shape, axis, idx, src, nullptr);
}

// ---- gather ↔ scatter_add ---------------------------------------------------------------

namespace {
Tensor scatter_add_impl(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src,
                        Indices shared);

// Indices of gather/scatter_add: one per lane, each within the axis extent.
void check_lane_indices(const char* op, const std::vector<std::int64_t>& idx, const Shape& s, int axis,
                        const Shape& lanes) {
  if (static_cast<std::int64_t>(idx.size()) != lanes.numel())
    throw ShapeError(fmt::format("{}: {} indices given, but shape {} along axis {} has {} lanes (result shape {}); "
                                 "one index per lane is needed",
                                 op, idx.size(), s.str(), axis, lanes.numel(), lanes.str()));
  check_indices(op, idx, s, axis);
}

Tensor gather_impl(const Tensor& x, int axis, const std::vector<std::int64_t>& idx, Indices shared) {
  static const OpDef def{"gather", [](Backward& b) {
                           Indices ix = indices_of(b);
                           b.accumulate(0, scatter_add_impl(b.input_shape(0), static_cast<int>(b.integer(0)), *ix,
                                                            b.grad_out(), ix));
                         }};
  kernels::require_defined(x, "gather", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "gather");
  check_lane_indices("gather", idx, x.shape(), a, kernels::reduced_shape(x.shape(), a, false));
  Tensor y = kernels::gather(x, a, idx);
  if (!any_requires_grad({&x})) return y;
  return record(def, std::move(y), {&x}, {}, index_attrs(a, idx, std::move(shared)));
}

Tensor scatter_add_impl(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src,
                        Indices shared) {
  static const OpDef def{"scatter_add", [](Backward& b) {
                           Indices ix = indices_of(b);
                           b.accumulate(0, gather_impl(b.grad_out(), static_cast<int>(b.integer(0)), *ix, ix));
                         }};
  kernels::require_defined(src, "scatter_add", "src");
  const int a = Shape::normalize_axis(axis, shape.rank(), "scatter_add");
  const Shape lanes = kernels::reduced_shape(shape, a, false);
  if (src.shape() != lanes)
    throw ShapeError(fmt::format("scatter_add: src of shape {} does not match shape {} without axis {} "
                                 "(expected src of shape {})",
                                 src.shape().str(), shape.str(), a, lanes.str()));
  check_lane_indices("scatter_add", idx, shape, a, lanes);
  Tensor y = kernels::scatter_add(shape, a, idx, src);
  if (!any_requires_grad({&src})) return y;
  return record(def, std::move(y), {&src}, {}, index_attrs(a, idx, std::move(shared)));
}
}  // namespace

Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx) {
  return gather_impl(x, axis, idx, nullptr);
}

Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src) {
  return scatter_add_impl(shape, axis, idx, src, nullptr);
}

// ---- concat, stack ----------------------------------------------------------------------

namespace {
// Common checks of a tensor list: non-empty, defined, one dtype, and shapes that agree
// with the first one (everywhere, or everywhere except `axis` when axis ≥ 0).
void check_list(const char* op, const TensorList& xs, int axis) {
  if (xs.empty()) throw ValueError(fmt::format("{}: empty list of tensors", op));
  if (xs.size() > 0xffff) throw ValueError(fmt::format("{}: {} tensors, at most 65535", op, xs.size()));
  for (std::size_t i = 0; i < xs.size(); ++i)
    kernels::require_defined(xs[i], op, fmt::format("tensor {}", i).c_str());
  const Tensor& x0 = xs[0];
  for (std::size_t i = 1; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    if (x.dtype() != x0.dtype())
      throw DtypeError(fmt::format("{}: tensor {} is {} {} but tensor 0 is {} {}", op, i, dtype_name(x.dtype()),
                                   x.shape().str(), dtype_name(x0.dtype()), x0.shape().str()));
    bool ok = x.rank() == x0.rank();
    for (int d = 0; ok && d < x.rank(); ++d) ok = d == axis || x.shape()[d] == x0.shape()[d];
    if (!ok) {
      std::string rule = axis >= 0 ? fmt::format("they must agree on every axis except axis {}", axis)
                                   : std::string("stacked tensors must have one shape");
      throw ShapeError(fmt::format("{}: tensor {} has shape {} but tensor 0 has shape {}; {}", op, i, x.shape().str(),
                                   x0.shape().str(), rule));
    }
  }
}
}  // namespace

Tensor concat(const TensorList& xs, int axis) {
  // Backward: input i's cotangent is its block of the output cotangent.
  static const OpDef def{"concat", [](Backward& b) {
                           const int a = static_cast<int>(b.integer(0));
                           std::int64_t off = 0;
                           for (int i = 0; i < b.num_inputs(); ++i) {
                             const std::int64_t n = b.ints()[static_cast<std::size_t>(i)];
                             if (b.needs(i)) b.accumulate(i, narrow(b.grad_out(), a, off, n));
                             off += n;
                           }
                         }};
  if (xs.empty()) throw ValueError("concat: empty list of tensors");
  kernels::require_defined(xs[0], "concat", "tensor 0");
  const int a = Shape::normalize_axis(axis, xs[0].rank(), "concat");
  check_list("concat", xs, a);
  std::vector<std::int64_t> sizes;
  std::int64_t total = 0;
  for (const Tensor& x : xs) {
    sizes.push_back(x.shape()[a]);
    total += sizes.back();
  }
  Tensor y(with_extent(xs[0].shape(), a, total), xs[0].dtype());
  std::int64_t off = 0;
  for (const Tensor& x : xs) {
    kernels::move_range(x, y, a, x.shape()[a], 0, off);
    off += x.shape()[a];
  }
  OpAttrs attrs;
  attrs.integer[0] = a;
  attrs.ints = std::move(sizes);
  TensorList outs;
  outs.push_back(std::move(y));
  return record(def, std::move(outs), std::span<const Tensor>(xs), {}, std::move(attrs)).front();
}

Tensor stack(const TensorList& xs, int axis) {
  check_list("stack", xs, -1);
  const int a = Shape::normalize_axis(axis, xs[0].rank() + 1, "stack");
  TensorList us;
  us.reserve(xs.size());
  for (const Tensor& x : xs) us.push_back(unsqueeze(x, a));
  return concat(us, a);
}

}  // namespace hyperad
