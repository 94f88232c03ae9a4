#pragma once
/// \file shape.hpp
/// Shapes of dense row-major tensors, held inline (no allocation).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace hyperad {

/// Maximum rank of a tensor.
inline constexpr int kMaxRank = 6;

/// A tensor shape: up to kMaxRank non-negative extents, stored inline so copying a
/// shape never allocates. Rank 0 is a scalar (one element).
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims)
      : Shape(std::span<const std::int64_t>(dims.data(), dims.size())) {}

  int rank() const { return rank_; }
  /// Extent of axis `i`; negative `i` counts from the end. Throws ValueError when out of range.
  std::int64_t operator[](int i) const;
  /// The element count (at most 2^60, checked at construction). An empty shape is 0 even
  /// when its other extents' product would overflow, so the zero is looked for first.
  std::int64_t numel() const {
    for (int i = 0; i < rank_; ++i)
      if (dims_[i] == 0) return 0;
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::vector<std::int64_t> vec() const { return {begin(), end()}; }

  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[i] != o.dims_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }

  /// "[3, 4]"
  std::string str() const;

  /// Normalizes an axis argument for a tensor of rank `rank` (negative counts from the
  /// end); throws ValueError naming `op` when out of range.
  static int normalize_axis(int axis, int rank, const char* op);

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

/// The numpy broadcast of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

/// Row-major (contiguous) strides of `s`, in elements.
std::array<std::int64_t, kMaxRank> contiguous_strides(const Shape& s);

}  // namespace hyperad

template <>
struct fmt::formatter<hyperad::Shape> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const hyperad::Shape& s, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(s.str(), ctx);
  }
};
