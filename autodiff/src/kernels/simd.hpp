#pragma once
// SIMD building blocks (xsimd) for the kernels. The batch type is xsimd's default for the
// build's instruction set: AVX-512 or AVX2 under -march=native, SSE2 in the portable
// build (HYPERAD_PORTABLE).
//
// Elementwise functors opt in to vectorization by being wrapped in simd(): the kernel then
// calls them with xsimd::batch<T> for whole batches and for the padded last batch, so one
// generic lambda serves both. Written with unqualified calls, it works for scalars and
// batches alike (ADL finds xsimd's overloads for batches):
//     kernels::simd<4>([](auto v) { using std::log; return log(v); })  // 4: cost, see Simd
// Branches become if_else(cond, a, b). Unwrapped functors run as plain scalar loops.
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

// GCC 12 warns about the intrinsics headers' own _mm512_undefined_* idiom (GCC bug
// 105593) where they are inlined; the diagnostic's location is in the headers, so
// ignoring it while they are read silences exactly that and nothing of ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop

namespace hyperad::kernels {

template <class T>
using Batch = xsimd::batch<T>;

/// Lanes of a batch of T.
template <class T>
inline constexpr std::int64_t kLanes = static_cast<std::int64_t>(Batch<T>::size);

/// A functor that accepts batches as well as scalars (see the file comment). `Cost` is
/// its work per element relative to one add (about 4 for exp, tanh, log, ...); the
/// maps divide their parallel threshold by it, so expensive functions split over
/// threads at smaller sizes (bench/bench_threshold.cpp).
template <class F, int Cost = 1>
struct Simd {
  static constexpr int cost = Cost;
  F f;
  template <class... A>
  auto operator()(const A&... a) const {
    return f(a...);
  }
};

template <int Cost = 1, class F>
Simd<F, Cost> simd(F f) {
  return Simd<F, Cost>{std::move(f)};
}

template <class F>
inline constexpr bool is_simd_v = false;
template <class F, int C>
inline constexpr bool is_simd_v<Simd<F, C>> = true;

/// Work per element of an elementwise functor, in adds (1 unless declared with simd<C>).
template <class F>
inline constexpr int cost_v = 1;
template <class F, int C>
inline constexpr int cost_v<Simd<F, C>> = C;

/// cond ? a : b, for scalars, and lane by lane for batches.
template <class T>
  requires std::is_floating_point_v<T>
T if_else(bool cond, T a, T b) {
  return cond ? a : b;
}
template <class T, class A>
xsimd::batch<T, A> if_else(const xsimd::batch_bool<T, A>& cond, const xsimd::batch<T, A>& a,
                           const xsimd::batch<T, A>& b) {
  return xsimd::select(cond, a, b);
}

/// Loads n ≤ kLanes<T> elements into a batch whose other lanes are `pad` (by default
/// one, harmless for every elementwise function), and stores the first n lanes of a
/// batch. With AVX-512 and AVX2 these are masked instructions (the masked-off lanes are
/// not read, so a load at the end of an allocation is safe); otherwise they go through a
/// stack buffer.
template <class T>
Batch<T> load_partial(const T* p, std::int64_t n, T pad = T(1)) {
#if defined(__AVX512F__)
  if constexpr (sizeof(Batch<T>) == 64) {
    const auto mask = static_cast<__mmask16>((1u << n) - 1);
    if constexpr (std::is_same_v<T, double>) return _mm512_mask_loadu_pd(_mm512_set1_pd(pad), static_cast<__mmask8>(mask), p);
    else return _mm512_mask_loadu_ps(_mm512_set1_ps(pad), mask, p);
  }
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(Batch<T>) == 32) {
    if constexpr (std::is_same_v<T, double>) {
      const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
      return _mm256_blendv_pd(_mm256_set1_pd(pad), _mm256_maskload_pd(p, mask), _mm256_castsi256_pd(mask));
    } else {
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      return _mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask));
    }
  }
#endif
  alignas(64) T buf[kLanes<T>];
  for (std::int64_t i = 0; i < kLanes<T>; ++i) buf[i] = pad;
  std::memcpy(buf, p, static_cast<std::size_t>(n) * sizeof(T));
  return Batch<T>::load_aligned(buf);
}
template <class T>
void store_partial(const Batch<T>& v, T* p, std::int64_t n) {
#if defined(__AVX512F__)
  if constexpr (sizeof(Batch<T>) == 64) {
    const auto mask = static_cast<__mmask16>((1u << n) - 1);
    if constexpr (std::is_same_v<T, double>) _mm512_mask_storeu_pd(p, static_cast<__mmask8>(mask), v);
    else _mm512_mask_storeu_ps(p, mask, v);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(Batch<T>) == 32) {
    if constexpr (std::is_same_v<T, double>) {
      _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)), v);
    } else {
      _mm256_maskstore_ps(
          p, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), v);
    }
    return;
  }
#endif
  alignas(64) T buf[kLanes<T>];
  v.store_aligned(buf);
  std::memcpy(p, buf, static_cast<std::size_t>(n) * sizeof(T));
}

/// Lane q of the result: the sum of the lanes of v[q], added in the same order for every q
/// (so a dot product's value does not depend on its place in a group). xsimd::haddp,
/// except for 16-lane floats: xsimd 8.1's AVX-512 float haddp returns lanes 2–5 and 10–13
/// in the wrong places (v[4]'s sum in lane 2, ...; found by test_kernels on an AVX-512
/// machine), so they are transposed and summed here, halving the vectors at each step.
template <class T>
Batch<T> sums_of_lanes(const Batch<T> (&v)[kLanes<T>]) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && kLanes<T> == 16) {
    // Within each 128-bit block: pairs of vectors give (e0 + e2, e1 + e3) interleaved, then
    // pairs of those the block sums of four vectors. Across blocks: (b0 + b1, b2 + b3), then
    // their sum, with vector q's total landing in lane q.
    __m512 t[8], u[4], w[2];
    for (int k = 0; k < 8; ++k) {
      const __m512 a = v[2 * k], b = v[2 * k + 1];
      t[k] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    }
    for (int k = 0; k < 4; ++k) {
      const __m512d a = _mm512_castps_pd(t[2 * k]), b = _mm512_castps_pd(t[2 * k + 1]);
      u[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    constexpr int kEven = 0b10'00'10'00, kOdd = 0b11'01'11'01;  // blocks (0, 2 | 0, 2), (1, 3 | 1, 3)
    for (int k = 0; k < 2; ++k)
      w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], kEven),
                           _mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], kOdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], kEven), _mm512_shuffle_f32x4(w[0], w[1], kOdd));
  }
#endif
  return xsimd::haddp(v);
}

}  // namespace hyperad::kernels
