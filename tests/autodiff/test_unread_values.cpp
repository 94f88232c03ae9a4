// gradient_of evaluates its function only for the gradient: the fused linear-model loss
// leaves its value (an exp and a log1p per example) to be computed when read, as do
// one-element elementwise ops of it (a penalty added). Checked: a gradient map computes no
// loss value, its gradient is the same bits as with the value computed, a value kept and
// read later (on any thread, after its inputs are written) is the eager value's bits, ops
// that read the value (log, a product, the finite check) get it, and a gradient
// differentiated again inside the first-order form is still right.
#include <functional>
#include <thread>

#include "autodiff/ad_harness.hpp"
#include "thrown.hpp"

using namespace hyperad;
using hyperad::testing::rel_diff;
using hyperad::testing::values;

namespace {
Generator gen(5151);

struct Data {
  Tensor X, w, y;
};
Data data(LinearLoss loss, Dtype dtype, std::int64_t n = 300, std::int64_t d = 40) {
  const Tensor labels = loss == LinearLoss::logistic
                            ? sub(mul_scalar(greater(rand({n}, gen), full({}, 0.5)), 2.0), ones({}))
                            : randn({n}, gen);
  return {randn({n, d}, gen).to(dtype), mul_scalar(randn({d}, gen), 0.2).to(dtype), labels.to(dtype)};
}

// The loss written fused or as the composition users write (which runs the fused op).
Tensor model_loss(bool fused, LinearLoss loss, const Data& p, const Tensor& w, Reduction r) {
  if (fused) return linear_model_loss(p.X, w, p.y, loss, r);
  return loss == LinearLoss::logistic ? logistic_loss(matmul(p.X, w), p.y, r) : mse_loss(matmul(p.X, w), p.y, r);
}

// ∇f at w computed outside gradient_of (value_and_grad computes the value).
Tensor eager_gradient(const std::function<Tensor(const TensorList&)>& f, const Tensor& w) {
  return value_and_grad(f, {w}).grads[0];
}
}  // namespace

TEST_CASE("gradient_of computes no loss value nobody reads, and the same gradient bits") {
  for (Dtype dtype : {Dtype::f64, Dtype::f32})
    for (LinearLoss loss : {LinearLoss::logistic, LinearLoss::squared})
      for (Reduction r : {Reduction::mean, Reduction::sum})
        for (bool fused : {true, false}) {
          INFO(std::string(linear_loss_name(loss)) << ", " << dtype_name(dtype) << ", reduction " << static_cast<int>(r)
                                      << (fused ? ", fused" : ", composed"));
          const Data p = data(loss, dtype);
          // L = ½·loss + ½‖w‖², negated twice: the elementwise ops of the value stay lazy.
          const auto f = [&](const TensorList& w) {
            const Tensor penalty = mul_scalar(sum(square(w[0])), 0.5);
            return neg(neg(add(mul_scalar(model_loss(fused, loss, p, w[0], r), 0.5), penalty)));
          };
          const Tensor eager = eager_gradient(f, p.w);
          const std::uint64_t before = linear_loss_values();
          // Unrecorded (an inner solve's step) and recorded (ITD's step, differentiable).
          const Tensor plain = gradient_of(f, {p.w})[0];
          CHECK(linear_loss_values() == before);
          const Tensor recorded = gradient_of(f, {p.w.clone().requires_grad_()})[0];
          CHECK(linear_loss_values() == before);
          CHECK(recorded.requires_grad());
          CHECK(values(plain) == values(eager));
          CHECK(values(recorded) == values(eager));
          // Outside gradient_of the value is computed as always.
          (void)model_loss(fused, loss, p, p.w.clone().requires_grad_(), r);
          CHECK(linear_loss_values() == before + 1);
        }
}

TEST_CASE("with X a CSR matrix too") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  const Tensor dense = mul(p.X, greater(rand(p.X.shape(), gen), full({}, 0.7)));  // ~30 % non-zeros
  const CsrMatrix X = CsrMatrix::from_dense(dense);
  const auto f = [&](const TensorList& w) {
    return add(linear_model_loss(X, w[0], p.y, LinearLoss::logistic), mul_scalar(sum(square(w[0])), 0.5));
  };
  const Tensor eager = eager_gradient(f, p.w);
  const std::uint64_t before = linear_loss_values();
  CHECK(values(gradient_of(f, {p.w})[0]) == values(eager));
  CHECK(values(gradient_of(f, {p.w.clone().requires_grad_()})[0]) == values(eager));
  CHECK(linear_loss_values() == before);
}

