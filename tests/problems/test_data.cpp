// Data loaders (CSV, LIBSVM, IDX plain/gzip), the bundled datasets and Fashion-MNIST,
// every malformed-input error with its message, standardization, splits, class selection,
// and a fuzz test: random and mutated files either load or throw DataError.
#include <doctest/doctest.h>

#include "skip.hpp"
#include "temp_files.hpp"
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/problems/data.hpp"

using namespace hyperad;
using namespace hyperad::problems;
namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

namespace {

// A fresh temporary directory, removed at scope exit.
struct TempDir : hyperad::testing::TempDir {
  TempDir() : hyperad::testing::TempDir("hyperad_test_data_") {}
};

fs::path write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return p;
}
fs::path write_text(const fs::path& p, const std::string& s) { return write_bytes(p, Bytes(s.begin(), s.end())); }
fs::path write_gzip(const fs::path& p, const Bytes& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  gzclose(f);
  return p;
}
Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// An IDX file of unsigned bytes: magic 00 00 08 D, the extents big-endian, the data.
Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes b{0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// 5 images of 3 × 4 pixels with distinct values, and labels 0..2.
const Bytes kPixels = [] {
  Bytes p(60);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<unsigned char>((i * 37) % 256);
  return p;
}();
const Bytes kLabels{2, 0, 1, 1, 0};

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A DataError: ") + e.what();
  }
  return "NO EXCEPTION";
}

// Checks a DataError message names the file, the location, and every given fragment.
void check_error(const std::function<void()>& fn, const fs::path& file, const std::string& where,
                 const std::vector<std::string>& fragments) {
  const std::string msg = message_of(fn);
  INFO("message: " << msg);
  CHECK(msg.find(file.string()) != std::string::npos);
  CHECK(msg.find(where) != std::string::npos);
  for (const std::string& f : fragments) CHECK(msg.find(f) != std::string::npos);
}

}  // namespace

// ---- Round trips -------------------------------------------------------------------------

TEST_CASE("CSV round trip: header, target by name or last, quoting, CRLF, blank lines, dtypes") {
  TempDir dir;
  const fs::path p = write_text(dir / "small.csv",
                                "\xEF\xBB\xBF" "a, \"b, quoted\" ,y,c\r\n"
                                "1.5,-2,1,+3e2\r\n"
                                "\r\n"
                                " 0 , 4.25 ,0,  -1e-3\n"
                                "\n");
  Dataset last = load_csv(p, {.task = Task::regression});
  CHECK(last.features.shape() == Shape{2, 3});
  CHECK(last.feature_names == std::vector<std::string>{"a", "b, quoted", "y"});
  CHECK(last.target_name == "c");
  CHECK(last.features.to_vector() == std::vector<double>{1.5, -2, 1, 0, 4.25, 0});
  CHECK(last.targets.to_vector() == std::vector<double>{300, -1e-3});
  CHECK(!last.is_classification());
  CHECK(last.labels.empty());
  last.validate();

  Dataset byname = load_csv(p, {.target = "y", .dtype = Dtype::f32});
  CHECK(byname.dtype() == Dtype::f32);
  CHECK(byname.targets.dtype() == Dtype::f32);
  CHECK(byname.feature_names == std::vector<std::string>{"a", "b, quoted", "c"});
  CHECK(byname.labels == std::vector<std::int64_t>{1, 0});
  CHECK(byname.num_classes == 2);
  CHECK(byname.features.at({0, 2}) == 300.0);
  CHECK(byname.features.at({1, 2}) == doctest::Approx(-1e-3));
  CHECK(byname.class_counts() == std::vector<std::int64_t>{1, 1});
  byname.validate();

  // No header, another delimiter, a given class count.
  const fs::path q = write_text(dir / "noheader.csv", "1;2;0\n3;4;2\n5;6;1\n");
  Dataset nh = load_csv(q, {.has_header = false, .num_classes = 5, .delimiter = ';'});
  CHECK(nh.feature_names == std::vector<std::string>{"col0", "col1"});
  CHECK(nh.target_name == "col2");
  CHECK(nh.num_classes == 5);
  CHECK(nh.labels == std::vector<std::int64_t>{0, 2, 1});
  CHECK(load_csv(q, {.target = "col0", .has_header = false, .task = Task::regression, .delimiter = ';'})
            .targets.to_vector() == std::vector<double>{1, 3, 5});
}

TEST_CASE("LIBSVM round trip: one/zero-based, comments, qid, ±1 labels, n_features") {
  TempDir dir;
  const fs::path one = write_text(dir / "one.svm",
                                  "# a comment line\n"
                                  "+1 1:0.5 3:-2  # trailing comment\n"
                                  "-1 qid:7 2:1e1\n"
                                  "\n"
                                  "1\t4:3\n");
  Dataset d = load_libsvm(one);
  CHECK(d.features.shape() == Shape{3, 4});
  CHECK(d.features.to_vector() == std::vector<double>{0.5, 0, -2, 0, 0, 10, 0, 0, 0, 0, 0, 3});
  CHECK(d.labels == std::vector<std::int64_t>{1, 0, 1});
  CHECK(d.num_classes == 2);
  CHECK(d.feature_names == std::vector<std::string>{"f1", "f2", "f3", "f4"});
  CHECK(binary_signs(d).to_vector() == std::vector<double>{1, -1, 1});
  d.validate();

  Dataset wide = load_libsvm(one, {.n_features = 6, .dtype = Dtype::f32});
  CHECK(wide.features.shape() == Shape{3, 6});
  CHECK(wide.dtype() == Dtype::f32);
  CHECK(wide.features.at({2, 3}) == 3.0);

  Dataset reg = load_libsvm(one, {.task = Task::regression});
  CHECK(reg.targets.to_vector() == std::vector<double>{1, -1, 1});
  CHECK(reg.num_classes == 0);

  // Index 0 present → zero-based; multiclass labels.
  const fs::path zero = write_text(dir / "zero.svm", "2 0:1 2:5\n0 1:7\n1\n");
  Dataset z = load_libsvm(zero);
  CHECK(z.features.shape() == Shape{3, 3});
  CHECK(z.features.to_vector() == std::vector<double>{1, 0, 5, 0, 7, 0, 0, 0, 0});
  CHECK(z.labels == std::vector<std::int64_t>{2, 0, 1});
  CHECK(z.num_classes == 3);
  CHECK(z.feature_names.front() == "f0");
  // The same indices read as one-based only when forced to be zero-based elsewhere.
  const fs::path nozero = write_text(dir / "nozero.svm", "1 1:1 2:2\n0 2:3\n");
  CHECK(load_libsvm(nozero).features.shape() == Shape{2, 2});
  CHECK(load_libsvm(nozero, {.index_base = IndexBase::zero}).features.to_vector() ==
        std::vector<double>{0, 1, 2, 0, 0, 3});
}

