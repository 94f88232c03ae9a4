#include "kernels/buffer.hpp"

#include <cstdlib>
#include <new>

namespace hyperad::kernels {

void* allocate_buffer(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void release_buffer(void* p, std::size_t) noexcept { std::free(p); }

}  // namespace hyperad::kernels