TEST_CASE("a value kept and read later is the eager value's bits: on another thread, after its labels change") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  Tensor y = p.y.clone();
  Tensor kept_loss, kept_total;
  const auto f = [&](const TensorList& w) {
    kept_loss = linear_model_loss(p.X, w[0], y, LinearLoss::logistic);
    kept_total = add(kept_loss, sum(square(w[0])));
    return kept_total;
  };
  const double loss0 = linear_model_loss(p.X, p.w, y, LinearLoss::logistic).item();
  const double total0 = add(full({}, loss0), sum(square(p.w))).item();
  const std::uint64_t before = linear_loss_values();
  (void)gradient_of(f, {p.w});
  CHECK(linear_loss_values() == before);
  double seen = 0;
  std::thread([&] { seen = kept_total.item(); }).join();  // computes the loss inside, on that thread
  CHECK(seen == total0);
  CHECK(kept_loss.item() == loss0);
  CHECK(linear_loss_values() == before);  // counted on the reading thread

  // Two threads reading it at once: one computes it (each thread counts what it computes),
  // both see its bits.
  (void)gradient_of(f, {p.w});
  double seen_a = 0, seen_b = 0;
  std::uint64_t computed_a = 0, computed_b = 0;
  const auto reader = [&](double& seen, std::uint64_t& computed) {
    const std::uint64_t mine = linear_loss_values();
    seen = kept_total.item();
    computed = linear_loss_values() - mine;
  };
  std::thread ta(reader, std::ref(seen_a), std::ref(computed_a)), tb(reader, std::ref(seen_b), std::ref(computed_b));
  ta.join(), tb.join();
  CHECK(seen_a == total0);
  CHECK(seen_b == total0);
  CHECK(computed_a + computed_b == 1);
  CHECK(kept_loss.item() == loss0);

  // Writing the labels in place first computes the pending value with the old labels.
  (void)gradient_of(f, {p.w});
  y.set({0}, -y.at({0}));
  CHECK(kept_loss.item() == loss0);
  CHECK(kept_total.item() == total0);
  CHECK(linear_loss_values() == before + 1);
}

TEST_CASE("ops that read the value get it: nonlinear functions of the loss, the finite check") {
  const Data p = data(LinearLoss::logistic, Dtype::f64);
  // log and the product save the value for their backward rules: it is computed then.
  const auto f = [&](const TensorList& w) {
    const Tensor l = linear_model_loss(p.X, w[0], p.y, LinearLoss::logistic);
    return add(log(l), mul(l, l));
  };
  const std::uint64_t before = linear_loss_values();
  const Tensor g = gradient_of(f, {p.w})[0];
  CHECK(linear_loss_values() == before + 1);
  CHECK(values(g) == values(eager_gradient(f, p.w)));
  // Against the composition's own graph (a named product is not fused), to rounding.
  CHECK(rel_diff(g, eager_gradient(
                        [&](const TensorList& w) {
                          const Tensor z = matmul(p.X, w[0]), l = logistic_loss(z, p.y);
                          return add(log(l), mul(l, l));
                        },
                        p.w)) < 1e-13);

  // A one-element value mixed with a larger tensor, or of another dtype, is computed (or
  // refused) as before.
  const auto broadcast = [&](const TensorList& w) {
    return sum(mul(linear_model_loss(p.X, w[0], p.y, LinearLoss::logistic), w[0]));
  };
  CHECK(values(gradient_of(broadcast, {p.w})[0]) == values(eager_gradient(broadcast, p.w)));
  const std::string dtype_msg = testing::message_of<DtypeError>([&] {
    (void)gradient_of([&](const TensorList& w) { return add(linear_model_loss(p.X, w[0], p.y, LinearLoss::logistic), full({}, 1.0).to(Dtype::f32)); },
                      {p.w});
  });
  CHECK(dtype_msg.find("add") != std::string::npos);

  // The finite check reads every result: an overflowing float32 loss is reported by its
  // own name (without the check reading the value, the first non-finite result would be
  // the gradient's).
  Data big = data(LinearLoss::squared, Dtype::f32);
  big.X = mul_scalar(big.X, 1e19);
  const auto squared = [&](const TensorList& w) {
    return linear_model_loss(big.X, w[0], big.y, LinearLoss::squared, Reduction::sum);
  };
  CHECK(std::isfinite(values(gradient_of(squared, {big.w})[0])[0]) == false);  // the check is off
  FiniteCheckGuard check;
  const std::string msg = testing::message_of<NonFiniteError>([&] { (void)gradient_of(squared, {big.w}); });
  CHECK(msg.find("linear_model_loss") != std::string::npos);
}

