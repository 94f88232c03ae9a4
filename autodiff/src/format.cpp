#include "hyperad/autodiff/format.hpp"

#include "tape_engine.hpp"

namespace hyperad {

namespace {
constexpr std::int64_t kEdge = 3;       // entries shown at each end of a long axis
constexpr std::int64_t kMaxFull = 8;    // axes up to this long are shown in full

void append_axis(std::string& out, const std::vector<double>& v, const Shape& s, int axis, std::int64_t offset,
                 std::int64_t stride) {
  const std::int64_t n = s.begin()[axis];
  if (n == 0) {
    out += "[]";
    return;
  }
  const std::int64_t inner = stride / n;
  out += '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (n > kMaxFull && i == kEdge) {
      out += "..., ";
      i = n - kEdge;
    }
    if (axis + 1 == s.rank())
      out += fmt::format("{:.6g}", v[static_cast<std::size_t>(offset + i)]);
    else
      append_axis(out, v, s, axis + 1, offset + i * inner, inner);
    if (i + 1 < n) out += ", ";
  }
  out += ']';
}
}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "Tensor(undefined)";
  std::string out = fmt::format("Tensor(shape={}, dtype={}", t.shape().str(), dtype_name(t.dtype()));
  if (detail::TapeEngine::var(t).tape) out += ", requires_grad";
  out += ", values=";
  std::vector<double> v = t.to_vector();
  if (t.rank() == 0)
    out += fmt::format("{:.6g}", v[0]);
  else
    append_axis(out, v, t.shape(), 0, 0, t.numel());
  return out + ")";
}

}  // namespace hyperad
