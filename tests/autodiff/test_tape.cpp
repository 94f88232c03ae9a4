// The tape: what is recorded, scopes, guards, misuse errors, threads, memory.
#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::values;

namespace {
// A user-defined op (the record.hpp API): y = 2x, counting how often its backward runs.
int twice_backward_calls = 0;
Tensor twice(const Tensor& x) {
  static const OpDef def{"twice", [](Backward& b) {
                           ++twice_backward_calls;
                           b.accumulate(0, mul_scalar(b.grad_out(), 2.0));
                         }};
  Tensor y;
  {
    NoGradGuard off;
    y = mul_scalar(x, 2.0);
  }
  return record(def, std::move(y), {&x});
}
}  // namespace

TEST_CASE("only ops with an input that requires gradients are recorded") {
  TapeScope scope;
  Tape& tape = Tape::current();
  std::size_t n0 = tape.num_records();
  Tensor a = ones({3}), b = ones({3});
  Tensor c = exp(a * b + 1.0);
  CHECK(tape.num_records() == n0);
  CHECK_FALSE(c.requires_grad());
  a.requires_grad_();
  Tensor d = exp(a * b + 1.0);
  CHECK(tape.num_records() == n0 + 3);
  CHECK(d.requires_grad());
  {
    NoGradGuard off;
    Tensor e = exp(a * b);
    CHECK_FALSE(e.requires_grad());
    CHECK(tape.num_records() == n0 + 3);
    EnableGradGuard on;
    CHECK(exp(a).requires_grad());
  }
}

TEST_CASE("scopes rewind the tape, also when an exception flies, and nest") {
  Tape& tape = Tape::current();
  std::size_t n0 = tape.num_records(), v0 = tape.num_variables();
  Tensor x = ones({2});
  {
    TapeScope outer;
    x.requires_grad_();
    Tensor y = x * x;
    {
      TapeScope inner;
      Tensor z = exp(y);
      CHECK(tape.num_records() == n0 + 2);
    }
    CHECK(tape.num_records() == n0 + 1);
    CHECK(values(grad(sum(y), {x})[0]) == std::vector<double>{2, 2});
    try {
      TapeScope failing;
      Tensor w = exp(y);
      (void)add(w, ones({5}));  // throws ShapeError
      FAIL("no exception");
    } catch (const ShapeError&) {
    }
    CHECK(tape.num_records() == n0 + 2);  // y*y... sum(y) stayed, the failing scope's exp did not
  }
  CHECK(tape.num_records() == n0);
  CHECK(tape.num_variables() == v0);
}

TEST_CASE("gradients of rewound or untracked tensors are clear errors") {
  Tensor kept, leaf;
  {
    TapeScope scope;
    leaf = ones({2});
    leaf.requires_grad_();
    kept = leaf * 3.0;
  }
  CHECK_THROWS_WITH_AS(grad(sum(kept), {leaf}), doctest::Contains("rewound"), TapeError);
  CHECK_THROWS_WITH_AS((void)exp(kept), doctest::Contains("exp: the first input was recorded in a tape scope that has been rewound"),
                       TapeError);
  CHECK(values(exp(kept.detach())).size() == 2);  // detach() makes it a constant

  TapeScope scope;
  Tensor x = ones({2}), y = ones({2});
  x.requires_grad_();
  Tensor out = sum(x * y);
  CHECK_THROWS_WITH_AS(grad(out, {y}), doctest::Contains("input 0 (shape [2]) is not on the tape"), TapeError);
  Tensor z = ones({3});
  z.requires_grad_();
  CHECK_THROWS_WITH_AS(grad(out, {z}), doctest::Contains("does not depend on input 0 (shape [3])"), TapeError);
  GradOptions unused;
  unused.allow_unused = true;
  CHECK(values(grad(out, {x, z}, unused)[1]) == std::vector<double>{0, 0, 0});
  CHECK_THROWS_WITH_AS(grad(x * 2.0, {x}), doctest::Contains("a seed (cotangent) of that shape is needed"), ShapeError);
  GradOptions bad_seed;
  bad_seed.seed = ones({3});
  CHECK_THROWS_WITH_AS(grad(x * 2.0, {x}, bad_seed), doctest::Contains("seed float64 [3] does not match output float64 [2]"),
                       ShapeError);
  GradOptions seed;
  seed.seed = tensor({1.0, -1.0});
  CHECK(values(grad(x * 2.0, {x}, seed)[0]) == std::vector<double>{2, -2});
}

