// Linear algebra ops through the harness (every transpose-flag case, every rank
// combination, batched both ways), closed forms on small integers, odd and lopsided
// sizes against a naive reference, and errors.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(2024);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;

// Shape of an operand that holds an [r, c] matrix per batch, stored transposed if `t`.
Shape stored(std::int64_t batch, std::int64_t r, std::int64_t c, bool t) {
  const std::int64_t r0 = t ? c : r, c0 = t ? r : c;
  return batch > 0 ? Shape{batch, r0, c0} : Shape{r0, c0};
}

// Element (i, j) of op(x) for batch slice `s` (x 2-D: shared, `s` ignored).
double op_at(const Tensor& x, std::int64_t s, std::int64_t i, std::int64_t j, bool t) {
  if (t) std::swap(i, j);
  return x.rank() == 3 ? x.at({s, i, j}) : x.at({i, j});
}

// Naive triple loop: the reference for op(a) op(b), batched or not.
std::vector<double> reference(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::int64_t batch = a.rank() == 3 ? a.size(0) : (b.rank() == 3 ? b.size(0) : 1);
  const std::int64_t M = a.size(ta ? -1 : -2), K = a.size(ta ? -2 : -1), N = b.size(tb ? -2 : -1);
  std::vector<double> c;
  for (std::int64_t s = 0; s < batch; ++s)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc += op_at(a, s, i, k, ta) * op_at(b, s, k, j, tb);
        c.push_back(acc);
      }
  return c;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  double err = 0;
  for (std::size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
  CHECK(err <= tol);
}

Tensor m22(double a, double b, double c, double d, Dtype dt = Dtype::f64) {
  return tensor({a, b, c, d}, {2, 2}, dt);
}
}  // namespace

TEST_CASE("matmul_t: all four transpose cases, first and second order") {
  const std::int64_t M = 3, K = 4, N = 2;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = rn(stored(0, M, K, ta)), b = rn(stored(0, K, N, tb));
      const std::string name = fmt::format("matmul_t ta={} tb={}", ta, tb);
      expect_ad(name, [ta, tb](const V& x) { return matmul_t(x[0], x[1], ta, tb); }, {a, b});
      // A nonlinear consumer makes the second-order check see a nonzero Hessian.
      expect_ad(name + " squared", [ta, tb](const V& x) { return square(matmul_t(x[0], x[1], ta, tb)); },
                {a, b});
      Tensor c = matmul_t(a, b, ta, tb);
      CHECK(c.shape() == Shape{M, N});
      check_close(values(c), reference(a, b, ta, tb), 1e-12);
    }
}

TEST_CASE("matmul_t: closed forms on small integers, float64 and float32") {
  for (Dtype dt : {Dtype::f64, Dtype::f32}) {
    Tensor a = m22(1, 2, 3, 4, dt), b = m22(5, 6, 7, 8, dt);
    CHECK(values(matmul_t(a, b, false, false)) == std::vector<double>{19, 22, 43, 50});
    CHECK(values(matmul_t(a, b, true, false)) == std::vector<double>{26, 30, 38, 44});
    CHECK(values(matmul_t(a, b, false, true)) == std::vector<double>{17, 23, 39, 53});
    CHECK(values(matmul_t(a, b, true, true)) == std::vector<double>{23, 31, 34, 46});
    CHECK(matmul_t(a, b, true, true).dtype() == dt);
  }
  // Non-square with transposes: [2, 3]ᵀ @ [2, 1] = [3, 1].
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}), v = tensor({1, -1}, {2, 1});
  Tensor c = matmul_t(a, v, true, false);
  CHECK(c.shape() == Shape{3, 1});
  CHECK(values(c) == std::vector<double>{-3, -3, -3});
  // Gradients of sum(A B) in closed form: dA = 1 Bᵀ (row sums of B), dB = Aᵀ 1 (column sums of A).
  Tensor A = m22(1, 2, 3, 4).requires_grad_(), B = m22(5, 6, 7, 8).requires_grad_();
  auto g = grad(sum(matmul(A, B)), {A, B});
  CHECK(values(g[0]) == std::vector<double>{11, 15, 11, 15});
  CHECK(values(g[1]) == std::vector<double>{4, 4, 6, 6});
}

