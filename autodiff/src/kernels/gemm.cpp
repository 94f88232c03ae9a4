// GEMM: C = op(A) op(B), row-major, blocked and packed in the manner of Goto & van de
// Geijn. op(B) is packed in panels of NR columns and op(A) in panels of MR rows (a
// transpose only changes how the packing reads memory, so AᵀB and ABᵀ cost the same as
// AB); an xsimd micro-kernel keeps an MR×NR block of C in vector registers and walks
// the packed panels with broadcasts and fused multiply-adds.
//
// Threads take disjoint blocks of C (rows, or columns for wide products) and run the
// serial algorithm on them, so every element of C is summed in the same order whatever
// the thread count. Matrix-vector products (N = 1 or M = 1) and small products skip
// packing.
#include "kernels/gemm.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <utility>
#include <vector>

#include "kernels/parallel.hpp"
#include "kernels/reduce.hpp"
#include "kernels/simd.hpp"
#include "kernels/vec.hpp"

namespace hyperad::kernels {

namespace {

// Elements of op(B) above which threads share one packed copy (bench_threshold).
constexpr std::int64_t kSharedPackMin = std::int64_t{1} << 17;

template <class T>
struct Blocking {
  static constexpr std::int64_t W = kLanes<T>;
  static constexpr std::int64_t NR = 2 * W;  // two vectors of C columns
  // MR rows: 2·MR accumulators + 2 B vectors + 1 broadcast fit the register file (32
  // vector registers with AVX-512, 16 below). With AVX-512, 8 rows measured as fast as
  // 12 or 14 on large products and faster on small ones (less padding).
  static constexpr std::int64_t MR = sizeof(Batch<T>) == 64 ? 8 : 6;
  static constexpr std::int64_t KC = 256;  // packed B micro-panel KC×NR stays in L1
  static constexpr std::int64_t MC = MR * 16;  // packed A block MC×KC stays in L2
  static constexpr std::int64_t NC = NR * 128;  // packed B block KC×NC in L3
};

// Strides of the operands: op(A)(i, k) = A[i*ra + k*ca], op(B)(k, j) = B[k*rb + j*cb].
template <class T>
struct Operands {
  const T* A;
  std::int64_t ra, ca;
  const T* B;
  std::int64_t rb, cb;
  T* C;
  std::int64_t ldc;
};

// Packs an n×kc block whose element (i, k) is src[i*si + k*sk] as R-wide panels: panel p
// holds, for each k, the R consecutive values i = pR .. pR+R−1 (zero past n). op(A) is
// packed in MR-row panels (i = row), op(B) in NR-column panels (i = column); a transpose
// only swaps the strides.
template <class T, std::int64_t R>
void pack_panels(const T* src, std::int64_t si, std::int64_t sk, std::int64_t n, std::int64_t kc, T* out) {
  for (std::int64_t ir = 0; ir < n; ir += R) {
    const std::int64_t m = std::min(R, n - ir);
    const T* s = src + ir * si;
    T* dst = out + ir * kc;
    if (si == 1) {  // the R values of one k are contiguous
      for (std::int64_t k = 0; k < kc; ++k) {
        const T* sk_row = s + k * sk;
        if (m == R) {
          std::memcpy(dst + k * R, sk_row, sizeof(T) * R);
        } else {
          for (std::int64_t i = 0; i < m; ++i) dst[k * R + i] = sk_row[i];
          for (std::int64_t i = m; i < R; ++i) dst[k * R + i] = T(0);
        }
      }
    } else {  // each i is contiguous along k (or strided): walk i outside
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t k = 0; k < kc; ++k) dst[k * R + i] = s[i * si + k * sk];
      for (std::int64_t i = m; i < R; ++i)
        for (std::int64_t k = 0; k < kc; ++k) dst[k * R + i] = T(0);
    }
  }
}

// op(A)[i0 .. i0+mc, p0 .. p0+kc) in MR-row panels.
template <class T>
void pack_a(const Operands<T>& o, std::int64_t i0, std::int64_t mc, std::int64_t p0, std::int64_t kc, T* out) {
  pack_panels<T, Blocking<T>::MR>(o.A + i0 * o.ra + p0 * o.ca, o.ra, o.ca, mc, kc, out);
}

// op(B)[p0 .. p0+kc, j0 .. j0+nc) in NR-column panels.
template <class T>
void pack_b(const Operands<T>& o, std::int64_t p0, std::int64_t kc, std::int64_t j0, std::int64_t nc, T* out) {
  pack_panels<T, Blocking<T>::NR>(o.B + p0 * o.rb + j0 * o.cb, o.cb, o.rb, nc, kc, out);
}

// C[0..MR, 0..NR) (+)= a · b over kc packed steps; with `partial`, only the leading
// m×n corner of C is written.
template <class T>
void micro_kernel(std::int64_t kc, const T* __restrict a, const T* __restrict b, T* c, std::int64_t ldc,
                  bool accumulate, std::int64_t m, std::int64_t n) {
  using B = Batch<T>;
  constexpr std::int64_t MR = Blocking<T>::MR, W = Blocking<T>::W, NR = Blocking<T>::NR;
  B acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (std::int64_t i = 0; i < MR; ++i) acc0[i] = acc1[i] = B(T(0));
  for (std::int64_t k = 0; k < kc; ++k) {
    const B b0 = B::load_aligned(b + k * NR), b1 = B::load_aligned(b + k * NR + W);
    const T* ak = a + k * MR;
#pragma GCC unroll 16
    for (std::int64_t i = 0; i < MR; ++i) {
      const B ai(ak[i]);
      acc0[i] = xsimd::fma(ai, b0, acc0[i]);
      acc1[i] = xsimd::fma(ai, b1, acc1[i]);
    }
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 16
    for (std::int64_t i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (accumulate) {
        acc0[i] += B::load_unaligned(ci);
        acc1[i] += B::load_unaligned(ci + W);
      }
      acc0[i].store_unaligned(ci);
      acc1[i].store_unaligned(ci + W);
    }
    return;
  }
  alignas(64) T tile[MR * NR];
  for (std::int64_t i = 0; i < MR; ++i) {
    acc0[i].store_aligned(tile + i * NR);
    acc1[i].store_aligned(tile + i * NR + W);
  }
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
}

// Grow-only packing buffers, one pair per thread (OpenMP workers keep theirs). They come
// from malloc, not the tensor pool: a long-lived buffer taken from the pool in the middle
// of a loop's first iteration would leave the pool one buffer short in the next.
template <class T>
struct PackBuffers {
  T* a = nullptr;
  T* b = nullptr;
  std::size_t a_bytes = 0, b_bytes = 0;
  ~PackBuffers() {
    std::free(a);
    std::free(b);
  }
  static T* ensure(T*& p, std::size_t& have, std::size_t want) {
    if (want > have) {
      std::free(p);
      have = (want + 63) / 64 * 64;
      p = static_cast<T*>(std::aligned_alloc(64, have));
      if (!p) {
        have = 0;
        throw std::bad_alloc();
      }
    }
    return p;
  }
};

template <class T>
PackBuffers<T>& pack_buffers() {
  thread_local PackBuffers<T> bufs;
  return bufs;
}

inline std::int64_t round_up(std::int64_t n, std::int64_t unit) {
  return (n + unit - 1) / unit * unit;
}

// C[i0 .. i0+mc, j0 .. j0+nc) (+)= packed A block · packed B block over kc steps.
template <class T>
void macro_kernel(const Operands<T>& o, const T* ap, const T* bp, std::int64_t i0, std::int64_t mc,
                  std::int64_t j0, std::int64_t nc, std::int64_t kc, bool accumulate) {
  using Bk = Blocking<T>;
  for (std::int64_t jr = 0; jr < nc; jr += Bk::NR)
    for (std::int64_t ir = 0; ir < mc; ir += Bk::MR)
      micro_kernel(kc, ap + ir * kc, bp + jr * kc, o.C + (i0 + ir) * o.ldc + j0 + jr, o.ldc, accumulate,
                   std::min(Bk::MR, mc - ir), std::min(Bk::NR, nc - jr));
}

// The serial blocked algorithm on the block C[i0.., j0..] of size M×N.
template <class T>
void gemm_block(const Operands<T>& o, std::int64_t i0, std::int64_t M, std::int64_t j0, std::int64_t N,
                std::int64_t K) {
  using Bk = Blocking<T>;
  PackBuffers<T>& pb = pack_buffers<T>();
  const std::int64_t kc_max = std::min(Bk::KC, K);
  const std::int64_t mc_max = std::min(Bk::MC, round_up(M, Bk::MR));
  const std::int64_t nc_max = std::min(Bk::NC, round_up(N, Bk::NR));
  T* ap = PackBuffers<T>::ensure(pb.a, pb.a_bytes, sizeof(T) * static_cast<std::size_t>(mc_max * kc_max));
  T* bp = PackBuffers<T>::ensure(pb.b, pb.b_bytes, sizeof(T) * static_cast<std::size_t>(nc_max * kc_max));
  for (std::int64_t jc = 0; jc < N; jc += Bk::NC) {
    const std::int64_t nc = std::min(Bk::NC, N - jc);
    for (std::int64_t pc = 0; pc < K; pc += Bk::KC) {
      const std::int64_t kc = std::min(Bk::KC, K - pc);
      pack_b(o, pc, kc, j0 + jc, nc, bp);
      for (std::int64_t ic = 0; ic < M; ic += Bk::MC) {
        const std::int64_t mc = std::min(Bk::MC, M - ic);
        pack_a(o, i0 + ic, mc, pc, kc, ap);
        macro_kernel(o, ap, bp, i0 + ic, mc, j0 + jc, nc, kc, pc > 0);
      }
    }
  }
}

// The blocked algorithm with the rows of C split over nt threads that share each packed
// block of B: every thread packs a slice of its panels, and after a barrier multiplies
// its own rows by the whole block (packing B once, not once per thread).
template <class T>
void gemm_rows_parallel(const Operands<T>& o, std::int64_t M, std::int64_t N, std::int64_t K, int nt) {
  using Bk = Blocking<T>;
  const std::int64_t kc_max = std::min(Bk::KC, K);
  const std::int64_t nc_max = std::min(Bk::NC, round_up(N, Bk::NR));
  PackBuffers<T>& shared = pack_buffers<T>();  // the calling thread's B buffer, shared
  T* bp = PackBuffers<T>::ensure(shared.b, shared.b_bytes, sizeof(T) * static_cast<std::size_t>(nc_max * kc_max));
  std::exception_ptr error;  // bad_alloc of a thread's A buffer: all threads stop, rethrown outside
  bool failed = false;
  RegionWatch watch;
#pragma omp parallel num_threads(nt)
  {
    watch.started();
    const int t = omp_get_thread_num(), m = omp_get_num_threads();
    const std::int64_t tiles = (M + Bk::MR - 1) / Bk::MR;
    const std::int64_t lo = std::min(M, tiles * t / m * Bk::MR), hi = std::min(M, tiles * (t + 1) / m * Bk::MR);
    T* ap = nullptr;
    try {
      PackBuffers<T>& own = pack_buffers<T>();
      const std::int64_t mc_max = std::min(Bk::MC, round_up(std::max<std::int64_t>(hi - lo, 1), Bk::MR));
      ap = PackBuffers<T>::ensure(own.a, own.a_bytes, sizeof(T) * static_cast<std::size_t>(mc_max * kc_max));
    } catch (...) {
#pragma omp critical(hyperad_gemm_error)
      {
        error = std::current_exception();
        failed = true;
      }
    }
#pragma omp barrier
    if (!failed) {
      for (std::int64_t jc = 0; jc < N; jc += Bk::NC) {
        const std::int64_t nc = std::min(Bk::NC, N - jc);
        const std::int64_t panels = (nc + Bk::NR - 1) / Bk::NR;
        const std::int64_t p0 = panels * t / m, p1 = panels * (t + 1) / m;
        for (std::int64_t pc = 0; pc < K; pc += Bk::KC) {
          const std::int64_t kc = std::min(Bk::KC, K - pc);
          if (p0 < p1) pack_b(o, pc, kc, jc + p0 * Bk::NR, std::min(nc, p1 * Bk::NR) - p0 * Bk::NR, bp + p0 * Bk::NR * kc);
#pragma omp barrier
          for (std::int64_t ic = lo; ic < hi; ic += Bk::MC) {
            const std::int64_t mc = std::min(Bk::MC, hi - ic);
            pack_a(o, ic, mc, pc, kc, ap);
            macro_kernel(o, ap, bp, ic, mc, jc, nc, kc, pc > 0);
          }
#pragma omp barrier  // the block of B is repacked next
        }
      }
    }
  }
  watch.finish();
  if (error) std::rethrow_exception(error);
}

// Products of at most this many multiply-adds skip the blocked algorithm: packing both
// operands into panels costs more than such a product (the few-shot heads of a meta-batch,
// 25×50 by 50×5, ran at a third of the speed packed: bench_episodic).
constexpr std::int64_t kSmallGemm = std::int64_t{1} << 15;

// C[i0 .. i0+R, :] = op(A)[i0 .. i0+R, :] · Bm for Bm K×N in rows ldb apart, ldb ≥ NV·W:
// R rows of C in registers, NV vectors of columns at a time, each element summed over k in
// order. The loads read full vectors: below NV·W columns Bm is a zero-padded copy, and the
// last tile of a wider product overlaps the one before it (its overlapping columns are
// computed twice, in the same order, so equal), which keeps every tile 2R chains of FMAs
// deep instead of ending on a narrow, latency-bound one.
template <class T, int NV, int R>
void small_rows(const Operands<T>& o, const T* Bm, std::int64_t ldb, std::int64_t i0, std::int64_t N,
                std::int64_t K) {
  using V = Batch<T>;
  constexpr std::int64_t W = kLanes<T>, TW = NV * W;
  const std::int64_t last = N > TW ? N - TW : 0;
  for (std::int64_t j = 0;; j = std::min(j + TW, last)) {
    V acc[NV][R];
    for (int v = 0; v < NV; ++v)
      for (int r = 0; r < R; ++r) acc[v][r] = V(T(0));
    const T* a = o.A + i0 * o.ra;
    const T* b = Bm + j;
    for (std::int64_t k = 0; k < K; ++k, a += o.ca, b += ldb) {
      V bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = V::load_unaligned(b + v * W);
      for (int r = 0; r < R; ++r) {
        const V ar(a[r * o.ra]);
        for (int v = 0; v < NV; ++v) acc[v][r] = xsimd::fma(ar, bv[v], acc[v][r]);
      }
    }
    const std::int64_t n = std::min(TW, N - j);
    for (int r = 0; r < R; ++r) {
      T* c = o.C + (i0 + r) * o.ldc + j;
      for (int v = 0; v < NV && v * W < n; ++v) {
        if (n - v * W >= W) acc[v][r].store_unaligned(c + v * W);
        else store_partial(acc[v][r], c + v * W, n - v * W);
      }
    }
    if (j == last) break;
  }
}

// C[0..RA, 0..RB) = the RA rows of A times the RB rows of B (C = A·Bᵀ, both contiguous along
// k): RA·RB dot products, each in its own accumulator, whose lanes are summed at the end by
// sums_of_lanes, W accumulators at a time, zero accumulators filling the last group: every element
// is summed in the same order whatever RA, RB and its place in the tile.
template <class T, int RA, int RB>
void dot_tile(const T* a, std::int64_t lda, const T* b, std::int64_t ldb, std::int64_t K, T* c, std::int64_t ldc) {
  using V = Batch<T>;
  constexpr std::int64_t W = kLanes<T>;
  V acc[RA][RB];
  for (int r = 0; r < RA; ++r)
    for (int s = 0; s < RB; ++s) acc[r][s] = V(T(0));
  std::int64_t k = 0;
  for (; k + W <= K; k += W) {
    V av[RA];
    for (int r = 0; r < RA; ++r) av[r] = V::load_unaligned(a + r * lda + k);
    for (int s = 0; s < RB; ++s) {
      const V bv = V::load_unaligned(b + s * ldb + k);
      for (int r = 0; r < RA; ++r) acc[r][s] = xsimd::fma(av[r], bv, acc[r][s]);
    }
  }
  if (k < K) {  // zero lanes past K on both sides
    V av[RA];
    for (int r = 0; r < RA; ++r) av[r] = load_partial(a + r * lda + k, K - k, T(0));
    for (int s = 0; s < RB; ++s) {
      const V bv = load_partial(b + s * ldb + k, K - k, T(0));
      for (int r = 0; r < RA; ++r) acc[r][s] = xsimd::fma(av[r], bv, acc[r][s]);
    }
  }
  for (int r = 0; r < RA; ++r)
    for (int s0 = 0; s0 < RB; s0 += static_cast<int>(W)) {
      V group[W];
      for (int q = 0; q < W; ++q) group[q] = s0 + q < RB ? acc[r][s0 + q] : V(T(0));
      const V sums = sums_of_lanes<T>(group);
      const std::int64_t n = std::min<std::int64_t>(W, RB - s0);
      if (n == W) sums.store_unaligned(c + r * ldc + s0);
      else store_partial(sums, c + r * ldc + s0, n);
    }
}

// Splits n into the fewest groups of at most `most`, as even as can be (25 into 5, 5, 5, 5, 5,
// not 6, 6, 6, 6, 1: a lone row or column would run one short chain of FMAs).
template <class F>
void even_groups(std::int64_t n, std::int64_t most, F&& each) {
  const std::int64_t groups = (n + most - 1) / most;
  std::int64_t i = 0;
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t size = (n - i + (groups - g) - 1) / (groups - g);
    each(i, size);
    i += size;
  }
}

