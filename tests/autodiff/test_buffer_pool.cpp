// The buffer pool behind tensor storage, observed through its counters
// (runtime::buffer_pool_stats): steady-state loops stop calling malloc, buffers may be
// freed on another thread, and the pool can be emptied or capped.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/autodiff/tape.hpp"

using namespace hyperad;

namespace {

// One step of a small training loop: forward, backward, update (the shapes repeat).
void train_step(Tensor& w, Tensor& b, const Tensor& x, const Tensor& y) {
  TapeScope scope;
  Tensor wv = w.detach().requires_grad_(), bv = b.detach().requires_grad_();
  Tensor h = tanh(add(matmul(x, wv), bv));
  Tensor loss = add(mean(square(sub(h, y))), mul_scalar(sum(exp(mul_scalar(wv, 0.1))), 1e-3));
  TensorList g = grad(loss, {wv, bv});
  NoGradGuard off;
  w = sub(w, mul_scalar(g[0], 0.1));
  b = sub(b, mul_scalar(g[1], 0.1));
}

}  // namespace

TEST_CASE("a loop repeating the same shapes (forward + backward) allocates only in its first iteration") {
  for (Dtype d : {Dtype::f64, Dtype::f32}) {
    Generator gen(5);
    Tensor x = randn({64, 30}, gen, d), y = randn({64, 20}, gen, d);
    Tensor w = mul_scalar(randn({30, 20}, gen, d), 0.1), b = zeros({20}, d);

    train_step(w, b, x, y);  // first iteration: fills the pool
    const runtime::BufferPoolStats first = runtime::buffer_pool_stats();
    for (int it = 0; it < 20; ++it) train_step(w, b, x, y);
    const runtime::BufferPoolStats later = runtime::buffer_pool_stats();

    INFO(dtype_name(d));
    CHECK(later.allocations == first.allocations);  // no malloc after the first iteration
    CHECK(later.reuses > first.reuses + 20 * 10);    // every step's tensors came from the pool
    CHECK(later.bytes_held == first.bytes_held);     // and went back to it
  }
}

TEST_CASE("a freed buffer is reused by the next request of its size class") {
  runtime::BufferPoolStats s0 = runtime::buffer_pool_stats();
  { Tensor t = zeros({1000}); }  // 8000 bytes: class (4096, 8192]
  runtime::BufferPoolStats s1 = runtime::buffer_pool_stats();
  { Tensor t = zeros({1010}); }  // 8080 bytes: same class
  runtime::BufferPoolStats s2 = runtime::buffer_pool_stats();
  CHECK(s1.allocations + s1.reuses == s0.allocations + s0.reuses + 1);
  CHECK(s2.allocations == s1.allocations);
  CHECK(s2.reuses == s1.reuses + 1);
  CHECK(s1.bytes_held >= 8000);
}

TEST_CASE("buffers freed on another thread are safe and counted; a thread's cache dies with it") {
  Tensor made_here = full({5000}, 2.0);
  const runtime::BufferPoolStats before = runtime::buffer_pool_stats();
  Tensor made_there;
  std::thread worker([&] {
    Tensor mine = full({3000}, 1.0);
    made_there = add(mine, mine);  // leaves the thread alive
    made_here = Tensor{};          // the main thread's buffer is freed here
  });
  worker.join();
  // The worker cached buffers while it ran and gave them back to the system at exit.
  const runtime::BufferPoolStats after = runtime::buffer_pool_stats();
  CHECK(after.bytes_held <= before.bytes_held);
  CHECK(after.allocations + after.reuses >= before.allocations + before.reuses + 2);
  // A buffer allocated on the worker is freed here, into this thread's cache, and reused.
  CHECK(made_there.at({7}) == 2.0);
  made_there = Tensor{};
  const runtime::BufferPoolStats freed = runtime::buffer_pool_stats();
  CHECK(freed.bytes_held >= after.bytes_held + 3000 * sizeof(double));
  Tensor again = zeros({3000});
  CHECK(runtime::buffer_pool_stats().allocations == freed.allocations);
}

TEST_CASE("release_buffer_pool empties the calling thread's cache; the limit caps it") {
  { Tensor big = zeros({8 << 20}); }  // 64 MiB back to the pool
  const runtime::BufferPoolStats held = runtime::buffer_pool_stats();
  CHECK(held.bytes_held >= (std::size_t{64} << 20));
  runtime::release_buffer_pool();
  CHECK(runtime::buffer_pool_stats().bytes_held < (std::size_t{64} << 20));
  {
    const runtime::BufferPoolStats s = runtime::buffer_pool_stats();
    Tensor again = zeros({8 << 20});  // the pool was emptied: this is a malloc again
    CHECK(runtime::buffer_pool_stats().allocations == s.allocations + 1);
  }

  runtime::release_buffer_pool();
  runtime::set_buffer_pool_limit(0);  // keep nothing: every release goes to the system
  const runtime::BufferPoolStats s = runtime::buffer_pool_stats();
  { Tensor t = zeros({100}); }
  { Tensor t = zeros({100}); }
  const runtime::BufferPoolStats t = runtime::buffer_pool_stats();
  CHECK(t.allocations == s.allocations + 2);
  CHECK(t.reuses == s.reuses);
  runtime::set_buffer_pool_limit(std::size_t{1} << 30);
}

TEST_CASE("a full pool makes room for the sizes in use: the least recently used ones are evicted") {
  runtime::release_buffer_pool();
  runtime::set_buffer_pool_limit(std::size_t{1} << 20);  // 1 MiB
  {  // a phase of one size fills the pool: 7 buffers of 128 KiB
    std::vector<Tensor> old;
    for (int i = 0; i < 7; ++i) old.push_back(zeros({16 << 10}));
  }
  const std::size_t full = runtime::buffer_pool_stats().bytes_held;
  CHECK(full >= (std::size_t{7} << 17));
  // Then another size, twice as large (256 KiB): the second round reuses the first's
  // buffers, which found room by evicting the stale ones.
  auto round = [] {
    std::vector<Tensor> now;
    for (int i = 0; i < 3; ++i) now.push_back(zeros({32 << 10}));
  };
  round();
  const runtime::BufferPoolStats s = runtime::buffer_pool_stats();
  round();
  const runtime::BufferPoolStats t = runtime::buffer_pool_stats();
  CHECK(t.allocations == s.allocations);
  CHECK(t.reuses == s.reuses + 3);
  CHECK(t.bytes_held <= (std::size_t{1} << 20));
  // A buffer larger than the limit evicts nothing and is freed.
  { Tensor huge = zeros({1 << 18}); }  // 2 MiB
  CHECK(runtime::buffer_pool_stats().bytes_held == t.bytes_held);
  runtime::release_buffer_pool();
  runtime::set_buffer_pool_limit(std::size_t{1} << 30);
}
