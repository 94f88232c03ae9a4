// Sparse text data: tf-idf against its formula, the Zipf corpus's frequencies and topics,
// WordNet's glosses (sizes, a known gloss's tokens, the cache, errors), sparse splits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "hyperad/problems/data.hpp"
#include "skip.hpp"
#include "temp_files.hpp"

using namespace hyperad;
using namespace hyperad::problems;
namespace fs = std::filesystem;

namespace {

// A fresh temporary directory, removed at scope exit.
struct TempDir : hyperad::testing::TempDir {
  TempDir() : hyperad::testing::TempDir("hyperad_test_text_") {}
};

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// The terms of row r: feature_names at the row's columns.
std::set<std::string> row_terms(const SparseDataset& ds, std::int64_t r) {
  std::set<std::string> out;
  const auto& ip = ds.features.indptr();
  for (auto k = ip[static_cast<std::size_t>(r)]; k < ip[static_cast<std::size_t>(r) + 1]; ++k)
    out.insert(ds.feature_names[static_cast<std::size_t>(ds.features.indices()[static_cast<std::size_t>(k)])]);
  return out;
}

bool wordnet_installed() {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(kWordnetDir) / "data.noun", ec)) return true;
  hyperad::testing::skip("WordNet is not installed (apt-get install wordnet-base)");
  return false;
}

}  // namespace

TEST_CASE("tfidf: count × (ln((1 + n)/(1 + df)) + 1), rows of unit norm") {
  // 4 documents × 3 terms: term 0 in two documents, term 1 in one, term 2 in two; the last row empty.
  const CsrMatrix counts = CsrMatrix::from_triplets(4, 3, {0, 0, 1, 1, 2}, {0, 1, 0, 2, 2}, {2, 1, 1, 3, 1});
  const CsrMatrix x = tfidf(counts);
  const double n = 4;
  const double idf0 = std::log((1 + n) / 3) + 1, idf1 = std::log((1 + n) / 2) + 1, idf2 = std::log((1 + n) / 3) + 1;
  const std::vector<double> got = x.to_dense().to_vector();
  const double r0 = std::hypot(2 * idf0, idf1), r1 = std::hypot(idf0, 3 * idf2);
  const std::vector<double> want{2 * idf0 / r0, idf1 / r0, 0, idf0 / r1, 0, 3 * idf2 / r1, 0, 0, 1, 0, 0, 0};
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-15));
  CHECK(x.nnz() == counts.nnz());

  const CsrMatrix bad = CsrMatrix::from_triplets(2, 2, {0, 1}, {0, 1}, {1, -2});
  CHECK_THROWS_WITH_AS(tfidf(bad), doctest::Contains("count -2 at entry 1 (row 1)"), ValueError);
}

