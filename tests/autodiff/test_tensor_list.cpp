// The tensor-list module (tensor_list.hpp): arithmetic, norms and comparisons over lists
// of tensors, their shape checks and messages; and the dense LU factorization.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hyperad/hyperad.hpp"

using namespace hyperad;

namespace {
std::vector<double> flat(const TensorList& v) { return list::flatten(v); }
}  // namespace

TEST_CASE("list arithmetic over lists of mixed shapes and dtypes") {
  const TensorList a{tensor({1.0, 2.0}), tensor({3.0}, Dtype::f32)};
  const TensorList b{tensor({4.0, 5.0}), tensor({6.0}, Dtype::f32)};
  CHECK(list::dot(a, b) == doctest::Approx(4 + 10 + 18));
  CHECK(list::norm(a) == doctest::Approx(std::sqrt(14.0)));
  CHECK(list::distance(a, b) == doctest::Approx(std::sqrt(27.0)));
  CHECK(list::numel(a) == 3);
  TensorList y = list::clone(b);
  list::axpy(2.0, a, y);
  CHECK(flat(y) == std::vector<double>{6, 9, 12});
  CHECK(flat(b) == std::vector<double>{4, 5, 6});  // clone copied the data
  CHECK(y[1].dtype() == Dtype::f32);
  list::scale(y, 0.5);
  CHECK(flat(y) == std::vector<double>{3, 4.5, 6});
  CHECK(flat(list::zeros_like(a)) == std::vector<double>{0, 0, 0});
  CHECK(list::zeros_like(a)[1].dtype() == Dtype::f32);
  CHECK(list::all_finite(a));
  CHECK_FALSE(list::all_finite({tensor({1.0, std::nan("")})}));
  CHECK_FALSE(list::all_finite({tensor({1.0, INFINITY})}));
  // flatten / unflatten round-trip onto the shapes and dtypes of a template.
  const TensorList back = list::unflatten({7, 8, 9}, a);
  CHECK(back[0].shape() == Shape{2});
  CHECK(back[1].dtype() == Dtype::f32);
  CHECK(flat(back) == std::vector<double>{7, 8, 9});
  CHECK_THROWS_WITH_AS(list::unflatten({1, 2}, a), doctest::Contains("2 values"), ShapeError);
}

TEST_CASE("leaves, detach and requires_grad over lists") {
  TapeScope scope;
  const TensorList a{tensor({1.0, 2.0}), scalar(3.0)};
  CHECK_FALSE(list::any_requires_grad(a));
  const TensorList leaves = list::make_leaves(a);
  CHECK(list::any_requires_grad(leaves));
  for (const Tensor& t : leaves) CHECK(t.requires_grad());
  const Tensor y = sum(leaves[0] * leaves[0]) + leaves[1];
  const TensorList g = grad(y, leaves);
  CHECK(flat(g) == std::vector<double>{2, 4, 1});
  CHECK_FALSE(list::any_requires_grad(list::detach(leaves)));
}

TEST_CASE("mismatched lists are refused with the tensor and both shapes") {
  const TensorList a{tensor({1.0, 2.0}), tensor({3.0})};
  CHECK_THROWS_WITH_AS(list::dot(a, {tensor({1.0, 2.0})}), doctest::Contains("lists of 2 and 1 tensors"), ShapeError);
  TensorList y{tensor({1.0, 2.0})};
  CHECK_THROWS_WITH_AS(list::axpy(1.0, {tensor({1.0})}, y),
                       doctest::Contains("tensor 0 has shape [1] in the first list and [2] in the second"), ShapeError);
  CHECK_THROWS_WITH_AS(list::require_like({tensor({1.0})}, a, "solve: the start"),
                       doctest::Contains("solve: the start"), ShapeError);
  CHECK_NOTHROW(list::require_like(list::zeros_like(a), a, "x"));
}

TEST_CASE("dense LU solves, solves transposed, and refuses singular matrices") {
  linsolve::DenseLU lu({0, 2, 1, 1, 1, 0, 3, 0, 1}, 3);  // needs pivoting
  std::vector<double> x = lu.solve({5, 3, 4});  // A [1, 2, 1]ᵀ
  CHECK(x[0] == doctest::Approx(1.0));
  CHECK(x[1] == doctest::Approx(2.0));
  CHECK(x[2] == doctest::Approx(1.0));
  std::vector<double> y = lu.solve_transposed({4, 3, 2});  // Aᵀ [1, 1, 1]ᵀ
  for (double v : y) CHECK(v == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(linsolve::DenseLU({1, 2, 2, 4}, 2), doctest::Contains("singular to working precision"), ValueError);
  CHECK_THROWS_WITH_AS(linsolve::DenseLU({1, 2, 3}, 2), doctest::Contains("3 entries for a 2×2 matrix"), ValueError);
}

TEST_CASE("relative_error: the 2-norm ratio over all entries, absolute against zero, sizes checked") {
  CHECK(list::relative_error(std::vector<double>{3, 4}, {0, 0}) == 5.0);
  CHECK(list::relative_error(std::vector<double>{1, 2}, {1, 0}) == 2.0);
  const TensorList a{tensor({1.0, 1.0}), tensor({1.0})}, ref{tensor({1.0, 1.0}), tensor({2.0})};
  CHECK(list::relative_error(a, ref) == doctest::Approx(1.0 / std::sqrt(6.0)).epsilon(1e-15));
  CHECK_THROWS_WITH_AS(list::relative_error(std::vector<double>{1, 2}, {1}),
                       "relative_error: 2 values against a reference of 1", ShapeError);
}

