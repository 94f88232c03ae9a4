// The buffer pool behind tensor storage.
//
// Each thread keeps free lists of size classes (64-byte steps up to 1 KiB, then four
// classes per power of two up to 1 GiB). A released buffer is pushed on the releasing
// thread's list: the memory itself came from malloc, so whichever thread frees it may
// keep it. The fast paths touch only thread-local data (no locks, no atomic
// read-modify-write); the counters are atomics written by their owner thread alone, so
// buffer_pool_stats() can read them from anywhere. A release that would take the cache
// past its limit first frees buffers of the least recently used other classes.
//
// The cache is a constant-initialized, trivially destructible thread_local, so it stays
// readable during thread exit; a second thread_local with a destructor flushes it, after
// which the thread allocates and frees directly (tensors destroyed by other thread-local
// destructors, e.g. the tape's, land there).
//
// Inside OpenMP parallel regions the pool is bypassed. The runtime's worker threads live
// until the process ends without running thread-exit handlers, so buffers cached there
// would never be returned (and leak checkers rightly report them); code running in
// parallel regions (the kernels' bodies) does not allocate tensors in hot loops anyway.
#include "kernels/buffer.hpp"

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include <omp.h>

#include "hyperad/autodiff/runtime.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HYPERAD_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define HYPERAD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define HYPERAD_POISON(p, n) ((void)(p), (void)(n))
#define HYPERAD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace hyperad::kernels {

