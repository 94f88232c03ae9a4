// CSV loader: a header of column names (or none), then one numeric row per example.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "data_util.hpp"

namespace hyperad::problems {
namespace {

constexpr std::string_view kLoader = "load_csv";

// Splits one line at `delim`. A field may be "quoted" ("" inside stands for a quote, and
// the delimiter loses its meaning); spaces around fields are dropped. Returns an empty
// string, or the reason the quoting is malformed.
std::string split_fields(std::string_view line, char delim, std::vector<std::string>& fields) {
  fields.clear();
  std::size_t i = 0;
  while (true) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t') && line[i] != delim) ++i;
    std::string field;
    if (i < line.size() && line[i] == '"') {
      const std::size_t open = i++;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field += line[i++];
      }
      if (!closed) return fmt::format("unterminated quoted field starting at column {}", open + 1);
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t') && line[i] != delim) ++i;
      if (i < line.size() && line[i] != delim)
        return fmt::format("unexpected text after a quoted field at column {}: {}", i + 1,
                           detail::quote(line.substr(i)));
    } else {
      const std::size_t end = std::min(line.find(delim, i), line.size());
      field = std::string(detail::trim(line.substr(i, end - i)));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) return {};
    ++i;  // past the delimiter; a trailing delimiter makes a last empty field
  }
}

// "a, b, c" — cut after 20 names so a 785-column header stays readable.
std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(names.size(), 20);
  for (std::size_t k = 0; k < shown; ++k) out += (k ? ", " : "") + detail::quote(names[k]);
  if (shown < names.size()) out += fmt::format(", ... ({} columns)", names.size());
  return out;
}

}  // namespace

Dataset load_csv(const std::filesystem::path& path, const CsvOptions& options) {
  using detail::fail_line;
  const std::string text = detail::read_file(kLoader, path);
  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);  // UTF-8 byte-order mark

  std::vector<detail::Line> lines = detail::split_lines(body);
  std::erase_if(lines, [](const detail::Line& l) { return detail::trim(l.text).empty(); });
  if (lines.empty()) detail::fail_file(kLoader, path, "empty file (no header and no rows)");

  std::vector<std::string> fields;
  const auto split = [&](const detail::Line& l) {
    if (std::string why = split_fields(l.text, options.delimiter, fields); !why.empty())
      fail_line(kLoader, path, l.number, why);
  };

  // Column names.
  std::vector<std::string> names;
  std::size_t first_row = 0;
  split(lines[0]);
  if (options.has_header) {
    double ignored;
    if (std::all_of(fields.begin(), fields.end(), [&](const std::string& f) {
          return detail::parse_number(f, ignored) == detail::NumberStatus::ok;
        }))
      fail_line(kLoader, path, lines[0].number,
                "missing header: the first line holds only numbers (set CsvOptions::has_header = false "
                "for a file without one)");
    names = fields;
    first_row = 1;
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t k = 0; k < names.size(); ++k)
      if (auto [it, fresh] = seen.emplace(names[k], k); !fresh)
        fail_line(kLoader, path, lines[0].number,
                  fmt::format("duplicate column name {} (columns {} and {})", detail::quote(names[k]),
                              it->second + 1, k + 1));
  } else {
    for (std::size_t k = 0; k < fields.size(); ++k) names.push_back(fmt::format("col{}", k));
  }
  const std::size_t ncol = names.size();
  if (ncol < 2)
    fail_line(kLoader, path, lines[0].number,
              fmt::format("{} column; a dataset needs at least one feature column and the target", ncol));

  std::size_t target = ncol - 1;
  if (!options.target.empty()) {
    const auto it = std::find(names.begin(), names.end(), options.target);
    if (it == names.end())
      fail_line(kLoader, path, lines[0].number,
                fmt::format("missing target column {}; the columns are: {}", detail::quote(options.target),
                            list_names(names)));
    target = static_cast<std::size_t>(it - names.begin());
  }

  // Rows.
  const std::size_t nrow = lines.size() - first_row;
  if (nrow == 0) detail::fail_file(kLoader, path, "no data rows (only a header)");
  std::vector<double> x, y;
  x.reserve(nrow * (ncol - 1));
  y.reserve(nrow);
  for (std::size_t r = first_row; r < lines.size(); ++r) {
    const detail::Line& l = lines[r];
    split(l);
    if (fields.size() != ncol)
      fail_line(kLoader, path, l.number,
                fmt::format("ragged row: {} fields, expected {} ({})", fields.size(), ncol,
                            options.has_header ? "the header's column count"
                                               : fmt::format("as on line {}", lines[0].number)));
    for (std::size_t k = 0; k < ncol; ++k) {
      double v = 0;
      switch (detail::parse_number(fields[k], v, options.dtype)) {
        case detail::NumberStatus::ok: break;
        case detail::NumberStatus::not_a_number:
          fail_line(kLoader, path, l.number,
                    fmt::format("non-numeric field {} in column {} ({})", detail::quote(fields[k]), k + 1,
                                detail::quote(names[k])));
        case detail::NumberStatus::not_finite:
          fail_line(kLoader, path, l.number,
                    fmt::format("non-finite value {} in column {} ({}){}", detail::quote(fields[k]), k + 1,
                                detail::quote(names[k]),
                                std::isfinite(v) ? " as float32 (its largest magnitude is 3.4e38; load as float64)" : ""));
      }
      if (k != target) {
        x.push_back(v);
        continue;
      }
      if (options.task == Task::classification)
        if (std::string why = detail::label_problem(v, options.num_classes); !why.empty())
          fail_line(kLoader, path, l.number, fmt::format("target column {}: {}", detail::quote(names[k]), why));
      y.push_back(v);
    }
  }

  Dataset ds;
  const auto n = static_cast<std::int64_t>(nrow), d = static_cast<std::int64_t>(ncol - 1);
  ds.features = detail::matrix(x, n, d, options.dtype);
  detail::set_targets(ds, y, options.task, options.num_classes, options.dtype);
  for (std::size_t k = 0; k < ncol; ++k)
    if (k != target) ds.feature_names.push_back(names[k]);
  ds.target_name = names[target];
  ds.source = path.string();
  return ds;
}

}  // namespace hyperad::problems
