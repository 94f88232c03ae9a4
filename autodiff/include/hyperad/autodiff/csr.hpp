#pragma once
/// \file csr.hpp
/// `CsrMatrix`: an immutable sparse matrix in compressed sparse row form, for data with
/// few non-zeros per row (tf-idf text, one-hot features). Its products with dense tensors
/// are ops (ops/sparse.hpp), differentiable in the dense operand to any order.
///
/// Row r's non-zeros are entries indptr[r] .. indptr[r+1] − 1 of `indices` (their columns,
/// strictly increasing within a row) and `values`. Memory is proportional to the
/// non-zeros; no dense rows × cols intermediate is ever formed. The transpose (the CSR
/// form of Aᵀ, which products Aᵀ·B read) is built on first use and kept, so copies of a
/// matrix share it.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

class CsrMatrix {
 public:
  /// The empty 0 × 0 matrix (float64).
  CsrMatrix();
  /// From the CSR arrays, validated: indptr has rows + 1 non-decreasing entries from 0 to
  /// nnz, every column is in [0, cols) and strictly increasing within its row, values is a
  /// 1-D float tensor of nnz entries (not requiring gradients). ValueError names the first
  /// offending position.
  CsrMatrix(std::int64_t rows, std::int64_t cols, std::vector<std::int64_t> indptr, std::vector<std::int64_t> indices,
            Tensor values);
  /// From (row, column, value) triplets in any order; duplicates are summed, explicit
  /// zeros kept. ValueError for an index out of range or lists of different lengths.
  static CsrMatrix from_triplets(std::int64_t rows, std::int64_t cols, const std::vector<std::int64_t>& row_index,
                                 const std::vector<std::int64_t>& col_index, const std::vector<double>& values,
                                 Dtype dtype = Dtype::f64);
  /// The non-zeros of a 2-D tensor.
  static CsrMatrix from_dense(const Tensor& dense);

  std::int64_t rows() const;
  std::int64_t cols() const;
  std::int64_t nnz() const;
  Dtype dtype() const;
  const std::vector<std::int64_t>& indptr() const;
  const std::vector<std::int64_t>& indices() const;
  const Tensor& values() const;
  /// Aᵀ in CSR form (built once, then shared by every copy of this matrix).
  const CsrMatrix& transposed() const;
  /// The rows listed in `rows` (any order, repeats allowed), as a rows.size() × cols
  /// matrix: a minibatch of sparse examples. ValueError names an index outside [0, rows()).
  CsrMatrix select_rows(std::span<const std::int64_t> rows) const;
  /// The same matrix with values converted to `dtype`.
  CsrMatrix to(Dtype dtype) const;
  /// The dense rows × cols tensor (for tests and small matrices).
  Tensor to_dense() const;

 private:
  struct Data;
  explicit CsrMatrix(std::shared_ptr<Data> data) : d_(std::move(data)) {}
  std::shared_ptr<Data> d_;
};

}  // namespace hyperad
