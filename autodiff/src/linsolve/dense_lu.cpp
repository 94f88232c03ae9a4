#include "hyperad/autodiff/dense_lu.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/linsolve.hpp"

namespace hyperad::linsolve {

DenseLU::DenseLU(std::vector<double> a, std::size_t n) : lu_(std::move(a)), perm_(n), n_(n) {
  if (lu_.size() != n * n) throw ValueError(fmt::format("DenseLU: {} entries for a {}×{} matrix", lu_.size(), n, n));
  std::iota(perm_.begin(), perm_.end(), 0);
  double scale = 0.0;
  for (double v : lu_) scale = std::max(scale, std::abs(v));
  auto at = [&](std::size_t i, std::size_t j) -> double& { return lu_[i * n + j]; };
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t p = k;
    for (std::size_t i = k + 1; i < n; ++i)
      if (std::abs(at(i, k)) > std::abs(at(p, k))) p = i;
    if (!(std::abs(at(p, k)) > 1e-14 * scale))
      throw ValueError(fmt::format("DenseLU: the matrix is singular to working precision (pivot {:.3g} in column {})",
                                   at(p, k), k));
    if (p != k) {
      for (std::size_t j = 0; j < n; ++j) std::swap(at(k, j), at(p, j));
      std::swap(perm_[k], perm_[p]);
    }
    for (std::size_t i = k + 1; i < n; ++i) {
      const double m = at(i, k) /= at(k, k);
      for (std::size_t j = k + 1; j < n; ++j) at(i, j) -= m * at(k, j);
    }
  }
}

std::vector<double> DenseLU::solve(std::vector<double> b) const {
  const std::size_t n = n_;
  if (b.size() != n) throw ValueError(fmt::format("DenseLU::solve: right-hand side of {} for size {}", b.size(), n));
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = b[perm_[i]];
  for (std::size_t i = 0; i < n; ++i)  // L y = P b (unit diagonal)
    for (std::size_t j = 0; j < i; ++j) x[i] -= lu_[i * n + j] * x[j];
  for (std::size_t i = n; i-- > 0;) {  // U x = y
    for (std::size_t j = i + 1; j < n; ++j) x[i] -= lu_[i * n + j] * x[j];
    x[i] /= lu_[i * n + i];
  }
  return x;
}

std::vector<double> DenseLU::solve_transposed(std::vector<double> b) const {
  // Aᵀ = Uᵀ Lᵀ P: solve Uᵀ z = b, Lᵀ y = z, x = Pᵀ y.
  const std::size_t n = n_;
  if (b.size() != n) throw ValueError(fmt::format("DenseLU::solve_transposed: right-hand side of {} for size {}", b.size(), n));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < i; ++j) b[i] -= lu_[j * n + i] * b[j];
    b[i] /= lu_[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;)
    for (std::size_t j = i + 1; j < n; ++j) b[i] -= lu_[j * n + i] * b[j];
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[perm_[i]] = b[i];
  return x;
}

}  // namespace hyperad::linsolve

// ---- the LU solver -----------------------------------------------------------------------------

namespace hyperad::linsolve {

Solver dense_lu(std::int64_t max_unknowns) {
  if (max_unknowns < 1)
    throw ValueError(fmt::format("linsolve::dense_lu: max_unknowns must be >= 1, got {}", max_unknowns));
  auto algorithm = [max_unknowns](const Operator& A, const TensorList& b, const TensorList&, const Options& o,
                                  Report& rep) {
    const std::int64_t n = list::numel(b);
    if (n > max_unknowns)
      throw ValueError(fmt::format("linsolve::LU: the system has {} unknowns, above the limit {} of a dense "
                                   "factorization (dense_lu(max_unknowns) raises it)",
                                   n, max_unknowns));
    // Column j of A is A e_j.
    const auto un = static_cast<std::size_t>(n);
    std::vector<double> a(un * un);
    for (std::size_t j = 0; j < un; ++j) {
      std::vector<double> ej(un, 0.0);
      ej[j] = 1.0;
      const std::vector<double> col = list::flatten(A.apply(list::unflatten(ej, b)));
      for (std::size_t i = 0; i < un; ++i) a[i * un + j] = col[i];
    }
    rep.iterations = static_cast<int>(n);
    const std::vector<double> rhs = list::flatten(b);
    std::vector<double> x(un, 0.0);
    try {
      x = DenseLU(a, un).solve(rhs);
    } catch (const ValueError& e) {
      rep.status = Status::breakdown;
      rep.reason = fmt::format("breakdown: {}", e.what());
    }
    double res = 0.0;  // ‖b − A x‖ from the dense matrix: exact, no product
    for (std::size_t i = 0; i < un; ++i) {
      double s = -rhs[i];
      for (std::size_t j = 0; j < un; ++j) s += a[i * un + j] * x[j];
      res += s * s;
    }
    rep.residual = std::sqrt(res);
    if (rep.status != Status::breakdown) {
      StoppingRule rule(o, rep.rhs_norm, b);
      rep.status = Status::converged;
      rep.reason = fmt::format("solved by LU: residual {:.3e} (tolerance {:.3e})", rep.residual, rule.tolerance());
      if (!(rep.residual <= std::max(rule.tolerance(), rule.floor())))
        rep.warnings.push_back(fmt::format("LU: the residual {:.3e} of the factorized solve is above the tolerance "
                                           "{:.3e}: the matrix is ill-conditioned",
                                           rep.residual, rule.tolerance()));
    }
    return list::unflatten(x, b);
  };
  return Solver("LU", algorithm, {.exact_residual = true});
}

}  // namespace hyperad::linsolve
