#pragma once
// Vectorized primitives over contiguous arrays, shared by the reduction and GEMM kernels.
#include <cstdint>

#include "kernels/simd.hpp"

namespace hyperad::kernels::vec {

/// Σ x[0..n), with four independent accumulators (more accurate than one running sum,
/// and not bound by the latency of one add chain). Fixed order for a given n.
template <class T>
T sum(const T* x, std::int64_t n) {
  constexpr std::int64_t W = kLanes<T>;
  Batch<T> s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 += Batch<T>::load_unaligned(x + i);
    s1 += Batch<T>::load_unaligned(x + i + W);
    s2 += Batch<T>::load_unaligned(x + i + 2 * W);
    s3 += Batch<T>::load_unaligned(x + i + 3 * W);
  }
  for (; i + W <= n; i += W) s0 += Batch<T>::load_unaligned(x + i);
  if (i < n) s1 += load_partial(x + i, n - i, T(0));
  return xsimd::hadd((s0 + s1) + (s2 + s3));
}

/// y[r] = Σ_i a[r·ld + i] x[i] for R rows at once (a matrix-vector product's rows): each
/// batch of x is loaded once for all R rows. One accumulator per row, so a row's value
/// does not depend on R or on which rows share a call.
template <int R, class T>
void dot_rows(const T* a, std::int64_t ld, const T* x, std::int64_t n, T* y) {
  constexpr std::int64_t W = kLanes<T>;
  using B = Batch<T>;
  B s[R];
  for (int r = 0; r < R; ++r) s[r] = B(T(0));
  std::int64_t i = 0;
  for (; i + W <= n; i += W) {
    const B xv = B::load_unaligned(x + i);
    for (int r = 0; r < R; ++r) s[r] = xsimd::fma(B::load_unaligned(a + r * ld + i), xv, s[r]);
  }
  if (i < n) {
    const B xv = load_partial(x + i, n - i, T(0));  // zero lanes cancel a's padding
    for (int r = 0; r < R; ++r) s[r] = xsimd::fma(load_partial(a + r * ld + i, n - i), xv, s[r]);
  }
  for (int r = 0; r < R; ++r) y[r] = xsimd::hadd(s[r]);
}

/// y[i] = x_i·v for m consecutive rows of x (stride ld, n values each), eight rows per
/// call of dot_rows and the rest in one call (its rows' accumulators independent, not
/// one dependent chain after another): a matrix-vector product over a range of rows.
template <class T>
void row_dots(const T* x, std::int64_t ld, std::int64_t m, const T* v, std::int64_t n, T* y) {
  std::int64_t i = 0;
  for (; i + 8 <= m; i += 8) dot_rows<8>(x + i * ld, ld, v, n, y + i);
  x += i * ld, y += i;
  switch (m - i) {
    case 7: return dot_rows<7>(x, ld, v, n, y);
    case 6: return dot_rows<6>(x, ld, v, n, y);
    case 5: return dot_rows<5>(x, ld, v, n, y);
    case 4: return dot_rows<4>(x, ld, v, n, y);
    case 3: return dot_rows<3>(x, ld, v, n, y);
    case 2: return dot_rows<2>(x, ld, v, n, y);
    case 1: return dot_rows<1>(x, ld, v, n, y);
    default: return;
  }
}

/// y[0..n) += Σ_r alpha[r] · x[r·ld .. r·ld + n) over R rows, added in row order: the same
/// values as R single-row calls, but y is loaded and stored once instead of R times.
template <int R, class T>
void axpy_rows(const T* alpha, const T* x, std::int64_t ld, T* y, std::int64_t n) {
  constexpr std::int64_t W = kLanes<T>;
  Batch<T> a[R];
  for (int r = 0; r < R; ++r) a[r] = Batch<T>(alpha[r]);
  std::int64_t i = 0;
  for (; i + W <= n; i += W) {
    Batch<T> acc = Batch<T>::load_unaligned(y + i);
    for (int r = 0; r < R; ++r) acc = xsimd::fma(a[r], Batch<T>::load_unaligned(x + r * ld + i), acc);
    acc.store_unaligned(y + i);
  }
  if (i < n) {  // the padded lanes are computed but not stored
    Batch<T> acc = load_partial(y + i, n - i);
    for (int r = 0; r < R; ++r) acc = xsimd::fma(a[r], load_partial(x + r * ld + i, n - i), acc);
    store_partial(acc, y + i, n - i);
  }
}

/// dst[0..n) += src[0..n)
template <class T>
void add_to(T* dst, const T* src, std::int64_t n) {
  constexpr std::int64_t W = kLanes<T>;
  std::int64_t i = 0;
  for (; i + W <= n; i += W)
    (Batch<T>::load_unaligned(dst + i) + Batch<T>::load_unaligned(src + i)).store_unaligned(dst + i);
  for (; i < n; ++i) dst[i] += src[i];
}

}  // namespace hyperad::kernels::vec
