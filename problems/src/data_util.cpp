// Helpers shared by the loaders (see data_util.hpp).
#include "data_util.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

namespace hyperad::problems::detail {

void fail_line(std::string_view loader, const std::filesystem::path& file, std::int64_t line,
               std::string_view reason) {
  throw DataError(fmt::format("{}: \"{}\", line {}: {}", loader, file.string(), line, reason),
                  file.string(), line, -1);
}

void fail_byte(std::string_view loader, const std::filesystem::path& file, std::int64_t byte,
               std::string_view reason) {
  throw DataError(fmt::format("{}: \"{}\", byte {}: {}", loader, file.string(), byte, reason),
                  file.string(), -1, byte);
}

void fail_file(std::string_view loader, const std::filesystem::path& file, std::string_view reason) {
  throw DataError(fmt::format("{}: \"{}\": {}", loader, file.string(), reason), file.string());
}

std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);  // never echo raw binary into a message
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (text.size() > kMax) out += fmt::format(" (cut; {} bytes)", text.size());
  return out;
}

std::string read_file(std::string_view loader, const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail_file(loader, path, "is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail_file(loader, path,
              std::filesystem::exists(path, ec) ? "cannot be opened (permissions?)" : "no such file");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail_file(loader, path, "read error");
  return std::move(buf).str();
}

namespace {
NumberStatus parse_double(std::string_view text, double& out) {
  // from_chars rejects a leading '+', which CSV writers do emit.
  if (text.size() > 1 && text[0] == '+' && text[1] != '-' && text[1] != '+') text.remove_prefix(1);
  if (text.empty()) return NumberStatus::not_a_number;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out,
                                         std::chars_format::general);
  if (ec == std::errc::result_out_of_range && end == text.data() + text.size()) {
    // Overflow (1e999) is not finite; underflow (1e-999) is a valid tiny number, which
    // strtod rounds as usual.
    out = std::strtod(std::string(text).c_str(), nullptr);
    return std::isfinite(out) ? NumberStatus::ok : NumberStatus::not_finite;
  }
  if (ec != std::errc() || end != text.data() + text.size()) return NumberStatus::not_a_number;
  if (!std::isfinite(out)) return NumberStatus::not_finite;
  return NumberStatus::ok;
}
}  // namespace

NumberStatus parse_number(std::string_view text, double& out, Dtype dtype) {
  const NumberStatus st = parse_double(text, out);
  if (st == NumberStatus::ok && dtype == Dtype::f32 && std::abs(out) > std::numeric_limits<float>::max())
    return NumberStatus::not_finite;
  return st;
}

bool parse_int(std::string_view text, std::int64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::int64_t number = 1;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({number++, line});
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string label_problem(double value, std::int64_t num_classes) {
  if (value != std::floor(value)) return fmt::format("class label {} is not an integer", value);
  if (value < 0 || (num_classes > 0 && value >= static_cast<double>(num_classes))) {
    if (num_classes > 0)
      return fmt::format("label out of range: {} is not in [0, {}) (num_classes = {})", value,
                         num_classes, num_classes);
    return fmt::format("label out of range: {} is negative (class labels are 0, 1, ...)", value);
  }
  // The class count is inferred as the largest label + 1, and per-class storage follows:
  // a stray huge label (a regression target, a typo) must not allocate millions of classes.
  if (num_classes == 0 && value >= 1e6)
    return fmt::format("label out of range: {} implies more than a million classes (the count is the largest label "
                       "+ 1); set num_classes if that is intended",
                       value);
  if (value > 1e9) return fmt::format("label out of range: {} is too large for a class index", value);
  return {};
}

Tensor matrix(const std::vector<double>& values, std::int64_t n, std::int64_t d, Dtype dtype) {
  Tensor t(Shape{n, d}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return t;
}

void set_targets(Dataset& ds, const std::vector<double>& targets, Task task,
                 std::int64_t num_classes, Dtype dtype) {
  const auto n = static_cast<std::int64_t>(targets.size());
  ds.targets = matrix(targets, n, 1, dtype).alias_with_shape(Shape{n});
  ds.labels.clear();
  ds.num_classes = 0;
  if (task == Task::regression) return;
  ds.labels.reserve(targets.size());
  std::int64_t largest = -1;
  for (double v : targets) {
    ds.labels.push_back(static_cast<std::int64_t>(v));
    largest = std::max(largest, ds.labels.back());
  }
  ds.num_classes = num_classes > 0 ? num_classes : largest + 1;
}

}  // namespace hyperad::problems::detail