// Calls f.template operator()<V>() for the V in 1 .. Max equal to v.
template <int Max, class F>
void with_constant(std::int64_t v, F&& f) {
  [&]<int... Vs>(std::integer_sequence<int, Vs...>) {
    ((v == Vs + 1 ? f.template operator()<Vs + 1>() : void()), ...);
  }(std::make_integer_sequence<int, Max>{});
}

// C = A·Bᵀ with A's and B's rows contiguous (a matrix of dot products): tiles of RA rows of A
// by RB rows of B, RA·RB accumulators plus RA vectors of A and one of B in registers (16
// vector registers below AVX-512, 32 with it), at most 4 rows of A. No packing and no padding of a narrow N to whole vectors: a
// few-shot head's scores, 25×50 by (5×50)ᵀ, ran at a third of this speed through the
// outer-product kernel below (bench_episodic).
template <class T>
void small_dots(const Operands<T>& o, std::int64_t M, std::int64_t N, std::int64_t K) {
  constexpr bool wide = sizeof(Batch<T>) == 64;
  constexpr int kRegs = wide ? 32 : 16, kRB = wide ? 8 : 6, kRA = 4;
  even_groups(N, kRB, [&](std::int64_t j, std::int64_t rb) {
    with_constant<kRB>(rb, [&]<int RB>() {
      constexpr int RA = std::min(kRA, (kRegs - 1) / (RB + 1));  // RA·RB + RA + 1 ≤ kRegs
      even_groups(M, RA, [&](std::int64_t i, std::int64_t ra) {
        with_constant<RA>(ra, [&]<int R>() {
          dot_tile<T, R, RB>(o.A + i * o.ra, o.ra, o.B + j * o.cb, o.cb, K, o.C + i * o.ldc + j, o.ldc);
        });
      });
    });
  });
}