TEST_CASE("matmul: every rank combination") {
  struct Case {
    Shape a, b, out;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 2}, {3, 2}},
      {{3, 4}, {4}, {3}},
      {{4}, {4, 2}, {2}},
      {{4}, {4}, {}},
      {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},
      {{2, 3, 4}, {4, 5}, {2, 3, 5}},
      {{3, 4}, {2, 4, 5}, {2, 3, 5}},
      {{2, 3, 4}, {4}, {2, 3}},
      {{4}, {2, 4, 5}, {2, 5}},
  };
  for (const Case& cs : cases) {
    const std::string name = fmt::format("matmul {} @ {}", cs.a.str(), cs.b.str());
    INFO(name);
    Tensor a = rn(cs.a), b = rn(cs.b);
    Tensor c = matmul(a, b);
    CHECK(c.shape() == cs.out);
    // Against the 2-D/3-D reference with vectors made a row (first) or a column (second).
    Tensor a2 = a.rank() == 1 ? reshape(a, Shape{1, a.size(0)}) : a;
    Tensor b2 = b.rank() == 1 ? reshape(b, Shape{b.size(0), 1}) : b;
    check_close(values(c), reference(a2, b2, false, false), 1e-12);
    expect_ad(name, [](const V& x) { return matmul(x[0], x[1]); }, {a, b});
    expect_ad(name + " tanh", [](const V& x) { return tanh(matmul(x[0], x[1])); }, {a, b});
  }
  // Closed forms: matrix-vector, vector-matrix, dot.
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(values(matmul(a, tensor({1.0, 0.0, -1.0}))) == std::vector<double>{-2, -2});
  CHECK(values(matmul(tensor({1.0, -1.0}), a)) == std::vector<double>{-3, -3, -3});
  Tensor d = matmul(tensor({1.0, 2.0, 3.0}), tensor({4.0, 5.0, 6.0}));
  CHECK(d.rank() == 0);
  CHECK(d.item() == 32);
}

TEST_CASE("batched matmul_t: equal batches and a shared 2-D operand, every flag") {
  const std::int64_t Bt = 2, M = 3, K = 4, N = 2;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // (batch of a, batch of b): both batched, a batched with b shared, a shared with b batched.
      for (auto [ba, bb] : {std::pair<std::int64_t, std::int64_t>{Bt, Bt}, {Bt, 0}, {0, Bt}}) {
        Tensor a = rn(stored(ba, M, K, ta)), b = rn(stored(bb, K, N, tb));
        const std::string name =
            fmt::format("matmul_t {} {} ta={} tb={}", a.shape().str(), b.shape().str(), ta, tb);
        INFO(name);
        Tensor c = matmul_t(a, b, ta, tb);
        CHECK(c.shape() == Shape{Bt, M, N});
        check_close(values(c), reference(a, b, ta, tb), 1e-12);
        expect_ad(name, [ta, tb](const V& x) { return square(matmul_t(x[0], x[1], ta, tb)); }, {a, b});
      }
    }
  // The shared operand's gradient sums over the batch: d sum(A_b W) / dW = Σ_b A_bᵀ 1.
  Tensor A = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  Tensor W = m22(1, 0, 0, 1).requires_grad_();
  CHECK(values(grad(sum(matmul(A, W)), {W})[0]) ==
        std::vector<double>{1 + 3 + 5 + 7, 1 + 3 + 5 + 7, 2 + 4 + 6 + 8, 2 + 4 + 6 + 8});
}

TEST_CASE("an input used twice: A A and Aᵀ A") {
  Tensor a = rn({3, 3});
  expect_ad("matmul(A, A)", [](const V& x) { return matmul(x[0], x[0]); }, {a});
  expect_ad("matmul_t(A, A, true, false)", [](const V& x) { return matmul_t(x[0], x[0], true, false); }, {a});
  expect_ad("A Aᵀ non-square", [](const V& x) { return matmul_t(x[0], x[0], false, true); }, {rn({2, 4})});
  expect_ad("batched A A", [](const V& x) { return matmul(x[0], x[0]); }, {rn({2, 3, 3})});

  // sum(A A) = 1ᵀ A A 1: gradient (i, j) = rowsum_j + colsum_i.
  Tensor A = m22(1, 2, 3, 4).requires_grad_();
  CHECK(values(grad(sum(matmul(A, A)), {A})[0]) == std::vector<double>{3 + 4, 7 + 4, 3 + 6, 7 + 6});
  // sum(Aᵀ A) = Σ_k (Σ_i A_ki)²: gradient (k, l) = 2 rowsum_k.
  CHECK(values(grad(sum(matmul_t(A, A, true, false)), {A})[0]) == std::vector<double>{6, 6, 14, 14});
  // Aᵀ A is symmetric.
  Tensor x = rn({4, 3});
  Tensor s = matmul_t(x, x, true, false);
  check_close(values(s), values(transpose(s)), 1e-12);
}

