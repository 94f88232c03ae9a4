// Design: the products of a dense or CSR data matrix (ops/design.hpp).
#include "ops/design.hpp"

#include <fmt/format.h>

#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/sparse.hpp"

namespace hyperad::detail {

std::int64_t Design::rows() const { return sparse_ ? sparse_->rows() : dense_.size(0); }
std::int64_t Design::cols() const { return sparse_ ? sparse_->cols() : dense_.size(1); }
Dtype Design::dtype() const { return sparse_ ? sparse_->dtype() : dense_.dtype(); }

std::string Design::describe() const {
  if (sparse_) return fmt::format("X (CSR {} × {}, {} non-zeros)", sparse_->rows(), sparse_->cols(), sparse_->nnz());
  return fmt::format("X {}", dense_.shape().str());
}

Tensor Design::times(const Tensor& w) const { return sparse_ ? sparse_matmul(*sparse_, w) : matmul(dense_, w); }

Tensor Design::times_t(const Tensor& u) const {
  if (sparse_) return sparse_matmul(*sparse_, u, true);
  return u.rank() == 1 ? matmul(u, dense_) : matmul_t(dense_, u, true, false);
}

Tensor Design::outer(const Tensor& a, const Tensor& b) const {
  if (sparse_) return sampled_product(*sparse_, a, b);
  return a.rank() == 1 ? hyperad::outer(a, b) : matmul_t(a, b, false, true);
}

}  // namespace hyperad::detail
