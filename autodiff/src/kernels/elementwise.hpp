#pragma once
// Elementwise kernels: unary maps, and binary/ternary maps with numpy broadcasting.
//
// The functors are generic lambdas over the element type; wrapped in simd() (simd.hpp)
// they also take xsimd batches and the maps run vectorized (the last, partial batch is
// padded, so every element goes through the same code). Fast paths: equal shapes and a
// scalar operand run as one flat loop; other broadcasts are reduced to runs along the
// innermost (coalesced) axis where each operand is either contiguous or a repeated
// scalar, which covers row and column broadcasts. Large maps split over OpenMP threads.
#include <array>
#include <cstdint>
#include <utility>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tensor.hpp"
#include "deferred.hpp"
#include "kernels/parallel.hpp"
#include "kernels/simd.hpp"

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

/// The same iteration space with unit axes dropped and adjacent axes merged wherever
/// every operand steps through them as one (contiguously, or not at all), so the
/// innermost runs are as long as possible. The output stays row-major contiguous.
template <int N>
Broadcast<N> coalesce(const Broadcast<N>& p) {
  std::array<std::int64_t, kMaxRank> dims{};
  std::array<std::array<std::int64_t, kMaxRank>, N> st{};
  int r = 0;
  for (int d = 0; d < p.out.rank(); ++d) {
    const std::int64_t n = p.out.begin()[d];
    if (n == 1) continue;
    bool merge = r > 0;
    for (int k = 0; k < N && merge; ++k) merge = st[k][r - 1] == p.strides[k][d] * n;
    if (merge) {
      dims[r - 1] *= n;
      for (int k = 0; k < N; ++k) st[k][r - 1] = p.strides[k][d];
    } else {
      dims[r] = n;
      for (int k = 0; k < N; ++k) st[k][r] = p.strides[k][d];
      ++r;
    }
  }
  Broadcast<N> c;
  c.out = Shape(std::span<const std::int64_t>(dims.data(), static_cast<std::size_t>(r)));
  c.strides = st;
  return c;
}

/// Calls body(out_offset, in_offsets, inner_strides, count) for runs [first, last) of the
/// innermost axis of p.out (count elements each; output stride 1 along the run).
template <int N, class Body>
void for_runs(const Broadcast<N>& p, std::int64_t first, std::int64_t last, Body&& body) {
  const int r = p.out.rank();
  if (r == 0) {
    std::array<std::int64_t, N> off{}, st{};
    if (first < last) body(std::int64_t{0}, off, st, std::int64_t{1});
    return;
  }
  const std::int64_t inner = p.out.begin()[r - 1];
  std::array<std::int64_t, N> inner_st{};
  for (int k = 0; k < N; ++k) inner_st[k] = p.strides[k][r - 1];
  std::array<std::int64_t, kMaxRank> idx{};
  std::array<std::int64_t, N> off{};
  for (std::int64_t d = r - 2, rest = first; d >= 0; --d) {  // odometer start for run `first`
    const std::int64_t n = p.out.begin()[d];
    idx[d] = rest % n;
    rest /= n;
    for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
  }
  for (std::int64_t run = first; run < last; ++run) {
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

/// Calls body(out_offset, in_offsets, inner_strides, count) for each run of the innermost
/// axis of p.out (count elements; output stride 1 along the run).
template <int N, class Body>
void for_each_run(const Broadcast<N>& p, Body&& body) {
  if (p.out.numel() == 0) return;
  const std::int64_t inner = p.out.rank() == 0 ? 1 : p.out.begin()[p.out.rank() - 1];
  for_runs<N>(p, 0, p.out.numel() / inner, body);
}

namespace detail {

// out[i] = f(in_0[i or 0], ..., in_{N-1}[i or 0]) for i < n: bit k of Mask set means
// operand k is one value repeated (a broadcast scalar), clear means contiguous.
template <class T, unsigned Mask, class F, std::size_t N, std::size_t... K>
void run_masked(const F& f, const std::array<const T*, N>& in, T* out, std::int64_t n,
                std::index_sequence<K...>) {
  constexpr std::array<bool, N> rep{((Mask >> K) & 1u) != 0 ...};
  if constexpr (is_simd_v<F>) {
    constexpr std::int64_t W = kLanes<T>;
    const std::array<Batch<T>, N> splat{(rep[K] ? Batch<T>(in[K][0]) : Batch<T>(T(0)))...};
    std::int64_t i = 0;
    for (; i + W <= n; i += W) {
      Batch<T> y = f((rep[K] ? splat[K] : Batch<T>::load_unaligned(in[K] + i))...);
      y.store_unaligned(out + i);
    }
    if (i < n) {
      Batch<T> y = f((rep[K] ? splat[K] : load_partial(in[K] + i, n - i))...);
      store_partial(y, out + i, n - i);
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(f(in[K][rep[K] ? 0 : i]...));
  }
}

template <class T, class F, std::size_t N, unsigned... M>
void run_dispatch(unsigned mask, const F& f, const std::array<const T*, N>& in, T* out, std::int64_t n,
                  std::integer_sequence<unsigned, M...>) {
  ((mask == M ? run_masked<T, M>(f, in, out, n, std::make_index_sequence<N>{}) : void()), ...);
}

/// One run: operand k is contiguous when rep bit k is clear, a repeated scalar when set.
template <class T, class F, std::size_t N>
void run(unsigned rep, const F& f, const std::array<const T*, N>& in, T* out, std::int64_t n) {
  run_dispatch<T>(rep, f, in, out, n, std::make_integer_sequence<unsigned, (1u << N)>{});
}

// The general broadcast path: runs of the coalesced plan, split over threads by runs.
template <class T, class F, int N>
void map_broadcast(const Broadcast<N>& plan, const F& f, const std::array<const T*, N>& in, T* out) {
  const Broadcast<N> p = coalesce(plan);
  const std::int64_t total = p.out.numel();
  if (total == 0) return;
  const std::int64_t inner = p.out.rank() == 0 ? 1 : p.out.begin()[p.out.rank() - 1];
  const std::int64_t runs = total / inner;
  const std::int64_t threshold = parallel_elementwise() / cost_v<F>;
  const std::int64_t run_threshold = (threshold + inner - 1) / inner;
  parallel_for(
      runs, run_threshold,
      [&](std::int64_t first, std::int64_t last) {
        for_runs<N>(p, first, last, [&](std::int64_t o, const auto& off, const auto& st, std::int64_t n) {
          std::array<const T*, N> at{};
          unsigned rep = 0;
          for (int k = 0; k < N; ++k) {
            at[k] = in[k] + off[k];
            if (st[k] == 0) rep |= 1u << k;
          }
          run<T>(rep, f, at, out + o, n);
        });
      },
      1);
}

// A flat map over n elements (equal shapes or scalar operands), split over threads.
template <class T, class F, std::size_t N>
void map_flat(unsigned rep, const F& f, const std::array<const T*, N>& in, T* out, std::int64_t n) {
  parallel_for(n, parallel_elementwise() / cost_v<F>, [&](std::int64_t lo, std::int64_t hi) {
    std::array<const T*, N> at{};
    for (std::size_t k = 0; k < N; ++k) at[k] = (rep >> k) & 1u ? in[k] : in[k] + lo;
    run<T>(rep, f, at, out + lo, hi - lo);
  });
}

}  // namespace detail

inline void require_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw DtypeError(fmt::format("{}: dtype mismatch, first operand {} {} vs second operand {} {}", op,
                                 dtype_name(a.dtype()), a.shape().str(), dtype_name(b.dtype()),
                                 b.shape().str()));
}

inline void require_defined(const Tensor& t, const char* op, const char* role) {
  if (!t.defined()) throw ValueError(fmt::format("{}: {} is an undefined tensor", op, role));
}

/// y = f(x) elementwise. Of a lazy value (deferred.hpp), y may be one too: f is then copied
/// and run when y is read, so it must capture by value.
template <class F>
Tensor map_unary(const Tensor& x, F f, const char* op) {
  require_defined(x, op, "input");
  Tensor lazy = hyperad::detail::lazy_elementwise(
      x, Tensor(), [f, op](const Tensor& a, const Tensor&) { return map_unary(a, f, op); });
  if (lazy.defined()) return lazy;
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    detail::map_flat<T>(0u, f, std::array<const T*, 1>{x.data<T>()}, y.mutable_data<T>(), x.numel());
  });
  return y;
}