TEST_CASE("LIBSVM into CSR: the dense loader's examples, no dense limit, the same errors") {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> files{
      {"one.svm", "# c\n+1 1:0.5 3:-2  # t\n-1 qid:7 2:1e1\n\n1\t4:3\n"},
      {"zero.svm", "2 0:1 2:5\n0 1:7\n1\n"},
      {"rows.svm", "1\n0 3:1.5\n1\n1 1:2 2:-1 7:4\n"}};
  for (const auto& [name, text] : files) {
    CAPTURE(name);
    const fs::path p = write_text(dir / name, text);
    for (Dtype dt : {Dtype::f64, Dtype::f32}) {
      const Dataset dense = load_libsvm(p, {.dtype = dt});
      const SparseDataset sparse = load_libsvm_sparse(p, {.dtype = dt});
      CHECK(sparse.dtype() == dt);
      CHECK(sparse.features.to_dense().shape() == dense.features.shape());
      CHECK(sparse.features.to_dense().to_vector() == dense.features.to_vector());
      CHECK(sparse.labels == dense.labels);
      CHECK(sparse.targets.to_vector() == dense.targets.to_vector());
      CHECK(sparse.num_classes == dense.num_classes);
    }
  }
  // A huge index is a wide sparse matrix, not a refusal (the dense loader's limit is 2^26).
  const fs::path huge = write_text(dir / "huge.svm", "1 1:1\n0 400000000:2\n");
  const SparseDataset wide = load_libsvm_sparse(huge);
  CHECK(wide.num_features() == 400000000);
  CHECK(wide.features.nnz() == 2);
  CHECK(wide.features.indices() == std::vector<std::int64_t>{0, 399999999});
  CHECK(wide.features.values().to_vector() == std::vector<double>{1, 2});
  // Errors come from the same parser, with the same lines and messages.
  const fs::path bad = write_text(dir / "bad.svm", "1 1:1 2:2\n0 5:1 3:2\n");
  check_error([&] { load_libsvm_sparse(bad); }, bad, "line 2", {"non-increasing index 3 after 5", "\"3:2\""});
  const fs::path beyond = write_text(dir / "beyond.svm", "1 1:1\n0 9:1\n");
  check_error([&] { load_libsvm_sparse(beyond, {.n_features = 5}); }, beyond, "line 2",
              {"index 9 is beyond n_features = 5"});
}

TEST_CASE("Matrix Market into CSR: general, symmetric, skew, pattern, duplicates summed") {
  TempDir dir;
  const fs::path general = write_text(dir / "g.mtx",
                                      "%%MatrixMarket matrix coordinate real general\n% a comment\n\n3 4 5\n"
                                      "3 4 -1.5\n1 1 2\n2 3 1e-3\n1 1 0.5\n1 4 7\n");
  const CsrMatrix g = load_matrix_market(general);
  CHECK(g.rows() == 3);
  CHECK(g.cols() == 4);
  CHECK(g.nnz() == 4);  // (1, 1) twice, summed
  CHECK(g.to_dense().to_vector() == std::vector<double>{2.5, 0, 0, 7, 0, 0, 1e-3, 0, 0, 0, 0, -1.5});
  CHECK(load_matrix_market(general, Dtype::f32).dtype() == Dtype::f32);

  const fs::path sym = write_text(dir / "s.mtx", "%%MatrixMarket matrix coordinate integer symmetric\n3 3 3\n1 1 4\n3 1 -2\n3 2 5\n");
  CHECK(load_matrix_market(sym).to_dense().to_vector() == std::vector<double>{4, 0, -2, 0, 0, 5, -2, 5, 0});
  const fs::path skew = write_text(dir / "k.mtx", "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 3\n");
  CHECK(load_matrix_market(skew).to_dense().to_vector() == std::vector<double>{0, -3, 3, 0});
  const fs::path pattern = write_text(dir / "p.mtx", "%%MatrixMarket MATRIX Coordinate Pattern General\n2 3 2\n1 3\n2 1\n");
  CHECK(load_matrix_market(pattern).to_dense().to_vector() == std::vector<double>{0, 0, 1, 1, 0, 0});
  const fs::path empty = write_text(dir / "e.mtx", "%%MatrixMarket matrix coordinate real general\n1000000 50 0\n");
  CHECK(load_matrix_market(empty).nnz() == 0);
}

