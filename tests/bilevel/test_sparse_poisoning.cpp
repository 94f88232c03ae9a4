// Poisoning of sparse inputs: the outer variable is the stored values of poisoned CSR rows
// (their pattern fixed), the inner problem a logistic regression trained on clean and
// poisoned rows through the fused linear_model ops over CSR, or through sparse_matmul. The
// hypergradient — through sampled_product, the values' derivative — from AID-CG, AID-FP
// and ITD against the exact reference and finite differences, both formulations agreeing.
#include <doctest/doctest.h>

#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

// rows × cols, about `per_row` non-zeros per row at random columns, values in [0, 1).
CsrMatrix sparse_rows(std::int64_t rows, std::int64_t cols, int per_row, Generator& g) {
  std::vector<std::int64_t> r, c;
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows; ++i)
    for (int k = 0; k < per_row; ++k) {
      r.push_back(i);
      c.push_back(static_cast<std::int64_t>(g.below(static_cast<std::uint64_t>(cols))));
      v.push_back(g.uniform());
    }
  return CsrMatrix::from_triplets(rows, cols, r, c, v);
}

Tensor signs(std::int64_t n, Generator& g) {
  std::vector<double> y(static_cast<std::size_t>(n));
  for (double& x : y) x = g.uniform() < 0.5 ? -1.0 : 1.0;
  return tensor(y, {n});
}

struct SparsePoisoning {
  CsrMatrix clean, poison, valid;
  Tensor y, yp, yv;

  // The poisoned rows with the outer variable as their values.
  CsrMatrix poisoned(const Tensor& values) const { return poison.with_values(values); }

  Problem problem(bool fused) const {
    const double n = static_cast<double>(clean.rows() + poison.rows());
    auto loss = [fused](const CsrMatrix& x, const Tensor& w, const Tensor& y) {
      return fused ? linear_model_loss(x, w, y, LinearLoss::logistic, Reduction::sum)
                   : logistic_loss(sparse_matmul(x, w), y, Reduction::sum);
    };
    const SparsePoisoning self = *this;
    return Problem::gradient_descent(
        [self, loss, n](const TensorList& w, const TensorList& lam) {
          return (loss(self.clean, w[0], self.y) + loss(self.poisoned(lam[0]), w[0], self.yp)) / n +
                 0.05 * sum(square(w[0]));
        },
        1.0, [self, loss](const TensorList& w, const TensorList&) {
          return loss(self.valid, w[0], self.yv) / static_cast<double>(self.valid.rows());
        },
        {zeros({clean.cols()})});
  }
};

}  // namespace

TEST_CASE("poisoning sparse inputs: hypergradient in the poisoned rows' stored values") {
  Generator g(77);
  SparsePoisoning sp{sparse_rows(60, 15, 4, g), sparse_rows(6, 15, 3, g), sparse_rows(40, 15, 4, g), {}, {}, {}};
  sp.y = signs(60, g);
  sp.yp = signs(6, g);
  sp.yv = signs(40, g);
  const TensorList lambda{sp.poison.values().clone()};
  const Problem fused = sp.problem(true), composed = sp.problem(false);
  const Hypergradient exact = exact_hypergradient(fused, lambda);
  const std::vector<double> truth = list::flatten(exact.grad);
  CHECK(list::flatten(exact.grad).size() == static_cast<std::size_t>(sp.poison.nnz()));
  double largest = 0;
  for (double x : truth) largest = std::max(largest, std::abs(x));
  CHECK(largest > 1e-4);  // a vanishing hypergradient would make the checks vacuous

  // Finite differences from inner solves to a step of 1e-15, within their own error estimate.
  const Hypergradient fd = finite_difference_hypergradient(
      fused, lambda, {.richardson = true, .inner = {.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-15)}});
  const double fd_error = list::relative_error(list::flatten(fd.grad), truth);
  MESSAGE("sparse poisoning: finite differences vs exact " << fd_error << ", estimate " << fd.diagnostics.error_estimate);
  CHECK(fd_error < 1e-6);
  CHECK(list::relative_error(list::flatten(exact_hypergradient(composed, lambda).grad), truth) < 1e-12);

  AID cg({.inner_steps = 3000, .inner_tolerance = Tolerance::absolute(1e-14), .solver = linsolve::cg(),
          .linear_steps = 200, .linear_tolerance = Tolerance::relative(1e-13)});
  AID fp({.inner_steps = 3000, .inner_tolerance = Tolerance::absolute(1e-14), .solver = linsolve::richardson(),
          .linear_steps = 3000, .linear_tolerance = Tolerance::relative(1e-13)});
  ITD itd({.inner_steps = 3000});
  for (const Problem* p : {&fused, &composed}) {
    CHECK(list::relative_error(list::flatten(cg.hypergradient(*p, lambda).grad), truth) < 1e-9);
    CHECK(list::relative_error(list::flatten(fp.hypergradient(*p, lambda).grad), truth) < 1e-9);
    CHECK(list::relative_error(list::flatten(itd.hypergradient(*p, lambda).grad), truth) < 1e-8);
  }
}
