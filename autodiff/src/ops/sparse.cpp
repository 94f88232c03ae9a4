// sparse_matmul (CSR times dense) and sampled_product (a dense product sampled at a
// pattern): each is the other's backward, so derivatives of every order close over the two.
#include "hyperad/autodiff/ops/sparse.hpp"

#include <fmt/format.h>

#include <memory>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/sparse.hpp"

namespace hyperad {

namespace {

std::string sparse_role(const CsrMatrix& a, bool transposed) {
  return fmt::format("sparse operand {} × {}{}", a.rows(), a.cols(), transposed ? " (transposed)" : "");
}

void check_dtype(const char* op, const CsrMatrix& a, const Tensor& t, const char* role) {
  if (t.dtype() != a.dtype())
    throw ValueError(fmt::format("{}: dtypes differ: sparse operand {} × {} is {}, {} {} is {}", op, a.rows(), a.cols(),
                                 dtype_name(a.dtype()), role, t.shape().str(), dtype_name(t.dtype())));
}

// The backward rules read the matrix from the payload; its values, which may be recorded,
// are also the op's last input so that their cotangent has somewhere to go.
const CsrMatrix& matrix_of(const Backward& b) { return b.payload<CsrMatrix>(); }

// sparse_matmul's matrix, its values checked against in-place writes since the forward pass.
const CsrMatrix& checked_matrix_of(const Backward& b) {
  (void)b.saved(1);
  return matrix_of(b);
}

}  // namespace

Tensor sparse_matmul(const CsrMatrix& a, const Tensor& b, bool transpose_a) {
  // out = A·B: dB = Aᵀ·G, dA = G·Bᵀ at A's non-zeros; out = Aᵀ·B: dB = A·G, dA = B·Gᵀ there.
  static const OpDef def{"sparse_matmul", [](Backward& bw) {
                           const CsrMatrix& m = checked_matrix_of(bw);
                           const bool transposed = bw.integer(0) == 1;
                           if (bw.needs(0)) bw.accumulate(0, sparse_matmul(m, bw.grad_out(), !transposed));
                           if (bw.needs(1)) {
                             const Tensor& b = bw.saved(0);
                             bw.accumulate(1, transposed ? sampled_product(m, b, bw.grad_out())
                                                         : sampled_product(m, bw.grad_out(), b));
                           }
                         }};
  const char* op = "sparse_matmul";
  kernels::require_defined(b, op, "dense operand");
  check_dtype(op, a, b, "dense operand");
  if (b.rank() < 1 || b.rank() > 2)
    throw ShapeError(fmt::format("{}: the dense operand must be a vector or a matrix, got {}", op, b.shape().str()));
  const std::int64_t k = transpose_a ? a.rows() : a.cols();
  if (b.size(0) != k)
    throw ShapeError(fmt::format("{}: inner dimensions differ: {} vs dense operand {}", op, sparse_role(a, transpose_a),
                                 b.shape().str()));
  const CsrMatrix m = transpose_a ? a.transposed() : a;
  const std::int64_t n = b.rank() == 2 ? b.size(1) : 1;
  Tensor out(b.rank() == 2 ? Shape{m.rows(), n} : Shape{m.rows()}, b.dtype());
  dispatch(b.dtype(), [&]<class T>() {
    kernels::csr_times_dense<T>(m.rows(), m.indptr().data(), m.indices().data(), m.values().data<T>(), b.data<T>(), n,
                                out.mutable_data<T>());
  });
  OpAttrs at;
  at.integer = {transpose_a ? 1 : 0, 0};
  at.payload = std::make_shared<const CsrMatrix>(a);
  // B is saved only for the values' gradient; the values are saved (a handle, no copy) so
  // that the tape refuses a backward pass after they were written in place.
  return record(def, std::move(out), {&b, &a.values()}, {saved_for(b, a.values()), &a.values()}, std::move(at));
}

Tensor sampled_product(const CsrMatrix& pattern, const Tensor& left, const Tensor& right) {
  // v_k = ⟨L[r_k], R[c_k]⟩ is A ↦ ⟨A, L·Rᵀ⟩'s gradient at the pattern: with U the matrix of
  // the pattern holding the cotangent ū, dL = U·R and dR = Uᵀ·L.
  static const OpDef def{"sampled_product", [](Backward& bw) {
                           const CsrMatrix u = matrix_of(bw).with_values(bw.grad_out());
                           if (bw.needs(0)) bw.accumulate(0, sparse_matmul(u, bw.saved(1)));
                           if (bw.needs(1)) bw.accumulate(1, sparse_matmul(u, bw.saved(0), true));
                         }};
  const char* op = "sampled_product";
  kernels::require_defined(left, op, "left factor");
  kernels::require_defined(right, op, "right factor");
  check_dtype(op, pattern, left, "left factor");
  check_dtype(op, pattern, right, "right factor");
  const bool vectors = left.rank() == 1 && right.rank() == 1, matrices = left.rank() == 2 && right.rank() == 2;
  if ((!vectors && !matrices) || left.size(0) != pattern.rows() || right.size(0) != pattern.cols() ||
      (matrices && left.size(1) != right.size(1)))
    throw ShapeError(fmt::format("{}: expects L [{}] and R [{}] (or [{}, n] and [{}, n]) for the pattern {} × {}, got "
                                 "L {} and R {}",
                                 op, pattern.rows(), pattern.cols(), pattern.rows(), pattern.cols(), pattern.rows(),
                                 pattern.cols(), left.shape().str(), right.shape().str()));
  const std::int64_t n = matrices ? left.size(1) : 1;
  Tensor out({pattern.nnz()}, left.dtype());
  dispatch(left.dtype(), [&]<class T>() {
    kernels::sampled_dot<T>(pattern.rows(), pattern.indptr().data(), pattern.indices().data(), left.data<T>(),
                            right.data<T>(), n, out.mutable_data<T>());
  });
  OpAttrs at;
  at.payload = std::make_shared<const CsrMatrix>(pattern);
  return record(def, std::move(out), {&left, &right}, {saved_for(left, right), saved_for(right, left)}, std::move(at));
}

}  // namespace hyperad
