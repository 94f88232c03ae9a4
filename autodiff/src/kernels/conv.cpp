#include "kernels/conv.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/buffer.hpp"
#include "kernels/gemm.hpp"
#include "kernels/parallel.hpp"
#include "kernels/vec.hpp"

namespace hyperad::kernels {

namespace {

// The output columns j whose input column j·s − p + b·d lies in [0, W): [lo, hi).
struct Span {
  std::int64_t lo, hi;
};
Span valid(std::int64_t out, std::int64_t in, std::int64_t s, std::int64_t offset) {
  // in-index = j·s + offset, offset = b·d − p
  auto ceil_div = [](std::int64_t a, std::int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-offset, s), 0, out);
  const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(in - offset, s), lo, out);
  return {lo, hi};
}

// f(row of col, input channel c, kernel tap (a, b)) for every row of the column matrix,
// with the valid output-column span of that tap; rows run c-major, then a, then b.
template <class F>
void for_rows(const ConvGeometry& g, F&& f) {
  for (std::int64_t c = 0; c < g.Cg(); ++c)
    for (std::int64_t a = 0; a < g.kh; ++a)
      for (std::int64_t b = 0; b < g.kw; ++b)
        f((c * g.kh + a) * g.kw + b, c, a, b, valid(g.Wo, g.W, g.stride[1], b * g.dil[1] - g.pad[1]));
}

// col [rows, Ho·Wo] from one sample-group x [Cg, H, W]; zeros where a window leaves the image.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  for_rows(g, [&](std::int64_t row, std::int64_t c, std::int64_t a, std::int64_t b, Span js) {
    T* out = col + row * g.out_pixels();
    for (std::int64_t i = 0; i < g.Ho; ++i, out += g.Wo) {
      const std::int64_t ih = i * g.stride[0] - g.pad[0] + a * g.dil[0];
      if (ih < 0 || ih >= g.H || js.lo == js.hi) {
        std::fill(out, out + g.Wo, T(0));
        continue;
      }
      const T* in = x + (c * g.H + ih) * g.W + js.lo * g.stride[1] - g.pad[1] + b * g.dil[1];
      std::fill(out, out + js.lo, T(0));
      if (g.stride[1] == 1) std::memcpy(out + js.lo, in, static_cast<std::size_t>(js.hi - js.lo) * sizeof(T));
      else
        for (std::int64_t j = js.lo; j < js.hi; ++j, in += g.stride[1]) out[j] = *in;
      std::fill(out + js.hi, out + g.Wo, T(0));
    }
  });
}

// x [Cg, H, W] += the entries of col [rows, Ho·Wo] at their input pixels (im2col's adjoint).
template <class T>
void col2im(const ConvGeometry& g, const T* col, T* x) {
  for_rows(g, [&](std::int64_t row, std::int64_t c, std::int64_t a, std::int64_t b, Span js) {
    const T* src = col + row * g.out_pixels();
    for (std::int64_t i = 0; i < g.Ho; ++i, src += g.Wo) {
      const std::int64_t ih = i * g.stride[0] - g.pad[0] + a * g.dil[0];
      if (ih < 0 || ih >= g.H || js.lo == js.hi) continue;
      T* out = x + (c * g.H + ih) * g.W + js.lo * g.stride[1] - g.pad[1] + b * g.dil[1];
      if (g.stride[1] == 1) vec::add_to(out, src + js.lo, js.hi - js.lo);
      else
        for (std::int64_t j = js.lo; j < js.hi; ++j, out += g.stride[1]) *out += src[j];
    }
  });
}

// body(n0, n1) over the samples, on threads when one sample's work (multiply-adds) times
// the batch is worth it (the GEMM's threshold); each sample is done by one thread.
template <class Body>
void over_samples(const ConvGeometry& g, Body&& body) {
  const std::int64_t per_sample = std::max<std::int64_t>(1, g.O * g.out_pixels() * g.rows());
  parallel_for(g.N, std::max<std::int64_t>(1, parallel_gemm() / per_sample), body, 1);
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const std::int64_t rows = g.rows(), P = g.out_pixels(), Og = g.Og(), Cg = g.Cg();
  over_samples(g, [&](std::int64_t n0, std::int64_t n1) {
    Scratch<T> col(g.pointwise() ? 0 : rows * P);
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t k = 0; k < g.groups; ++k) {
        const T* xg = x + (n * g.C + k * Cg) * g.in_pixels();
        const T* c = xg;
        if (!g.pointwise()) {
          im2col(g, xg, col.p);
          c = col.p;
        }
        gemm<T>(false, false, Og, P, rows, w + k * Og * rows, c, y + (n * g.O + k * Og) * P);
      }
  });
}

