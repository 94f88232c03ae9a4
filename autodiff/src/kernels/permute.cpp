#include "kernels/permute.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace hyperad::kernels {

namespace {

// The copy as a loop nest over the output axes: extent and input stride per axis (the
// output is contiguous). Extent-1 axes are dropped and output axes that are also adjacent
// and in order in the input are merged, so e.g. [B, m, n] → [B, n, m] stays 3 loops and
// an identity-like permutation becomes one contiguous run.
struct Nest {
  int rank = 0;
  std::array<std::int64_t, kMaxRank> n{}, s{};
};

Nest plan(const Shape& in, std::span<const int> perm) {
  const auto st = contiguous_strides(in);
  Nest p;
  for (int axis : perm) {
    const std::int64_t n = in.begin()[axis];
    if (n == 1) continue;
    if (p.rank > 0 && p.s[p.rank - 1] == st[axis] * n) {  // previous axis steps over this one whole
      p.n[p.rank - 1] *= n;
      p.s[p.rank - 1] = st[axis];
      continue;
    }
    p.n[p.rank] = n;
    p.s[p.rank] = st[axis];
    ++p.rank;
  }
  return p;
}

// The innermost two loops, y = [n1, n0] block with input strides s1, s0. A contiguous
// inner run is a plain copy; otherwise (a transpose) the block is walked in square tiles
// so the lines read from x are reused before they leave the cache.
template <class T>
void copy_2d(const T* x, T* y, std::int64_t n1, std::int64_t n0, std::int64_t s1, std::int64_t s0) {
  if (s0 == 1) {
    for (std::int64_t i = 0; i < n1; ++i) std::copy_n(x + i * s1, n0, y + i * n0);
    return;
  }
  constexpr std::int64_t kTile = 32;
  for (std::int64_t i0 = 0; i0 < n1; i0 += kTile)
    for (std::int64_t j0 = 0; j0 < n0; j0 += kTile) {
      const std::int64_t i1 = std::min(n1, i0 + kTile), j1 = std::min(n0, j0 + kTile);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = j0; j < j1; ++j) y[i * n0 + j] = x[i * s1 + j * s0];
    }
}

template <class T>
void run(const Nest& p, const T* x, T* y, std::int64_t total) {
  if (total == 0) return;
  if (p.rank == 0) {  // every axis had extent 1
    y[0] = x[0];
    return;
  }
  if (p.rank == 1) {
    copy_2d(x, y, 1, p.n[0], 0, p.s[0]);
    return;
  }
  const int r = p.rank;
  const std::int64_t n1 = p.n[r - 2], n0 = p.n[r - 1], block = n1 * n0;
  std::array<std::int64_t, kMaxRank> idx{};
  std::int64_t off = 0;
  for (std::int64_t o = 0; o < total; o += block) {
    copy_2d(x + off, y + o, n1, n0, p.s[r - 2], p.s[r - 1]);
    for (int d = r - 3; d >= 0; --d) {  // odometer over the outer loops
      ++idx[d];
      off += p.s[d];
      if (idx[d] < p.n[d]) break;
      off -= p.s[d] * idx[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor permute(const Tensor& x, std::span<const int> perm) {
  std::vector<std::int64_t> dims;
  for (int axis : perm) dims.push_back(x.shape().begin()[axis]);
  Tensor y(Shape(dims), x.dtype());
  const Nest p = plan(x.shape(), perm);
  dispatch(x.dtype(), [&]<class T>() { run(p, x.data<T>(), y.mutable_data<T>(), y.numel()); });
  return y;
}

}  // namespace hyperad::kernels
