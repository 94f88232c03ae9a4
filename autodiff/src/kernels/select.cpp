#include "kernels/select.hpp"

namespace hyperad::kernels {

Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx) {
  const AxisSplit a = split_at(x.shape(), axis);
  Tensor out(reduced_shape(x.shape(), axis, false), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op = out.mutable_data<T>();
    for (std::int64_t o = 0; o < a.outer; ++o)
      for (std::int64_t i = 0; i < a.inner; ++i) {
        const std::int64_t k = o * a.inner + i;
        op[k] = xp[(o * a.n + idx[static_cast<std::size_t>(k)]) * a.inner + i];
      }
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src) {
  const AxisSplit a = split_at(shape, axis);
  Tensor out = zeros(shape, src.dtype());
  dispatch(src.dtype(), [&]<class T>() {
    const T* sp = src.data<T>();
    T* op = out.mutable_data<T>();
    for (std::int64_t o = 0; o < a.outer; ++o)
      for (std::int64_t i = 0; i < a.inner; ++i) {
        const std::int64_t k = o * a.inner + i;
        op[(o * a.n + idx[static_cast<std::size_t>(k)]) * a.inner + i] += sp[k];
      }
  });
  return out;
}

}  // namespace hyperad::kernels