TEST_CASE("a gradient differentiated again inside gradient_of's first-order form is right") {
  // f(w) = ½‖∇L(w)‖²: its gradient is ∇²L·∇L, through the gradient op's Hessian-vector
  // product, whose ℓ'' the first-order form did not keep (it is recomputed from Xw).
  for (LinearLoss loss : {LinearLoss::logistic, LinearLoss::squared}) {
    INFO(std::string(linear_loss_name(loss)));
    const Data p = data(loss, Dtype::f64);
    const auto f = [&](const TensorList& w) {
      const Tensor g = grad(linear_model_loss(p.X, w[0], p.y, loss), {w[0]}, {.create_graph = true})[0];
      return mul_scalar(sum(square(g)), 0.5);
    };
    const Tensor inside = gradient_of(f, {p.w})[0];
    const Tensor outside = eager_gradient(f, p.w);
    CHECK(rel_diff(inside, outside) < 1e-14);
    // The closed form ∇²L·∇L from the ops themselves.
    const Tensor g = linear_model_grad(p.X, p.w, p.y, loss);
    CHECK(rel_diff(inside, linear_model_hvp(p.X, p.w, p.y, g, loss)) < 1e-14);
  }
}

TEST_CASE("lazy values are made only inside gradient_of, in chains of at most kMaxLazyDepth") {
  const Data p = data(LinearLoss::logistic, Dtype::f64, 200, 30);
  // A sum over 20 row blocks ("tasks"), kept for reading afterwards.
  const int tasks = 20;
  std::vector<Tensor> Xs, ys;
  for (int k = 0; k < tasks; ++k) {
    Xs.push_back(mul_scalar(p.X, 1.0 + 0.05 * k));
    ys.push_back(p.y);
  }
  Tensor total;
  const auto f = [&](const TensorList& w) {
    total = linear_model_loss(Xs[0], w[0], ys[0], LinearLoss::logistic);
    for (int k = 1; k < tasks; ++k) total = add(total, linear_model_loss(Xs[k], w[0], ys[k], LinearLoss::logistic));
    return total;
  };
  double eager = linear_model_loss(Xs[0], p.w, ys[0], LinearLoss::logistic).item();
  for (int k = 1; k < tasks; ++k)
    eager = add(full({}, eager), linear_model_loss(Xs[k], p.w, ys[k], LinearLoss::logistic)).item();
  const std::uint64_t before = linear_loss_values();
  const Tensor g = gradient_of(f, {p.w})[0];
  // An add whose operand ends a chain of kMaxLazyDepth = 8 links computes it instead: at
  // the 9th loss (losses 1–9 computed) and the 17th (10–17); the last 3 stay lazy.
  CHECK(linear_loss_values() - before == 17);
  CHECK(total.item() == eager);
  CHECK(linear_loss_values() - before == 20);
  CHECK(values(g) == values(eager_gradient(f, p.w)));

  // Outside gradient_of an op of a kept lazy value computes it.
  (void)gradient_of(f, {p.w});
  const std::uint64_t kept = linear_loss_values();
  const Tensor shifted = add(total.detach(), full({}, 1.0));  // detached: its tape scope is gone
  CHECK(linear_loss_values() == kept + 3);
  CHECK(shifted.item() == add(full({}, eager), full({}, 1.0)).item());
}