TEST_CASE("zipf_text: seeded, unit rows, Zipf frequencies, topics by class") {
  const SparseDataset a = zipf_text({.documents = 300, .terms = 400, .classes = 4, .seed = 7});
  const SparseDataset b = zipf_text({.documents = 300, .terms = 400, .classes = 4, .seed = 7});
  const SparseDataset c = zipf_text({.documents = 300, .terms = 400, .classes = 4, .seed = 8});
  CHECK(a.features.indices() == b.features.indices());
  CHECK(a.features.values().to_vector() == b.features.values().to_vector());
  CHECK(a.labels == b.labels);
  CHECK(a.features.indices() != c.features.indices());
  CHECK(a.num_classes == 4);
  CHECK(a.num_features() == 400);
  CHECK(a.feature_names.size() == 400);
  const std::vector<double> v = a.features.values().to_vector();
  for (std::int64_t r = 0; r < a.size(); ++r) {
    double s = 0;
    for (auto k = a.features.indptr()[static_cast<std::size_t>(r)]; k < a.features.indptr()[static_cast<std::size_t>(r) + 1]; ++k)
      s += v[static_cast<std::size_t>(k)] * v[static_cast<std::size_t>(k)];
    CHECK(s == doctest::Approx(1).epsilon(1e-12));
  }

  // One token per document, no topics: the documents holding term 0 and term 1 are in the
  // ratio P(0)/P(1) = 2^1.1 ≈ 2.14 (about 2700 and 1270 of 20000; standard error of the
  // ratio ≈ 0.07).
  const SparseDataset z = zipf_text({.documents = 20000, .terms = 5000, .classes = 2, .exponent = 1.1,
                                     .min_length = 1, .max_length = 1, .topic_share = 0, .seed = 3});
  std::vector<double> docs_with(5000, 0);
  for (std::int64_t col : z.features.indices()) docs_with[static_cast<std::size_t>(col)] += 1;
  // Three standard errors (an exponent of 1.0, ratio 2, fails); P(1)/P(3) = 2^1.1 too, with
  // fewer counts (standard error about 0.13).
  CHECK(std::abs(docs_with[0] / docs_with[1] - std::pow(2.0, 1.1)) < 0.21);
  CHECK(std::abs(docs_with[1] / docs_with[3] - std::pow(2.0, 1.1)) < 0.40);

  // Only topic tokens: a class-k document's terms are all ≡ k (mod classes).
  const SparseDataset t = zipf_text({.documents = 200, .terms = 300, .classes = 3, .topic_share = 1, .seed = 1});
  for (std::int64_t r = 0; r < t.size(); ++r)
    for (auto k = t.features.indptr()[static_cast<std::size_t>(r)]; k < t.features.indptr()[static_cast<std::size_t>(r) + 1]; ++k)
      REQUIRE(t.features.indices()[static_cast<std::size_t>(k)] % 3 == t.labels[static_cast<std::size_t>(r)]);

  CHECK_THROWS_WITH_AS(zipf_text({.terms = 3, .classes = 5}), doctest::Contains("terms = 3 is fewer than classes = 5"),
                       ValueError);
  CHECK_THROWS_WITH_AS(zipf_text({.min_length = 4, .max_length = 2}), doctest::Contains("lengths [4, 2]"), ValueError);
  CHECK_THROWS_WITH_AS(zipf_text({.topic_share = 1.5}), doctest::Contains("topic_share = 1.5"), ValueError);
}

TEST_CASE("split of a sparse dataset: the same rows as the dense split with the same seed") {
  const SparseDataset s = zipf_text({.documents = 90, .terms = 50, .classes = 3, .seed = 2});
  Dataset d;
  d.features = s.features.to_dense();
  d.targets = s.targets;
  d.labels = s.labels;
  d.num_classes = s.num_classes;
  for (bool stratified : {false, true}) {
    const SparseSplits sp = split(s, {0.5, 0.25, 0.25}, 11, stratified);
    const Splits dp = split(d, {0.5, 0.25, 0.25}, 11, stratified);
    CHECK(sp.train.features.to_dense().to_vector() == dp.train.features.to_vector());
    CHECK(sp.test.features.to_dense().to_vector() == dp.test.features.to_vector());
    CHECK(sp.validation.labels == dp.validation.labels);
    CHECK(sp.train.targets.to_vector() == dp.train.targets.to_vector());
    CHECK(sp.train.feature_names == s.feature_names);
  }
  const std::vector<std::int64_t> rows{5, 2, 5};
  const SparseDataset sub = subset(s, rows);
  CHECK(sub.size() == 3);
  CHECK(sub.labels == std::vector<std::int64_t>{s.labels[5], s.labels[2], s.labels[5]});
  const std::vector<std::int64_t> out_of_range{90};
  CHECK_THROWS_WITH_AS(subset(s, out_of_range), doctest::Contains("index 90 out of range"), ValueError);
}

