// matmul(X, w) of a matrix and a vector defers its data; logistic_loss and mse_loss given
// that product as a temporary run the fused linear-model op. Checked: the fused path is
// taken exactly when it should be (its bits are linear_model_loss's, value and
// derivatives of every order), a deferred product reads as X·w whenever and wherever it is
// read, even after its operands are written, and every case that must keep the
// composition's graph does.
#include <thread>

#include "autodiff/ad_harness.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "thrown.hpp"

using namespace hyperad;
using hyperad::testing::rel_diff;
using hyperad::testing::values;

namespace {
Generator gen(4242);
Tensor pm1(std::int64_t n) { return sub(mul_scalar(greater(rand({n}, gen), full({}, 0.5)), 2.0), ones({})); }

struct Data {
  Tensor X, w, y, v;
};
// n × d above the deferral threshold (4096 elements) unless told otherwise.
Data data(LinearLoss loss, Dtype dtype, std::int64_t n = 300, std::int64_t d = 40) {
  const Tensor y = loss == LinearLoss::logistic ? pm1(n) : randn({n}, gen);
  return {randn({n, d}, gen).to(dtype), mul_scalar(randn({d}, gen), 0.2).to(dtype), y.to(dtype),
          randn({d}, gen).to(dtype)};
}

Tensor composed(LinearLoss loss, const Tensor& X, const Tensor& w, const Tensor& y, Reduction r) {
  return loss == LinearLoss::logistic ? logistic_loss(matmul(X, w), y, r) : mse_loss(matmul(X, w), y, r);
}

// The loss of a named product: the composition's graph, never fused.
Tensor named(LinearLoss loss, const Tensor& X, const Tensor& w, const Tensor& y, Reduction r) {
  const Tensor z = matmul(X, w);
  return loss == LinearLoss::logistic ? logistic_loss(z, y, r) : mse_loss(z, y, r);
}

// Value, gradient in (X, w, y) and the w-Hessian-vector product of f, flattened.
std::vector<double> derivatives(const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& f,
                                const Data& p) {
  const Tensor X = p.X.clone().requires_grad_(), w = p.w.clone().requires_grad_(), y = p.y.clone().requires_grad_();
  const Tensor l = f(X, w, y);
  const TensorList g = grad(sum(l), {X, w, y}, {.create_graph = true});
  const Tensor hv = grad(g[1], {w}, {.seed = p.v})[0];
  std::vector<double> out = values(l);
  for (const Tensor& t : {g[0], g[1], g[2], hv}) {
    const std::vector<double> v = values(t);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) num = std::max(num, std::abs(a[i] - b[i])), den = std::max(den, std::abs(b[i]));
  return num / den;
}
}  // namespace

TEST_CASE("the loss of matmul(X, w) as a temporary is the fused op: the same bits, every derivative") {
  for (Dtype dtype : {Dtype::f64, Dtype::f32})
    for (LinearLoss loss : {LinearLoss::logistic, LinearLoss::squared})
      for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
        INFO(linear_loss_name(loss) << ", " << dtype_name(dtype) << ", reduction " << static_cast<int>(r));
        const Data p = data(loss, dtype);
        const auto fused = [&](const Tensor& X, const Tensor& w, const Tensor& y) {
          return linear_model_loss(X, w, y, loss, r);
        };
        const std::uint64_t before = fused_linear_losses();
        const std::vector<double> c = derivatives([&](auto& X, auto& w, auto& y) { return composed(loss, X, w, y, r); }, p);
        CHECK(fused_linear_losses() == before + 1);
        CHECK(c == derivatives(fused, p));
        // ... and the composition's values to rounding (a named product is not fused).
        const std::vector<double> plain =
            derivatives([&](auto& X, auto& w, auto& y) { return named(loss, X, w, y, r); }, p);
        CHECK(fused_linear_losses() == before + 1);
        CHECK(max_rel(c, plain) < (dtype == Dtype::f64 ? 1e-12 : 1e-4));
      }
}

TEST_CASE("the fused composition records what the fused op records, and the same tape memory") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const Tensor w = p.w.clone().requires_grad_();
  const auto recorded = [&](auto f) {
    TapeScope scope;
    Tape& tape = Tape::current();
    const std::size_t records = tape.num_records(), bytes = tape.owned_bytes();
    const Tensor l = f();
    return std::pair{tape.num_records() - records, tape.owned_bytes() - bytes};
  };
  const auto fused = recorded([&] { return linear_model_loss(p.X, w, p.y, LinearLoss::logistic); });
  CHECK(fused.first == 1);
  CHECK(recorded([&] { return logistic_loss(matmul(p.X, w), p.y); }) == fused);
  // The composition proper records the product (a matmul and two reshapes) and the loss.
  CHECK(recorded([&] { return named(LinearLoss::logistic, p.X, w, p.y, Reduction::mean); }).first == 4);
}

TEST_CASE("a product moved into the loss is taken, and a tape scope opened in between keeps its records") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const Tensor w = p.w.clone().requires_grad_();
  Tape& tape = Tape::current();
  TapeScope outer;
  const std::size_t start = tape.num_records();
  Tensor z = matmul(p.X, w);
  const std::size_t with_product = tape.num_records();
  CHECK(with_product == start + 3);  // a reshape of w, the product, a reshape of it
  const std::uint64_t before = fused_linear_losses();
  {
    TapeScope inner;
    const Tensor l = logistic_loss(std::move(z), p.y);
    CHECK_FALSE(z.defined());  // moved from: the loss took the handle, variable and all
    CHECK_FALSE(z.requires_grad());
    CHECK(fused_linear_losses() == before + 1);
    CHECK(tape.num_records() == with_product + 1);  // the product's records stay below the scope
  }
  CHECK(tape.num_records() == with_product);
}

