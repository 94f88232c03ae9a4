#pragma once
// Seeded random test data shared by the autodiff tests: uniform tensors and sparse matrices.
#include <cstdint>
#include <vector>

#include "hyperad/hyperad.hpp"

namespace hyperad::testing {

/// Values uniform in [lo, hi), drawn in float64 then cast to `d` (the same numbers for both
/// dtypes up to rounding).
inline Tensor uniform(const Shape& s, double lo, double hi, Dtype d, Generator& gen) {
  std::vector<double> v = rand(s, gen, Dtype::f64).to_vector();
  for (double& x : v) x = lo + (hi - lo) * x;
  return tensor(v, s, d);
}

/// A rows × cols matrix with about `density` of its entries non-zero, values uniform in
/// [−1, 1), every fifth row (3, 8, …) empty.
inline CsrMatrix random_csr(std::int64_t rows, std::int64_t cols, double density, std::uint64_t seed,
                            Dtype d = Dtype::f64) {
  Generator g(seed);
  std::vector<std::int64_t> r, c;
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      if (g.uniform() < density && i % 5 != 3) {
        r.push_back(i);
        c.push_back(j);
        v.push_back(g.uniform() * 2 - 1);
      }
  return CsrMatrix::from_triplets(rows, cols, r, c, v, d);
}

}  // namespace hyperad::testing
