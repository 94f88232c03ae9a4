// The README demo: a small MLP classifier written in hyperad's DSL, its gradient (first
// and second order) checked against finite differences, then trained by gradient descent
// on synthetic two-moons-like data. Exit status 0 only if every check passes and the loss
// falls — so the demo is also a smoke test.
#include <cstdio>

#include "hyperad/hyperad.hpp"

using namespace hyperad;

namespace {

struct Data {
  Tensor x;                          // [n, 2]
  std::vector<std::int64_t> labels;  // n labels in {0, 1}
};

// Two interleaved noisy arcs: not linearly separable, so the hidden layer matters.
Data make_data(std::int64_t n, Generator& gen) {
  std::vector<double> xs;
  Data d;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = i % 2;
    const double t = 3.14159265358979 * gen.uniform();
    const double px = c ? 1.0 - std::cos(t) : std::cos(t), py = c ? 0.5 - std::sin(t) : std::sin(t);
    xs.push_back(px + 0.1 * gen.normal());
    xs.push_back(py + 0.1 * gen.normal());
    d.labels.push_back(c);
  }
  d.x = tensor(xs, Shape{n, 2});
  return d;
}

// params = {W1 [2,h], b1 [h], W2 [h,2], b2 [2]}
Tensor loss(const TensorList& p, const Data& d) {
  Tensor hidden = tanh(matmul(d.x, p[0]) + p[1]);
  return cross_entropy(matmul(hidden, p[2]) + p[3], d.labels);
}

double accuracy(const TensorList& p, const Data& d) {
  NoGradGuard off;
  Tensor logits = matmul(tanh(matmul(d.x, p[0]) + p[1]), p[2]) + p[3];
  std::vector<std::int64_t> pred = argmax(logits, 1);
  std::size_t ok = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) ok += pred[i] == d.labels[i];
  return static_cast<double>(ok) / static_cast<double>(pred.size());
}

}  // namespace

int main() {
  Generator gen(7);
  Data train = make_data(400, gen), check_data = make_data(12, gen);
  const std::int64_t h = 16;
  TensorList params{randn({2, h}, gen) * 0.5, zeros({h}), randn({h, 2}, gen) * 0.5, zeros({2})};

  fmt::print("hyperad demo: a 2-{}-2 tanh MLP, cross-entropy, {} training points\n\n", h, train.labels.size());

  // 1. Check the gradient against finite differences before trusting it.
  TensorFn f = [&](const TensorList& p) { return loss(p, check_data); };
  CheckReport first = check_gradient(f, params);
  CheckReport second = check_second_order(f, params);
  fmt::print("gradient vs central finite differences:     {} (max rel. error {:.2e})\n", first.ok ? "ok" : "FAILED",
             first.max_rel_error);
  fmt::print("second order (Hessian of a random projection): {} (max rel. error {:.2e})\n",
             second.ok ? "ok" : "FAILED", second.max_rel_error);
  if (!first.ok || !second.ok) {
    fmt::print("{}\n{}\n", first.message, second.message);
    return 1;
  }

  // 2. Train by plain gradient descent; each step records the loss in a scope.
  const double lr = 0.5;
  double first_loss = 0.0, last_loss = 0.0;
  fmt::print("\n{:>6}  {:>10}  {:>9}\n", "step", "loss", "accuracy");
  for (int step = 0; step <= 300; ++step) {
    ValueAndGrad vg = value_and_grad([&](const TensorList& p) { return loss(p, train); }, params);
    if (step == 0) first_loss = vg.value.item();
    last_loss = vg.value.item();
    if (step % 50 == 0) fmt::print("{:>6}  {:>10.5f}  {:>8.1f}%\n", step, last_loss, 100.0 * accuracy(params, train));
    for (std::size_t k = 0; k < params.size(); ++k) params[k] = params[k] - lr * vg.grads[k];
  }
  const bool improved = last_loss < 0.5 * first_loss;
  fmt::print("\nloss {:.4f} -> {:.4f}: {}\n", first_loss, last_loss, improved ? "trained" : "did NOT improve");
  return improved ? 0 : 1;
}