template <class T>
void conv2d_input_grad(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const std::int64_t rows = g.rows(), P = g.out_pixels(), Og = g.Og(), Cg = g.Cg();
  over_samples(g, [&](std::int64_t n0, std::int64_t n1) {
    Scratch<T> col(g.pointwise() ? 0 : rows * P);
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t k = 0; k < g.groups; ++k) {
        T* dxg = dx + (n * g.C + k * Cg) * g.in_pixels();
        const T* wk = w + k * Og * rows;
        const T* dyg = dy + (n * g.O + k * Og) * P;
        if (g.pointwise()) {
          gemm<T>(true, false, rows, P, Og, wk, dyg, dxg);
          continue;
        }
        gemm<T>(true, false, rows, P, Og, wk, dyg, col.p);
        std::fill(dxg, dxg + Cg * g.in_pixels(), T(0));
        col2im(g, col.p, dxg);
      }
  });
}

// Samples per partial sum of the weight gradient: the batch is cut into chunks of a size
// that depends on N alone (at least 4, at most 64 chunks: bounded scratch), each summed by
// one thread, and the chunks' sums added in order, so the result does not depend on the
// thread count.
std::int64_t weight_chunk(std::int64_t N) { return std::max<std::int64_t>(4, (N + 63) / 64); }

template <class T>
void conv2d_weight_grad(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const std::int64_t rows = g.rows(), P = g.out_pixels(), Og = g.Og(), Cg = g.Cg(), size = g.O * rows;
  if (g.N == 0) return std::fill(dw, dw + size, T(0));
  const std::int64_t chunk = weight_chunk(g.N), chunks = (g.N + chunk - 1) / chunk;
  Scratch<T> partial((chunks - 1) * size);  // the sums of chunks 1, 2, …; chunk 0 sums into dw
  const std::int64_t per_chunk = std::max<std::int64_t>(1, chunk * g.O * P * rows);
  parallel_for(
      chunks, std::max<std::int64_t>(1, parallel_gemm() / per_chunk),
      [&](std::int64_t c0, std::int64_t c1) {
        Scratch<T> col(g.pointwise() ? 0 : rows * P), part(Og * rows);
        for (std::int64_t c = c0; c < c1; ++c) {
          T* out = c == 0 ? dw : partial.p + (c - 1) * size;
          const std::int64_t n0 = c * chunk, n1 = std::min(g.N, n0 + chunk);
          for (std::int64_t k = 0; k < g.groups; ++k) {
            T* outk = out + k * Og * rows;
            for (std::int64_t n = n0; n < n1; ++n) {
              const T* xg = x + (n * g.C + k * Cg) * g.in_pixels();
              const T* cm = xg;
              if (!g.pointwise()) {
                im2col(g, xg, col.p);
                cm = col.p;
              }
              gemm<T>(false, true, Og, rows, P, dy + (n * g.O + k * Og) * P, cm, n == n0 ? outk : part.p);
              if (n > n0) vec::add_to(outk, part.p, Og * rows);
            }
          }
        }
      },
      1);
  for (std::int64_t c = 1; c < chunks; ++c) vec::add_to(dw, partial.p + (c - 1) * size, size);
}

#define HYPERAD_CONV_INSTANTIATE(T)                                                \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, T*);    \
  template void conv2d_input_grad<T>(const ConvGeometry&, const T*, const T*, T*); \
  template void conv2d_weight_grad<T>(const ConvGeometry&, const T*, const T*, T*);
HYPERAD_CONV_INSTANTIATE(float)
HYPERAD_CONV_INSTANTIATE(double)
#undef HYPERAD_CONV_INSTANTIATE

}  // namespace hyperad::kernels
