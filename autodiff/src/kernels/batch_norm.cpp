#include "kernels/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/parallel.hpp"
#include "kernels/simd.hpp"

namespace hyperad::kernels {

namespace {

// Values per chunk summed in T's lanes before the chunk's sum joins a double: float32
// lanes then add at most 16 values each.
constexpr std::int64_t kChunk = 512;

// Σ f(x[i]) over one slab as a double, f applied to batches (four accumulators per chunk).
template <class T, class F>
double slab_sum(const T* x, std::int64_t S, F&& f) {
  constexpr std::int64_t W = kLanes<T>;
  double total = 0;
  for (std::int64_t c0 = 0; c0 < S; c0 += kChunk) {
    const std::int64_t end = std::min(S, c0 + kChunk);
    Batch<T> s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
    std::int64_t i = c0;
    for (; i + 4 * W <= end; i += 4 * W) {
      s0 += f(Batch<T>::load_unaligned(x + i));
      s1 += f(Batch<T>::load_unaligned(x + i + W));
      s2 += f(Batch<T>::load_unaligned(x + i + 2 * W));
      s3 += f(Batch<T>::load_unaligned(x + i + 3 * W));
    }
    for (; i + W <= end; i += W) s0 += f(Batch<T>::load_unaligned(x + i));
    for (; i < end; ++i) total += double(f(x[i]));
    total += double(xsimd::hadd((s0 + s1) + (s2 + s3)));
  }
  return total;
}

// (Σ a, Σ a·(b − mu)) over one slab in one pass, chunked as slab_sum.
template <class T>
std::pair<double, double> slab_sums2(const T* a, const T* b, T mu, std::int64_t S) {
  constexpr std::int64_t W = kLanes<T>;
  const Batch<T> m(mu);
  double sa = 0, sp = 0;
  for (std::int64_t c0 = 0; c0 < S; c0 += kChunk) {
    const std::int64_t end = std::min(S, c0 + kChunk);
    Batch<T> s0(T(0)), s1(T(0)), p0(T(0)), p1(T(0));
    std::int64_t i = c0;
    for (; i + 2 * W <= end; i += 2 * W) {
      const Batch<T> a0 = Batch<T>::load_unaligned(a + i), a1 = Batch<T>::load_unaligned(a + i + W);
      s0 += a0;
      s1 += a1;
      p0 = xsimd::fma(a0, Batch<T>::load_unaligned(b + i) - m, p0);
      p1 = xsimd::fma(a1, Batch<T>::load_unaligned(b + i + W) - m, p1);
    }
    for (; i < end; ++i) {
      sa += double(a[i]);
      sp += double(a[i]) * double(b[i] - mu);
    }
    sa += double(xsimd::hadd(s0 + s1));
    sp += double(xsimd::hadd(p0 + p1));
  }
  return {sa, sp};
}

// y[i] = k1·a[i] + k2·(b[i] − center) + k3 over one slab (a may be nullptr: no k1 term).
// Centring first keeps the accuracy when |center| is large against the spread of b.
template <class T>
void slab_affine(const T* a, const T* b, T center, T k1, T k2, T k3, T* y, std::int64_t S) {
  constexpr std::int64_t W = kLanes<T>;
  const Batch<T> v1(k1), v2(k2), v3(k3), vc(center);
  std::int64_t i = 0;
  if (a) {
    for (; i + W <= S; i += W)
      xsimd::fma(v2, Batch<T>::load_unaligned(b + i) - vc, xsimd::fma(v1, Batch<T>::load_unaligned(a + i), v3))
          .store_unaligned(y + i);
    for (; i < S; ++i) y[i] = k2 * (b[i] - center) + (k1 * a[i] + k3);
  } else {
    for (; i + W <= S; i += W) xsimd::fma(v2, Batch<T>::load_unaligned(b + i) - vc, v3).store_unaligned(y + i);
    for (; i < S; ++i) y[i] = k2 * (b[i] - center) + k3;
  }
}

std::int64_t slab(const BatchNormGeometry& g, std::int64_t grp, std::int64_t i, std::int64_t c) {
  return ((grp * g.n + i) * g.C + c) * g.S;
}

// Units on threads, enough values per thread to pay for the region.
template <class Body>
void for_units(const BatchNormGeometry& g, Body&& body) {
  parallel_for(
      g.units(), std::max<std::int64_t>(1, parallel_elementwise() / std::max<std::int64_t>(1, g.count())),
      [&](std::int64_t u0, std::int64_t u1) {
        for (std::int64_t u = u0; u < u1; ++u) body(u / g.C, u % g.C, u);
      },
      1);
}

}  // namespace

template <class T>
void batch_norm_stats(const BatchNormGeometry& g, const T* x, double eps, double* mean, double* var,
                      double* inv_std) {
  const double m = double(g.count());
  for_units(g, [&](std::int64_t grp, std::int64_t c, std::int64_t u) {
    // Sums of x − x₀ (x₀ the unit's first value): float32 lanes then accumulate values of
    // the spread's size, not of the mean's.
    const T x0 = x[slab(g, grp, 0, c)];
    double s = 0;
    for (std::int64_t i = 0; i < g.n; ++i)
      s += slab_sum(x + slab(g, grp, i, c), g.S, [x0](auto v) { return v - x0; });
    const double mu = double(x0) + s / m;
    // Deviations from μ_T = μ rounded to T, for the same reason.
    const T mt = T(mu);
    double q = 0;
    for (std::int64_t i = 0; i < g.n; ++i)
      q += slab_sum(x + slab(g, grp, i, c), g.S, [mt](auto v) {
        const auto d = v - mt;
        return d * d;
      });
    // Σ(x − μ_T)² = Σ(x − μ)² + m·(μ − μ_T)²: the rounding of μ to T corrected.
    const double v = std::max(0.0, q / m - (mu - double(mt)) * (mu - double(mt)));
    mean[u] = mu;
    var[u] = v;
    inv_std[u] = 1.0 / std::sqrt(v + eps);
  });
}

template <class T>
void batch_norm_forward(const BatchNormGeometry& g, const T* x, const double* mean, const double* inv_std,
                        const T* gamma,
                        const T* beta, T* y) {
  const std::int64_t slabs = g.G * g.n * g.C;
  parallel_for(
      slabs, std::max<std::int64_t>(1, parallel_elementwise() / std::max<std::int64_t>(1, g.S)),
      [&](std::int64_t s0, std::int64_t s1) {
        for (std::int64_t s = s0; s < s1; ++s) {
          const std::int64_t c = s % g.C, u = (s / (g.n * g.C)) * g.C + c;
          // (x − μ)·a + β centred on μ rounded to T, the rounding δ = μ − μ_T in the constant.
          const double a = inv_std[u] * (gamma ? double(gamma[c]) : 1.0), mt = double(T(mean[u]));
          const double b = (beta ? double(beta[c]) : 0.0) - a * (mean[u] - mt);
          slab_affine<T>(nullptr, x + s * g.S, T(mt), T(0), T(a), T(b), y + s * g.S, g.S);
        }
      },
      1);
}

template <class T>
void batch_norm_backward(const BatchNormGeometry& g, const T* x, const T* dy, const double* mean, const double* inv_std,
                         const T* gamma, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> A(static_cast<std::size_t>(g.units())), B(A.size());
  const double m = double(g.count());
  for_units(g, [&](std::int64_t grp, std::int64_t c, std::int64_t u) {
    // Centred on μ_T = μ rounded to T; δ = μ − μ_T. Σ dy·(x − μ) = Σ dy·(x − μ_T) − δ·Σ dy.
    const T mt = T(mean[u]);
    const double delta = mean[u] - double(mt);
    double a = 0, b = 0;
    for (std::int64_t i = 0; i < g.n; ++i) {
      const std::int64_t at = slab(g, grp, i, c);
      const auto [sa, sb] = slab_sums2(dy + at, x + at, mt, g.S);
      a += sa;
      b += sb;
    }
    b -= delta * a;
    const double s = inv_std[u];
    A[static_cast<std::size_t>(u)] = a;
    B[static_cast<std::size_t>(u)] = b * s;  // Σ dy·x̂
    if (!dx) return;
    // dx = γs·dy − γs·x̂·B/m − γs·A/m with x̂ = (x − μ)·s = (x − μ_T)·s − δ·s.
    const double gs = (gamma ? double(gamma[c]) : 1.0) * s;
    const double k2 = -gs * s * (b * s) / m, k3 = -gs * a / m - k2 * delta;
    for (std::int64_t i = 0; i < g.n; ++i) {
      const std::int64_t at = slab(g, grp, i, c);
      slab_affine<T>(dy + at, x + at, mt, T(gs), T(k2), T(k3), dx + at, g.S);
    }
  });
  for (std::int64_t c = 0; c < g.C; ++c) {
    double sa = 0, sb = 0;
    for (std::int64_t grp = 0; grp < g.G; ++grp) {
      sa += A[static_cast<std::size_t>(grp * g.C + c)];
      sb += B[static_cast<std::size_t>(grp * g.C + c)];
    }
    if (dgamma) dgamma[c] = T(sb);
    if (dbeta) dbeta[c] = T(sa);
  }
}

#define HYPERAD_BATCH_NORM_KERNELS(T)                                                                              \
  template void batch_norm_stats<T>(const BatchNormGeometry&, const T*, double, double*, double*, double*); \
  template void batch_norm_forward<T>(const BatchNormGeometry&, const T*, const double*, const double*, const T*, \
                                      const T*, T*);                                                              \
  template void batch_norm_backward<T>(const BatchNormGeometry&, const T*, const T*, const double*, const double*, \
                                       const T*, T*, T*, T*);
HYPERAD_BATCH_NORM_KERNELS(float)
HYPERAD_BATCH_NORM_KERNELS(double)
#undef HYPERAD_BATCH_NORM_KERNELS

}  // namespace hyperad::kernels
