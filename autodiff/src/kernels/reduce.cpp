#include "kernels/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "kernels/buffer.hpp"
#include "kernels/elementwise.hpp"  // broadcast plans, parallel_for
#include "kernels/exp.hpp"
#include "kernels/vec.hpp"

namespace hyperad::kernels {

namespace {

// Sums are taken over fixed blocks of kChunk elements whose partial sums are added in
// order: the same result for every thread count.
constexpr std::int64_t kChunk = std::int64_t{1} << 14;

// Parallel thresholds in elements: reductions only read (no output stream), so they
// split later than a map; the exponentials of logsumexp make it split earlier.
std::int64_t reduce_threshold() { return 2 * parallel_elementwise(); }
std::int64_t lse_threshold() { return parallel_elementwise() / 4; }

using vec::add_to;

// Σ of block(lo, len) over fixed blocks of [0, n), blocks possibly on several threads.
template <class T, class Block>
T chunked_sum(std::int64_t n, const Block& block) {
  if (n <= kChunk) return block(std::int64_t{0}, n);
  const std::int64_t nc = (n + kChunk - 1) / kChunk;
  Scratch<T> partial(nc);
  parallel_for(
      nc, reduce_threshold() / kChunk,
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t c = lo; c < hi; ++c) partial.p[c] = block(c * kChunk, std::min(kChunk, n - c * kChunk));
      },
      1);
  T s = 0;
  for (std::int64_t c = 0; c < nc; ++c) s += partial.p[c];
  return s;
}

constexpr std::int64_t kColumnBlock = std::int64_t{1} << 17;

// 2 to 64 blocks of about kColumnBlock elements, of equal rows (so two threads each take
// the half of the rows that a row-split product gives them): rows per block and count.
std::pair<std::int64_t, std::int64_t> row_blocks(std::int64_t R, std::int64_t K) {
  const std::int64_t blocks = std::clamp<std::int64_t>((R * K + kColumnBlock - 1) / kColumnBlock, 2, 64);
  const std::int64_t rows = (R + blocks - 1) / blocks;
  return {rows, (R + rows - 1) / rows};
}

// Calls run(r0, r1, p) over fixed blocks of rows, p the block's K partial sums, then sets
// out to the sum of the partials in block order (on the caller's thread alone, straight
// into out, when the work is small or gives one block).
template <class T, class Run>
void row_blocked_sums(std::int64_t R, std::int64_t K, T* out, const Run& run) {
  const auto [rows, nc] = row_blocks(R, K);
  if (R * K <= kChunk || nc < 2) return run(std::int64_t{0}, R, out);
  // Partials a whole number of cache lines apart: two threads writing the two ends of one
  // line would pass it back and forth on every group of rows.
  constexpr std::int64_t kLine = 64 / sizeof(T);
  const std::int64_t stride = (K + kLine - 1) / kLine * kLine;
  Scratch<T> partial(out ? nc * stride : 0);
  parallel_for(
      nc, std::max<std::int64_t>(1, reduce_threshold() / (rows * K)),
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t c = lo; c < hi; ++c)
          run(c * rows, std::min(R, c * rows + rows), out ? partial.p + c * stride : nullptr);
      },
      1);
  if (!out) return;
  std::copy(partial.p, partial.p + K, out);
  for (std::int64_t c = 1; c < nc; ++c) add_to(out, partial.p + c * stride, K);
}

// p[0..n) += Σ_i c[i] x_i over m rows of stride K, in row order, eight per pass over p.
template <class T>
void add_weighted_rows(const T* c, const T* x, std::int64_t K, std::int64_t m, T* p, std::int64_t n) {
  static constexpr T kOnes[8] = {T(1), T(1), T(1), T(1), T(1), T(1), T(1), T(1)};
  std::int64_t i = 0;
  for (; i + 8 <= m; i += 8) vec::axpy_rows<8>(c ? c + i : kOnes, x + i * K, K, p, n);
  for (; i < m; ++i) vec::axpy_rows<1>(c ? c + i : kOnes, x + i * K, K, p, n);
}

}  // namespace