namespace {

constexpr std::size_t kAlign = 64;
constexpr int kSmallClasses = 16;  // 64, 128, ..., 1024 bytes
constexpr int kLargestLog = 30;    // pooled up to 1 GiB
constexpr int kClasses = kSmallClasses + (kLargestLog - 10) * 4;

// Size class of a request of `bytes` > 0, or -1 when it is too large to pool.
int size_class(std::size_t bytes) {
  if (bytes <= 1024) return static_cast<int>((bytes - 1) / 64);
  if (bytes > (std::size_t{1} << kLargestLog)) return -1;
  const int e = static_cast<int>(std::bit_width(bytes - 1)) - 1;  // 2^e < bytes <= 2^(e+1)
  const std::size_t step = std::size_t{1} << (e - 2);
  const auto c = static_cast<int>((bytes - (std::size_t{1} << e) + step - 1) / step);  // 1..4
  return kSmallClasses + (e - 10) * 4 + (c - 1);
}

std::size_t class_bytes(int k) {
  if (k < kSmallClasses) return static_cast<std::size_t>(k + 1) * 64;
  const int e = 10 + (k - kSmallClasses) / 4, c = (k - kSmallClasses) % 4 + 1;
  return (std::size_t{1} << e) + static_cast<std::size_t>(c) * (std::size_t{1} << (e - 2));
}

// Owner-only increment: a plain load and store (no locked instruction); other threads
// only read.
template <class U>
void bump(std::atomic<U>& a, U d) {
  a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

enum State : int { kFresh = 0, kLive = 1, kDead = 2 };

struct ThreadCache {
  void* head[kClasses] = {};  // intrusive lists: a free buffer's first word points to the next
  std::uint64_t used[kClasses] = {};  // tick of each class's last request or release
  std::uint32_t count[kClasses] = {};  // buffers cached per class
  std::uint64_t tick = 0;
  std::size_t held = 0;
  std::uint64_t epoch = 0;
  int state = kFresh;
  std::atomic<std::uint64_t> mallocs{0}, reuses{0};
  std::atomic<std::size_t> held_shared{0};
};

constinit thread_local ThreadCache tc{};

// release_buffer_pool() bumps the epoch; a cache that sees a new epoch empties itself.
constinit std::atomic<std::uint64_t> g_epoch{0};
constinit std::atomic<std::size_t> g_limit{std::size_t{1} << 30};
// Allocations bypassing the caches (exiting threads, parallel regions).
constinit std::atomic<std::uint64_t> g_dead_mallocs{0};

struct Registry {
  std::mutex m;
  std::vector<ThreadCache*> live;
  std::uint64_t retired_mallocs = 0, retired_reuses = 0;
};
// Leaked on purpose: it must outlive every thread's exit handlers.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

void flush(ThreadCache& c) {
  for (int k = 0; k < kClasses; ++k) {
    const std::size_t cb = class_bytes(k);
    void* p = c.head[k];
    while (p) {
      HYPERAD_UNPOISON(p, cb);
      void* next = *static_cast<void**>(p);
      std::free(p);
      p = next;
    }
    c.head[k] = nullptr;
    c.count[k] = 0;
  }
  c.held = 0;
  c.held_shared.store(0, std::memory_order_relaxed);
}

void retire(ThreadCache& c) {
  if (c.state != kLive) return;
  flush(c);
  Registry& r = registry();
  std::lock_guard lock(r.m);
  r.retired_mallocs += c.mallocs.load(std::memory_order_relaxed);
  r.retired_reuses += c.reuses.load(std::memory_order_relaxed);
  std::erase(r.live, &c);
  c.state = kDead;
}

struct ExitHook {
  ~ExitHook() { retire(tc); }
};
thread_local ExitHook exit_hook;

void attach(ThreadCache& c) {
  static_cast<void>(&exit_hook);  // odr-use: constructs it, so it runs at thread exit
  Registry& r = registry();
  std::lock_guard lock(r.m);
  r.live.push_back(&c);
  c.epoch = g_epoch.load(std::memory_order_relaxed);
  c.state = kLive;
}

// The cache of the calling thread ready for use, or nullptr once the thread is exiting
// or while it runs in a parallel region.
ThreadCache* cache() {
  if (omp_in_parallel()) [[unlikely]] return nullptr;
  ThreadCache& c = tc;
  if (c.state != kLive) [[unlikely]] {
    if (c.state == kDead) return nullptr;
    attach(c);
  }
  if (c.epoch != g_epoch.load(std::memory_order_relaxed)) [[unlikely]] {
    flush(c);
    c.epoch = g_epoch.load(std::memory_order_relaxed);
  }
  return &c;
}

// Frees one cached buffer of the least recently used class other than `keep`; false when
// there is none. A full pool thus makes room for the sizes in use: a phase of other
// shapes (a float64 check, a larger batch) does not leave it holding only stale classes.
bool evict_stalest(ThreadCache& c, int keep) {
  int victim = -1;
  for (int j = 0; j < kClasses; ++j)
    if (j != keep && c.head[j] && (victim < 0 || c.used[j] < c.used[victim])) victim = j;
  if (victim < 0) return false;
  const std::size_t cb = class_bytes(victim);
  void* p = c.head[victim];
  HYPERAD_UNPOISON(p, cb);
  c.head[victim] = *static_cast<void**>(p);
  --c.count[victim];
  c.held -= cb;
  std::free(p);
  return true;
}

void* system_alloc(std::size_t bytes, ThreadCache* c) {
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p && c) {  // out of memory: give back what this thread caches, then retry once
    flush(*c);
    p = std::aligned_alloc(kAlign, bytes);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* allocate_buffer(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const int k = size_class(bytes);
  ThreadCache* c = cache();
  if (!c) {  // exiting thread or parallel region: straight to malloc
    g_dead_mallocs.fetch_add(1, std::memory_order_relaxed);
    return system_alloc(k >= 0 ? class_bytes(k) : (bytes + kAlign - 1) / kAlign * kAlign, nullptr);
  }
  if (k >= 0) {
    c->used[k] = ++c->tick;
    if (void* p = c->head[k]) {
      const std::size_t cb = class_bytes(k);
      HYPERAD_UNPOISON(p, cb);
      c->head[k] = *static_cast<void**>(p);
      --c->count[k];
      c->held -= cb;
      c->held_shared.store(c->held, std::memory_order_relaxed);
      bump(c->reuses, std::uint64_t{1});
      return p;
    }
  }
  bump(c->mallocs, std::uint64_t{1});
  return system_alloc(k >= 0 ? class_bytes(k) : (bytes + kAlign - 1) / kAlign * kAlign, c);
}

void release_buffer(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  const int k = size_class(bytes);
  ThreadCache* c = nullptr;
  try {
    c = cache();
  } catch (...) {  // registering a new thread could fail to allocate: just free
  }
  if (c && k >= 0) {
    const std::size_t cb = class_bytes(k), limit = g_limit.load(std::memory_order_relaxed);
    c->used[k] = ++c->tick;
    // Evicting other classes helps only if this class's own buffers leave room.
    if (std::size_t{c->count[k] + 1u} * cb <= limit)
      while (c->held + cb > limit && evict_stalest(*c, k)) {
      }
    c->held_shared.store(c->held, std::memory_order_relaxed);
    if (c->held + cb <= limit) {
      *static_cast<void**>(p) = c->head[k];
      HYPERAD_POISON(p, cb);
      c->head[k] = p;
      ++c->count[k];
      c->held += cb;
      c->held_shared.store(c->held, std::memory_order_relaxed);
      return;
    }
  }
  std::free(p);
}

}  // namespace hyperad::kernels

namespace hyperad::runtime {

BufferPoolStats buffer_pool_stats() {
  using namespace hyperad::kernels;
  Registry& r = registry();
  std::lock_guard lock(r.m);
  BufferPoolStats s;
  s.allocations = r.retired_mallocs + g_dead_mallocs.load(std::memory_order_relaxed);
  s.reuses = r.retired_reuses;
  for (const ThreadCache* c : r.live) {
    s.allocations += c->mallocs.load(std::memory_order_relaxed);
    s.reuses += c->reuses.load(std::memory_order_relaxed);
    s.bytes_held += c->held_shared.load(std::memory_order_relaxed);
  }
  return s;
}

void release_buffer_pool() {
  using namespace hyperad::kernels;
  g_epoch.fetch_add(1, std::memory_order_relaxed);
  if (tc.state == kLive) {
    flush(tc);
    tc.epoch = g_epoch.load(std::memory_order_relaxed);
  }
}

void set_buffer_pool_limit(std::size_t bytes_per_thread) {
  hyperad::kernels::g_limit.store(bytes_per_thread, std::memory_order_relaxed);
}

}  // namespace hyperad::runtime
