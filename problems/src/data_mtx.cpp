// Matrix Market coordinate files (`%%MatrixMarket matrix coordinate real general`): the
// triplet format of sparse matrices, read straight into CSR.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "data_util.hpp"

namespace hyperad::problems {
namespace {

constexpr std::string_view kLoader = "load_matrix_market";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

enum class Field { real, integer, pattern };
enum class Symmetry { general, symmetric, skew };

}  // namespace

CsrMatrix load_matrix_market(const std::filesystem::path& path, Dtype dtype, std::int64_t max_rows) {
  using detail::fail_line;
  using detail::quote;
  const std::string text = detail::read_file(kLoader, path);
  const std::vector<detail::Line> lines = detail::split_lines(text);
  if (lines.empty() || lines.front().text.rfind("%%MatrixMarket", 0) != 0)
    fail_line(kLoader, path, 1, "expected the banner \"%%MatrixMarket matrix coordinate <field> <symmetry>\"");

  // The banner: object, format, field, symmetry.
  const std::vector<std::string_view> banner = detail::tokens(lines.front().text);
  if (banner.size() != 5)
    fail_line(kLoader, path, 1, fmt::format("the banner has {} words, expected 5 (%%MatrixMarket matrix coordinate "
                                            "<field> <symmetry>)", banner.size()));
  if (lower(banner[1]) != "matrix") fail_line(kLoader, path, 1, fmt::format("object {} is not a matrix", quote(banner[1])));
  if (lower(banner[2]) == "array")
    fail_line(kLoader, path, 1, "the array (dense) format is not read here: a sparse matrix comes as coordinate");
  if (lower(banner[2]) != "coordinate")
    fail_line(kLoader, path, 1, fmt::format("format {} is not coordinate", quote(banner[2])));
  Field field{};
  if (const std::string f = lower(banner[3]); f == "real") field = Field::real;
  else if (f == "integer") field = Field::integer;
  else if (f == "pattern") field = Field::pattern;
  else fail_line(kLoader, path, 1, fmt::format("field {} is not one of: real, integer, pattern", quote(banner[3])));
  Symmetry symmetry{};
  if (const std::string s = lower(banner[4]); s == "general") symmetry = Symmetry::general;
  else if (s == "symmetric") symmetry = Symmetry::symmetric;
  else if (s == "skew-symmetric") symmetry = Symmetry::skew;
  else fail_line(kLoader, path, 1, fmt::format("symmetry {} is not one of: general, symmetric, skew-symmetric", quote(banner[4])));

  std::int64_t rows = -1, cols = -1, declared = -1, read = 0;
  std::vector<std::int64_t> ri, ci;
  std::vector<double> values;
  std::int64_t last_line = 1;
  const std::size_t fields = field == Field::pattern ? 2 : 3;
  for (std::size_t k = 1; k < lines.size(); ++k) {
    const detail::Line& l = lines[k];
    const std::vector<std::string_view> t = detail::tokens(l.text);
    if (t.empty() || t.front().front() == '%') continue;  // blank or comment
    last_line = l.number;
    if (declared < 0) {  // the size line: rows, columns, entries
      if (t.size() != 3 || !detail::parse_int(t[0], rows) || !detail::parse_int(t[1], cols) ||
          !detail::parse_int(t[2], declared) || rows < 0 || cols < 0 || declared < 0)
        fail_line(kLoader, path, l.number,
                  fmt::format("expected the size line \"rows columns entries\" (three whole numbers >= 0), got {}",
                              quote(l.text)));
      if (rows > max_rows)
        fail_line(kLoader, path, l.number,
                  fmt::format("{} rows is more than max_rows = {} (the row pointers alone would take {:.0f} MB)", rows,
                              max_rows, (static_cast<double>(rows) + 1) * 8 / 1e6));
      if (cols > (std::int64_t{1} << 31) - 1)
        fail_line(kLoader, path, l.number, fmt::format("{} columns is more than 2^31 - 1", cols));
      if (symmetry != Symmetry::general && rows != cols)
        fail_line(kLoader, path, l.number, fmt::format("a {} matrix must be square, got {} × {}", lower(banner[4]), rows, cols));
      // The declared count may be anything: reserve no more than the file can hold.
      const auto room = static_cast<std::size_t>(std::min<std::int64_t>(declared, static_cast<std::int64_t>(text.size() / 4)));
      ri.reserve(room);
      ci.reserve(room);
      values.reserve(room);
      continue;
    }
    if (read == declared)
      fail_line(kLoader, path, l.number, fmt::format("more entries than the {} the size line declares", declared));
    std::int64_t i = 0, j = 0;
    double v = 1;
    if (t.size() != fields || !detail::parse_int(t[0], i) || !detail::parse_int(t[1], j))
      fail_line(kLoader, path, l.number,
                fmt::format("expected an entry \"row column{}\", got {}", fields == 3 ? " value" : "", quote(l.text)));
    if (i < 1 || i > rows || j < 1 || j > cols)
      fail_line(kLoader, path, l.number,
                fmt::format("entry ({}, {}) is outside the {} × {} matrix (indices are one-based)", i, j, rows, cols));
    if (fields == 3) {
      std::int64_t whole = 0;
      const bool number = detail::parse_number(t[2], v, dtype) == detail::NumberStatus::ok;
      if (!number || (field == Field::integer && !detail::parse_int(t[2], whole)))
        fail_line(kLoader, path, l.number,
                  fmt::format("malformed value {} (expected a finite {}{})", quote(t[2]),
                              field == Field::integer ? "integer" : "number",
                              dtype == Dtype::f32 ? " within the float32 range" : ""));
    }
    if (symmetry == Symmetry::symmetric && i < j)
      fail_line(kLoader, path, l.number,
                fmt::format("entry ({}, {}) is above the diagonal; a symmetric file stores the lower triangle", i, j));
    if (symmetry == Symmetry::skew && i <= j)
      fail_line(kLoader, path, l.number,
                fmt::format("entry ({}, {}) is not below the diagonal; a skew-symmetric file stores the strict lower "
                            "triangle", i, j));
    ri.push_back(i - 1);
    ci.push_back(j - 1);
    values.push_back(v);
    if (symmetry != Symmetry::general && i != j) {  // the mirrored entry
      ri.push_back(j - 1);
      ci.push_back(i - 1);
      values.push_back(symmetry == Symmetry::skew ? -v : v);
    }
    ++read;
  }
  if (declared < 0) detail::fail_file(kLoader, path, "no size line after the banner");
  if (read < declared)
    fail_line(kLoader, path, last_line,
              fmt::format("the file ends after {} of the {} entries the size line declares", read, declared));
  CsrMatrix m = CsrMatrix::from_triplets(rows, cols, ri, ci, values, dtype);
  // Each value was finite; duplicates summed (or rounded to float32) may not be.
  const std::vector<double> summed = m.values().to_vector();
  for (std::size_t k = 0; k < summed.size(); ++k)
    if (!std::isfinite(summed[k])) {
      const auto row = std::upper_bound(m.indptr().begin(), m.indptr().end(), static_cast<std::int64_t>(k)) -
                       m.indptr().begin() - 1;
      detail::fail_file(kLoader, path,
                        fmt::format("the duplicate entries at ({}, {}) sum to {} (beyond the {} range)", row + 1,
                                    m.indices()[k] + 1, summed[k], dtype == Dtype::f32 ? "float32" : "float64"));
    }
  return m;
}

}  // namespace hyperad::problems