// Rows are added in order, eight per pass over the output (vec::axpy_rows). Small inputs
// go straight into out. Larger ones are cut into fixed blocks of rows whose weighted sums
// are computed separately (on any thread, each reading contiguous memory, and each thread
// keeping to the same rows call after call, so a matrix that fits the threads' caches
// stays there) and then added in order; very wide rows are split by columns instead.
// The choice depends on the shape only, so results do not depend on the thread count.
template <class T>
void weighted_column_sums(const T* x, const T* w, std::int64_t R, std::int64_t K, T* out) {
  // p[c0, c1) = Σ_{r in [r0, r1)} w_r x[r, c0..c1); fma by one is exactly an add.
  const auto add_rows = [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1, T* p) {
    std::fill(p + c0, p + c1, T(0));
    add_weighted_rows(w ? w + r0 : nullptr, x + r0 * K + c0, K, r1 - r0, p + c0, c1 - c0);
  };
  constexpr std::int64_t kWide = 1024;  // columns per row above which threads split columns
  if (R * K > kChunk && (K >= kWide || row_blocks(R, K).second < 2)) {
    parallel_for(K, (reduce_threshold() + R - 1) / R, [&](std::int64_t lo, std::int64_t hi) { add_rows(0, R, lo, hi, out); });
    return;
  }
  row_blocked_sums(R, K, out, [&](std::int64_t r0, std::int64_t r1, T* p) { add_rows(r0, r1, 0, K, p); });
}

// Groups of H·G rows (G = kSweepRows): their dots (both vectors in one sweep), their
// weights, then their weighted sum, run in the sweeps that read the next group's rows for
// their dots (vec::sweep_rows, G rows of each at a time): the sum's rows come from cache
// while the next rows stream in, so the memory is kept busy during the arithmetic instead
// of waiting for it. Two halves (H = 2) when 16 rows fit in L1: the weights of 16 rows are
// then computed in one call, whose exponentials and divisions overlap (with 8 rows their
// latency showed: eval_terms took 27 % of a 500 × 100 pass). The same values as dots and
// sums in separate sweeps (rows are added in order).
template <class T, int NV, int H>
void pipelined_row_pass(const T* x, std::int64_t K, const T* v0, const T* v1, RowWeights<T> weights,
                        std::int64_t r0, std::int64_t r1, T* p) {
  constexpr int G = vec::kSweepRows<T>, GH = G * H;
  alignas(64) T d0[GH], d1[GH], c[2][GH];
  std::int64_t prev = -1, prev_m = 0;  // the group whose weighted sum is still to be added
  T* c_prev = c[1];
  for (std::int64_t r = r0; r < r1; r += GH) {
    const std::int64_t m = std::min<std::int64_t>(GH, r1 - r);
    T* c_cur = c_prev == c[0] ? c[1] : c[0];
    for (int h = 0; h < H; ++h) {
      const std::int64_t cur_n = std::clamp<std::int64_t>(m - h * G, 0, G);
      const std::int64_t prev_n = prev >= 0 ? std::clamp<std::int64_t>(prev_m - h * G, 0, G) : 0;
      const T* cur = x + (r + h * G) * K;
      const T* old = x + (prev + h * G) * K;
      if (p && cur_n == G && prev_n == G) {
        vec::sweep_rows<G, NV, G>(cur, K, K, v0, v1, d0 + h * G, d1 + h * G, c_prev + h * G, old, p);
      } else {
        if (p && prev_n > 0) add_weighted_rows(c_prev + h * G, old, K, prev_n, p, K);
        if (cur_n > 0) vec::row_dots<NV, T>(cur, K, cur_n, v0, v1, K, d0 + h * G, d1 + h * G);
      }
    }
    weights.fn(weights.ctx, r, m, d0, NV == 2 ? d1 : nullptr, c_cur);
    prev = r, prev_m = m, c_prev = c_cur;
  }
  if (p && prev >= 0) add_weighted_rows(c_prev, x + prev * K, K, prev_m, p, K);
}

// Rows shorter than four cache lines: groups of 16 rows, their dots, weights and sum in
// turn. The per-group work (the weights, the sums of lanes) then weighs more than the rows
// and is spread over twice as many; measured on AVX-512 at 2000×10 (float64, 1 thread), 32 %
// of a plain read of X against 28 % pipelined.
template <class T>
void short_row_pass(const T* x, std::int64_t K, const T* v0, const T* v1, RowWeights<T> weights, std::int64_t r0,
                    std::int64_t r1, T* p) {
  constexpr std::int64_t G = 16;
  alignas(64) T d0[G], d1[G], c[G];
  for (std::int64_t r = r0; r < r1; r += G) {
    const std::int64_t m = std::min(G, r1 - r);
    vec::row_dots(x + r * K, K, m, v0, v1, K, d0, d1);
    weights.fn(weights.ctx, r, m, d0, v1 ? d1 : nullptr, c);
    if (p) add_weighted_rows(c, x + r * K, K, m, p, K);
  }
}

