// Memo: a result reused while its inputs are the same tensors. Checked: hits and misses
// (an in-place write to an input or to the result, a new leaf over the same storage, a
// rewound scope each compute again); a recorded result used by several terms gets the
// gradient of the composition, first and second order, against the closed form; a result
// computed unrecorded serves another thread, a recorded one does not; a compute that
// reads a recorded tensor not among the inputs is refused.
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "autodiff/ad_harness.hpp"
#include "thrown.hpp"

using namespace hyperad;
using hyperad::testing::values;

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

// z = exp(λ) through the memo, counting the computations.
struct Counted {
  Memo memo;
  int computed = 0;
  Tensor operator()(const Tensor& lam) {
    return memo.get({lam}, [&] {
      ++computed;
      return exp(lam);
    });
  }
};

}  // namespace

TEST_CASE("Memo: reused while the inputs are the same; a write, a new leaf or a rewound scope computes again") {
  const Tensor base = tensor({0.1, -0.4, 0.7});
  Counted f;
  {
    NoGradGuard off;
    const Tensor a = f(base), b = f(base);
    CHECK(f.computed == 1);
    CHECK(a.shares_storage(b));
    CHECK(f.memo.hits() == 1);
    CHECK(f.memo.misses() == 1);
  }
  // Recording on, λ needs no gradient: computed once more (an entry made with recording
  // off serves only calls with recording off), then kept.
  f(base);
  f(base);
  CHECK(f.computed == 2);
  Tensor lam = base.clone();
  f(lam);  // another storage with the same values
  CHECK(f.computed == 3);
  lam.set({0}, 0.2);  // written in place
  const Tensor z = f(lam);
  CHECK(f.computed == 4);
  CHECK(values(z)[0] == doctest::Approx(std::exp(0.2)).epsilon(1e-15));
  // The result written in place is not handed out again.
  Tensor held = f(lam);
  CHECK(f.computed == 4);
  held.set({1}, 5.0);
  f(lam);
  CHECK(f.computed == 5);

  // Recorded: a leaf over λ's storage, then another leaf over the same storage.
  Tensor leaf = base.detach();
  leaf.requires_grad_();
  const Tensor r1 = f(leaf);
  CHECK(f.computed == 6);
  CHECK(r1.requires_grad());
  f(leaf);
  CHECK(f.computed == 6);
  Tensor other = base.detach();
  other.requires_grad_();
  f(other);
  CHECK(f.computed == 7);

  // A result recorded inside a scope is gone with it: computed and recorded again.
  Tensor inner_leaf = base.detach();
  inner_leaf.requires_grad_();
  {
    TapeScope scope;
    f(inner_leaf);
    CHECK(f.computed == 8);
    f(inner_leaf);
    CHECK(f.computed == 8);
  }
  const Tensor again = f(inner_leaf);
  CHECK(f.computed == 9);
  CHECK(again.requires_grad());
  CHECK(values(grad(sum(again), {inner_leaf})[0]) == values(exp(base)));
}

TEST_CASE("Memo: a recorded result used by many terms differentiates as the composition, first and second order") {
  const Tensor lam0 = tensor({0.3, -0.2, 0.5, 0.1});
  const Tensor a = tensor({1.0, 2.0, -1.0, 0.5});
  Tensor lam = lam0.detach();
  lam.requires_grad_();
  Counted f;
  // Five "steps" each reading z = exp(λ): L = Σ_k Σ (z ⊙ a)² / (k + 1).
  Tensor L = zeros({});
  for (int k = 0; k < 5; ++k) L = L + sum(square(f(lam) * a)) / double(k + 1);
  CHECK(f.computed == 1);
  const double c = 1 + 1 / 2.0 + 1 / 3.0 + 1 / 4.0 + 1 / 5.0;
  // dL/dλ = c · 2 a² e^{2λ}; d²L/dλ² v = c · 4 a² e^{2λ} ⊙ v.
  const TensorList g = grad(L, {lam}, {.create_graph = true});
  const Tensor v = tensor({0.7, -1.1, 0.4, 0.9});
  const Tensor hv = grad(sum(g[0] * v), {lam})[0];
  const std::vector<double> l = values(lam0), av = values(a), vv = values(v), gv = values(g[0]), hvv = values(hv);
  for (std::size_t i = 0; i < 4; ++i) {
    const double e2 = std::exp(2 * l[i]);
    CHECK(rel(gv[i], c * 2 * av[i] * av[i] * e2) < 1e-14);
    CHECK(rel(hvv[i], c * 4 * av[i] * av[i] * e2 * vv[i]) < 1e-14);
  }
}

