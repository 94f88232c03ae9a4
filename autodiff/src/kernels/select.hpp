#pragma once
// Data movement along one axis. A tensor is viewed as [outer, n, inner] around the axis;
// a "slice" is one contiguous run of `inner` elements at fixed (outer, position). Every
// selection op (narrow, slice, pad, index_select/add, concat) is a map of slice positions
// between two such views; gather/scatter_add pick one element per lane instead. Indices
// and bounds are validated by the ops, not here.
#include <algorithm>
#include <cstdint>
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

/// out[o, i] = x[o, idx[o * inner + i], i]: one element per lane along `axis`; the result
/// has x's shape without `axis`.
Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);

/// A zero tensor of `shape` with src[o, i] added at [o, idx[o * inner + i], i] (src has
/// `shape` without `axis`); repeated positions accumulate.
Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);

}  // namespace hyperad::kernels
