#pragma once
// Allocation of tensor storage: 64-byte aligned (full SIMD lines). Every tensor buffer
// goes through these two functions, so a buffer pool can be put behind them.
#include <cstddef>

namespace hyperad::kernels {
void* allocate_buffer(std::size_t bytes);
void release_buffer(void* p, std::size_t bytes) noexcept;
}  // namespace hyperad::kernels