TEST_CASE("Matrix Market errors name the file, the line and the reason") {
  TempDir dir;
  const std::string head = "%%MatrixMarket matrix coordinate real general\n";
  const auto check = [&](const std::string& body, const std::string& where, const std::vector<std::string>& fragments) {
    const fs::path p = write_text(dir / "bad.mtx", body);
    check_error([&] { load_matrix_market(p); }, p, where, fragments);
  };
  check("3 3 1\n1 1 1\n", "line 1", {"expected the banner"});
  check("%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n", "line 1", {"array (dense) format"});
  check("%%MatrixMarket matrix coordinate complex general\n", "line 1", {"field \"complex\""});
  check("%%MatrixMarket matrix coordinate real hermitian\n", "line 1", {"symmetry \"hermitian\""});
  check(head + "3 3\n", "line 2", {"size line"});
  check(head + "% c\n3 3 2\n1 1 1\n4 1 2\n", "line 5", {"entry (4, 1) is outside the 3 × 3 matrix"});
  check(head + "3 3 1\n0 1 1\n", "line 3", {"entry (0, 1)", "one-based"});
  check(head + "3 3 1\n1 1 x\n", "line 3", {"malformed value \"x\""});
  check(head + "3 3 1\n1 1 inf\n", "line 3", {"malformed value \"inf\""});
  check(head + "3 3 1\n1 1\n", "line 3", {"expected an entry \"row column value\""});
  check(head + "3 3 1\n1 1 1\n2 2 2\n", "line 4", {"more entries than the 1"});
  check(head + "3 3 3\n1 1 1\n2 2 2\n", "line 4", {"ends after 2 of the 3 entries"});
  check("%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n", "line 3", {"expected a finite integer"});
  check("%%MatrixMarket matrix coordinate real symmetric\n2 3 0\n", "line 2", {"must be square, got 2 × 3"});
  check("%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 2 1\n", "line 3", {"above the diagonal"});
  check("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1\n", "line 3", {"not below the diagonal"});
  check(head + "100000000 3 0\n", "line 2", {"more than max_rows = 67108864"});
  check(head, "bad.mtx", {"no size line"});
  check(head + "9223372036854775807 3 0\n", "line 2", {"more than max_rows"});
  check(head + "2 2 2\n1 1 1e308\n1 1 1e308\n", "bad.mtx", {"duplicate entries at (1, 1) sum to inf"});
}

TEST_CASE("IDX round trip, plain and gzip, with limit") {
  TempDir dir;
  const Bytes images = idx_bytes({5, 3, 4}, kPixels), labels = idx_bytes({5}, kLabels);
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const auto put = [&](const std::string& name, const Bytes& b) {
      return gz ? write_gzip(dir / (name + ".gz"), b) : write_bytes(dir / name, b);
    };
    const fs::path img = put("img", images), lab = put("lab", labels);
    if (gz) CHECK(read_bytes(img)[0] == 0x1f);
    CHECK(idx_dims(img) == std::vector<std::int64_t>{5, 3, 4});
    Tensor x = load_idx_images(img);
    CHECK(x.shape() == Shape{5, 12});
    const std::vector<double> v = x.to_vector();
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(kPixels[i] / 255.0));
    CHECK(load_idx_labels(lab) == std::vector<std::int64_t>{2, 0, 1, 1, 0});
    CHECK(load_idx_labels(lab, 2) == std::vector<std::int64_t>{2, 0});

    Dataset ds = load_idx(img, lab, 3);
    CHECK(ds.features.shape() == Shape{3, 12});
    CHECK(ds.labels == std::vector<std::int64_t>{2, 0, 1});
    CHECK(ds.num_classes == 3);
    CHECK(ds.targets.to_vector() == std::vector<double>{2, 0, 1});
    ds.validate();
    Dataset f32 = load_idx(img, lab, {.limit = 0, .num_classes = 4, .dtype = Dtype::f32});
    CHECK(f32.size() == 5);
    CHECK(f32.num_classes == 4);
    CHECK(f32.dtype() == Dtype::f32);
    CHECK(f32.features.at({4, 11}) == doctest::Approx(kPixels[59] / 255.0));
  }
}

// ---- Real data -----------------------------------------------------------------------------

TEST_CASE("data_dir: a registered installation that has gone is named, not skipped") {
  // What the installed package's generated file does at start-up, with a prefix since removed.
  problems::detail::register_installed_data_dir("/nonexistent/prefix/share/hyperad");
  std::string msg;
  try {
    (void)data_dir();
  } catch (const DataError& e) {
    msg = e.what();
  }
  problems::detail::register_installed_data_dir("");  // back to the source tree
  CHECK(msg.find("the installed package's datasets are not at \"/nonexistent/prefix/share/hyperad\"") !=
        std::string::npos);
  CHECK(msg.find("HYPERAD_DATA_DIR") != std::string::npos);
  CHECK(std::filesystem::is_regular_file(data_dir() / "wine.csv"));
}

