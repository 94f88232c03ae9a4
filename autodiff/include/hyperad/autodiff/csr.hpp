#pragma once
/// \file csr.hpp
/// `CsrMatrix`: an immutable sparse matrix in compressed sparse row form, for data with
/// few non-zeros per row (tf-idf text, one-hot features). Its products with dense tensors
/// are ops (ops/sparse.hpp), differentiable to any order in the dense operand and, when the
/// values require gradients, in the stored values (the sparsity pattern is fixed).
///
/// Row r's non-zeros are entries indptr[r] .. indptr[r+1] − 1 of `indices` (their columns,
/// strictly increasing within a row) and `values`. Memory is proportional to the
/// non-zeros; no dense rows × cols intermediate is ever formed. The transpose (the CSR
/// form of Aᵀ, which products Aᵀ·B read) is built on first use and kept, so copies of a
/// matrix share it. The pattern (indptr, indices, the transposed pattern) is shared by
/// every matrix made from it with `with_values`, so new values cost O(nnz) and no sort.
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
  /// 1-D float tensor of nnz entries (which may require gradients: products are then
  /// differentiable in them). ValueError names the first offending position.
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
  /// The same pattern with other values: a 1-D tensor of nnz() entries, which may require
  /// gradients (e.g. poisoned sparse inputs); a product with them is recorded on their
  /// tape, like any op on them. The pattern is shared, not copied. ValueError for another
  /// shape.
  CsrMatrix with_values(Tensor values) const;
  /// Whether both matrices were made from one pattern (by with_values, to, or copying).
  bool same_pattern(const CsrMatrix& other) const;
  /// Aᵀ in CSR form, values detached: built once and shared by every copy of this matrix
  /// (the pattern part by every matrix of the same pattern), its values gathered again when
  /// A's were written in place since. For the kernels: the ops differentiate through A's
  /// own values.
  CsrMatrix transposed() const;
  /// The rows listed in `rows` (any order, repeats allowed), as a rows.size() × cols
  /// matrix: a minibatch of sparse examples, differentiable in the values (an index_select
  /// of them). ValueError names an index outside [0, rows()).
  CsrMatrix select_rows(std::span<const std::int64_t> rows) const;
  /// The same matrix with values converted to `dtype`.
  CsrMatrix to(Dtype dtype) const;
  /// The dense rows × cols tensor, values detached (for tests and small matrices).
  Tensor to_dense() const;

 private:
  struct Pattern;
  struct Data;
  CsrMatrix(std::shared_ptr<const Pattern> pattern, Tensor values);
  std::shared_ptr<Data> d_;
};

}  // namespace hyperad
