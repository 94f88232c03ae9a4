#pragma once
// Elementwise kernels: unary maps, and binary/ternary maps with numpy broadcasting.
// The functors are generic lambdas over the element type. Fast paths cover equal shapes
// and scalar operands; everything else goes through a broadcast plan whose innermost
// axis runs as a strided loop.
#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::kernels {

/// Output shape of broadcasting N shapes, and each input's strides over that shape
/// (0 along broadcast axes).
template <int N>
struct Broadcast {
  Shape out;
  std::array<std::array<std::int64_t, kMaxRank>, N> strides{};
};

template <int N>
Broadcast<N> plan_broadcast(const std::array<const Shape*, N>& in, const char* op) {
  Broadcast<N> p;
  p.out = *in[0];
  for (int k = 1; k < N; ++k) p.out = broadcast_shapes(p.out, *in[k], op);
  const int r = p.out.rank();
  for (int k = 0; k < N; ++k) {
    auto st = contiguous_strides(*in[k]);
    const int off = r - in[k]->rank();
    for (int d = 0; d < r; ++d) {
      const int dk = d - off;
      p.strides[k][d] = (dk < 0 || in[k]->begin()[dk] == 1) ? 0 : st[dk];
    }
  }
  return p;
}

/// Calls body(out_offset, in_offsets, inner_strides, count) for each run of the innermost
/// axis of p.out (count elements; output stride 1 along the run).
template <int N, class Body>
void for_each_run(const Broadcast<N>& p, Body&& body) {
  const int r = p.out.rank();
  if (p.out.numel() == 0) return;
  if (r == 0) {
    std::array<std::int64_t, N> off{}, st{};
    body(std::int64_t{0}, off, st, std::int64_t{1});
    return;
  }
  const std::int64_t inner = p.out.begin()[r - 1];
  std::array<std::int64_t, N> inner_st{};
  for (int k = 0; k < N; ++k) inner_st[k] = p.strides[k][r - 1];
  std::array<std::int64_t, kMaxRank> idx{};
  std::array<std::int64_t, N> off{};
  const std::int64_t runs = p.out.numel() / inner;
  for (std::int64_t run = 0; run < runs; ++run) {
    body(run * inner, off, inner_st, inner);
    for (int d = r - 2; d >= 0; --d) {  // odometer over the outer axes
      ++idx[d];
      for (int k = 0; k < N; ++k) off[k] += p.strides[k][d];
      if (idx[d] < p.out.begin()[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= p.strides[k][d] * idx[d];
      idx[d] = 0;
    }
  }
}

inline void require_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw DtypeError(fmt::format("{}: dtype mismatch, first operand {} {} vs second operand {} {}", op,
                                 dtype_name(a.dtype()), a.shape().str(), dtype_name(b.dtype()),
                                 b.shape().str()));
}

inline void require_defined(const Tensor& t, const char* op, const char* role) {
  if (!t.defined()) throw ValueError(fmt::format("{}: {} is an undefined tensor", op, role));
}

/// y = f(x) elementwise.
template <class F>
Tensor map_unary(const Tensor& x, F f, const char* op) {
  require_defined(x, op, "input");
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* yp = y.mutable_data<T>();
    const std::int64_t n = x.numel();
    for (std::int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
  });
  return y;
}

/// c = f(a, b) with broadcasting.
template <class F>
Tensor map_binary(const Tensor& a, const Tensor& b, F f, const char* op) {
  require_defined(a, op, "first operand");
  require_defined(b, op, "second operand");
  require_same_dtype(a, b, op);
  if (a.shape() == b.shape()) {
    Tensor c(a.shape(), a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
      const T *ap = a.data<T>(), *bp = b.data<T>();
      T* cp = c.mutable_data<T>();
      for (std::int64_t i = 0, n = a.numel(); i < n; ++i) cp[i] = f(ap[i], bp[i]);
    });
    return c;
  }
  auto p = plan_broadcast<2>({&a.shape(), &b.shape()}, op);
  Tensor c(p.out, a.dtype());
  dispatch(a.dtype(), [&]<class T>() {
    const T *ap = a.data<T>(), *bp = b.data<T>();
    T* cp = c.mutable_data<T>();
    for_each_run<2>(p, [&](std::int64_t o, const auto& off, const auto& st, std::int64_t n) {
      const T* x = ap + off[0];
      const T* y = bp + off[1];
      for (std::int64_t i = 0; i < n; ++i) cp[o + i] = f(x[i * st[0]], y[i * st[1]]);
    });
  });
  return c;
}

/// d = f(a, b, c) with broadcasting (where()).
template <class F>
Tensor map_ternary(const Tensor& a, const Tensor& b, const Tensor& c, F f, const char* op) {
  require_defined(a, op, "first operand");
  require_defined(b, op, "second operand");
  require_defined(c, op, "third operand");
  require_same_dtype(a, b, op);
  require_same_dtype(b, c, op);
  auto p = plan_broadcast<3>({&a.shape(), &b.shape(), &c.shape()}, op);
  Tensor d(p.out, a.dtype());
  dispatch(a.dtype(), [&]<class T>() {
    const T *ap = a.data<T>(), *bp = b.data<T>(), *cp = c.data<T>();
    T* dp = d.mutable_data<T>();
    for_each_run<3>(p, [&](std::int64_t o, const auto& off, const auto& st, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i)
        dp[o + i] = f(ap[off[0] + i * st[0]], bp[off[1] + i * st[1]], cp[off[2] + i * st[2]]);
    });
  });
  return d;
}

/// a += b for equal shapes and dtypes (the engine's adjoint accumulation).
void add_inplace(Tensor& a, const Tensor& b);

}  // namespace hyperad::kernels
