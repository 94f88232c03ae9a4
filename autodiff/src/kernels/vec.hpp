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

/// One sweep over the columns [0, n) of rows of stride ld that does two things at once:
///   dots: y0[r] = a_r·x0, and y1[r] = a_r·x1 when NV = 2, for RD rows a_r = a + r·ld;
///   sums: out += Σ_r alpha[r] · b_r over RA rows b_r = b + r·ld, added in row order.
/// Each batch of x0 (x1, out) is loaded once for all rows and each batch of a row once for
/// both vectors. A fused row pass runs the sums of one group of rows (in cache) in the sweep
/// that reads the next group (from memory), so the loads of one overlap the arithmetic of the
/// other. Each dot has its own accumulator, its lanes summed by sums_of_lanes (W rows at a
/// time, zero accumulators filling the group), so a row's value does not depend on RD or on
/// which rows share a call; the sums give the same values as RA single-row calls.
template <int RD, int NV, int RA, class T>
void sweep_rows(const T* a, std::int64_t ld, std::int64_t n, const T* x0, const T* x1, T* y0, T* y1, const T* alpha,
                const T* b, T* out) {
  static_assert(NV == 1 || NV == 2);
  constexpr int W = static_cast<int>(kLanes<T>);
  using B = Batch<T>;
  B s[NV][RD > 0 ? RD : 1], al[RA > 0 ? RA : 1];
  for (int k = 0; k < NV; ++k)
    for (int r = 0; r < RD; ++r) s[k][r] = B(T(0));
  for (int r = 0; r < RA; ++r) al[r] = B(alpha[r]);
  const T* xs[2] = {x0, x1};
  // One batch of columns at i: `load` reads rows and out (padded lanes are computed, not
  // stored), `load_x` the vectors (zero lanes cancel the rows' padding).
  const auto column = [&](std::int64_t i, auto load, auto load_x, auto store) {
    if constexpr (RD > 0) {
      B x[NV];
      for (int k = 0; k < NV; ++k) x[k] = load_x(xs[k] + i);
      for (int r = 0; r < RD; ++r) {
        const B ar = load(a + r * ld + i);
        for (int k = 0; k < NV; ++k) s[k][r] = xsimd::fma(ar, x[k], s[k][r]);
      }
    }
    if constexpr (RA > 0) {
      B acc = load(out + i);
      for (int r = 0; r < RA; ++r) acc = xsimd::fma(al[r], load(b + r * ld + i), acc);
      store(acc, out + i);
    }
  };
  const auto full = [](const T* p) { return B::load_unaligned(p); };
  std::int64_t i = 0;
  for (; i + W <= n; i += W) column(i, full, full, [](const B& v, T* p) { v.store_unaligned(p); });
  if (i < n) {
    const std::int64_t len = n - i;
    column(
        i, [len](const T* p) { return load_partial(p, len); }, [len](const T* p) { return load_partial(p, len, T(0)); },
        [len](const B& v, T* p) { store_partial(v, p, len); });
  }
  T* ys[2] = {y0, y1};
  for (int k = 0; k < NV; ++k)
    for (int r0 = 0; r0 < RD; r0 += W) {
      B group[W];
      for (int q = 0; q < W; ++q) group[q] = r0 + q < RD ? s[k][r0 + q] : B(T(0));
      alignas(64) T sums[W];
      sums_of_lanes<T>(group).store_aligned(sums);
      for (int q = 0; q < W && r0 + q < RD; ++q) ys[k][r0 + q] = sums[q];
    }
}

/// The dots of sweep_rows alone: y0[r] = a_r·x0 (and y1[r] = a_r·x1) for R rows.
template <int R, int NV, class T>
void dot_rows(const T* a, std::int64_t ld, const T* x0, const T* x1, std::int64_t n, T* y0, T* y1) {
  sweep_rows<R, NV, 0, T>(a, ld, n, x0, x1, y0, y1, nullptr, nullptr, nullptr);
}

/// Rows per call of dot_rows: 8, or 4 for two vectors with 16 vector registers (AVX2, SSE2),
/// where 16 accumulators would not fit.
template <int NV, class T>
inline constexpr int kDotRows = NV == 2 && sizeof(Batch<T>) < 64 ? 4 : 8;

/// Rows per group of a pipelined sweep (dots of one group with the sums of the previous):
/// 8 with 32 vector registers (AVX-512), 4 with 16.
template <class T>
inline constexpr int kSweepRows = sizeof(Batch<T>) == 64 ? 8 : 4;

/// y0[i] = x_i·v0 (and y1[i] = x_i·v1 when v1 is given, else nullptr) for m consecutive
/// rows of x (stride ld, n values each), kDotRows rows per call of dot_rows and the rest in
/// one call (its rows' accumulators independent, not one dependent chain after another):
/// one or two matrix-vector products over a range of rows, in one sweep.
template <int NV, class T>
void row_dots(const T* x, std::int64_t ld, std::int64_t m, const T* v0, const T* v1, std::int64_t n, T* y0, T* y1) {
  constexpr int G = kDotRows<NV, T>;
  std::int64_t i = 0;
  for (; i + G <= m; i += G) dot_rows<G, NV>(x + i * ld, ld, v0, v1, n, y0 + i, NV == 2 ? y1 + i : nullptr);
  x += i * ld, y0 += i;
  if (NV == 2) y1 += i;
  switch (m - i) {
    case 7: return dot_rows<7, NV>(x, ld, v0, v1, n, y0, y1);
    case 6: return dot_rows<6, NV>(x, ld, v0, v1, n, y0, y1);
    case 5: return dot_rows<5, NV>(x, ld, v0, v1, n, y0, y1);
    case 4: return dot_rows<4, NV>(x, ld, v0, v1, n, y0, y1);
    case 3: return dot_rows<3, NV>(x, ld, v0, v1, n, y0, y1);
    case 2: return dot_rows<2, NV>(x, ld, v0, v1, n, y0, y1);
    case 1: return dot_rows<1, NV>(x, ld, v0, v1, n, y0, y1);
    default: return;
  }
}

/// y[i] = x_i·v for m consecutive rows of x: a matrix-vector product over a range of rows.
template <class T>
void row_dots(const T* x, std::int64_t ld, std::int64_t m, const T* v, std::int64_t n, T* y) {
  row_dots<1, T>(x, ld, m, v, nullptr, n, y, nullptr);
}

/// Both products at once when v1 is given (one sweep over the rows), else y0 alone.
template <class T>
void row_dots(const T* x, std::int64_t ld, std::int64_t m, const T* v0, const T* v1, std::int64_t n, T* y0, T* y1) {
  if (v1) return row_dots<2, T>(x, ld, m, v0, v1, n, y0, y1);
  row_dots<1, T>(x, ld, m, v0, nullptr, n, y0, nullptr);
}

/// y[0..n) += Σ_r alpha[r] · x[r·ld .. r·ld + n) over R rows, added in row order (the sums
/// of sweep_rows alone): the same values as R single-row calls, but y is loaded and stored
/// once instead of R times.
template <int R, class T>
void axpy_rows(const T* alpha, const T* x, std::int64_t ld, T* y, std::int64_t n) {
  sweep_rows<0, 1, R, T>(nullptr, ld, n, nullptr, nullptr, nullptr, nullptr, alpha, x, y);
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