TEST_CASE("Memo: an unrecorded result serves every thread; a recorded one only its own tape") {
  const Tensor lam0 = tensor({0.5, 1.5});
  Counted f;
  {
    NoGradGuard off;
    f(lam0);
  }
  int computed_there = -1;
  std::thread([&] {
    NoGradGuard off;
    f(lam0);
    computed_there = f.computed;
  }).join();
  CHECK(computed_there == 1);

  Tensor leaf = lam0.detach();
  leaf.requires_grad_();
  f(leaf);
  CHECK(f.computed == 2);
  bool other_recorded = false;
  std::thread([&] {
    Tensor mine = lam0.detach();
    mine.requires_grad_();
    other_recorded = f(mine).requires_grad();  // its own tape: computed and recorded there
  }).join();
  CHECK(other_recorded);
  CHECK(f.computed == 3);
  f(leaf);  // this thread's entry is still there
  CHECK(f.computed == 3);
}

TEST_CASE("Memo: a compute that reads a recorded tensor not among its inputs is refused") {
  Tensor hidden = tensor({1.0, 2.0});
  hidden.requires_grad_();
  const Tensor lam = tensor({0.5, 0.5});
  Memo memo;
  const std::string msg =
      testing::message_of<ValueError>([&] { memo.get({lam}, [&] { return lam * hidden; }); });
  CHECK(msg.find("Memo::get") != std::string::npos);
  CHECK(msg.find("not among the inputs") != std::string::npos);
  CHECK(testing::message_of<ValueError>([&] { memo.get({lam}, [] { return Tensor(); }); }).find("undefined") !=
        std::string::npos);
  // A hidden tensor returned as it is, or read beside an input that requires gradients.
  CHECK(testing::message_of<ValueError>([&] { memo.get({lam}, [&] { return hidden; }); }).find("not among the inputs") !=
        std::string::npos);
  Tensor leaf = lam.detach();
  leaf.requires_grad_();
  CHECK(testing::message_of<ValueError>([&] { memo.get({leaf}, [&] { return leaf * hidden; }); })
            .find("not among the inputs") != std::string::npos);
  CHECK(memo.misses() == 0);  // nothing refused was kept
  // Read as an input, the same computation is kept and differentiates in both.
  const Tensor r = memo.get({leaf, hidden}, [&] { return leaf * hidden; });
  const TensorList g = grad(sum(r), {leaf, hidden});
  CHECK(values(g[0]) == values(hidden.detach()));
  CHECK(values(g[1]) == values(lam));
}

TEST_CASE("Memo: results computed with recording off serve only calls with recording off, detached") {
  const Tensor base = tensor({0.25, -0.5});
  Tensor leaf = base.detach();
  leaf.requires_grad_();
  Counted f;
  Memo alias;
  {
    NoGradGuard off;
    CHECK_FALSE(f(leaf).requires_grad());
    // An input returned as it is comes back detached, not refused.
    CHECK_FALSE(alias.get({leaf}, [&] { return leaf; }).requires_grad());
  }
  CHECK(f.computed == 1);
  // Recording on: λ requires gradients, so a recorded result is computed (not the constant).
  CHECK(f(leaf).requires_grad());
  CHECK(f.computed == 2);
  // Recording on, no input requiring gradients: computed again, not the NoGradGuard entry.
  f(base);
  CHECK(f.computed == 3);
  {
    NoGradGuard off;
    f(base);  // the recording-off entry of base's storage (its version unchanged)
  }
  CHECK(f.computed == 3);
  f.memo.clear();
  f(base);
  CHECK(f.computed == 4);
}

TEST_CASE("Memo: the entry of a thread that ended is released") {
  const Tensor lam0 = tensor({0.5, 1.5, 2.5});
  Counted f;
  for (int k = 0; k < 8; ++k)
    std::thread([&] {
      Tensor mine = lam0.detach();
      mine.requires_grad_();
      f(mine);
    }).join();
  CHECK(f.computed == 8);
  // Each call drops the entries of the threads that ended before it: at most the last
  // thread's entry still holds lam0's storage (not eight of them).
  CHECK(lam0.use_count() <= 2);
  {
    NoGradGuard off;
    f(lam0);  // drops that one too, and keeps its own
  }
  CHECK(lam0.use_count() == 2);
  f.memo.clear();
  CHECK(lam0.use_count() == 1);
}

TEST_CASE("Memo: threads reading one result at once all get it, computed at most once per reader") {
  const Tensor lam0 = tensor({0.1, 0.2, 0.3, 0.4});
  Memo memo;
  std::atomic<int> computed{0};
  std::vector<std::vector<double>> seen(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      NoGradGuard off;
      for (int rep = 0; rep < 200; ++rep)
        seen[k] = values(memo.get({lam0}, [&] {
          ++computed;
          return exp(lam0);
        }));
    });
  for (std::thread& t : threads) t.join();
  CHECK(computed.load() <= 4);
  for (const auto& v : seen) CHECK(v == values(exp(lam0)));
  CHECK(memo.hits() + memo.misses() == 800);
}