template <class T>
void fused_row_pass(const T* x, std::int64_t R, std::int64_t K, const T* v0, const T* v1, RowWeights<T> weights,
                    T* out) {
  const std::int64_t row_bytes = K * static_cast<std::int64_t>(sizeof(T));
  const bool halves = 2 * vec::kSweepRows<T> * row_bytes <= 32 * 1024;
  row_blocked_sums(R, K, out, [&](std::int64_t r0, std::int64_t r1, T* p) {
    if (p) std::fill(p, p + K, T(0));
    if (row_bytes < 256) short_row_pass(x, K, v0, v1, weights, r0, r1, p);
    else if (v1 && halves) pipelined_row_pass<T, 2, 2>(x, K, v0, v1, weights, r0, r1, p);
    else if (v1) pipelined_row_pass<T, 2, 1>(x, K, v0, v1, weights, r0, r1, p);
    else if (halves) pipelined_row_pass<T, 1, 2>(x, K, v0, v1, weights, r0, r1, p);
    else pipelined_row_pass<T, 1, 1>(x, K, v0, v1, weights, r0, r1, p);
  });
}

template void fused_row_pass<float>(const float*, std::int64_t, std::int64_t, const float*, const float*,
                                    RowWeights<float>, float*);
template void fused_row_pass<double>(const double*, std::int64_t, std::int64_t, const double*, const double*,
                                     RowWeights<double>, double*);
template void weighted_column_sums<float>(const float*, const float*, std::int64_t, std::int64_t, float*);
template void weighted_column_sums<double>(const double*, const double*, std::int64_t, std::int64_t, double*);

namespace {

// out[k] = Σ_r x[k, r] for x [K, R].
template <class T>
void row_sums(const T* x, std::int64_t K, std::int64_t R, T* out) {
  if (R > kChunk) {
    for (std::int64_t k = 0; k < K; ++k)
      out[k] = chunked_sum<T>(R, [&](std::int64_t lo, std::int64_t n) { return vec::sum(x + k * R + lo, n); });
    return;
  }
  parallel_for(
      K, (reduce_threshold() + R - 1) / R,
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t k = lo; k < hi; ++k) out[k] = vec::sum(x + k * R, R);
      },
      1);
}

}  // namespace

Tensor sum_to(const Tensor& x, const Shape& target, const char* op) {
  if (x.shape() == target) return x;
  if (target.rank() > x.rank() || broadcast_shapes(x.shape(), target, op) != x.shape())
    throw ShapeError(fmt::format("{}: cannot sum a tensor of shape {} down to shape {}", op, x.shape().str(),
                                 target.str()));
  Tensor out(target, x.dtype());
  // After coalescing, axes alternate between summed (target stride 0) and kept.
  const auto p = coalesce(plan_broadcast<2>({&x.shape(), &target}, op));
  const int r = p.out.rank();
  const auto kept = [&](int d) { return p.strides[1][d] != 0; };
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* o = out.mutable_data<T>();
    if (target.numel() == 0) return;
    if (x.numel() == 0) {
      std::fill(o, o + target.numel(), T(0));
    } else if (r == 0 || (r == 1 && kept(0))) {  // nothing summed: the same values
      std::copy(xp, xp + x.numel(), o);
    } else if (r == 1) {
      const std::int64_t n = x.numel();
      o[0] = chunked_sum<T>(n, [&](std::int64_t lo, std::int64_t len) { return vec::sum(xp + lo, len); });
    } else if (r == 2 && kept(0)) {
      row_sums(xp, p.out.begin()[0], p.out.begin()[1], o);
    } else if (r == 2) {
      weighted_column_sums<T>(xp, nullptr, p.out.begin()[0], p.out.begin()[1], o);
    } else {
      std::fill(o, o + target.numel(), T(0));
      for_each_run<2>(p, [&](std::int64_t, const auto& off, const auto& st, std::int64_t n) {
        if (st[1] == 0) o[off[1]] += vec::sum(xp + off[0], n);
        else add_to(o + off[1], xp + off[0], n);
      });
    }
  });
  return out;
}

