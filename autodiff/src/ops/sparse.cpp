// sparse_matmul: CSR times dense, its backward the transposed product (ops/sparse.hpp).
#include "hyperad/autodiff/ops/sparse.hpp"

#include <fmt/format.h>

#include <memory>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/sparse.hpp"

namespace hyperad {

Tensor sparse_matmul(const CsrMatrix& a, const Tensor& b, bool transpose_a) {
  static const OpDef def{"sparse_matmul", [](Backward& bw) {
                           bw.accumulate(0, sparse_matmul(bw.payload<CsrMatrix>(), bw.grad_out(), bw.integer(0) == 0));
                         }};
  const char* op = "sparse_matmul";
  kernels::require_defined(b, op, "dense operand");
  const auto sparse_role = [&] {
    return fmt::format("sparse operand {} × {}{}", a.rows(), a.cols(), transpose_a ? " (transposed)" : "");
  };
  if (b.dtype() != a.dtype())
    throw ValueError(fmt::format("{}: dtypes differ: {} is {}, dense operand {} is {}", op, sparse_role(),
                                 dtype_name(a.dtype()), b.shape().str(), dtype_name(b.dtype())));
  if (b.rank() < 1 || b.rank() > 2)
    throw ShapeError(fmt::format("{}: the dense operand must be a vector or a matrix, got {}", op, b.shape().str()));
  const std::int64_t k = transpose_a ? a.rows() : a.cols();
  if (b.size(0) != k)
    throw ShapeError(fmt::format("{}: inner dimensions differ: {} vs dense operand {}", op, sparse_role(),
                                 b.shape().str()));
  const CsrMatrix& m = transpose_a ? a.transposed() : a;
  const std::int64_t n = b.rank() == 2 ? b.size(1) : 1;
  Tensor out(b.rank() == 2 ? Shape{m.rows(), n} : Shape{m.rows()}, b.dtype());
  dispatch(b.dtype(), [&]<class T>() {
    kernels::csr_times_dense<T>(m.rows(), m.indptr().data(), m.indices().data(), m.values().data<T>(), b.data<T>(), n,
                                out.mutable_data<T>());
  });
  OpAttrs at;
  at.integer = {transpose_a ? 1 : 0, 0};
  at.payload = std::make_shared<const CsrMatrix>(a);
  return record(def, std::move(out), {&b}, {}, std::move(at));
}

}  // namespace hyperad
