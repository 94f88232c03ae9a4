// LIBSVM / SVMlight loader: `label index:value ...` per line, into dense features
// (load_libsvm) or a CSR matrix (load_libsvm_sparse); one parser serves both.
#include <algorithm>

#include <fmt/format.h>

#include "data_util.hpp"

namespace hyperad::problems {
namespace {

using detail::parse_int;
using detail::tokens;

constexpr std::string_view kLoader = "load_libsvm";
// Larger indices are refused before any dense allocation is even considered.
constexpr std::int64_t kMaxIndex = (std::int64_t{1} << 31) - 1;

struct Entry {
  std::int64_t row, index;
  double value;
};

// The file's examples, validated: labels (with -1 read as 0 where that applies), the
// entries in file order (rows ascending, indices strictly increasing within a row), the
// index base and the number of features.
struct Parsed {
  std::vector<double> labels;
  std::vector<std::int64_t> row_line;  // line number of each example, for later errors
  std::vector<Entry> entries;
  std::int64_t shift = 1;              // subtracted from an index to give its column
  std::int64_t d = 0;
  std::int64_t widest_row = -1, widest_index = -1;  // the largest index and its example
};

Parsed parse(const std::filesystem::path& path, const LibsvmOptions& options) {
  using detail::fail_line;
  using detail::quote;
  if (options.n_features < 0) throw ValueError(fmt::format("load_libsvm: n_features = {} is negative", options.n_features));
  const std::string text = detail::read_file(kLoader, path);

  Parsed p;
  std::vector<double>& labels = p.labels;
  std::vector<std::int64_t>& row_line = p.row_line;
  std::vector<Entry>& entries = p.entries;
  std::int64_t line_of_minus_one = -1;
  bool has_zero_label = false;
  for (const detail::Line& l : detail::split_lines(text)) {
    std::string_view content = l.text.substr(0, l.text.find('#'));
    const std::vector<std::string_view> toks = tokens(content);
    if (toks.empty()) continue;  // blank or comment-only line
    const auto row = static_cast<std::int64_t>(labels.size());

    double label = 0;
    if (detail::parse_number(toks[0], label, options.dtype) != detail::NumberStatus::ok)
      fail_line(kLoader, path, l.number, fmt::format("malformed label {} (expected a finite number{})", quote(toks[0]),
                                                           options.dtype == Dtype::f32 ? " within the float32 range" : ""));
    if (options.task == Task::classification) {
      if (label == -1.0 && options.minus_one_is_zero) {
        if (line_of_minus_one < 0) line_of_minus_one = l.number;
      } else if (std::string why = detail::label_problem(label, options.num_classes); !why.empty()) {
        fail_line(kLoader, path, l.number, why);
      }
      has_zero_label |= label == 0.0;
    }
    labels.push_back(label);
    row_line.push_back(l.number);

    std::int64_t previous = -1;
    for (std::size_t t = 1; t < toks.size(); ++t) {
      const std::string_view tok = toks[t];
      const std::size_t colon = tok.find(':');
      if (colon == std::string_view::npos)
        fail_line(kLoader, path, l.number, fmt::format("malformed token {} (expected index:value)", quote(tok)));
      const std::string_view key = tok.substr(0, colon), val = tok.substr(colon + 1);
      std::int64_t index = 0;
      if (key == "qid") {  // SVMrank query id: validated, not used
        if (!parse_int(val, index))
          fail_line(kLoader, path, l.number, fmt::format("malformed token {} (bad query id)", quote(tok)));
        continue;
      }
      if (!parse_int(key, index) || index < 0)
        fail_line(kLoader, path, l.number,
                  fmt::format("bad index in token {} (expected a non-negative integer)", quote(tok)));
      if (index > kMaxIndex)
        fail_line(kLoader, path, l.number, fmt::format("index {} in token {} is too large", index, quote(tok)));
      if (index <= previous)
        fail_line(kLoader, path, l.number,
                  fmt::format("non-increasing index {} after {} in token {} (indices must be strictly increasing)",
                              index, previous, quote(tok)));
      previous = index;
      double value = 0;
      if (detail::parse_number(val, value, options.dtype) != detail::NumberStatus::ok)
        fail_line(kLoader, path, l.number,
                  fmt::format("malformed value in token {} (expected a finite number{})", quote(tok),
                              options.dtype == Dtype::f32 ? " within the float32 range, ±3.4e38" : ""));
      entries.push_back({row, index, value});
    }
  }
  if (labels.empty()) detail::fail_file(kLoader, path, "empty file (no examples)");

  // -1 means class 0 in the ±1 convention, which must not be mixed with an explicit 0.
  if (line_of_minus_one >= 0) {
    if (has_zero_label)
      fail_line(kLoader, path, line_of_minus_one,
                "label out of range: -1 in a file that also has label 0 (-1 is read as class 0 only in "
                "files labelled -1/+1)");
    for (double& v : labels)
      if (v == -1.0) v = 0.0;
  }

  // Index base, then the number of features.
  const auto zero_entry = std::find_if(entries.begin(), entries.end(), [](const Entry& e) { return e.index == 0; });
  const bool zero_based = options.index_base == IndexBase::zero ||
                          (options.index_base == IndexBase::automatic && zero_entry != entries.end());
  if (options.index_base == IndexBase::one && zero_entry != entries.end())
    fail_line(kLoader, path, row_line[zero_entry->row], "bad index 0 in a one-based file (IndexBase::one)");
  const std::int64_t shift = zero_based ? 0 : 1;
  const auto widest = std::max_element(entries.begin(), entries.end(),
                                       [](const Entry& a, const Entry& b) { return a.index < b.index; });
  const std::int64_t needed = widest == entries.end() ? 0 : widest->index - shift + 1;
  std::int64_t d = options.n_features;
  if (d == 0) {
    d = needed;
  } else if (needed > d) {
    fail_line(kLoader, path, row_line[widest->row],
              fmt::format("index {} is beyond n_features = {} ({}-based indices)", widest->index, d,
                          zero_based ? "zero" : "one"));
  }
  if (d == 0) detail::fail_file(kLoader, path, "no features: every example is empty (pass n_features)");
  p.shift = shift;
  p.d = d;
  if (widest != entries.end()) {
    p.widest_row = widest->row;
    p.widest_index = widest->index;
  }
  return p;
}

}  // namespace

Dataset load_libsvm(const std::filesystem::path& path, const LibsvmOptions& options) {
  const Parsed p = parse(path, options);
  const std::int64_t d = p.d, shift = p.shift;
  const auto n = static_cast<std::int64_t>(p.labels.size());
  if (d > options.max_dense_elements / n) {
    const std::string why = fmt::format("the dense features would be {} × {}, more than max_dense_elements = {}",
                                        n, d, options.max_dense_elements);
    if (options.n_features > 0 || p.widest_row < 0) detail::fail_file(kLoader, path, why + " (from n_features)");
    detail::fail_line(kLoader, path, p.row_line[static_cast<std::size_t>(p.widest_row)],
                      fmt::format("index {}: {} (load_libsvm_sparse reads it into a sparse matrix)", p.widest_index, why));
  }

  // Written straight into the (zeroed) tensor: no second dense copy.
  Dataset ds;
  ds.features = zeros({n, d}, options.dtype);
  dispatch(options.dtype, [&]<class T>() {
    T* x = ds.features.mutable_data<T>();
    for (const Entry& e : p.entries) x[e.row * d + e.index - shift] = static_cast<T>(e.value);
  });
  detail::set_targets(ds, p.labels, options.task, options.num_classes, options.dtype);
  for (std::int64_t j = 0; j < d; ++j) ds.feature_names.push_back(fmt::format("f{}", j + shift));
  ds.target_name = "label";
  ds.source = path.string();
  return ds;
}

SparseDataset load_libsvm_sparse(const std::filesystem::path& path, const LibsvmOptions& options) {
  const Parsed p = parse(path, options);
  const auto n = static_cast<std::int64_t>(p.labels.size());
  // The entries are in row order with increasing indices: they are the CSR arrays already.
  std::vector<std::int64_t> indptr(static_cast<std::size_t>(n) + 1, 0), indices;
  std::vector<double> values;
  indices.reserve(p.entries.size());
  values.reserve(p.entries.size());
  for (const Entry& e : p.entries) {
    ++indptr[static_cast<std::size_t>(e.row) + 1];
    indices.push_back(e.index - p.shift);
    values.push_back(e.value);
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(n); ++r) indptr[r + 1] += indptr[r];
  const auto nnz = static_cast<std::int64_t>(values.size());
  Dataset targets;  // set_targets fills targets, labels and classes; the features stay sparse
  detail::set_targets(targets, p.labels, options.task, options.num_classes, options.dtype);
  SparseDataset ds{.features = CsrMatrix(n, p.d, std::move(indptr), std::move(indices), tensor(values, {nnz}, options.dtype)),
                   .targets = std::move(targets.targets),
                   .labels = std::move(targets.labels),
                   .target_name = "label",
                   .class_names = std::move(targets.class_names),
                   .num_classes = targets.num_classes,
                   .source = path.string()};
  return ds;
}

}  // namespace hyperad::problems