TEST_CASE("bundled CSVs: shapes, classes, values") {
  CHECK(builtin_datasets().size() == 4);
  Dataset bc = load_builtin("breast_cancer");
  CHECK(bc.features.shape() == Shape{569, 30});
  CHECK(bc.num_classes == 2);
  CHECK(bc.class_counts() == std::vector<std::int64_t>{212, 357});
  CHECK(bc.features.at({0, 0}) == 17.99);
  CHECK(bc.feature_names.front() == "mean_radius");
  CHECK(bc.target_name == "benign");
  CHECK(bc.class_names == std::vector<std::string>{"malignant", "benign"});
  CHECK(bc.labels[0] == 0);
  bc.validate();

  Dataset digits = load_builtin("digits", Dtype::f32);
  CHECK(digits.features.shape() == Shape{1797, 64});
  CHECK(digits.num_classes == 10);
  CHECK(digits.class_counts() ==
        std::vector<std::int64_t>{178, 182, 177, 183, 181, 182, 181, 179, 174, 180});
  CHECK(digits.features.at({0, 2}) == 5.0);
  CHECK(digits.dtype() == Dtype::f32);

  Dataset wine = load_builtin("wine");
  CHECK(wine.features.shape() == Shape{178, 13});
  CHECK(wine.class_counts() == std::vector<std::int64_t>{59, 71, 48});
  CHECK(wine.features.at({0, 12}) == 1065.0);
  CHECK(wine.feature_names[11] == "od280/od315_of_diluted_wines");

  Dataset diabetes = load_builtin("diabetes");
  CHECK(diabetes.features.shape() == Shape{442, 10});
  CHECK(!diabetes.is_classification());
  CHECK(diabetes.targets.at({0}) == 151.0);
  CHECK(diabetes.targets.at({441}) == 57.0);
  CHECK(diabetes.features.at({0, 2}) == 32.1);
  CHECK_THROWS_WITH_AS(diabetes.class_counts(), doctest::Contains("regression"), ValueError);

  CHECK_THROWS_WITH_AS(load_builtin("iris"),
                       doctest::Contains("unknown dataset \"iris\"; the bundled datasets are breast_cancer, digits, wine, diabetes"),
                       ValueError);
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist") {
  const std::string missing = message_of([] { fashion_mnist_dir("/nonexistent/fmnist"); });
  CHECK(missing.find("/nonexistent/fmnist") != std::string::npos);
  CHECK(missing.find("train-images-idx3-ubyte") != std::string::npos);
  CHECK(missing.find("apt-get install dataset-fashion-mnist") != std::string::npos);
  CHECK(missing.find("scripts/setup.sh") != std::string::npos);

  fs::path dir;
  try {
    dir = fashion_mnist_dir();
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("apt-get install dataset-fashion-mnist") != std::string::npos);
    hyperad::testing::skip(std::string("Fashion-MNIST is not installed: ") + e.what());
    return;
  }
  CHECK(idx_dims(dir / "train-images-idx3-ubyte.gz") == std::vector<std::int64_t>{60000, 28, 28});
  CHECK(idx_dims(dir / "t10k-images-idx3-ubyte.gz") == std::vector<std::int64_t>{10000, 28, 28});
  const std::vector<std::int64_t> train_labels = load_idx_labels(dir / "train-labels-idx1-ubyte.gz");
  CHECK(train_labels.size() == 60000);
  for (std::int64_t c = 0; c < 10; ++c) CHECK(std::count(train_labels.begin(), train_labels.end(), c) == 6000);

  Dataset train = load_fashion_mnist(FashionMnistPart::train, {.limit = 1000});
  CHECK(train.features.shape() == Shape{1000, 784});
  CHECK(train.num_classes == 10);
  CHECK(train.class_names[9] == "Ankle boot");
  CHECK(train.labels == std::vector<std::int64_t>(train_labels.begin(), train_labels.begin() + 1000));
  const std::vector<double> px = train.features.to_vector();
  CHECK(*std::min_element(px.begin(), px.end()) == 0.0);
  CHECK(*std::max_element(px.begin(), px.end()) == 1.0);
  train.validate();

  Dataset test = load_fashion_mnist(FashionMnistPart::test, {.dtype = Dtype::f32});
  CHECK(test.features.shape() == Shape{10000, 784});
  CHECK(test.class_counts() == std::vector<std::int64_t>(10, 1000));
}

// ---- Errors --------------------------------------------------------------------------------

TEST_CASE("CSV errors name the file, the line and the reason") {
  TempDir dir;
  const auto csv = [&](const std::string& name, const std::string& text) { return write_text(dir / name, text); };
  const auto load = [](const fs::path& p, CsvOptions o = {}) { return [p, o] { load_csv(p, o); }; };

  fs::path p = csv("ragged.csv", "a,b,y\n1,2,0\n\n3,0\n");
  check_error(load(p), p, "line 4", {"load_csv", "ragged row: 2 fields, expected 3"});
  p = csv("text.csv", "a,b,y\n1,2,0\n1,abc,1\n");
  check_error(load(p), p, "line 3", {"non-numeric field \"abc\" in column 2 (\"b\")"});
  p = csv("emptyfield.csv", "a,b,y\n1,,1\n");
  check_error(load(p), p, "line 2", {"non-numeric field \"\" in column 2"});
  p = csv("inf.csv", "a,b,y\n1,inf,1\n");
  check_error(load(p), p, "line 2", {"non-finite value \"inf\""});
  // Finite in float64, infinite in float32: refused when loading float32, kept otherwise.
  p = csv("f32.csv", "a,b,y\n1,2,0\n1,1e39,1\n");
  check_error(load(p, {.dtype = Dtype::f32}), p, "line 3",
              {"non-finite value \"1e39\" in column 2 (\"b\") as float32", "load as float64"});
  CHECK(load_csv(p).features.at({1, 1}) == 1e39);
  CHECK(load_csv(write_text(dir / "f32ok.csv", "a,b,y\n1,3.4e38,0\n"), {.dtype = Dtype::f32}).features.at({0, 1}) ==
        static_cast<double>(3.4e38f));
  // A huge label would make the inferred class count (and per-class storage) explode.
  p = csv("hugelabel.csv", "a,b,y\n1,2,0\n1,2,1000000000\n");
  check_error(load(p), p, "line 3", {"1000000000 implies more than a million classes", "set num_classes"});
  p = csv("binary.csv", std::string("a,b,y\n1,\x01\xff,1\n"));
  check_error(load(p), p, "line 2", {"\"\\x01\\xff\""});
  p = csv("empty.csv", "");
  check_error(load(p), p, "empty.csv\"", {"empty file"});
  p = csv("blank.csv", "\n  \n\r\n");
  check_error(load(p), p, "blank.csv\"", {"empty file"});
  p = csv("headeronly.csv", "a,b,y\n");
  check_error(load(p), p, "headeronly.csv\"", {"no data rows"});
  p = csv("target.csv", "alpha,beta,gamma\n1,2,3\n");
  check_error(load(p, {.target = "delta"}), p, "line 1",
              {"missing target column \"delta\"; the columns are: \"alpha\", \"beta\", \"gamma\""});
  p = csv("noheader.csv", "1,2,0\n3,4,1\n");
  check_error(load(p), p, "line 1", {"missing header", "has_header = false"});
  p = csv("dup.csv", "a,b,a,y\n1,2,3,0\n");
  check_error(load(p), p, "line 1", {"duplicate column name \"a\" (columns 1 and 3)"});
  p = csv("onecol.csv", "y\n1\n");
  check_error(load(p), p, "line 1", {"1 column"});
  p = csv("quote.csv", "a,b,y\n1,\"2,0\n");
  check_error(load(p), p, "line 2", {"unterminated quoted field"});
  p = csv("quote2.csv", "a,b,y\n1,\"2\"x,0\n");
  check_error(load(p), p, "line 2", {"unexpected text after a quoted field", "\"x,0\""});
  p = csv("labels.csv", "a,y\n1,0\n2,3\n");
  check_error(load(p, {.num_classes = 3}), p, "line 3",
              {"target column \"y\": label out of range: 3 is not in [0, 3) (num_classes = 3)"});
  p = csv("neg.csv", "a,y\n1,0\n2,-1\n");
  check_error(load(p), p, "line 3", {"label out of range: -1 is negative"});
  p = csv("frac.csv", "a,y\n1,0.5\n");
  check_error(load(p), p, "line 2", {"class label 0.5 is not an integer"});
  CHECK(load_csv(p, {.task = Task::regression}).targets.at({0}) == 0.5);  // fine for regression

  check_error(load(dir / "absent.csv"), dir / "absent.csv", "absent.csv\"", {"no such file"});
  check_error(load(dir.path), dir.path, "\"", {"is a directory"});

  // The location is also available as fields.
  try {
    load_csv(dir / "ragged.csv");
    FAIL("no exception");
  } catch (const DataError& e) {
    CHECK(e.file() == (dir / "ragged.csv").string());
    CHECK(e.line() == 4);
    CHECK(e.byte() == -1);
  }
}

