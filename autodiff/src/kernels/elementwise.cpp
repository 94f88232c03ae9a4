#include "kernels/elementwise.hpp"

namespace hyperad::kernels {

void add_inplace(Tensor& a, const Tensor& b) {
  dispatch(a.dtype(), [&]<class T>() {
    T* ap = a.mutable_data<T>();
    const T* bp = b.data<T>();
    // a is both an operand and the output: the flat map reads each element before it
    // writes it.
    detail::map_flat<T>(0u, simd([](auto x, auto y) { return x + y; }), std::array<const T*, 2>{ap, bp}, ap,
                        a.numel());
  });
}

}  // namespace hyperad::kernels