TEST_CASE("a named product keeps the composition's graph: its loss differentiates with respect to it") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const Tensor w = p.w.clone().requires_grad_();
  const Tensor z = matmul(p.X, w);
  const Tensor l = logistic_loss(z, p.y, Reduction::sum);
  // ∂/∂z Σ softplus(−y z) = −y σ(−y z)
  const Tensor expected = neg(mul(p.y, sigmoid(neg(mul(p.y, z)))));
  CHECK(rel_diff(grad(l, {z})[0], expected) < 1e-14);
}

TEST_CASE("a deferred product reads as X·w: when read, on any thread, after its operands are written") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const Tensor eager = matmul_t(p.X, reshape(p.w, Shape{p.w.size(0), 1}), false, false);
  const std::vector<double> expected = values(eager);
  {
    const Tensor z = matmul(p.X, p.w);
    CHECK(values(z) == expected);
  }
  {  // another thread reads it first
    const Tensor z = matmul(p.X, p.w);
    std::vector<double> seen;
    std::thread([&] { seen = values(z); }).join();
    CHECK(seen == expected);
    CHECK(values(z) == expected);
  }
  {  // written operands: the product is computed before the first write
    Tensor X = p.X.clone(), w = p.w.clone();
    const Tensor z = matmul(X, w);
    w.set({0}, 7.0);
    X.mutable_data<double>()[3] = -2.0;
    CHECK(values(z) == expected);
  }
  {  // an operand written by another thread, the product's thread still holding it
    Tensor w = p.w.clone();
    const Tensor z = matmul(p.X, w);
    std::thread([&] { w.set({1}, 3.0); }).join();
    CHECK(values(z) == expected);
  }
  {  // made on a thread that has ended, an operand written afterwards on this one
    Tensor X = p.X.clone();
    Tensor z;
    std::thread([&] { z = matmul(X, p.w); }).join();
    X.mutable_data<double>()[0] = 5.0;
    CHECK(values(z) == expected);
  }
  {  // two deferred products in a row (the second computes the first), read in the other order
    const Tensor w2 = mul_scalar(p.w, 2.0);
    const Tensor z1 = matmul(p.X, p.w);
    const Tensor z2 = matmul(p.X, w2);
    const std::vector<double> v2 = values(z2), v1 = values(z1);
    CHECK(v1 == expected);
    CHECK(rel_diff(z2, mul_scalar(eager, 2.0)) == 0.0);
  }
}

TEST_CASE("the composition stays when fusing would change it") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const std::uint64_t before = fused_linear_losses();
  SUBCASE("a small product is not deferred") {
    const Data s = data(LinearLoss::logistic, Dtype::f64, 60, 40);  // 2400 elements
    CHECK(values(logistic_loss(matmul(s.X, s.w), s.y)) == values(named(LinearLoss::logistic, s.X, s.w, s.y, Reduction::mean)));
  }
  SUBCASE("finite checks read every result: no deferral") {
    FiniteCheckGuard check;
    CHECK(values(logistic_loss(matmul(p.X, p.w), p.y)) == values(named(LinearLoss::logistic, p.X, p.w, p.y, Reduction::mean)));
  }
  SUBCASE("a product made unrecorded does not become differentiable in a recorded loss") {
    const Tensor w = p.w.clone().requires_grad_();
    Tensor z;
    {
      NoGradGuard off;
      z = matmul(p.X, w);
    }
    const Tensor l = logistic_loss(std::move(z), p.y);
    CHECK_FALSE(l.requires_grad());
    CHECK(values(l) == values(named(LinearLoss::logistic, p.X, p.w, p.y, Reduction::mean)));
  }
  SUBCASE("a recorded product and a loss made unrecorded") {
    const Tensor w = p.w.clone().requires_grad_();
    Tensor z = matmul(p.X, w);
    NoGradGuard off;
    const Tensor l = logistic_loss(std::move(z), p.y);
    CHECK_FALSE(l.requires_grad());
    CHECK(values(l) == values(named(LinearLoss::logistic, p.X, p.w, p.y, Reduction::mean)));
  }
  SUBCASE("a product already computed by another thread") {
    Tensor z = matmul(p.X, p.w);
    std::thread([z] { (void)values(z); }).join();
    const Tensor l = logistic_loss(std::move(z), p.y);
    CHECK(values(l) == values(named(LinearLoss::logistic, p.X, p.w, p.y, Reduction::mean)));
  }
  SUBCASE("a second handle to the product") {
    Tensor z = matmul(p.X, p.w);
    const Tensor kept = z;
    const Tensor l = logistic_loss(std::move(z), p.y);
    CHECK(values(l) == values(named(LinearLoss::logistic, p.X, p.w, p.y, Reduction::mean)));
    CHECK(values(kept) == values(matmul(p.X, p.w)));
  }
  SUBCASE("the same tensor as scores and labels") {
    Tensor z = matmul(p.X, p.w);
    const Tensor expected = logistic_loss(z, z);
    CHECK(values(logistic_loss(std::move(z), z)) == values(expected));
  }
  SUBCASE("a bad reduction: the loss's own error") {
    const std::string msg =
        testing::message_of<ValueError>([&] { logistic_loss(matmul(p.X, p.w), p.y, static_cast<Reduction>(7)); });
    CHECK(msg.find("logistic_loss") != std::string::npos);
  }
  SUBCASE("labels of another shape: the loss's own error") {
    const std::string msg = testing::message_of<ShapeError>([&] { logistic_loss(matmul(p.X, p.w), reshape(p.y, Shape{p.y.size(0), 1})); });
    CHECK(msg.find("logistic_loss") != std::string::npos);
    CHECK(msg.find("[300, 1]") != std::string::npos);
  }
  CHECK(fused_linear_losses() == before);
}