TEST_CASE("modifying a tensor saved for backward is detected") {
  TapeScope scope;
  Tensor a = tensor({1.0, 2.0}), b = tensor({3.0, 4.0});
  a.requires_grad_();
  Tensor y = sum(a * b);
  b.set({0}, 10.0);
  CHECK_THROWS_WITH_AS(grad(y, {a}), doctest::Contains("backward of 'mul': a tensor of shape [2] saved for the backward pass was modified in place"),
                       TapeError);
}

TEST_CASE("finite checking names the first op producing NaN or Inf, forward or backward") {
  TapeScope scope;
  FiniteCheckGuard check;
  Tensor x = tensor({-1.0, 1.0});
  CHECK_THROWS_WITH_AS(log(x), doctest::Contains("log: non-finite value"), NonFiniteError);
  Tensor z = tensor({0.0, 4.0});
  z.requires_grad_();
  Tensor s = sum(sqrt(z));  // forward finite; d sqrt at 0 is Inf
  CHECK_THROWS_WITH_AS(grad(s, {z}), doctest::Contains("backward of 'sqrt'"), NonFiniteError);
  {
    FiniteCheckGuard off(false);
    CHECK(std::isnan(log(x).at({0})));
  }
}

TEST_CASE("the reverse sweep skips records no adjoint reaches and needs no recursion") {
  TapeScope scope;
  Tensor x = tensor({1.0, 2.0});
  x.requires_grad_();
  Tensor unrelated = twice(x);  // recorded, but the output below does not use it
  Tensor y = sum(exp(x));
  twice_backward_calls = 0;
  (void)grad(y, {x});
  CHECK(twice_backward_calls == 0);
  (void)grad(sum(twice(x) * x), {x});
  CHECK(twice_backward_calls == 1);
  (void)unrelated;

  // A 200,000-op chain (a long unrolled loop) is differentiated without stack growth.
  Tensor w = scalar(0.5);
  w.requires_grad_();
  Tensor v = w;
  for (int i = 0; i < 200000; ++i) v = v * 0.99999 + 1e-6;
  double g = grad(v, {w})[0].item();
  CHECK(g == doctest::Approx(std::pow(0.99999, 200000)).epsilon(1e-9));
}

TEST_CASE("tape memory is reported and released by scopes") {
  Tape& tape = Tape::current();
  std::size_t m0 = tape.memory_bytes();
  tape.reset_peak_memory();
  {
    TapeScope scope;
    Tensor x = ones({1000});
    x.requires_grad_();
    Tensor y = x * x;  // saves x twice: one storage, counted once
    CHECK(tape.memory_bytes() == m0 + Tape::record_bytes() + 8000);
    Tensor z = y * x;  // saves y (new) and x (already held)
    CHECK(tape.memory_bytes() == m0 + 2 * Tape::record_bytes() + 16000);
  }
  CHECK(tape.memory_bytes() == m0);
  CHECK(tape.peak_memory_bytes() == m0 + 2 * Tape::record_bytes() + 16000);
}

TEST_CASE("tape memory: tensors created since the mark are owned, older ones referenced") {
  Tape& tape = Tape::current();
  Tensor data = ones({1000}).requires_grad_();  // before the mark: the tape will only point to it
  tape.reset_peak_memory();
  const std::size_t owned0 = tape.owned_bytes(), ref0 = tape.referenced_bytes();
  const std::size_t rec = Tape::record_bytes();
  {
    TapeScope scope;
    Tensor x = ones({1000});  // after the mark
    x.requires_grad_();
    Tensor y = x * data;  // saves x (owned) and data (referenced)
    CHECK(tape.owned_bytes() == owned0 + rec + 8000);
    CHECK(tape.referenced_bytes() == ref0 + 8000);
    Tensor z = y * data;  // saves y (owned); data is held already
    CHECK(tape.owned_bytes() == owned0 + 2 * rec + 16000);
    CHECK(tape.referenced_bytes() == ref0 + 8000);
    CHECK(tape.memory_bytes() == tape.owned_bytes() + tape.referenced_bytes());
    // A new mark: saved tensors keep their class; z, created before it and saved now for
    // the first time, is referenced.
    tape.reset_peak_memory();
    Tensor u = z * x;
    CHECK(tape.owned_bytes() == owned0 + 3 * rec + 16000);
    CHECK(tape.referenced_bytes() == ref0 + 16000);
  }
  CHECK(tape.owned_bytes() == owned0);
  CHECK(tape.referenced_bytes() == ref0);
  CHECK(tape.peak_owned_bytes() == owned0 + 3 * rec + 16000);
  CHECK(tape.peak_referenced_bytes() == ref0 + 16000);
}