TEST_CASE("LIBSVM errors name the file, the line and the reason") {
  TempDir dir;
  const auto svm = [&](const std::string& name, const std::string& text) { return write_text(dir / name, text); };
  const auto load = [](const fs::path& p, LibsvmOptions o = {}) { return [p, o] { load_libsvm(p, o); }; };

  fs::path p = svm("token.svm", "1 1:2\n0 3\n");
  check_error(load(p), p, "line 2", {"load_libsvm", "malformed token \"3\" (expected index:value)"});
  p = svm("index.svm", "1 a:2\n");
  check_error(load(p), p, "line 1", {"bad index in token \"a:2\""});
  p = svm("f32.svm", "1 1:2\n0 2:-1e39\n");
  LibsvmOptions f32;
  f32.dtype = Dtype::f32;
  check_error(load(p, f32), p, "line 2", {"malformed value in token \"2:-1e39\"", "within the float32 range"});
  CHECK(load_libsvm(p).features.at({1, 1}) == -1e39);
  p = svm("negindex.svm", "1 -3:2\n");
  check_error(load(p), p, "line 1", {"bad index in token \"-3:2\""});
  p = svm("order.svm", "1 1:1 2:2\n0 5:1 3:2\n");
  check_error(load(p), p, "line 2", {"non-increasing index 3 after 5", "\"3:2\""});
  p = svm("repeat.svm", "1 2:1 2:2\n");
  check_error(load(p), p, "line 1", {"non-increasing index 2 after 2"});
  p = svm("value.svm", "1 1:x\n");
  check_error(load(p), p, "line 1", {"malformed value in token \"1:x\""});
  p = svm("label.svm", "1 1:1\nyes 1:2\n");
  check_error(load(p), p, "line 2", {"malformed label \"yes\""});
  p = svm("empty.svm", "# only a comment\n\n");
  check_error(load(p), p, "empty.svm\"", {"empty file (no examples)"});
  p = svm("nofeat.svm", "1\n0\n");
  check_error(load(p), p, "nofeat.svm\"", {"no features"});
  CHECK(load_libsvm(p, {.n_features = 2}).features.to_vector() == std::vector<double>(4, 0.0));
  p = svm("wide.svm", "1 1:1\n0 9:1\n");
  check_error(load(p, {.n_features = 5}), p, "line 2", {"index 9 is beyond n_features = 5 (one-based indices)"});
  check_error(load(p, {.max_dense_elements = 10}), p, "line 2", {"index 9", "2 × 9", "max_dense_elements = 10"});
  // A 22-byte file naming a huge index is refused at the default limit (2^26 elements),
  // before anything of that size is allocated.
  p = svm("huge.svm", "1 1:1\n0 400000000:1\n");
  check_error(load(p), p, "line 2", {"index 400000000", "max_dense_elements = 67108864"});
  p = svm("base.svm", "1 1:1\n0 0:1\n");
  check_error(load(p, {.index_base = IndexBase::one}), p, "line 2", {"bad index 0 in a one-based file"});
  p = svm("range.svm", "1 1:1\n7 1:1\n");
  check_error(load(p, {.num_classes = 3}), p, "line 2", {"label out of range: 7 is not in [0, 3)"});
  p = svm("mixed.svm", "0 1:1\n1 1:1\n-1 1:1\n");
  check_error(load(p), p, "line 3", {"label out of range: -1 in a file that also has label 0"});
  check_error(load(p, {.minus_one_is_zero = false}), p, "line 3", {"-1 is negative"});
  p = svm("big.svm", "1 99999999999:1\n");
  check_error(load(p), p, "line 1", {"index 99999999999", "too large"});
  CHECK_THROWS_AS(load_libsvm(p, {.n_features = -1}), ValueError);
}