/// c = f(a, b) with broadcasting; f captures by value (as map_unary's).
template <class F>
Tensor map_binary(const Tensor& a, const Tensor& b, F f, const char* op) {
  require_defined(a, op, "first operand");
  require_defined(b, op, "second operand");
  require_same_dtype(a, b, op);
  Tensor lazy = hyperad::detail::lazy_elementwise(
      a, b, [f, op](const Tensor& x, const Tensor& y) { return map_binary(x, y, f, op); });
  if (lazy.defined()) return lazy;
  // Equal shapes, or one operand a single value that adds no axes: one flat loop.
  unsigned rep = 2;  // which operand, if any, is the repeated single value
  if (a.shape() == b.shape()) rep = 0;
  else if (b.numel() == 1 && b.rank() <= a.rank()) rep = 2;
  else if (a.numel() == 1 && a.rank() <= b.rank()) rep = 1;
  else rep = 4;
  if (rep != 4) {
    const Tensor& big = rep == 1 ? b : a;
    Tensor c(big.shape(), a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
      detail::map_flat<T>(rep, f, std::array<const T*, 2>{a.data<T>(), b.data<T>()}, c.mutable_data<T>(),
                          big.numel());
    });
    return c;
  }
  auto p = plan_broadcast<2>({&a.shape(), &b.shape()}, op);
  Tensor c(p.out, a.dtype());
  dispatch(a.dtype(), [&]<class T>() {
    detail::map_broadcast<T, F, 2>(p, f, {a.data<T>(), b.data<T>()}, c.mutable_data<T>());
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
  if (a.shape() == b.shape() && b.shape() == c.shape()) {
    Tensor d(a.shape(), a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
      detail::map_flat<T>(0u, f, std::array<const T*, 3>{a.data<T>(), b.data<T>(), c.data<T>()},
                          d.mutable_data<T>(), a.numel());
    });
    return d;
  }
  auto p = plan_broadcast<3>({&a.shape(), &b.shape(), &c.shape()}, op);
  Tensor d(p.out, a.dtype());
  dispatch(a.dtype(), [&]<class T>() {
    detail::map_broadcast<T, F, 3>(p, f, {a.data<T>(), b.data<T>(), c.data<T>()}, d.mutable_data<T>());
  });
  return d;
}

/// a += b for equal shapes and dtypes (the engine's adjoint accumulation).
void add_inplace(Tensor& a, const Tensor& b);

}  // namespace hyperad::kernels