TEST_CASE("transpose and permute") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = transpose(a);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(values(t) == std::vector<double>{1, 4, 2, 5, 3, 6});
  Tensor b3 = transpose(reshape(arange(12), Shape{2, 3, 2}));
  CHECK(b3.shape() == Shape{2, 2, 3});
  CHECK(values(b3) == std::vector<double>{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11});

  // permute on rank 3: y[i, j, k] = x[j, k, i] for perm (2, 0, 1).
  Tensor x = reshape(arange(24), Shape{2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t j = 0; j < 2; ++j)
      for (std::int64_t k = 0; k < 3; ++k) CHECK(p.at({i, j, k}) == x.at({j, k, i}));
  // permute on rank 4, including extent-1 axes and an axis pair that stays adjacent.
  Tensor x4 = reshape(arange(2 * 1 * 3 * 5), Shape{2, 1, 3, 5});
  for (const std::vector<int>& perm :
       std::vector<std::vector<int>>{{3, 1, 0, 2}, {0, 2, 3, 1}, {1, 3, 2, 0}}) {
    Tensor y = permute(x4, perm);
    const auto& s = x4.shape();
    CHECK(y.shape() == Shape{s[perm[0]], s[perm[1]], s[perm[2]], s[perm[3]]});
    std::int64_t in[4];
    for (in[0] = 0; in[0] < 2; ++in[0])
      for (in[1] = 0; in[1] < 1; ++in[1])
        for (in[2] = 0; in[2] < 3; ++in[2])
          for (in[3] = 0; in[3] < 5; ++in[3])
            CHECK(y.at({in[perm[0]], in[perm[1]], in[perm[2]], in[perm[3]]}) ==
                  x4.at({in[0], in[1], in[2], in[3]}));
  }
  // The identity permutation is free (same storage), a round trip restores the data.
  CHECK(permute(x, {0, 1, 2}).shares_storage(x));
  CHECK(values(permute(permute(x, {1, 2, 0}), {2, 0, 1})) == values(x));
  // A large transpose goes through the tiled path (several 32 × 32 tiles, ragged edges).
  Tensor big = rn({70, 45});
  Tensor bt = transpose(big);
  bool ok = true;
  for (std::int64_t i = 0; i < 70; ++i)
    for (std::int64_t j = 0; j < 45; ++j) ok = ok && bt.at({j, i}) == big.at({i, j});
  CHECK(ok);

  expect_ad("transpose 2-D", [](const V& v) { return transpose(v[0]); }, {rn({3, 4})});
  expect_ad("transpose 3-D", [](const V& v) { return square(transpose(v[0])); }, {rn({2, 3, 4})});
  expect_ad("permute rank 3", [](const V& v) { return square(permute(v[0], {2, 0, 1})); }, {rn({2, 3, 4})});
  expect_ad("permute rank 4",
            [](const V& v) {
              return tanh(permute(v[0], {3, 1, 0, 2}));
            },
            {rn({2, 1, 3, 2})});
  expect_ad("permute times input",
            [](const V& v) {
              return permute(v[0], {1, 0}) * transpose(v[0]);
            },
            {rn({3, 3})});
  expect_ad("Aᵀ A by transpose", [](const V& v) { return matmul(transpose(v[0]), v[0]); }, {rn({4, 3})});
}

TEST_CASE("outer") {
  Tensor o = outer(tensor({1.0, 2.0}), tensor({3.0, 4.0, 5.0}));
  CHECK(o.shape() == Shape{2, 3});
  CHECK(values(o) == std::vector<double>{3, 4, 5, 6, 8, 10});
  expect_ad("outer", [](const V& v) { return outer(v[0], v[1]); }, {rn({3}), rn({4})});
  expect_ad("outer with itself", [](const V& v) { return square(outer(v[0], v[0])); }, {rn({3})});
  // d sum(a ⊗ b) / da = (Σ b) 1.
  Tensor a = tensor({1.0, 2.0}).requires_grad_();
  CHECK(values(grad(sum(outer(a, tensor({3.0, 4.0, 5.0}))), {a})[0]) == std::vector<double>{12, 12});
}