TEST_CASE("IDX errors name the file, the byte offset and the reason") {
  TempDir dir;
  const Bytes images = idx_bytes({5, 3, 4}, kPixels), labels = idx_bytes({5}, kLabels);
  const fs::path img = write_bytes(dir / "img", images), lab = write_bytes(dir / "lab", labels);

  fs::path p = write_bytes(dir / "magic", Bytes{0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 1, 7});
  check_error([&] { load_idx_images(p); }, p, "byte 0", {"load_idx_images", "wrong magic 0x504B0304", "0x00000803"});
  Bytes typed = labels;
  typed[2] = 0x0D;
  p = write_bytes(dir / "type", typed);
  check_error([&] { load_idx_labels(p); }, p, "byte 0", {"wrong magic 0x00000D01", "element type 0x0D is not supported"});
  check_error([&] { load_idx_labels(img); }, img, "byte 0", {"wrong magic 0x00000803: 3 dimensions", "0x00000801"});
  check_error([&] { load_idx_images(lab); }, lab, "byte 0", {"wrong magic 0x00000801: 1 dimensions"});

  Bytes cut(images.begin(), images.end() - 10);
  p = write_bytes(dir / "cut", cut);
  check_error([&] { load_idx_images(p); }, p, "byte 66",  // where the data ends
              {"truncated file: expected 60 bytes of pixel data after the 16-byte header", "found 50"});
  CHECK(load_idx_images(p, 4).size(0) == 4);  // the first 4 images are all there
  p = write_gzip(dir / "cut.gz", cut);
  check_error([&] { load_idx_images(p); }, p, "byte 66", {"expected 60 bytes", "found 50", "decompressed"});
  p = write_bytes(dir / "header", Bytes(images.begin(), images.begin() + 9));
  check_error([&] { load_idx_images(p); }, p, "byte 9", {"truncated header: expected 12 bytes of dimensions, found 5"});
  p = write_bytes(dir / "magic3", Bytes{0, 0, 8});
  check_error([&] { load_idx_labels(p); }, p, "byte 3", {"ends inside the 4-byte magic number"});
  p = write_bytes(dir / "empty", Bytes{});
  check_error([&] { load_idx_labels(p); }, p, "byte 0", {"empty file"});
  Bytes longer = labels;
  longer.push_back(3);
  p = write_bytes(dir / "long", longer);
  check_error([&] { load_idx_labels(p); }, p, "byte 13", {"unexpected data after the 5 bytes", "1 more bytes"});
  p = write_bytes(dir / "zero", idx_bytes({0, 28, 28}, {}));
  check_error([&] { load_idx_images(p); }, p, "byte 4", {"dimension 0 is 0"});

  // A gzip stream truncated inside the compressed data, and one with garbage inside.
  const Bytes gz = read_bytes(write_gzip(dir / "full.gz", images));
  p = write_bytes(dir / "halfgz.gz", Bytes(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
  check_error([&] { load_idx_images(p); }, p, "byte ", {"truncated file", "(zlib: unexpected end of file)"});
  // Cut inside the 8-byte trailer: all the data decompresses, but the checksum is missing.
  for (std::size_t cut_bytes : {1, 4, 8}) {
    CAPTURE(cut_bytes);
    p = write_bytes(dir / "trailer.gz", Bytes(gz.begin(), gz.end() - static_cast<long>(cut_bytes)));
    check_error([&] { load_idx_images(p); }, p, "byte ", {"gzip stream ends early", "checksum"});
  }
  Bytes crc = gz;
  crc[crc.size() - 6] ^= 1;  // the CRC-32 in the gzip trailer
  p = write_bytes(dir / "crc.gz", crc);
  check_error([&] { load_idx_images(p); }, p, "byte ", {"corrupt gzip data", "incorrect data check"});
  Bytes bad = gz;
  for (std::size_t i = 12; i < bad.size() - 8; ++i) bad[i] ^= 0x5a;
  p = write_bytes(dir / "badgz.gz", bad);
  const std::string corrupt = message_of([&] { load_idx_images(p); });
  CHECK(corrupt.find("badgz.gz") != std::string::npos);
  CHECK(corrupt.find("byte") != std::string::npos);
  CHECK(corrupt.find("NOT A DataError") == std::string::npos);

  // Pairing errors.
  const fs::path lab4 = write_bytes(dir / "lab4", idx_bytes({4}, {0, 1, 2, 3}));
  check_error([&] { load_idx(img, lab4); }, lab4, "img\" holds 5 images", {"mismatched counts", "holds 4 labels"});
  const fs::path lab9 = write_bytes(dir / "lab9", idx_bytes({5}, {0, 1, 9, 3, 4}));
  check_error([&] { load_idx(img, lab9, {.num_classes = 5}); }, lab9, "byte 10",
              {"label out of range: 9 is not in [0, 5)"});
  check_error([&] { load_idx_images(dir / "nothing"); }, dir / "nothing", "\"", {"no such file"});
  try {
    load_idx_images(dir / "cut");
    FAIL("no exception");
  } catch (const DataError& e) {
    CHECK(e.byte() == 66);
    CHECK(e.line() == -1);
  }
}

// ---- Transformations ------------------------------------------------------------------------

namespace {
// n rows, features (i, 2i mod 7, 5), label i mod k — the first feature identifies a row.
Dataset numbered(std::int64_t n, std::int64_t k, Dtype dtype = Dtype::f64) {
  std::vector<double> x, y;
  Dataset d;
  for (std::int64_t i = 0; i < n; ++i) {
    x.insert(x.end(), {static_cast<double>(i), static_cast<double>((2 * i) % 7), 5.0});
    d.labels.push_back(i % k);
    y.push_back(static_cast<double>(i % k));
  }
  d.features = tensor(x, Shape{n, 3}, dtype);
  d.targets = tensor(y, Shape{n}, dtype);
  d.feature_names = {"id", "mod", "const"};
  d.num_classes = k;
  d.source = "numbered";
  d.validate();
  return d;
}
std::vector<double> column(const Dataset& d, std::int64_t j) {
  std::vector<double> c;
  for (std::int64_t i = 0; i < d.size(); ++i) c.push_back(d.features.at({i, j}));
  return c;
}
}  // namespace

TEST_CASE("standardize fits on train only; constant columns are centered") {
  Dataset train = numbered(20, 2), other = numbered(6, 2);
  const Tensor before = train.features;
  const Standardizer s = standardize(train, other);
  CHECK(before.at({3, 0}) == 3.0);  // the old tensor is untouched
  for (std::int64_t j = 0; j < 2; ++j) {
    const std::vector<double> c = column(train, j);
    const double mean = std::accumulate(c.begin(), c.end(), 0.0) / c.size();
    double var = 0;
    for (double v : c) var += (v - mean) * (v - mean);
    CHECK(mean == doctest::Approx(0.0).epsilon(1e-12));
    CHECK(std::sqrt(var / c.size()) == doctest::Approx(1.0));
  }
  CHECK(s.scale[2] == 1.0);  // constant column
  CHECK(column(train, 2) == std::vector<double>(20, 0.0));
  // The other set uses train's statistics: id column mean 9.5, population std sqrt(33.25).
  CHECK(s.mean[0] == doctest::Approx(9.5));
  CHECK(s.scale[0] == doctest::Approx(std::sqrt(33.25)));
  for (std::int64_t i = 0; i < 6; ++i) CHECK(other.features.at({i, 0}) == doctest::Approx((i - 9.5) / std::sqrt(33.25)));

  Dataset f32 = numbered(10, 2, Dtype::f32);
  standardize(f32);
  CHECK(f32.dtype() == Dtype::f32);
  CHECK_THROWS_WITH_AS(s.transform(zeros(Shape{2, 4})), doctest::Contains("[n, 3] (the fitted width), got [2, 4]"),
                       ShapeError);
  CHECK_THROWS_AS(Standardizer::fit(zeros(Shape{0, 3})), ValueError);
}

TEST_CASE("split is seeded, reproducible, disjoint and covering; stratified keeps proportions") {
  const Dataset d = numbered(103, 3);
  const Splits a = split(d, {0.6, 0.2, 0.2}, 42), b = split(d, {0.6, 0.2, 0.2}, 42), c = split(d, {0.6, 0.2, 0.2}, 43);
  CHECK(a.train.size() == 62);  // 61.8, 20.6, 20.6 → 61 + 20 + 20 and the 2 left to the largest remainders
  CHECK(a.validation.size() == 21);
  CHECK(a.test.size() == 20);
  CHECK(column(a.train, 0) == column(b.train, 0));
  CHECK(column(a.test, 0) == column(b.test, 0));
  CHECK(column(a.train, 0) != column(c.train, 0));
  std::multiset<double> ids;
  for (const Dataset* part : {&a.train, &a.validation, &a.test}) {
    part->validate();
    for (std::int64_t i = 0; i < part->size(); ++i) {
      ids.insert(part->features.at({i, 0}));
      CHECK(part->labels[i] == static_cast<std::int64_t>(part->features.at({i, 0})) % 3);  // rows stay whole
      CHECK(part->targets.at({i}) == part->labels[i]);
    }
  }
  CHECK(ids.size() == 103);
  CHECK(std::set<double>(ids.begin(), ids.end()).size() == 103);

  const Splits none = split(d, {1.0, 0.0, 0.0}, 1);
  CHECK(none.train.size() == 103);
  CHECK(none.validation.size() == 0);
  CHECK(none.test.size() == 0);

  const Splits s = split(d, {0.5, 0.25, 0.25}, 7, true);
  // Classes of 35, 34, 34, each split 50/25/25 by largest remainder: 35 → 17.5, 8.75, 8.75
  // → 17, 9, 9; 34 → 17, 8.5, 8.5 → 17, 9, 8 (ties go to the earlier part).
  CHECK(s.train.class_counts() == std::vector<std::int64_t>{17, 17, 17});
  CHECK(s.validation.class_counts() == std::vector<std::int64_t>{9, 9, 9});
  CHECK(s.test.class_counts() == std::vector<std::int64_t>{9, 8, 8});
  CHECK(column(s.train, 0) == column(split(d, {0.5, 0.25, 0.25}, 7, true).train, 0));

  CHECK_THROWS_WITH_AS(split(d, {0.5, 0.2, 0.2}), doctest::Contains("sum to 1"), ValueError);
  CHECK_THROWS_WITH_AS(split(d, {1.2, -0.2, 0.0}), doctest::Contains("validation -0.2"), ValueError);
  Dataset reg = d;
  reg.labels.clear();
  reg.num_classes = 0;
  CHECK_THROWS_WITH_AS(split(reg, {}, 0, true), doctest::Contains("no classes"), ValueError);
}

TEST_CASE("select_classes relabels in the given order; subset; binary_signs; validate") {
  Dataset d = numbered(12, 4);
  d.class_names = {"a", "b", "c", "d"};
  const Dataset s = select_classes(d, {3, 1});
  CHECK(s.size() == 6);
  CHECK(s.num_classes == 2);
  CHECK(s.class_names == std::vector<std::string>{"d", "b"});
  CHECK(column(s, 0) == std::vector<double>{1, 3, 5, 7, 9, 11});
  CHECK(s.labels == std::vector<std::int64_t>{1, 0, 1, 0, 1, 0});
  CHECK(s.targets.to_vector() == std::vector<double>{1, 0, 1, 0, 1, 0});
  s.validate();
  CHECK(binary_signs(s).to_vector() == std::vector<double>{1, -1, 1, -1, 1, -1});
  CHECK_THROWS_WITH_AS(select_classes(d, {4}), doctest::Contains("class 4 is not in [0, 4)"), ValueError);
  CHECK_THROWS_WITH_AS(select_classes(d, {1, 1}), doctest::Contains("listed twice"), ValueError);
  CHECK_THROWS_WITH_AS(binary_signs(d), doctest::Contains("has 4 classes, not 2"), ValueError);

  const std::vector<std::int64_t> rows{5, 5, 0};
  const Dataset sub = subset(d, rows);
  CHECK(column(sub, 0) == std::vector<double>{5, 5, 0});
  CHECK(sub.labels == std::vector<std::int64_t>{1, 1, 0});
  const std::vector<std::int64_t> out_of_range{12};
  CHECK_THROWS_WITH_AS(subset(d, out_of_range), doctest::Contains("index 12 out of range"), ValueError);

  Dataset broken = d;
  broken.labels[2] = 9;
  CHECK_THROWS_WITH_AS(broken.validate(), doctest::Contains("label 9 of example 2 is not in [0, 4)"), ValueError);
  broken = d;
  broken.feature_names.pop_back();
  CHECK_THROWS_WITH_AS(broken.validate(), doctest::Contains("2 feature names for 3 features"), ValueError);
}

// ---- Fuzz ------------------------------------------------------------------------------------

TEST_CASE("fuzz: random and mutated inputs to every loader load or throw DataError, nothing else") {
  // Bounded: 3000 rounds of 11 loaders, or 12 s, whichever comes first (the sanitizer pass
  // runs it too, ASan/UBSan catching what a plain run would miss).
  TempDir dir;
  Generator gen(20240607);
  const auto text = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
  const Bytes images = idx_bytes({5, 3, 4}, kPixels), labels = idx_bytes({5}, kLabels);
  const fs::path good_img = write_bytes(dir / "good_img", images), good_lab = write_bytes(dir / "good_lab", labels);
  std::vector<Bytes> seeds{
      text("a,\"b\",y\n1.5,2,0\n-3,4e-2,1\n5,6,2\n"),
      text("x1,x2,x3,t\n0.1,0.2,0.3,12.5\n1,2,3,-4\n"),
      text("+1 1:0.5 3:2 # c\n-1 2:1\n1 qid:3 4:7\n"),
      text("2 0:1 5:3\n0 1:2\n1 3:1e3\n"),
      text("%%MatrixMarket matrix coordinate real symmetric\n% c\n3 3 3\n1 1 2\n3 1 -1.5\n3 2 4\n"),
      images,
      labels,
  };
  {
    const fs::path tmp = write_gzip(dir / "seed.gz", images);
    seeds.push_back(read_bytes(tmp));
    seeds.push_back(read_bytes(write_gzip(dir / "seed2.gz", labels)));
  }
  const std::string alphabet = "0123456789,.-+e: \n\r\t\"#qidinfNaN\x1f\x8b";

  const auto mutate = [&](Bytes b) {
    const std::uint64_t kind = gen.below(6);
    if (kind == 0 || b.empty()) {  // random bytes
      b.resize(gen.below(64));
      for (auto& c : b) c = static_cast<unsigned char>(gen.below(256));
    } else if (kind == 1) {  // truncation
      b.resize(gen.below(b.size()));
    } else if (kind == 2) {  // byte flips
      for (std::uint64_t k = 0, m = 1 + gen.below(4); k < m; ++k) b[gen.below(b.size())] ^= static_cast<unsigned char>(1 + gen.below(255));
    } else if (kind == 3) {  // insert characters the parsers care about
      for (std::uint64_t k = 0, m = 1 + gen.below(4); k < m; ++k)
        b.insert(b.begin() + static_cast<long>(gen.below(b.size() + 1)),
                 static_cast<unsigned char>(alphabet[gen.below(alphabet.size())]));
    } else if (kind == 4) {  // delete a range
      const std::size_t at = gen.below(b.size()), len = std::min<std::size_t>(b.size() - at, 1 + gen.below(8));
      b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
    } else {  // random text from the alphabet
      b.resize(gen.below(80));
      for (auto& c : b) c = static_cast<unsigned char>(alphabet[gen.below(alphabet.size())]);
    }
    return b;
  };

  int loaded = 0, rejected = 0, rounds = 0;
  const auto attempt = [&](const std::string& what, const std::function<void()>& fn) {
    try {
      fn();
      ++loaded;
    } catch (const DataError& e) {
      ++rejected;
      if (std::string(e.what()).find("fuzz") == std::string::npos) FAIL(what << ": the message does not name the file: " << e.what());
    } catch (const std::exception& e) {
      FAIL(what << " threw a non-DataError: " << e.what());
    } catch (...) {
      FAIL(what << " threw a non-exception");
    }
  };
  // What a loader accepts must be usable: consistent (validate) and finite.
  const auto usable = [](const Dataset& d) {
    d.validate();
    if (!list::all_finite({d.features, d.targets})) FAIL("a loaded dataset holds a NaN or an infinity");
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (int round = 0; round < 3000 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(12); ++round, ++rounds) {
    Bytes input = mutate(seeds[gen.below(seeds.size())]);
    fs::path p;
    if (gen.below(8) == 0) {  // mutated content behind a valid gzip stream: the parsers, not the CRC, must refuse it
      p = write_gzip(dir / "fuzz", input);
      input = read_bytes(p);
    } else {
      p = write_bytes(dir / "fuzz", input);
    }
    attempt("load_csv", [&] { usable(load_csv(p)); });
    attempt("load_csv regression", [&] { usable(load_csv(p, {.has_header = false, .task = Task::regression})); });
    attempt("load_csv float32", [&] { usable(load_csv(p, {.dtype = Dtype::f32})); });
    attempt("load_libsvm", [&] { usable(load_libsvm(p, {.max_dense_elements = 1 << 16})); });
    attempt("load_libsvm zero", [&] {
      usable(load_libsvm(p, {.n_features = 8, .index_base = IndexBase::zero, .task = Task::regression}));
    });
    attempt("load_matrix_market", [&] {
      if (!list::all_finite({load_matrix_market(p, Dtype::f64, 1 << 16).values()})) FAIL("a matrix holds a NaN or an infinity");
    });
    attempt("load_idx_images", [&] {
      const std::vector<double> x = load_idx_images(p).to_vector();
      if (std::any_of(x.begin(), x.end(), [](double v) { return !(v >= 0.0 && v <= 1.0); })) FAIL("IDX pixels outside [0, 1]");
    });
    attempt("load_idx_images limit", [&] { load_idx_images(p, 2); });
    attempt("load_idx_labels", [&] { load_idx_labels(p); });
    attempt("idx_dims", [&] { idx_dims(p); });
    attempt("load_idx images", [&] { usable(load_idx(p, good_lab)); });
    attempt("load_idx labels", [&] { usable(load_idx(good_img, p, {.num_classes = 3})); });
  }
  MESSAGE("fuzz: " << rounds << " rounds: " << loaded << " loaded, " << rejected << " rejected");
  CHECK(rounds >= 400);  // a slow machine still covers the old fixed run
  CHECK(loaded > rounds / 8);
  CHECK(rejected > rounds * 5);
}
