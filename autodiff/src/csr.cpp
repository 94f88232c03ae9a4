// CsrMatrix: construction with validation, triplets, dense conversion, the cached transpose.
#include "hyperad/autodiff/csr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <numeric>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad {

// The sparsity pattern, shared by every matrix made from it with with_values(), and its
// transpose (built on first use): Aᵀ's pattern and, for each of its entries, the entry of A
// it comes from.
struct CsrMatrix::Pattern {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> indptr, indices;
  mutable std::once_flag transpose_once;
  mutable std::shared_ptr<const Pattern> transpose;
  mutable std::vector<std::int64_t> transpose_source;

  const Pattern& transposed() const;
};

// The transpose's values are cached with the version of the values they were gathered
// from, and gathered again when those values were written in place since.
struct CsrMatrix::Data {
  std::shared_ptr<const Pattern> pattern;
  Tensor values;
  mutable std::mutex transpose_mutex;
  mutable std::optional<CsrMatrix> transpose;
  mutable std::uint64_t transpose_version = 0;
};

namespace {

void check_values(const char* op, const Tensor& values, std::int64_t nnz) {
  if (!values.defined() || values.rank() != 1)
    throw ValueError(fmt::format("{}: values must be a 1-D tensor, got {}", op,
                                 values.defined() ? values.shape().str() : std::string("an undefined tensor")));
  if (values.numel() != nnz)
    throw ValueError(fmt::format("{}: {} values for {} column indices", op, values.numel(), nnz));
}

void validate(std::int64_t rows, std::int64_t cols, const std::vector<std::int64_t>& indptr,
              const std::vector<std::int64_t>& indices, const Tensor& values) {
  const char* op = "CsrMatrix";
  if (rows < 0 || cols < 0) throw ValueError(fmt::format("{}: negative shape {} × {}", op, rows, cols));
  if (indptr.size() != static_cast<std::size_t>(rows) + 1)
    throw ValueError(fmt::format("{}: indptr has {} entries, expected rows + 1 = {}", op, indptr.size(), rows + 1));
  check_values(op, values, static_cast<std::int64_t>(indices.size()));
  const auto nnz = static_cast<std::int64_t>(indices.size());
  if (indptr.front() != 0 || indptr.back() != nnz)
    throw ValueError(fmt::format("{}: indptr must run from 0 to nnz = {}, got {} .. {}", op, nnz, indptr.front(),
                                 indptr.back()));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t lo = indptr[static_cast<std::size_t>(r)], hi = indptr[static_cast<std::size_t>(r) + 1];
    if (hi < lo) throw ValueError(fmt::format("{}: indptr decreases at row {} ({} then {})", op, r, lo, hi));
    for (std::int64_t k = lo; k < hi; ++k) {
      const std::int64_t c = indices[static_cast<std::size_t>(k)];
      if (c < 0 || c >= cols)
        throw ValueError(fmt::format("{}: row {} has column {} outside [0, {})", op, r, c, cols));
      if (k > lo && c <= indices[static_cast<std::size_t>(k) - 1])
        throw ValueError(fmt::format("{}: row {}'s columns are not strictly increasing ({} after {})", op, r, c,
                                     indices[static_cast<std::size_t>(k) - 1]));
    }
  }
}

}  // namespace

CsrMatrix::CsrMatrix() : CsrMatrix(0, 0, {0}, {}, zeros({0})) {}

CsrMatrix::CsrMatrix(std::int64_t rows, std::int64_t cols, std::vector<std::int64_t> indptr,
                     std::vector<std::int64_t> indices, Tensor values) {
  validate(rows, cols, indptr, indices, values);
  auto p = std::make_shared<Pattern>();
  p->rows = rows;
  p->cols = cols;
  p->indptr = std::move(indptr);
  p->indices = std::move(indices);
  d_ = std::make_shared<Data>();
  d_->pattern = std::move(p);
  d_->values = std::move(values);
}