TEST_CASE("a product with a constant factor does not keep the other factor alive") {
  Tape& tape = Tape::current();
  const Tensor a = full({1000}, 0.5);  // constant
  const std::size_t m0 = tape.memory_bytes();
  TapeScope scope;
  Tensor x = ones({1000}).requires_grad_();
  Tensor y = x * a;  // only a is saved: x's gradient needs a, a needs none
  CHECK(tape.memory_bytes() == m0 + Tape::record_bytes() + 8000);
  Tensor z = y / a;  // the divisor only
  CHECK(tape.memory_bytes() == m0 + 2 * Tape::record_bytes() + 8000);
  Tensor w = matmul(reshape(z, {1, 1000}), reshape(a, {1000, 1}));  // the constant operand only
  CHECK(tape.memory_bytes() == m0 + 4 * Tape::record_bytes() + 8000);  // z's reshape and the product
  const Tensor g = grad(sum(w), {x})[0];
  CHECK(g.to_vector()[17] == doctest::Approx(0.5));  // d/dx (x·a/a)·a = a
}

TEST_CASE("tape memory: thousands of storages saved, shared and rewound in nested scopes") {
  // The tape's table of saved storages against a plain map kept alongside. Every record is
  // x_i * x_j (it saves both; x_i * x_i saves one storage twice); scopes rewind nested.
  Tape& tape = Tape::current();
  Generator g(11);
  std::vector<Tensor> xs;
  for (int i = 0; i < 3000; ++i) xs.push_back(full({3}, 1.0 + i).requires_grad_());
  const std::size_t base = tape.memory_bytes();
  std::map<const void*, int> mirror;  // storage → saves by live records
  std::size_t records = 0;
  auto expected = [&] { return base + records * Tape::record_bytes() + mirror.size() * 3 * sizeof(double); };
  auto pick = [&] { return static_cast<std::size_t>(g.uniform() * 3000) % 3000; };
  std::function<void(int)> nest = [&](int depth) {
    TapeScope scope;
    std::vector<std::size_t> saved;
    for (int k = 0; k < 700; ++k) {
      const std::size_t i = pick(), j = k % 5 == 0 ? i : pick();
      const Tensor y = xs[i] * xs[j];
      for (std::size_t s : {i, j}) {
        ++mirror[xs[s].raw()];
        saved.push_back(s);
      }
      ++records;
    }
    CHECK(tape.memory_bytes() == expected());
    if (depth < 3) {
      nest(depth + 1);
      nest(depth + 1);
      CHECK(tape.memory_bytes() == expected());
    }
    for (std::size_t s : saved) {  // what this scope's rewind will release
      auto it = mirror.find(xs[s].raw());
      if (--it->second == 0) mirror.erase(it);
    }
    records -= 700;
  };
  nest(0);
  CHECK(tape.memory_bytes() == base);
  CHECK(mirror.empty());
}

TEST_CASE("two threads differentiate on their own tapes, matching a sequential run") {
  auto work = [](double seed, std::vector<double>* out) {
    Generator g(static_cast<std::uint64_t>(seed));
    Tensor w = randn({50}, g);
    w.requires_grad_();
    Tensor l = w;
    for (int i = 0; i < 2000; ++i) l = tanh(l * 0.9 + 0.1);
    *out = values(grad(sum(l * l), {w})[0]);
  };
  std::vector<double> s1, s2, p1, p2;
  work(1, &s1);
  work(2, &s2);
  std::thread t1(work, 1, &p1), t2(work, 2, &p2);
  t1.join();
  t2.join();
  CHECK(p1 == s1);
  CHECK(p2 == s2);

  Tensor mine = ones({2});
  mine.requires_grad_();
  std::string msg;
  std::thread t3([&] {
    try {
      (void)exp(mine);
    } catch (const TapeError& e) {
      msg = e.what();
    }
  });
  t3.join();
  CHECK(msg.find("another thread's tape") != std::string::npos);
}