TEST_CASE("wordnet_glosses: 117,659 synsets in 45 classes, tokens of a known gloss, the cache") {
  if (!wordnet_installed()) return;
  TempDir cache;
  const SparseDataset ds = wordnet_glosses({.cache_dir = cache.path});
  CHECK(ds.size() == 117659);
  CHECK(ds.num_classes == 45);
  CHECK(ds.num_features() == 33496);
  CHECK(ds.feature_names.size() == 33496);
  CHECK(ds.class_names[5] == "noun.animal");
  CHECK(ds.class_names[38] == "verb.motion");
  const std::vector<std::int64_t> counts = [&] {
    std::vector<std::int64_t> k(45, 0);
    for (std::int64_t l : ds.labels) ++k[static_cast<std::size_t>(l)];
    return k;
  }();
  CHECK(*std::min_element(counts.begin(), counts.end()) == 42);  // noun.motive
  CHECK(counts[16] == 42);
  // The first synset is "entity" (noun.Tops): "that which is perceived or known or inferred
  // to have its own distinct existence (living or nonliving)".
  CHECK(ds.labels[0] == 3);
  CHECK(row_terms(ds, 0) == std::set<std::string>{"that", "which", "is", "perceived", "or", "known", "inferred", "to",
                                                   "have", "its", "own", "distinct", "existence", "living",
                                                   "nonliving"});
  CHECK(ds.features.nnz() > 1'000'000);

  // The second load reads the cache: the same matrix, bit for bit.
  CHECK(fs::exists(cache.path / "wordnet_glosses_min_df2.svm"));
  const SparseDataset again = wordnet_glosses({.cache_dir = cache.path});
  CHECK(again.features.values().to_vector() == ds.features.values().to_vector());
  CHECK(again.features.indices() == ds.features.indices());
  CHECK(again.feature_names == ds.feature_names);
  CHECK(again.labels == ds.labels);
  // A damaged cache is rebuilt, not believed.
  write_text(cache.path / "wordnet_glosses_min_df2.svm", "3 0:1\n");
  const SparseDataset rebuilt = wordnet_glosses({.cache_dir = cache.path});
  CHECK(rebuilt.size() == 117659);
  CHECK(rebuilt.features.values().to_vector() == ds.features.values().to_vector());
}

TEST_CASE("wordnet_glosses: errors name the package, the file and the line") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(wordnet_glosses({.dir = dir.path, .cache_dir = "none"}),
                       doctest::Contains("missing data.noun, data.verb, data.adj, data.adv"), DataError);
  CHECK_THROWS_WITH_AS(wordnet_glosses({.min_df = 0}), doctest::Contains("min_df = 0"), ValueError);
  const std::string header = "  1 This software and database is being provided\n";
  write_text(dir.path / "data.noun", header + "00001740 03 n 01 entity 0 000 | that which is\n");
  write_text(dir.path / "data.verb", header + "00001740 31 v 01 think 0 000 | judge or regard\n");
  write_text(dir.path / "data.adj", header + "00001740 77 a 01 able 0 000 | having the skill\n");
  write_text(dir.path / "data.adv", header);
  try {
    (void)wordnet_glosses({.dir = dir.path, .cache_dir = "none"});
    FAIL("a lexicographer file number of 77 was accepted");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("data.adj\", line 2: lexicographer file number \"77\"") != std::string::npos);
    CHECK(e.line() == 2);
  }
  write_text(dir.path / "data.adj", header + "00001740 00 a 01 able 0 000 having the skill\n");
  CHECK_THROWS_WITH_AS(wordnet_glosses({.dir = dir.path, .cache_dir = "none"}),
                       doctest::Contains("line 2: the record has no gloss"), DataError);
  write_text(dir.path / "data.adj", header + "00001740 00 a 01 able 0 000 | having the skill; \"able-bodied\"\n");
  const SparseDataset tiny = wordnet_glosses({.dir = dir.path, .min_df = 1, .cache_dir = "none"});
  CHECK(tiny.size() == 3);
  CHECK(tiny.labels == std::vector<std::int64_t>{3, 31, 0});
  CHECK(row_terms(tiny, 2) == std::set<std::string>{"having", "the", "skill", "able", "bodied"});
  if (fs::exists(fs::path(kWordnetDir) / "data.noun")) return;
  CHECK_THROWS_WITH_AS(wordnet_glosses(), doctest::Contains("apt-get install wordnet-base"), DataError);
}