AxisSplit split_at(const Shape& s, int axis) {
  AxisSplit a;
  for (int d = 0; d < s.rank(); ++d) {
    if (d < axis) a.outer *= s.begin()[d];
    else if (d == axis) a.n = s.begin()[d];
    else a.inner *= s.begin()[d];
  }
  return a;
}

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  std::vector<std::int64_t> d;
  for (int i = 0; i < s.rank(); ++i) {
    if (i != axis) d.push_back(s.begin()[i]);
    else if (keepdim) d.push_back(1);
  }
  return Shape(d);
}

namespace {

// Index of the first extremum of a contiguous lane (the first NaN if there is one):
// a vectorized pass finds the extreme value, a scan finds where it first occurs.
template <class T>
std::int64_t lane_extremum(const T* x, std::int64_t n, bool want_max) {
  constexpr std::int64_t W = kLanes<T>;
  if (n < 2 * W) {
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < n; ++k) {
      const T v = x[k], b = x[best];
      if (want_max ? v > b : v < b) best = k;
      if (std::isnan(v) && !std::isnan(b)) best = k;
    }
    return best;
  }
  Batch<T> m = Batch<T>::load_unaligned(x);
  auto nan = xsimd::isnan(m);
  std::int64_t i = W;
  for (; i + W <= n; i += W) {
    const Batch<T> v = Batch<T>::load_unaligned(x + i);
    nan = nan | xsimd::isnan(v);
    m = want_max ? xsimd::max(m, v) : xsimd::min(m, v);
  }
  const Batch<T> tail = Batch<T>::load_unaligned(x + n - W);  // overlaps: harmless for max/min
  nan = nan | xsimd::isnan(tail);
  m = want_max ? xsimd::max(m, tail) : xsimd::min(m, tail);
  if (xsimd::any(nan)) {
    for (std::int64_t k = 0; k < n; ++k)
      if (std::isnan(x[k])) return k;
  }
  alignas(64) T lanes[W];
  m.store_aligned(lanes);
  T e = lanes[0];
  for (std::int64_t l = 1; l < W; ++l) e = want_max ? std::max(e, lanes[l]) : std::min(e, lanes[l]);
  for (std::int64_t k = 0; k < n; ++k)
    if (x[k] == e) return k;
  return 0;  // unreachable
}

}  // namespace

Tensor extremum(const Tensor& x, int axis, bool want_max, std::vector<std::int64_t>* argidx) {
  AxisSplit a = split_at(x.shape(), axis);
  Tensor out(reduced_shape(x.shape(), axis, true), x.dtype());
  if (argidx) argidx->assign(static_cast<std::size_t>(a.outer * a.inner), 0);
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op = out.mutable_data<T>();
    if (a.n == 0) return;
    if (a.inner == 1) {
      parallel_for(
          a.outer, (reduce_threshold() + a.n - 1) / a.n,
          [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t o = lo; o < hi; ++o) {
              const std::int64_t best = lane_extremum(xp + o * a.n, a.n, want_max);
              op[o] = xp[o * a.n + best];
              if (argidx) (*argidx)[static_cast<std::size_t>(o)] = best;
            }
          },
          1);
      return;
    }
    // Lanes strided by `inner`: walk rows k in memory order, all lanes at once.
    for (std::int64_t o = 0; o < a.outer; ++o) {
      const T* base = xp + o * a.n * a.inner;
      T* best = op + o * a.inner;
      std::copy(base, base + a.inner, best);
      for (std::int64_t k = 1; k < a.n; ++k)
        for (std::int64_t i = 0; i < a.inner; ++i) {
          const T v = base[k * a.inner + i], b = best[i];
          if ((want_max ? v > b : v < b) || (std::isnan(v) && !std::isnan(b))) {
            best[i] = v;
            if (argidx) (*argidx)[static_cast<std::size_t>(o * a.inner + i)] = k;
          }
        }
    }
  });
  return out;
}

