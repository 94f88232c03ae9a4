#pragma once
/// \file data.hpp
/// Datasets for the problems: loaders (CSV, LIBSVM/SVMlight, IDX plain or gzip), the
/// bundled CSVs and Fashion-MNIST, standardization, seeded splits and class selection.
///
/// Every loader either returns a consistent `Dataset` or throws `DataError` naming the
/// loader, the file, the line (text formats) or byte offset (IDX) and the reason. Misuse
/// of the functions themselves (bad fractions, unknown class, ...) throws `ValueError`.
/// See docs/data.md for the formats and the exact rules.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::problems {

/// Malformed or missing data. `what()` reads
///   `load_csv: "path/x.csv", line 5: row has 3 fields, expected 4 (the header has 4 columns)`
/// and the location is also available field by field.
class DataError : public Error {
 public:
  /// `message` is the complete text; `line` (1-based) and `byte` are -1 when they do not apply.
  explicit DataError(const std::string& message, std::string file = {}, std::int64_t line = -1,
                     std::int64_t byte = -1)
      : Error(message), file_(std::move(file)), line_(line), byte_(byte) {}
  const std::string& file() const { return file_; }
  std::int64_t line() const { return line_; }
  std::int64_t byte() const { return byte_; }

 private:
  std::string file_;
  std::int64_t line_;
  std::int64_t byte_;
};

/// How the target column is read: classification targets must be integer class indices.
enum class Task : std::uint8_t { classification, regression };

/// n examples of d features, with a regression target or class labels.
struct Dataset {
  Tensor features;                          ///< [n, d], float64 (default) or float32
  Tensor targets;                           ///< [n], dtype of features: the target, or the class index as a number
  std::vector<std::int64_t> labels;         ///< n class indices in [0, num_classes); empty for regression
  std::vector<std::string> feature_names;   ///< d names
  std::string target_name;                  ///< the target column's name ("label" for LIBSVM/IDX)
  std::vector<std::string> class_names;     ///< num_classes names when known, else empty
  std::int64_t num_classes = 0;             ///< 0 for regression
  std::string source;                       ///< where it came from (file names), for messages

  std::int64_t size() const { return features.defined() ? features.size(0) : 0; }
  std::int64_t num_features() const { return features.defined() ? features.size(1) : 0; }
  bool is_classification() const { return num_classes > 0; }
  Dtype dtype() const { return features.dtype(); }
  /// Examples per class (num_classes entries); ValueError for a regression dataset.
  std::vector<std::int64_t> class_counts() const;
  /// Throws ValueError when the members disagree (shapes, label range, names count).
  void validate() const;
};

// ---- Loaders --------------------------------------------------------------------------

/// CSV with one example per line. Fields are numbers (surrounding spaces allowed, "…"
/// quoting allowed); blank lines are skipped; a UTF-8 byte-order mark is ignored.
struct CsvOptions {
  std::string target = {};          ///< target column by name; empty = the last column
  bool has_header = true;           ///< false: columns are named col0, col1, ...
  Task task = Task::classification;
  std::int64_t num_classes = 0;     ///< classification: 0 = largest label + 1; else labels must be below it
  Dtype dtype = Dtype::f64;
  char delimiter = ',';
};
Dataset load_csv(const std::filesystem::path& path, const CsvOptions& options = {});

/// How LIBSVM feature indices are numbered.
enum class IndexBase : std::uint8_t {
  automatic,  ///< zero-based if index 0 occurs anywhere in the file, else one-based
  zero,
  one,
};

/// LIBSVM / SVMlight: `label index:value index:value ... # comment`, indices strictly
/// increasing within a line, absent features are 0. `qid:N` tokens are accepted and ignored.
struct LibsvmOptions {
  std::int64_t n_features = 0;      ///< 0 = infer from the largest index; else indices must fit
  IndexBase index_base = IndexBase::automatic;
  Task task = Task::classification;
  std::int64_t num_classes = 0;     ///< as in CsvOptions
  /// Classification: read label -1 as class 0 (the ±1 convention) unless label 0 also
  /// occurs in the file (then -1 is out of range).
  bool minus_one_is_zero = true;
  Dtype dtype = Dtype::f64;
  /// Refuse files whose dense features would exceed this many elements (n × d): 2^26 by
  /// default (512 MB of float64, MNIST-sized), so that a few bytes naming a large index
  /// cannot allocate gigabytes. Raise it for larger dense data; sparse data belongs in
  /// load_libsvm_sparse, which has no such limit.
  std::int64_t max_dense_elements = std::int64_t{1} << 26;
};
Dataset load_libsvm(const std::filesystem::path& path, const LibsvmOptions& options = {});

