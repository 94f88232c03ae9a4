// checkpointed_loop: every policy against the fully recorded loop, recomputation counts
// against Griewank's optimum, memory, repeated backward, refusals and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hyperad/hyperad.hpp"

using namespace hyperad;
using V = TensorList;

namespace {
// Heavy-ball gradient descent on a perturbed quadratic, a two-tensor state (x, v):
// v' = 0.9 v - eta (A x - b + 0.1 sin x), x' = x + v'. Params: A, b, eta.
V heavy_ball(const V& w, const V& p) {
  Tensor v = 0.9 * w[1] - p[2] * (matmul(p[0], w[0]) - p[1] + 0.1 * sin(w[0]));
  return {w[0] + v, v};
}

struct Problem {
  Tensor A, b, eta, x0, v0, c;
};

Problem make_problem() {
  Generator g(99);
  Problem P;
  Tensor M = randn({4, 4}, g);
  P.A = add(matmul(transpose(M), M) * 0.25, eye(4));
  P.b = randn({4}, g);
  P.eta = scalar(0.1);
  P.x0 = randn({4}, g);
  P.v0 = randn({4}, g) * 0.1;
  P.c = randn({4}, g);
  return P;
}

// Gradients of L(x_n, v_n) = <c, x_n> + |v_n|^2 w.r.t. (x0, v0, A, b, eta), the loop run
// by `loop` (which returns (x_n, v_n)).
template <class Loop>
V loss_grads(const Problem& P, Loop&& loop) {
  TapeScope scope;
  V in{P.x0.detach(), P.v0.detach(), P.A.detach(), P.b.detach(), P.eta.detach()};
  for (Tensor& t : in) t.requires_grad_();
  V out = loop(V{in[0], in[1]}, V{in[2], in[3], in[4]});
  Tensor L = sum(P.c * out[0]) + squared_norm(out[1]) + 0.5 * sum(in[3] * in[3]);  // b also used outside
  return grad(L, in);
}

V recorded_loop(const V& w0, const V& p, int n) {
  V w = w0;
  for (int i = 0; i < n; ++i) w = heavy_ball(w, p);
  return w;
}

double rel_err(const Tensor& got, const Tensor& want) {
  std::vector<double> a = got.to_vector(), b = want.to_vector();
  double e = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    e = std::max(e, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return e / s;
}

// p(l, s) by its recursion (Griewank): the optimum over the first advance j.
std::int64_t brute_cost(int l, int s, std::vector<std::vector<std::int64_t>>& memo) {
  if (l <= 1) return 0;
  if (s == 1) return std::int64_t(l) * (l - 1) / 2;
  std::int64_t& m = memo[l][s];
  if (m >= 0) return m;
  m = INT64_MAX;
  for (int j = 1; j < l; ++j) m = std::min(m, j + brute_cost(l - j, s - 1, memo) + brute_cost(j, s, memo));
  return m;
}
}  // namespace

TEST_CASE("every policy reproduces the fully recorded loop to 1e-12") {
  Problem P = make_problem();
  const int n = 23;
  V want = loss_grads(P, [&](const V& w0, const V& p) { return recorded_loop(w0, p, n); });
  const std::vector<CheckpointPolicy> policies{
      CheckpointPolicy::store_all(), CheckpointPolicy::every_k(1),  CheckpointPolicy::every_k(3),
      CheckpointPolicy::every_k(7), CheckpointPolicy::every_k(40), CheckpointPolicy::binomial(1),
      CheckpointPolicy::binomial(2), CheckpointPolicy::binomial(3), CheckpointPolicy::binomial(5),
      CheckpointPolicy::binomial(22), CheckpointPolicy::binomial(30)};
  for (const CheckpointPolicy& pol : policies) {
    INFO(pol.str());
    CheckpointStats st;
    V got = loss_grads(P, [&](const V& w0, const V& p) {
      V out = checkpointed_loop(heavy_ball, w0, p, n, pol, &st);
      // The value is the loop's value, bit for bit.
      V ref = recorded_loop(V{w0[0].detach(), w0[1].detach()}, V{p[0].detach(), p[1].detach(), p[2].detach()}, n);
      CHECK(out[0].to_vector() == ref[0].to_vector());
      return out;
    });
    for (std::size_t i = 0; i < want.size(); ++i) CHECK_MESSAGE(rel_err(got[i], want[i]) <= 1e-12, "input " << i);
    CHECK(st->taped_steps == n);
    CHECK(st->forward_steps == n);
    CHECK(st->backward_calls == 1);
  }
}

TEST_CASE("binomial recomputations equal Griewank's optimum; every_k and store_all counts") {
  // The closed form against the recursion it solves.
  std::vector<std::vector<std::int64_t>> memo(81, std::vector<std::int64_t>(8, -1));
  for (int l = 1; l <= 80; ++l)
    for (int s = 1; s <= 7; ++s) {
      INFO("l = " << l << ", s = " << s);
      REQUIRE(binomial_checkpoint_cost(l, s) == brute_cost(l, s, memo));
    }
  CHECK(binomial_checkpoint_cost(10000, 100) == 3 * 10000 - 5253);  // t = 3: 3n - C(103, 2)
  CHECK(binomial_checkpoint_cost(50, 1) == 50 * 49 / 2);

  // A cheap scalar loop; the schedule's counts on several (n, s) pairs.
  auto step = [](const V& w, const V& p) { return V{0.5 * sin(w[0]) + p[0]}; };
  Tensor lam = scalar(0.3);
  lam.requires_grad_();
  const std::vector<std::pair<int, int>> pairs{{1, 1}, {2, 1}, {10, 1}, {10, 2},  {23, 3},  {50, 4},
                                               {64, 6}, {100, 5}, {120, 3}, {100, 10}, {7, 6}, {7, 7}};
  for (auto [n, s] : pairs) {
    INFO("n = " << n << ", s = " << s);
    TapeScope scope;
    CheckpointStats st;
    Tensor w = checkpointed_loop(step, {scalar(0.1)}, {lam}, n, CheckpointPolicy::binomial(s), &st)[0];
    grad(w, {lam});
    // The forward pass is revolve's first sweep (n - 1 advances) plus the step to w_n.
    CHECK(st->forward_steps - 1 + st->recomputed_steps == binomial_checkpoint_cost(n, s));
    CHECK(st->taped_steps == n);
    CHECK(st->peak_stored_states <= s + 1);  // s snapshots plus the final state w_{n-1}
  }

  TapeScope scope;
  CheckpointStats st;
  Tensor w = checkpointed_loop(step, {scalar(0.1)}, {lam}, 23, CheckpointPolicy::every_k(5), &st)[0];
  grad(w, {lam});
  CHECK(st->recomputed_steps == 4 * 4);  // segments [0,5) .. [15,20) recomputed, [20,23) kept
  // Forward: w0, w5, w10, w15 and w20..w22 (7); reversing [15, 20): w0, w5, w10 + 5 buffered.
  CHECK(st->peak_stored_states == 8);
  CHECK(st->peak_stored_bytes == 8 * sizeof(double));
  Tensor w2 = checkpointed_loop(step, {scalar(0.1)}, {lam}, 23, CheckpointPolicy::store_all(), &st)[0];
  grad(w2, {lam});
  CHECK(st->recomputed_steps == 0);
  CHECK(st->peak_stored_states == 23);
}

TEST_CASE("the tape holds one record; peak tape memory of the backward is one step") {
  Problem P = make_problem();
  const int n = 200;
  Tape& tape = Tape::current();
  std::size_t full_peak, ckpt_peak;
  {
    TapeScope scope;
    Tensor A = P.A.detach();
    A.requires_grad_();
    tape.reset_peak_memory();
    const std::size_t base = tape.memory_bytes();
    V w = recorded_loop({P.x0, P.v0}, {A, P.b, P.eta}, n);
    grad(sum(w[0]), {A});
    full_peak = tape.peak_memory_bytes() - base;
  }
  {
    TapeScope scope;
    Tensor A = P.A.detach();
    A.requires_grad_();
    tape.reset_peak_memory();
    const std::size_t base = tape.memory_bytes(), records = tape.num_records();
    V w = checkpointed_loop(heavy_ball, {P.x0, P.v0}, {A, P.b, P.eta}, n, CheckpointPolicy::binomial(15));
    CHECK(tape.num_records() == records + 1);
    Tensor L = sum(w[0]);
    grad(L, {A});
    CHECK(tape.num_records() == records + 2);  // the backward's step recordings were rewound
    ckpt_peak = tape.peak_memory_bytes() - base;
  }
  CHECK(ckpt_peak * 50 < full_peak);
  // Nothing requires gradients: a plain loop, nothing recorded.
  TapeScope scope;
  const std::size_t before = tape.num_records();
  CheckpointStats st;
  V w = checkpointed_loop(heavy_ball, {P.x0, P.v0}, {P.A, P.b, P.eta}, 5, CheckpointPolicy::binomial(2), &st);
  CHECK(tape.num_records() == before);
  CHECK(st->peak_stored_states == 0);
}

TEST_CASE("repeated backward replays the forward pass; composition; n_steps = 0") {
  TapeScope scope;
  auto step = [](const V& w, const V& p) { return V{w[0] * p[0] + 1.0}; };  // w_n = a^n w0 + (a^n - 1)/(a - 1)
  Tensor a = scalar(0.9), w0 = scalar(2.0);
  a.requires_grad_();
  w0.requires_grad_();
  CheckpointStats st;
  Tensor w = checkpointed_loop(step, {w0}, {a}, 10, CheckpointPolicy::binomial(3), &st)[0];
  V g1 = grad(w, {w0, a});
  CHECK(g1[0].item() == doctest::Approx(std::pow(0.9, 10)).epsilon(1e-14));
  const std::int64_t first = st->recomputed_steps;
  V g2 = grad(w, {w0, a});
  CHECK(st->backward_calls == 2);
  CHECK(st->recomputed_steps == first + 9);  // the states were released; replayed to w_9
  CHECK(g2[0].item() == g1[0].item());
  CHECK(g2[1].item() == g1[1].item());
  // d/da of a^n w0 + sum_{k<n} a^k at a = 0.9.
  double da = 10 * std::pow(0.9, 9) * 2.0;
  for (int k = 1; k < 10; ++k) da += k * std::pow(0.9, k - 1);
  CHECK(g1[1].item() == doctest::Approx(da).epsilon(1e-13));

  // Inside a bigger model: the loop's output feeds another loop and a loss.
  Tensor mid = checkpointed_loop(step, {w0 * 0.5}, {a}, 4, CheckpointPolicy::every_k(2))[0];
  Tensor end = checkpointed_loop(step, {mid}, {a * a}, 3, CheckpointPolicy::binomial(2))[0];
  Tensor ref = w0 * 0.5;
  for (int i = 0; i < 4; ++i) ref = ref * a + 1.0;
  Tensor a2 = a * a;
  for (int i = 0; i < 3; ++i) ref = ref * a2 + 1.0;
  V gc = grad(end * end, {w0, a}), gr = grad(ref * ref, {w0, a});
  CHECK(gc[0].item() == doctest::Approx(gr[0].item()).epsilon(1e-13));
  CHECK(gc[1].item() == doctest::Approx(gr[1].item()).epsilon(1e-13));

  // Zero steps: the identity.
  Tensor same = checkpointed_loop(step, {w0}, {a}, 0, CheckpointPolicy::binomial(2))[0];
  CHECK(grad(same * 3.0, {w0})[0].item() == 3.0);
}

TEST_CASE("refusals and errors") {
  TapeScope scope;
  auto step = [](const V& w, const V& p) { return V{sin(w[0]) * p[0]}; };
  Tensor a = scalar(0.7), w0 = scalar(1.0);
  a.requires_grad_();
  Tensor w = checkpointed_loop(step, {w0}, {a}, 5, CheckpointPolicy::binomial(2))[0];
  GradOptions co;
  co.create_graph = true;
  CHECK_THROWS_WITH_AS(grad(w, {a}, co),
                       doctest::Contains("second-order differentiation through checkpointed_loop is not supported"),
                       TapeError);
  CHECK_THROWS_WITH_AS(checkpointed_loop(step, {w0}, {a}, -1), doctest::Contains("n_steps must be >= 0, got -1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(checkpointed_loop(step, {w0}, {a}, 3, CheckpointPolicy::every_k(0)),
                       doctest::Contains("policy every_k(0) needs a segment length k >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(checkpointed_loop(step, {w0}, {a}, 3, CheckpointPolicy::binomial(0)),
                       doctest::Contains("policy binomial(0) needs a number of snapshots >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(checkpointed_loop(step, V{}, {a}, 3), doctest::Contains("initial state has no tensors"),
                       ValueError);
  auto wrong = [](const V&, const V&) { return V{zeros({2})}; };
  CHECK_THROWS_WITH_AS(checkpointed_loop(wrong, {w0}, {a}, 3),
                       doctest::Contains("the step returned float64 [2] for state tensor 0 of float64 [] (step 0)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(binomial_checkpoint_cost(0, 3), doctest::Contains("need n_steps >= 1"), ValueError);
  // The initial state overwritten before the backward pass.
  Tensor s0 = tensor({1.0, 2.0});
  Tensor out = checkpointed_loop(step, {s0}, {a}, 4, CheckpointPolicy::every_k(2))[0];
  s0.set({0}, 5.0);
  CHECK_THROWS_WITH_AS(grad(sum(out), {a}), doctest::Contains("initial state tensor 0 (shape [2]) was modified in place"),
                       TapeError);
}