// Dot products need at least this many vectors of k to beat the outer-product kernel, which
// pads N instead of K (measured with bench_episodic's head shapes).
constexpr std::int64_t kDotMinVectors = 2;

// A small product from the operands in place. C = A·Bᵀ with long enough rows is a matrix of
// dot products (small_dots). Otherwise op(B) is read as it is when its rows are contiguous
// and at least a vector wide, else copied row-major first (K·N values, a fraction of the
// product's work), zero-padded to one or two vectors.
template <class T>
void small_gemm(const Operands<T>& o, std::int64_t M, std::int64_t N, std::int64_t K) {
  constexpr std::int64_t W = kLanes<T>;
  if (o.ca == 1 && o.rb == 1 && K >= kDotMinVectors * W) return small_dots(o, M, N, K);
  const std::int64_t nv = N <= W ? 1 : 2;
  const T* Bm = o.B;
  std::int64_t ldb = o.rb;
  thread_local std::vector<T> copy;
  if (o.cb != 1 || N < nv * W) {
    ldb = std::max(N, nv * W);
    copy.resize(static_cast<std::size_t>(K * ldb));
    for (std::int64_t k = 0; k < K; ++k) {
      T* row = copy.data() + k * ldb;
      for (std::int64_t j = 0; j < N; ++j) row[j] = o.B[k * o.rb + j * o.cb];
      std::fill(row + N, row + ldb, T(0));
    }
    Bm = copy.data();
  }
  // Registers: NV·R accumulators, NV vectors of B and a broadcast of A; 16 vector
  // registers below AVX-512.
  constexpr bool wide = sizeof(Batch<T>) == 64;
  auto row_groups = [&]<int NV, int MR>() {
    even_groups(M, MR, [&](std::int64_t i, std::int64_t r) {
      with_constant<MR>(r, [&]<int R>() { small_rows<T, NV, R>(o, Bm, ldb, i, N, K); });
    });
  };
  if (nv == 1) return row_groups.template operator()<1, wide ? 16 : 12>();
  row_groups.template operator()<2, wide ? 8 : 6>();
}

