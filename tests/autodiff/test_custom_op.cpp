// The "write your own op" example of record.hpp, compiled from the header's own text
// (extracted by tests/CMakeLists.txt), checked like every built-in op: first and second
// derivatives against finite differences in float64.
#include <doctest/doctest.h>

#include "autodiff/ad_harness.hpp"
#include "hyperad/autodiff/record.hpp"
#include "hyperad/hyperad.hpp"
#include "record_example.inc"  // defines cube(x)

using namespace hyperad;

TEST_CASE("the header's custom op: values, first and second order against finite differences") {
  const Tensor x = tensor({-1.5, 0.25, 2.0});
  CHECK(cube(x).to_vector() == std::vector<double>{-3.375, 0.015625, 8.0});
  hyperad::testing::expect_ad("cube", [](const TensorList& in) { return cube(in[0]); }, {x});
  // The gradient of Σ cube(x) is 3x², and its derivative (second order through the rule) 6x.
  TapeScope scope;
  Tensor v = x.detach();
  v.requires_grad_();
  GradOptions o;
  o.create_graph = true;
  const Tensor g = grad(sum(cube(v)), {v}, o)[0];
  CHECK(g.to_vector() == std::vector<double>{6.75, 0.1875, 12.0});
  const Tensor h = grad(sum(g), {v})[0];
  CHECK(h.to_vector() == std::vector<double>{-9.0, 1.5, 12.0});
}
