// Tensors: creation, access, sharing, random streams, printing.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::values;

TEST_CASE("creation functions give the documented shapes, dtypes and values") {
  CHECK(values(zeros({2, 2})) == std::vector<double>{0, 0, 0, 0});
  CHECK(values(ones({3}, Dtype::f32)) == std::vector<double>{1, 1, 1});
  CHECK(ones({3}, Dtype::f32).dtype() == Dtype::f32);
  CHECK(values(full({2}, 2.5)) == std::vector<double>{2.5, 2.5});
  CHECK(values(arange(4)) == std::vector<double>{0, 1, 2, 3});
  CHECK(values(arange(1.0, 2.0, 0.25)) == std::vector<double>{1.0, 1.25, 1.5, 1.75});
  CHECK(values(arange(3.0, 0.0, -1.0)) == std::vector<double>{3, 2, 1});
  CHECK(values(eye(2)) == std::vector<double>{1, 0, 0, 1});
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.at({1, 2}) == 6);
  CHECK(t.size(-1) == 3);
  CHECK(t.rank() == 2);
  CHECK(scalar(4.0).shape().rank() == 0);
  CHECK(scalar(4.0).item() == 4.0);
  Tensor r6 = zeros({1, 2, 1, 2, 1, 2});
  CHECK(r6.numel() == 8);
  CHECK(zeros({0, 3}).numel() == 0);
}

TEST_CASE("shapes whose element count overflows are refused before anything is allocated") {
  const std::int64_t big = std::int64_t{1} << 62;
  CHECK_THROWS_WITH_AS(zeros({big, 4}), doctest::Contains("Shape: [4611686018427387904, 4] has more than 2^60 elements"),
                       ValueError);
  CHECK_THROWS_WITH_AS(Shape({1 << 30, 1 << 30, 1 << 30}), doctest::Contains("more than 2^60 elements"), ValueError);
  CHECK_THROWS_AS(Shape({std::int64_t{1} << 60, 2}), ValueError);
  CHECK(Shape({std::int64_t{1} << 60}).numel() == std::int64_t{1} << 60);  // the largest allowed
  CHECK(Shape({big, big, 0}).numel() == 0);                                 // empty: nothing overflows
  // Empty tensors copy, clone and convert without touching memory (UBSan: no memcpy(nullptr)).
  Tensor e = zeros({0, 3});
  CHECK(e.clone().shape() == Shape{0, 3});
  CHECK(e.to(Dtype::f32).numel() == 0);
}

TEST_CASE("element access is bounds-checked and writes bump the version") {
  Tensor t = zeros({2, 3});
  CHECK_THROWS_WITH_AS(t.at({2, 0}), doctest::Contains("index 2 out of range for axis 0 of shape [2, 3]"), ValueError);
  CHECK_THROWS_WITH_AS(t.at({0}), doctest::Contains("1 indices given for a tensor of shape [2, 3]"), ValueError);
  CHECK_THROWS_WITH_AS(t.item(), doctest::Contains("needs a one-element tensor, got shape [2, 3]"), ValueError);
  CHECK_THROWS_WITH_AS(tensor({1, 2, 3}, Shape{2, 2}), doctest::Contains("3 values given for shape [2, 2]"), ShapeError);
  CHECK_THROWS_WITH_AS(zeros({1, 1, 1, 1, 1, 1, 1}), doctest::Contains("rank 7 exceeds the maximum rank 6"), ValueError);
  CHECK_THROWS_WITH_AS(t.data<float>(), doctest::Contains("float32 data requested from a float64 tensor"), DtypeError);
  CHECK_THROWS_WITH_AS(arange(0.0, 1.0, 0.0), doctest::Contains("non-zero step"), ValueError);
  auto v0 = t.version();
  t.set({1, 1}, 7.0);
  CHECK(t.at({1, 1}) == 7.0);
  CHECK(t.version() == v0 + 1);
}

TEST_CASE("copies share storage; clone copies; detach drops the gradient identity") {
  Tensor a = tensor({1.0, 2.0});
  Tensor b = a;
  b.set({0}, 5.0);
  CHECK(a.at({0}) == 5.0);
  CHECK(a.shares_storage(b));
  Tensor c = a.clone();
  c.set({0}, 9.0);
  CHECK(a.at({0}) == 5.0);
  CHECK_FALSE(a.shares_storage(c));

  a.requires_grad_();
  Tensor d = a.detach();
  CHECK(a.requires_grad());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.shares_storage(a));
  // clone and to() are differentiable identities / casts.
  Tensor e = a.clone() * 3.0;
  CHECK(values(grad(sum(e), {a})[0]) == std::vector<double>{3, 3});
  Tensor f = a.to(Dtype::f32);
  CHECK(f.dtype() == Dtype::f32);
  Tensor g = grad(sum(f * f), {a})[0];
  CHECK(g.dtype() == Dtype::f64);
  CHECK(values(g) == std::vector<double>{10, 4});
}

TEST_CASE("random streams are reproducible from the seed, on every machine") {
  // xoshiro256** seeded by splitmix64 is pure integer arithmetic: these values are exact.
  Generator g(42);
  std::uint64_t first = g.next_u64();
  Generator h(42);
  CHECK(h.next_u64() == first);
  Generator a(7), b(7), c(8);
  CHECK(values(randn({5}, a)) == values(randn({5}, b)));
  CHECK(values(rand({5}, c)) != values(rand({5}, a)));
  // Uniform draws lie in [0, 1); normals have mean 0 and variance 1.
  Generator s(1);
  Tensor u = rand({20000}, s), n = randn({20000}, s);
  double mu = mean(u).item(), m = mean(n).item(), var = mean(square(n)).item();
  CHECK(mu == doctest::Approx(0.5).epsilon(0.02));
  CHECK(m == doctest::Approx(0.0).epsilon(0.03));
  CHECK(var == doctest::Approx(1.0).epsilon(0.03));
  for (double x : values(u)) REQUIRE((x >= 0.0 && x < 1.0));
  // State save/restore continues the same stream.
  Generator p(3);
  p.next_u64();
  auto st = p.state();
  double next = p.uniform();
  Generator q(99);
  q.set_state(st);
  CHECK(q.uniform() == next);
  CHECK_THROWS_AS(p.below(0), ValueError);
  for (int i = 0; i < 100; ++i) REQUIRE(p.below(3) < 3);
}

TEST_CASE("printing with fmt shows shape, dtype and values, abbreviated when large") {
  std::string s = fmt::format("{}", tensor({1, 2, 3, 4}, Shape{2, 2}));
  CHECK(s == "Tensor(shape=[2, 2], dtype=float64, values=[[1, 2], [3, 4]])");
  CHECK(fmt::format("{}", scalar(0.5, Dtype::f32)) == "Tensor(shape=[], dtype=float32, values=0.5)");
  std::string big = fmt::format("{}", arange(100));
  CHECK(big == "Tensor(shape=[100], dtype=float64, values=[0, 1, 2, ..., 97, 98, 99])");
  CHECK(fmt::format("{}", Tensor{}) == "Tensor(undefined)");
  Tensor x = ones({1});
  x.requires_grad_();
  CHECK(fmt::format("{}", x).find("requires_grad") != std::string::npos);
  CHECK(fmt::format("{}", zeros({0, 2})) == "Tensor(shape=[0, 2], dtype=float64, values=[])");
}