// y = op(A) x (N = 1) or y = xᵀ op(B) (M = 1): rows of dot products, eight rows per pass
// over x, or a weighted sum of rows (reduce.hpp), whichever reads memory contiguously.
// Read-bound like a reduction, so the parallel threshold is twice a map's.
template <class T>
void gemv(bool rows_contiguous, std::int64_t rows, std::int64_t cols, const T* mat, const T* x, T* y) {
  // mat is rows×cols (row-major); y = mat·x when rows_contiguous, else y = matᵀ·x
  if (!rows_contiguous) return weighted_column_sums(mat, x, rows, cols, y);
  parallel_for(
      rows, (2 * parallel_elementwise() + cols - 1) / cols,
      [&](std::int64_t lo, std::int64_t hi) { vec::row_dots(mat + lo * cols, cols, hi - lo, x, cols, y + lo); },
      1);
}

}  // namespace

template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, const T* B, T* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(C, C + M * N, T(0));
    return;
  }
  if (N == 1) return gemv(!ta, ta ? K : M, ta ? M : K, A, B, C);  // op(B) is a K-vector either way
  if (M == 1) return gemv(tb, tb ? N : K, tb ? K : N, B, A, C);
  const Operands<T> o{A, ta ? 1 : K, ta ? M : 1, B, tb ? 1 : N, tb ? K : 1, C, N};
  if (M * N * K <= kSmallGemm) return small_gemm(o, M, N, K);
  using Bk = Blocking<T>;
  const int nt = threads_for(M * N * K, parallel_gemm());
  if (nt <= 1) return gemm_block(o, 0, M, 0, N, K);
  // Tall products with a large B: rows split over threads that share the packed B (its
  // packing is then not repeated per thread). Otherwise each thread runs the serial
  // algorithm on its own block of rows (tall) or columns (wide), with no barriers, which
  // is faster for small products. Either way each element of C is summed in the same
  // order as on one thread.
  const bool by_rows = M / Bk::MR >= N / Bk::NR;
  if (by_rows && N * K >= kSharedPackMin) return gemm_rows_parallel(o, M, N, K, nt);
  const std::int64_t unit = by_rows ? Bk::MR : Bk::NR, len = by_rows ? M : N;
  std::exception_ptr error;  // bad_alloc of a thread's packing buffers, rethrown outside
  RegionWatch watch;
#pragma omp parallel num_threads(nt)
  {
    watch.started();
    const int t = omp_get_thread_num(), m = omp_get_num_threads();
    const std::int64_t tiles = (len + unit - 1) / unit;
    const std::int64_t lo = std::min(len, tiles * t / m * unit), hi = std::min(len, tiles * (t + 1) / m * unit);
    try {
      if (lo < hi && by_rows) gemm_block(o, lo, hi - lo, 0, N, K);
      else if (lo < hi) gemm_block(o, 0, M, lo, hi - lo, K);
    } catch (...) {
#pragma omp critical(hyperad_gemm_error)
      error = std::current_exception();
    }
  }
  watch.finish();
  if (error) std::rethrow_exception(error);
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                          float*);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*, const double*,
                           double*);

}  // namespace hyperad::kernels
