#pragma once
// Allocation of tensor storage: 64-byte aligned (full SIMD lines). Every tensor buffer
// goes through these two functions, which are backed by a pool: per-thread free lists
// of size classes (see buffer.cpp and hyperad/autodiff/runtime.hpp).
#include <cstddef>
#include <cstdint>

namespace hyperad::kernels {

/// A 64-byte aligned buffer of at least `bytes` bytes (nullptr for 0). Throws bad_alloc.
void* allocate_buffer(std::size_t bytes);
/// Gives back a buffer from allocate_buffer, with the same `bytes`; any thread may call it.
void release_buffer(void* p, std::size_t bytes) noexcept;

/// A scratch array of n values of T from the pool, given back at scope exit.
template <class T>
struct Scratch {
  explicit Scratch(std::int64_t n)
      : bytes(static_cast<std::size_t>(n) * sizeof(T)), p(static_cast<T*>(allocate_buffer(bytes))) {}
  ~Scratch() { release_buffer(p, bytes); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::size_t bytes;
  T* p;
};

/// A standard allocator over the pool, e.g. for std::allocate_shared so that a shared
/// control block is recycled like the data it manages.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { release_buffer(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace hyperad::kernels
