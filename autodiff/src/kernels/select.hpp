#pragma once
// Data movement along one axis. A tensor is viewed as [outer, n, inner] around the axis;
// a "slice" is one contiguous run of `inner` elements at fixed (outer, position). Every
// selection op (narrow, slice, pad, index_select/add, concat) is a map of slice positions
// between two such views; gather/scatter_add pick one element per lane instead. Indices
// and bounds are validated by the ops, not here.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"
#include "kernels/reduce.hpp"

namespace hyperad::kernels {

/// For j < count and every outer o: dst[o, to(j), :] = src[o, from(j), :] (or += with
/// `add`). src and dst have equal dtypes and equal extents except along `axis`.
template <class From, class To>
void move_slices(const Tensor& src, Tensor& dst, int axis, std::int64_t count, From from, To to, bool add) {
  const AxisSplit s = split_at(src.shape(), axis), d = split_at(dst.shape(), axis);
  if (s.outer == 0 || s.inner == 0 || count == 0) return;
  dispatch(src.dtype(), [&]<class T>() {
    const T* sp = src.data<T>();
    T* dp = dst.mutable_data<T>();
    const std::int64_t inner = s.inner;
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t j = 0; j < count; ++j) {
        const T* a = sp + (o * s.n + from(j)) * inner;
        T* b = dp + (o * d.n + to(j)) * inner;
        if (add) {
          for (std::int64_t i = 0; i < inner; ++i) b[i] += a[i];
        } else {
          std::copy_n(a, inner, b);
        }
      }
  });
}

/// dst[o, dst_start + j, i] = src[o, src_start + j, i] for j < count: slices that are one
/// range on both sides, copied as one block per outer index (narrow, pad, concat).
inline void move_range(const Tensor& src, Tensor& dst, int axis, std::int64_t count, std::int64_t src_start,
                       std::int64_t dst_start) {
  const AxisSplit s = split_at(src.shape(), axis), d = split_at(dst.shape(), axis);
  if (s.outer == 0 || s.inner == 0 || count == 0) return;
  const std::size_t elem = dtype_size(src.dtype()), block = static_cast<std::size_t>(count * s.inner) * elem;
  const char* sp = static_cast<const char*>(src.raw());
  char* dp = static_cast<char*>(dst.raw_mut());
  for (std::int64_t o = 0; o < s.outer; ++o)
    std::memcpy(dp + static_cast<std::size_t>((o * d.n + dst_start) * s.inner) * elem,
                sp + static_cast<std::size_t>((o * s.n + src_start) * s.inner) * elem, block);
}

/// out[o, i] = x[o, idx[o * inner + i], i]: one element per lane along `axis`; the result
/// has x's shape without `axis`.
Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);

/// A zero tensor of `shape` with src[o, i] added at [o, idx[o * inner + i], i] (src has
/// `shape` without `axis`); repeated positions accumulate.
Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);

}  // namespace hyperad::kernels