/// n examples whose d features are a sparse matrix (text, one-hot data); the other members
/// as in Dataset.
struct SparseDataset {
  CsrMatrix features;                      ///< n × d, float64 (default) or float32
  Tensor targets;                          ///< [n]
  std::vector<std::int64_t> labels;        ///< class indices; empty for regression
  std::string target_name;
  std::vector<std::string> class_names;
  std::int64_t num_classes = 0;            ///< 0 for regression
  std::string source;
  /// d names when known (a text dataset's vocabulary), else empty: a LIBSVM file may name
  /// 10⁸ columns, and d strings would cost more than its non-zeros.
  std::vector<std::string> feature_names{};

  std::int64_t size() const { return features.rows(); }
  std::int64_t num_features() const { return features.cols(); }
  bool is_classification() const { return num_classes > 0; }
  Dtype dtype() const { return features.dtype(); }
};

/// The same file format and checks as load_libsvm (the same messages, with line numbers),
/// read straight into a CSR matrix: memory proportional to the non-zeros, no dense
/// intermediate and no max_dense_elements limit (10⁴ documents × 10⁵ terms is fine).
SparseDataset load_libsvm_sparse(const std::filesystem::path& path, const LibsvmOptions& options = {});

/// A Matrix Market coordinate file (the triplet format of sparse matrices,
/// math.nist.gov/MatrixMarket): the banner `%%MatrixMarket matrix coordinate FIELD
/// SYMMETRY` with FIELD real, integer or pattern (every value 1) and SYMMETRY general,
/// symmetric or skew-symmetric (the lower triangle stored, mirrored on reading), `%`
/// comment lines, the size line `rows columns entries`, then one-based `row column [value]`
/// entries in any order; duplicates are summed (a non-finite sum is refused). Read straight into CSR: memory follows the
/// entries. DataError names the line: a bad banner (dense `array` files included), a
/// malformed or out-of-range entry, an entry in the wrong triangle, more or fewer entries
/// than declared, more than `max_rows` rows (their row pointers are allocated whatever
/// the entries; raise it for taller matrices) or 2³¹ − 1 columns.
CsrMatrix load_matrix_market(const std::filesystem::path& path, Dtype dtype = Dtype::f64,
                             std::int64_t max_rows = std::int64_t{1} << 26);

// ---- Sparse text ----------------------------------------------------------------------

/// Term counts as tf-idf features, the weighting of both text datasets below: entry (i, j)
/// becomes count · idf_j with idf_j = ln((1 + n) / (1 + df_j)) + 1 (df_j: documents that
/// contain term j), then every row is scaled to unit ℓ2 norm (an empty row stays empty).
/// Rare terms weigh more; a document's length does not matter. ValueError for a negative
/// count.
CsrMatrix tfidf(const CsrMatrix& counts);

/// Where Debian's wordnet-base package puts WordNet 3.0's database files.
inline constexpr std::string_view kWordnetDir = "/usr/share/wordnet";

/// `dir` (default kWordnetDir) after checking that it holds WordNet's four data files
/// (data.noun, data.verb, data.adj, data.adv); otherwise a DataError naming what is
/// missing and how to install it.
std::filesystem::path wordnet_dir(const std::filesystem::path& dir = {});

struct WordnetOptions {
  std::filesystem::path dir{};  ///< the WordNet database (data.noun, ...); empty: kWordnetDir
  /// Keep the terms that occur in at least this many glosses (2: 33,496 terms; 1: 53,920).
  std::int64_t min_df = 2;
  /// Where the built dataset is cached (LIBSVM file + vocabulary): empty means
  /// $HYPERAD_CACHE_DIR, else the build tree's data-cache folder; "none" disables caching.
  /// The cache is rebuilt when the WordNet files or min_df change, or it does not load.
  std::filesystem::path cache_dir{};
  Dtype dtype = Dtype::f64;
};

