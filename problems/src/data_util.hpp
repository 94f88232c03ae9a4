#pragma once
// Shared pieces of the loaders: error formatting, quoting of untrusted text, number
// parsing, line splitting, and assembling a Dataset from parsed values.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hyperad/problems/data.hpp"

namespace hyperad::problems::detail {

/// `loader: "file", line N: reason`
[[noreturn]] void fail_line(std::string_view loader, const std::filesystem::path& file,
                            std::int64_t line, std::string_view reason);
/// `loader: "file", byte N: reason`
[[noreturn]] void fail_byte(std::string_view loader, const std::filesystem::path& file,
                            std::int64_t byte, std::string_view reason);
/// `loader: "file": reason`
[[noreturn]] void fail_file(std::string_view loader, const std::filesystem::path& file,
                            std::string_view reason);

/// Text from a file, safe to print: in double quotes, control and non-ASCII bytes as \xNN,
/// cut after 40 characters.
std::string quote(std::string_view text);

/// The whole file; DataError when it cannot be opened or read.
std::string read_file(std::string_view loader, const std::filesystem::path& path);

/// not_finite: ±inf or NaN as written, or beyond the range of the dtype it will be stored in
/// (a float32 column holding 1e39 would become inf).
enum class NumberStatus { ok, not_a_number, not_finite };
/// A decimal or scientific number, optionally signed, nothing else (spaces are not trimmed),
/// finite in `dtype`.
NumberStatus parse_number(std::string_view text, double& out, Dtype dtype = Dtype::f64);

/// A whole decimal integer (optional minus sign), nothing else.
bool parse_int(std::string_view text, std::int64_t& out);

/// The fields of a line separated by runs of spaces and tabs.
std::vector<std::string_view> tokens(std::string_view s);

/// Strips spaces and tabs from both ends.
std::string_view trim(std::string_view s);

/// Lines of `text` (split at \n, a trailing \r removed), with their 1-based numbers.
struct Line {
  std::int64_t number;
  std::string_view text;
};
std::vector<Line> split_lines(std::string_view text);

/// Checks that a target value is a class index: an integer in [0, num_classes) when
/// num_classes > 0, else ≥ 0. Returns the reason it is not, or an empty string.
std::string label_problem(double value, std::int64_t num_classes);

/// Row-major n × d values → [n, d] tensor of `dtype`.
Tensor matrix(const std::vector<double>& values, std::int64_t n, std::int64_t d, Dtype dtype);

/// Fills targets/labels/num_classes of `ds` from the target values (already validated as
/// labels for classification). num_classes = 0 means largest label + 1.
void set_targets(Dataset& ds, const std::vector<double>& targets, Task task,
                 std::int64_t num_classes, Dtype dtype);

}  // namespace hyperad::problems::detail
