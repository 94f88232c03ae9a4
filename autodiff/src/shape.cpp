#include "hyperad/autodiff/shape.hpp"

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad {

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  if (dims.size() > static_cast<std::size_t>(kMaxRank))
    throw ValueError(fmt::format("Shape: rank {} exceeds the maximum rank {}", dims.size(), kMaxRank));
  rank_ = static_cast<int>(dims.size());
  // The element count (and so every byte count and flat index) must fit in 64 bits with
  // room for 8-byte elements: 2^60 elements. Checked here, once, for every shape.
  constexpr std::int64_t kMaxElements = std::int64_t{1} << 60;
  std::int64_t n = 1;
  bool too_many = false, empty = false;
  for (int i = 0; i < rank_; ++i) {
    if (dims[i] < 0) throw ValueError(fmt::format("Shape: negative extent {} at axis {}", dims[i], i));
    dims_[i] = dims[i];
    empty = empty || dims[i] == 0;
    if (!too_many && (__builtin_mul_overflow(n, dims[i], &n) || n > kMaxElements)) too_many = true;
  }
  if (too_many && !empty)
    throw ValueError(fmt::format("Shape: {} has more than 2^60 elements (its element count overflows)", str()));
}

std::int64_t Shape::operator[](int i) const {
  int a = i < 0 ? i + rank_ : i;
  if (a < 0 || a >= rank_)
    throw ValueError(fmt::format("Shape: axis {} out of range for shape {}", i, str()));
  return dims_[a];
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + "]";
}

int Shape::normalize_axis(int axis, int rank, const char* op) {
  int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw ValueError(fmt::format("{}: axis {} out of range for a tensor of rank {}", op, axis, rank));
  return a;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  int r = std::max(a.rank(), b.rank());
  std::array<std::int64_t, kMaxRank> d{};
  for (int i = 0; i < r; ++i) {
    int ia = a.rank() - r + i, ib = b.rank() - r + i;
    std::int64_t x = ia >= 0 ? a.begin()[ia] : 1, y = ib >= 0 ? b.begin()[ib] : 1;
    if (x != y && x != 1 && y != 1)
      throw ShapeError(fmt::format("{}: shapes {} and {} do not broadcast (axis {} has {} vs {})", op,
                                   a.str(), b.str(), i - r, x, y));
    d[i] = x == 1 ? y : x;
  }
  return Shape(std::span<const std::int64_t>(d.data(), r));
}

std::array<std::int64_t, kMaxRank> contiguous_strides(const Shape& s) {
  std::array<std::int64_t, kMaxRank> st{};
  std::int64_t acc = 1;
  for (int i = s.rank() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s.begin()[i];
  }
  return st;
}

}  // namespace hyperad
