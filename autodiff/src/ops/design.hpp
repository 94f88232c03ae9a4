#pragma once
// The data matrix X of the fused linear-model ops, dense or CSR, with the products their
// backward rules are written in, so one rule serves both storages.
#include <optional>

#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::detail {

class Design {
 public:
  explicit Design(const Tensor& dense) : dense_(dense) {}
  explicit Design(const CsrMatrix& sparse) : sparse_(sparse) {}

  bool sparse() const { return sparse_.has_value(); }
  const CsrMatrix& csr() const { return *sparse_; }
  const Tensor& dense() const { return dense_; }
  std::int64_t rows() const;
  std::int64_t cols() const;
  Dtype dtype() const;
  /// What the ops record as X's input: the dense tensor or the CSR values.
  const Tensor& input() const { return sparse_ ? sparse_->values() : dense_; }
  /// "X [n, d]" or "X (CSR n × d, nnz non-zeros)", for messages.
  std::string describe() const;

  /// X·w for w [d] or [d, C] (a DSL op).
  Tensor times(const Tensor& w) const;
  /// Xᵀ·u for u [n] or [n, C] (a DSL op).
  Tensor times_t(const Tensor& u) const;
  /// The cotangent of X for a term whose gradient in X is a·bᵀ (a [n], b [d], or a [n, C],
  /// b [d, C]): the dense [n, d] matrix, or its entries at the CSR pattern ([nnz]).
  Tensor outer(const Tensor& a, const Tensor& b) const;

 private:
  Tensor dense_;
  std::optional<CsrMatrix> sparse_;
};

}  // namespace hyperad::detail
