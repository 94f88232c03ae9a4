#include "kernels/elementwise.hpp"

namespace hyperad::kernels {

void add_inplace(Tensor& a, const Tensor& b) {
  dispatch(a.dtype(), [&]<class T>() {
    T* ap = a.mutable_data<T>();
    const T* bp = b.data<T>();
    for (std::int64_t i = 0, n = a.numel(); i < n; ++i) ap[i] += bp[i];
  });
}

}  // namespace hyperad::kernels
