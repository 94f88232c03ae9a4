#pragma once
/// \file dense_lu.hpp
/// LU factorization with partial pivoting of a small dense matrix (row-major), for exact
/// reference hypergradients and tests. O(n³): meant for n up to a few thousand.
#include <cstddef>
#include <vector>

namespace hyperad::linsolve {

class DenseLU {
 public:
  /// Factorizes the n × n matrix `a` (row-major). Throws ValueError if its size is not
  /// n², or if it is singular to working precision (a zero or tiny pivot, naming the column).
  DenseLU(std::vector<double> a, std::size_t n);
  /// x with A x = b.
  std::vector<double> solve(std::vector<double> b) const;
  /// xᵀ with xᵀ A = bᵀ, i.e. Aᵀ x = b.
  std::vector<double> solve_transposed(std::vector<double> b) const;
  std::size_t size() const { return n_; }

 private:
  std::vector<double> lu_;
  std::vector<std::size_t> perm_;
  std::size_t n_;
};

}  // namespace hyperad::linsolve