TEST_CASE("lopsided and odd sizes against a naive reference") {
  // [1000, 1] @ [1, 1000] is the outer product; [1, 1000] @ [1000, 1] is a dot product.
  Tensor u = rn({1000}), v = rn({1000});
  Tensor col = reshape(u, Shape{1000, 1}), row = reshape(v, Shape{1, 1000});
  Tensor big = matmul(col, row);
  CHECK(big.shape() == Shape{1000, 1000});
  check_close(values(big), values(outer(u, v)), 1e-12);
  CHECK(matmul(row, col).item() == doctest::Approx(dot(u, v).item()).epsilon(1e-12));
  CHECK(matmul_t(row, row, false, true).item() == doctest::Approx(dot(v, v).item()).epsilon(1e-12));
  // Tall-skinny times wide, in every transpose case, float64 and float32.
  for (Dtype dt : {Dtype::f64, Dtype::f32})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("dtype " << dtype_name(dt) << " ta=" << ta << " tb=" << tb);
        for (auto [M, K, N] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{7, 13, 5},
                               {1, 17, 9},
                               {33, 1, 31},
                               {65, 3, 1}}) {
          Tensor a = rn(stored(0, M, K, ta)).to(dt), b = rn(stored(0, K, N, tb)).to(dt);
          Tensor c = matmul_t(a, b, ta, tb);
          CHECK(c.shape() == Shape{M, N});
          check_close(values(c), reference(a, b, ta, tb), dt == Dtype::f64 ? 1e-12 : 1e-4);
        }
      }
  // Batched odd sizes against the reference, shared operand either side.
  Tensor a = rn({3, 7, 13}), w = rn({13, 5}), bb = rn({3, 13, 5});
  check_close(values(matmul(a, w)), reference(a, w, false, false), 1e-12);
  check_close(values(matmul(a, bb)), reference(a, bb, false, false), 1e-12);
  Tensor shared = rn({7, 13});
  check_close(values(matmul(shared, bb)), reference(shared, bb, false, false), 1e-12);
  // Gradient check of a larger, odd product (random-projection path of the checker).
  expect_ad("matmul 7x13 @ 13x5", [](const V& x) { return matmul(x[0], x[1]); }, {rn({7, 13}), rn({13, 5})});
}

TEST_CASE("empty dimensions") {
  // K = 0: the sum over nothing is zero.
  Tensor z = matmul(zeros({2, 0}), zeros({0, 3}));
  CHECK(z.shape() == Shape{2, 3});
  CHECK(values(z) == std::vector<double>(6, 0.0));
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
  CHECK(matmul(zeros({0, 2, 4}), zeros({4, 3})).shape() == Shape{0, 2, 3});
  CHECK(permute(zeros({2, 0, 3}), {2, 1, 0}).shape() == Shape{3, 0, 2});
}

TEST_CASE("linalg errors name the op and both shapes") {
  CHECK_THROWS_WITH_AS(
      matmul(zeros({3, 4}), zeros({5, 2})),
      doctest::Contains("matmul: inner dimensions differ: first operand [3, 4] vs second operand [5, 2]"),
      ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul(zeros({3}), zeros({4})),
      doctest::Contains("matmul: inner dimensions differ: first operand [3] vs second operand [4]"),
      ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
      doctest::Contains("matmul: batch sizes differ: first operand [2, 3, 4] vs second operand [3, 4, 5]"),
      ShapeError);
  CHECK_THROWS_WITH_AS(matmul(zeros({1, 2, 3, 4}), zeros({4, 2})),
                       doctest::Contains("matmul: unsupported ranks 4 and 2"), ShapeError);
  CHECK_THROWS_WITH_AS(matmul(zeros({}), zeros({2})),
                       doctest::Contains("first operand [] vs second operand [2]"), ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul_t(zeros({4, 3}), zeros({5, 2}), true, false),
      doctest::Contains("matmul_t: inner dimensions differ: first operand [4, 3] (transposed) vs "
                        "second operand [5, 2]"),
      ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul_t(zeros({3}), zeros({3, 2}), false, false),
      doctest::Contains("matmul_t: expects 2-D or batched 3-D operands, got first operand [3]"), ShapeError);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 2}), zeros({2, 2}, Dtype::f32)),
                       doctest::Contains("matmul: dtype mismatch"), DtypeError);
  CHECK_THROWS_WITH_AS(matmul(Tensor{}, zeros({2})),
                       doctest::Contains("matmul: first operand is an undefined tensor"), ValueError);
  CHECK_THROWS_WITH_AS(
      permute(zeros({2, 3, 4}), {0, 0, 1}),
      doctest::Contains("permute: [0, 0, 1] is not a permutation of the axes 0..2 of a tensor of "
                        "shape [2, 3, 4]"),
      ValueError);
  CHECK_THROWS_WITH_AS(permute(zeros({2, 3}), {0, 2}), doctest::Contains("permute: [0, 2]"), ValueError);
  CHECK_THROWS_WITH_AS(permute(zeros({2, 3}), {1, 0, 2}), doctest::Contains("[1, 0, 2] is not a permutation"),
                       ValueError);
  CHECK_THROWS_WITH_AS(permute(zeros({2, 3}), {-1, 0}), doctest::Contains("shape [2, 3]"), ValueError);
  CHECK_THROWS_WITH_AS(transpose(zeros({3})),
                       doctest::Contains("transpose: needs a tensor of rank >= 2, got input [3]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(
      outer(zeros({2, 2}), zeros({3})),
      doctest::Contains("outer: expects two vectors, got first operand [2, 2] and second operand [3]"),
      ShapeError);
}
