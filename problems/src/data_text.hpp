#pragma once
// Shared by the text datasets (data_text.cpp, data_wordnet.cpp): documents' term lists
// gathered into a count matrix row by row.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/csr.hpp"

namespace hyperad::problems::detail {

/// The CSR arrays of a term-count matrix, one document (row) at a time.
struct CountRows {
  std::vector<std::int64_t> indptr{0}, columns;
  std::vector<double> counts;
  /// Appends a row holding how often each term of `terms` occurs (sorts `terms`).
  void add_document(std::vector<std::int64_t>& terms);
  /// The rows so far as a matrix with `cols` columns.
  CsrMatrix matrix(std::int64_t cols, Dtype dtype) &&;
};

}  // namespace hyperad::problems::detail