CsrMatrix::CsrMatrix(std::shared_ptr<const Pattern> pattern, Tensor values) {
  d_ = std::make_shared<Data>();
  d_->pattern = std::move(pattern);
  d_->values = std::move(values);
}

CsrMatrix CsrMatrix::with_values(Tensor values) const {
  check_values("CsrMatrix::with_values", values, nnz());
  return CsrMatrix(d_->pattern, std::move(values));
}

CsrMatrix CsrMatrix::from_triplets(std::int64_t rows, std::int64_t cols, const std::vector<std::int64_t>& row_index,
                                   const std::vector<std::int64_t>& col_index, const std::vector<double>& values,
                                   Dtype dtype) {
  const char* op = "CsrMatrix::from_triplets";
  if (row_index.size() != col_index.size() || row_index.size() != values.size())
    throw ValueError(fmt::format("{}: {} row indices, {} column indices and {} values", op, row_index.size(),
                                 col_index.size(), values.size()));
  if (rows < 0 || cols < 0) throw ValueError(fmt::format("{}: negative shape {} × {}", op, rows, cols));
  for (std::size_t k = 0; k < row_index.size(); ++k)
    if (row_index[k] < 0 || row_index[k] >= rows || col_index[k] < 0 || col_index[k] >= cols)
      throw ValueError(fmt::format("{}: triplet {} at ({}, {}) is outside the {} × {} matrix", op, k, row_index[k],
                                   col_index[k], rows, cols));
  // Order the triplets by (row, column); equal positions are summed in their given order.
  std::vector<std::size_t> order(row_index.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return row_index[a] != row_index[b] ? row_index[a] < row_index[b] : col_index[a] < col_index[b];
  });
  std::vector<std::int64_t> indptr(static_cast<std::size_t>(rows) + 1, 0), indices;
  std::vector<double> vals;
  for (std::size_t k : order) {
    const bool same = !indices.empty() && indptr[static_cast<std::size_t>(row_index[k]) + 1] > 0 &&
                      indices.back() == col_index[k];
    if (same) {
      vals.back() += values[k];
      continue;
    }
    indices.push_back(col_index[k]);
    vals.push_back(values[k]);
    ++indptr[static_cast<std::size_t>(row_index[k]) + 1];
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) indptr[r + 1] += indptr[r];
  const auto nnz = static_cast<std::int64_t>(vals.size());
  return CsrMatrix(rows, cols, std::move(indptr), std::move(indices), tensor(vals, {nnz}, dtype));
}

CsrMatrix CsrMatrix::from_dense(const Tensor& dense) {
  if (!dense.defined() || dense.rank() != 2)
    throw ValueError(fmt::format("CsrMatrix::from_dense: expects a 2-D tensor, got {}",
                                 dense.defined() ? dense.shape().str() : std::string("an undefined tensor")));
  const std::int64_t rows = dense.size(0), cols = dense.size(1);
  const std::vector<double> v = dense.detach().to_vector();
  std::vector<std::int64_t> indptr{0}, indices;
  std::vector<double> vals;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c)
      if (const double x = v[static_cast<std::size_t>(r * cols + c)]; x != 0) {
        indices.push_back(c);
        vals.push_back(x);
      }
    indptr.push_back(static_cast<std::int64_t>(indices.size()));
  }
  const auto nnz = static_cast<std::int64_t>(vals.size());
  return CsrMatrix(rows, cols, std::move(indptr), std::move(indices), tensor(vals, {nnz}, dense.dtype()));
}

std::int64_t CsrMatrix::rows() const { return d_->pattern->rows; }
std::int64_t CsrMatrix::cols() const { return d_->pattern->cols; }
std::int64_t CsrMatrix::nnz() const { return static_cast<std::int64_t>(d_->pattern->indices.size()); }
Dtype CsrMatrix::dtype() const { return d_->values.dtype(); }
const std::vector<std::int64_t>& CsrMatrix::indptr() const { return d_->pattern->indptr; }
const std::vector<std::int64_t>& CsrMatrix::indices() const { return d_->pattern->indices; }
const Tensor& CsrMatrix::values() const { return d_->values; }
bool CsrMatrix::same_pattern(const CsrMatrix& other) const { return d_->pattern == other.d_->pattern; }