/// WordNet's glosses as a text-classification dataset: one document per synset (117,659:
/// nouns, verbs, adjectives, adverbs in the database's order), its gloss (the definition
/// and the example sentences after the `|`) as tf-idf features over the vocabulary, its
/// class the synset's lexicographer file (45 classes: noun.animal, verb.motion, adj.all,
/// ...; class_names in lexicographer-file order). Tokens: maximal runs of ASCII letters,
/// lowercased, of two letters or more (so "self-contained" is two tokens and digits
/// separate words); terms in fewer than min_df glosses are dropped; feature_names is the
/// vocabulary in first-occurrence order. DataError naming the package to install when the
/// files are missing, and the file and line of a malformed record.
SparseDataset wordnet_glosses(const WordnetOptions& options = {});

/// A synthetic corpus with Zipf term frequencies, for tests and benchmarks: each document
/// has a class drawn uniformly and a length drawn uniformly in [min_length, max_length]
/// tokens; each token is, with probability topic_share, a term of its class's topic (term
/// j belongs to class j mod classes; the topic's terms again Zipf-distributed), else a term
/// of the whole vocabulary with P(rank r) ∝ 1 / (r + 1)^exponent. Features are the tf-idf
/// of the counts. Seeded: the same options give the same corpus on every machine.
struct ZipfTextOptions {
  std::int64_t documents = 1000;
  std::int64_t terms = 5000;
  std::int64_t classes = 5;
  double exponent = 1.1;
  std::int64_t min_length = 5, max_length = 30;
  double topic_share = 0.3;
  std::uint64_t seed = 0;
  Dtype dtype = Dtype::f64;
};
SparseDataset zipf_text(const ZipfTextOptions& options = {});

/// IDX (the MNIST format), plain or gzip-compressed (detected by the bytes 1f 8b). A whole
/// gzip file is verified against its trailer (CRC-32, length): a stream cut anywhere, even
/// in the last byte, is refused.
struct IdxOptions {
  /// Read only the first `limit` items (0 = all). A gzip file read in part is checked as
  /// far as it is read; its trailer is not reached.
  std::int64_t limit = 0;
  std::int64_t num_classes = 0;     ///< 0 = largest label + 1; else labels must be below it
  Dtype dtype = Dtype::f64;
};
/// Unsigned-byte images (magic 0x0000080D with D ≥ 2 dimensions) as [n, product of the
/// other dimensions], pixels divided by 255 (so in [0, 1]).
Tensor load_idx_images(const std::filesystem::path& path, std::int64_t limit = 0, Dtype dtype = Dtype::f64);
/// Unsigned-byte labels (magic 0x00000801).
std::vector<std::int64_t> load_idx_labels(const std::filesystem::path& path, std::int64_t limit = 0);
/// The extents in an IDX file's header (e.g. {60000, 28, 28}), reading nothing else.
std::vector<std::int64_t> idx_dims(const std::filesystem::path& path);
/// Images and labels as a classification dataset; the two headers must agree on the count.
Dataset load_idx(const std::filesystem::path& images, const std::filesystem::path& labels,
                 const IdxOptions& options = {});
Dataset load_idx(const std::filesystem::path& images, const std::filesystem::path& labels,
                 std::int64_t limit);

// ---- Bundled and system datasets ------------------------------------------------------

/// A CSV shipped in problems/data (see problems/data/README.md for the origins).
struct BuiltinDataset {
  std::string_view name;         ///< e.g. "breast_cancer"
  std::string_view file;         ///< e.g. "breast_cancer.csv"
  Task task;
  std::string_view description;  ///< one line, for listings
};
/// breast_cancer, digits, wine, diabetes.
std::span<const BuiltinDataset> builtin_datasets();
/// The directory of the bundled CSVs: $HYPERAD_DATA_DIR if set; else, in a program built
/// against the installed package (find_package(hyperad)), the package's share/hyperad;
/// else the source tree's problems/data (programs built in hyperad's own build tree).
/// Throws DataError naming every place it looked when none holds them.
std::filesystem::path data_dir();
namespace detail {
/// Called at start-up by the file the installed package's CMake config generates into
/// every program that links hyperad::problems, and by the installed `hyperad` tool (from
/// its own location); not for direct use.
void register_installed_data_dir(const char* dir);
}  // namespace detail
/// Loads a bundled dataset by name (ValueError listing the names when unknown).
Dataset load_builtin(std::string_view name, Dtype dtype = Dtype::f64);