namespace {

// m and log Σ exp(x - m) of a contiguous lane; m = 0 when the max is not finite (all
// -inf, or an inf / NaN present), where the unshifted formula is the right one.
template <class T>
std::pair<T, T> lane_lse(const T* x, std::int64_t n) {
  constexpr std::int64_t W = kLanes<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  Batch<T> mb(ninf);
  std::int64_t i = 0;
  for (; i + W <= n; i += W) mb = xsimd::max(mb, Batch<T>::load_unaligned(x + i));
  if (i < n) mb = xsimd::max(mb, load_partial(x + i, n - i, ninf));
  alignas(64) T lanes[W];
  mb.store_aligned(lanes);
  T m = lanes[0];
  for (std::int64_t l = 1; l < W; ++l) m = std::max(m, lanes[l]);
  if (!std::isfinite(m)) m = 0;
  const Batch<T> mm(m);
  Batch<T> s0(T(0)), s1(T(0));
  i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    s0 += vexp(Batch<T>::load_unaligned(x + i) - mm);
    s1 += vexp(Batch<T>::load_unaligned(x + i + W) - mm);
  }
  for (; i + W <= n; i += W) s0 += vexp(Batch<T>::load_unaligned(x + i) - mm);
  if (i < n) s1 += vexp(load_partial(x + i, n - i, ninf) - mm);
  return {m, std::log(xsimd::hadd(s0 + s1))};
}

// The same for the `inner` lanes of x [n, inner] at once (lane i strided by inner):
// m[i] and ls[i].
template <class T>
void strided_lse(const T* x, std::int64_t n, std::int64_t inner, T* m, T* ls) {
  const T ninf = -std::numeric_limits<T>::infinity();
  std::fill(m, m + inner, ninf);
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t i = 0; i < inner; ++i) m[i] = std::max(m[i], x[k * inner + i]);
  for (std::int64_t i = 0; i < inner; ++i) {
    if (!std::isfinite(m[i])) m[i] = 0;
    ls[i] = 0;
  }
  constexpr std::int64_t W = kLanes<T>;
  for (std::int64_t k = 0; k < n; ++k) {
    const T* row = x + k * inner;
    std::int64_t i = 0;
    for (; i + W <= inner; i += W) {
      const Batch<T> e = vexp(Batch<T>::load_unaligned(row + i) - Batch<T>::load_unaligned(m + i));
      (Batch<T>::load_unaligned(ls + i) + e).store_unaligned(ls + i);
    }
    for (; i < inner; ++i) ls[i] += std::exp(row[i] - m[i]);
  }
  for (std::int64_t i = 0; i < inner; ++i) ls[i] = std::log(ls[i]);
}

// Calls lane(o, i, m, log_s) for every lane of x around `axis`, lanes in parallel when
// large. Contiguous lanes (inner == 1) get the single-lane kernel; strided ones are done
// a row block at a time.
template <class T, class Lane>
void for_each_lse(const Tensor& x, int axis, const Lane& lane) {
  const AxisSplit a = split_at(x.shape(), axis);
  const T* xp = x.data<T>();
  if (a.n == 0 || a.outer * a.inner == 0) return;
  if (a.inner == 1) {
    parallel_for(
        a.outer, (lse_threshold() + a.n - 1) / a.n,
        [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t o = lo; o < hi; ++o) {
            auto [m, ls] = lane_lse(xp + o * a.n, a.n);
            lane(o, std::int64_t{0}, m, ls);
          }
        },
        1);
    return;
  }
  Scratch<T> ms(2 * a.inner);
  for (std::int64_t o = 0; o < a.outer; ++o) {
    strided_lse(xp + o * a.n * a.inner, a.n, a.inner, ms.p, ms.p + a.inner);
    for (std::int64_t i = 0; i < a.inner; ++i) lane(o, i, ms.p[i], ms.p[a.inner + i]);
  }
}

}  // namespace

Tensor logsumexp(const Tensor& x, int axis) {
  const AxisSplit a = split_at(x.shape(), axis);
  Tensor out(reduced_shape(x.shape(), axis, true), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    T* op = out.mutable_data<T>();
    if (a.n == 0) std::fill(op, op + out.numel(), -std::numeric_limits<T>::infinity());
    for_each_lse<T>(x, axis, [&](std::int64_t o, std::int64_t i, T m, T ls) { op[o * a.inner + i] = m + ls; });
  });
  return out;
}

}  // namespace hyperad::kernels