const CsrMatrix::Pattern& CsrMatrix::Pattern::transposed() const {
  std::call_once(transpose_once, [this] {
    // Counting sort by column: Aᵀ's row c holds A's entries of column c in row order, so its
    // columns come out increasing.
    auto t = std::make_shared<Pattern>();
    t->rows = cols;
    t->cols = rows;
    t->indptr.assign(static_cast<std::size_t>(cols) + 1, 0);
    t->indices.resize(indices.size());
    for (std::int64_t c : indices) ++t->indptr[static_cast<std::size_t>(c) + 1];
    for (std::size_t c = 0; c < static_cast<std::size_t>(cols); ++c) t->indptr[c + 1] += t->indptr[c];
    std::vector<std::int64_t> next(t->indptr.begin(), t->indptr.end() - 1);
    transpose_source.resize(indices.size());
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t k = indptr[static_cast<std::size_t>(r)]; k < indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        const auto slot = static_cast<std::size_t>(next[static_cast<std::size_t>(indices[static_cast<std::size_t>(k)])]++);
        t->indices[slot] = r;
        transpose_source[slot] = k;
      }
    transpose = std::move(t);
  });
  return *transpose;
}

CsrMatrix CsrMatrix::transposed() const {
  const Pattern& p = *d_->pattern;
  p.transposed();
  std::lock_guard<std::mutex> lock(d_->transpose_mutex);
  const std::uint64_t version = d_->values.version();
  if (!d_->transpose || d_->transpose_version != version) {
    NoGradGuard off;
    d_->transpose.emplace(CsrMatrix(p.transpose, index_select(d_->values.detach(), 0, p.transpose_source)));
    d_->transpose_version = version;
  }
  return *d_->transpose;
}

CsrMatrix CsrMatrix::select_rows(std::span<const std::int64_t> rows) const {
  const Pattern& a = *d_->pattern;
  std::vector<std::int64_t> indptr{0}, indices, source;
  indptr.reserve(rows.size() + 1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::int64_t r = rows[i];
    if (r < 0 || r >= a.rows)
      throw ValueError(fmt::format("CsrMatrix::select_rows: index {} (position {}) is outside [0, {})", r, i, a.rows));
    for (std::int64_t k = a.indptr[static_cast<std::size_t>(r)]; k < a.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
      indices.push_back(a.indices[static_cast<std::size_t>(k)]);
      source.push_back(k);
    }
    indptr.push_back(static_cast<std::int64_t>(indices.size()));
  }
  // Differentiable in the values: a minibatch of poisoned sparse rows keeps its gradient.
  const Tensor values = index_select(d_->values, 0, source);
  return CsrMatrix(static_cast<std::int64_t>(rows.size()), a.cols, std::move(indptr), std::move(indices), values);
}

CsrMatrix CsrMatrix::to(Dtype dtype) const {
  if (dtype == this->dtype()) return *this;
  return CsrMatrix(d_->pattern, d_->values.to(dtype));
}

Tensor CsrMatrix::to_dense() const {
  const Pattern& p = *d_->pattern;
  std::vector<double> out(static_cast<std::size_t>(p.rows * p.cols), 0.0);
  const std::vector<double> v = d_->values.detach().to_vector();
  for (std::int64_t r = 0; r < p.rows; ++r)
    for (std::int64_t k = p.indptr[static_cast<std::size_t>(r)]; k < p.indptr[static_cast<std::size_t>(r) + 1]; ++k)
      out[static_cast<std::size_t>(r * p.cols + p.indices[static_cast<std::size_t>(k)])] = v[static_cast<std::size_t>(k)];
  return tensor(out, {p.rows, p.cols}, dtype());
}

}  // namespace hyperad