/// Where Debian's dataset-fashion-mnist puts the files.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
/// `dir` (default kFashionMnistDir) after checking that it holds the four Fashion-MNIST
/// files ({train,t10k}-{images-idx3,labels-idx1}-ubyte, each plain or .gz); otherwise a
/// DataError naming what is missing and how to install it.
std::filesystem::path fashion_mnist_dir(const std::filesystem::path& dir = {});
enum class FashionMnistPart : std::uint8_t { train, test };
/// The 60,000 training or 10,000 test images (784 pixels in [0, 1], 10 classes with their
/// names). `options.num_classes` is forced to 10.
Dataset load_fashion_mnist(FashionMnistPart part, IdxOptions options = {},
                           const std::filesystem::path& dir = {});

// ---- Transformations -------------------------------------------------------------------
// None of these modify a tensor in place: they give datasets new tensors, so copies of a
// Dataset (which share storage) are never changed behind one's back.

/// Per-feature affine map x ↦ (x − mean) / scale, fitted on one dataset.
struct Standardizer {
  std::vector<double> mean;
  /// The population standard deviation, or 1 for a (numerically) constant column:
  /// std ≤ 1e-12 · max(1, |mean|). Constant columns are thus only centered (become 0).
  std::vector<double> scale;

  /// Fits on the rows of `features` [n, d] (n ≥ 1).
  static Standardizer fit(const Tensor& features);
  /// A new tensor (same dtype) with the map applied; ShapeError when d differs.
  Tensor transform(const Tensor& features) const;
  /// dataset.features = transform(dataset.features).
  void apply(Dataset& dataset) const;
};

/// Fits on `train` only and applies the same map to `train` and every other dataset
/// (validation and test data are transformed with the training statistics).
template <class... Others>
Standardizer standardize(Dataset& train, Others&... others) {
  Standardizer s = Standardizer::fit(train.features);
  s.apply(train);
  (s.apply(others), ...);
  return s;
}

/// The rows `indices` (any order, repeats allowed) of `dataset`; ValueError when out of range.
Dataset subset(const Dataset& dataset, std::span<const std::int64_t> indices);

/// The rows `indices` of a sparse dataset (CsrMatrix::select_rows); ValueError when out of range.
SparseDataset subset(const SparseDataset& dataset, std::span<const std::int64_t> indices);

/// Fractions of a split; each ≥ 0, summing to 1.
struct SplitFractions {
  double train = 0.6;
  double validation = 0.2;
  double test = 0.2;
};
struct Splits {
  Dataset train, validation, test;
};
/// A seeded random partition (same seed ⇒ same split on every machine). Sizes are the
/// fractions of n rounded by largest remainder (they sum to n; a zero fraction gives an
/// empty part). `stratified` (classification only) splits every class separately with the
/// same fractions, so each part keeps the class proportions.
Splits split(const Dataset& dataset, const SplitFractions& fractions = {}, std::uint64_t seed = 0,
             bool stratified = false);

/// The same split of a sparse dataset: the same seed gives the same rows as for a dense
/// dataset of the same size and labels.
struct SparseSplits {
  SparseDataset train, validation, test;
};
SparseSplits split(const SparseDataset& dataset, const SplitFractions& fractions = {}, std::uint64_t seed = 0,
                   bool stratified = false);

/// The examples whose label is in `classes`, relabelled 0..k−1 in the order given
/// (class_names follow); for N-way tasks. ValueError for a class out of range or repeated.
Dataset select_classes(const Dataset& dataset, const std::vector<std::int64_t>& classes);

/// Binary labels as ±1 (class 1 ↦ +1, class 0 ↦ −1), the form logistic_loss takes;
/// ValueError unless num_classes == 2.
Tensor binary_signs(const Dataset& dataset);

}  // namespace hyperad::problems
