// WordNet 3.0's glosses as a sparse text-classification dataset (wordnet_glosses): the
// database files of Debian's wordnet-base are parsed, the glosses tokenized and weighted
// by tf-idf, and the result cached as a LIBSVM file plus its vocabulary.
#include <array>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "data_text.hpp"
#include "data_util.hpp"
#include "hyperad/bilevel/files.hpp"
#include "hyperad/problems/data.hpp"

namespace hyperad::problems {
namespace {

constexpr std::string_view kLoader = "wordnet_glosses";
constexpr std::array<std::string_view, 4> kDataFiles{"data.noun", "data.verb", "data.adj", "data.adv"};
// The lexicographer files, by number (WordNet's lexnames(5WN)).
constexpr std::array<std::string_view, 45> kLexNames{
    "adj.all",           "adj.pert",         "adv.all",         "noun.Tops",       "noun.act",
    "noun.animal",       "noun.artifact",    "noun.attribute",  "noun.body",       "noun.cognition",
    "noun.communication", "noun.event",      "noun.feeling",    "noun.food",       "noun.group",
    "noun.location",     "noun.motive",      "noun.object",     "noun.person",     "noun.phenomenon",
    "noun.plant",        "noun.possession",  "noun.process",    "noun.quantity",   "noun.relation",
    "noun.shape",        "noun.state",       "noun.substance",  "noun.time",       "verb.body",
    "verb.change",       "verb.cognition",   "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact",      "verb.creation",    "verb.emotion",    "verb.motion",     "verb.perception",
    "verb.possession",   "verb.social",      "verb.stative",    "verb.weather",    "adj.ppl"};
// Bump when the tokenizer or the weighting changes, so that old caches are rebuilt.
constexpr int kCacheVersion = 1;

// Lowercased runs of ASCII letters of length ≥ 2.
template <class F>
void for_each_token(std::string_view text, F&& f) {
  std::string token;
  const auto flush = [&] {
    if (token.size() >= 2) f(token);
    token.clear();
  };
  for (char ch : text) {
    if (ch >= 'A' && ch <= 'Z') token += static_cast<char>(ch - 'A' + 'a');
    else if (ch >= 'a' && ch <= 'z') token += ch;
    else flush();
  }
  flush();
}

struct Corpus {
  std::vector<std::vector<std::int64_t>> documents;  // term ids, first-occurrence numbering
  std::vector<std::int64_t> labels;
  std::vector<std::string> terms;
};

Corpus read_corpus(const std::filesystem::path& dir) {
  Corpus corpus;
  std::unordered_map<std::string, std::int64_t> id;
  for (std::string_view name : kDataFiles) {
    const std::filesystem::path file = dir / name;
    const std::string text = detail::read_file(kLoader, file);
    for (const detail::Line& line : detail::split_lines(text)) {
      const std::string_view s = line.text;
      if (s.empty() || s.front() == ' ') continue;  // the licence header: lines starting with two spaces
      // "offset lex_filenum ss_type ... | gloss"
      const auto fail = [&](std::string_view why) { detail::fail_line(kLoader, file, line.number, why); };
      const std::size_t sp1 = s.find(' '), sp2 = sp1 == s.npos ? s.npos : s.find(' ', sp1 + 1);
      if (sp2 == s.npos) fail(fmt::format("expected \"offset lex_filenum ss_type ...\", got {}", detail::quote(s)));
      double lex = 0;
      const std::string_view lex_text = s.substr(sp1 + 1, sp2 - sp1 - 1);
      if (detail::parse_number(lex_text, lex) != detail::NumberStatus::ok || lex != std::floor(lex) || lex < 0 ||
          lex >= static_cast<double>(kLexNames.size()))
        fail(fmt::format("lexicographer file number {} is not an integer in [0, {})", detail::quote(lex_text),
                         kLexNames.size()));
      const std::size_t bar = s.find(" | ");
      if (bar == s.npos) fail("the record has no gloss (no \" | \")");
      std::vector<std::int64_t> doc;
      for_each_token(s.substr(bar + 3), [&](const std::string& token) {
        const auto [it, added] = id.try_emplace(token, static_cast<std::int64_t>(corpus.terms.size()));
        if (added) corpus.terms.push_back(token);
        doc.push_back(it->second);
      });
      corpus.documents.push_back(std::move(doc));
      corpus.labels.push_back(static_cast<std::int64_t>(lex));
    }
  }
  if (corpus.documents.empty()) detail::fail_file(kLoader, dir / kDataFiles[0], "no synsets in the WordNet files");
  return corpus;
}

SparseDataset build(const std::filesystem::path& dir, std::int64_t min_df) {
  Corpus corpus = read_corpus(dir);
  // Document frequencies, then the kept terms renumbered in first-occurrence order.
  std::vector<std::int64_t> df(corpus.terms.size(), 0), last(corpus.terms.size(), -1);
  for (std::size_t i = 0; i < corpus.documents.size(); ++i)
    for (std::int64_t t : corpus.documents[i])
      if (last[static_cast<std::size_t>(t)] != static_cast<std::int64_t>(i)) {
        last[static_cast<std::size_t>(t)] = static_cast<std::int64_t>(i);
        ++df[static_cast<std::size_t>(t)];
      }
  std::vector<std::int64_t> keep(corpus.terms.size(), -1);
  SparseDataset ds;
  for (std::size_t t = 0; t < corpus.terms.size(); ++t)
    if (df[t] >= min_df) {
      keep[t] = static_cast<std::int64_t>(ds.feature_names.size());
      ds.feature_names.push_back(std::move(corpus.terms[t]));
    }
  detail::CountRows rows;
  std::vector<std::int64_t> kept;
  for (const auto& doc : corpus.documents) {
    kept.clear();
    for (std::int64_t t : doc)
      if (keep[static_cast<std::size_t>(t)] >= 0) kept.push_back(keep[static_cast<std::size_t>(t)]);
    rows.add_document(kept);
  }
  const auto n = static_cast<std::int64_t>(corpus.labels.size());
  ds.features = tfidf(std::move(rows).matrix(static_cast<std::int64_t>(ds.feature_names.size()), Dtype::f64));
  std::vector<double> targets(corpus.labels.begin(), corpus.labels.end());
  ds.targets = tensor(targets, {n});
  ds.labels = std::move(corpus.labels);
  return ds;
}

// ---- the cache ------------------------------------------------------------------------

std::filesystem::path cache_dir(const std::filesystem::path& asked) {
  if (!asked.empty()) return asked == "none" ? std::filesystem::path() : asked;
  if (const char* env = std::getenv("HYPERAD_CACHE_DIR"); env && *env)
    return std::string_view(env) == "none" ? std::filesystem::path() : std::filesystem::path(env);
#ifdef HYPERAD_BUILD_CACHE_DIR
  return HYPERAD_BUILD_CACHE_DIR;
#else
  return {};
#endif
}

// What the cache was built from: a changed WordNet file or option invalidates it.
std::string cache_key(const std::filesystem::path& dir, std::int64_t min_df) {
  std::string key = fmt::format("hyperad wordnet_glosses v{} min_df={} dir={}", kCacheVersion, min_df,
                                std::filesystem::absolute(dir).lexically_normal().string());
  for (std::string_view f : kDataFiles) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir / f, ec);
    const auto time = std::filesystem::last_write_time(dir / f, ec).time_since_epoch().count();
    key += fmt::format(" {}:{}:{}", f, size, time);
  }
  return key;
}

// FNV-1a over a file's bytes: the vocabulary file records the LIBSVM file's hash, so a
// LIBSVM file changed or cut after it was written is not believed.
std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// The cache's hash line: the LIBSVM file's bytes and the vocabulary's terms.
std::string hash_line(std::string_view svm_bytes, const std::vector<std::string>& terms) {
  std::string joined;
  for (const std::string& t : terms) joined += t + '\n';
  return fmt::format("fnv1a={:016x} vocabulary={:016x}", fnv1a(svm_bytes), fnv1a(joined));
}

SparseDataset load_cache(const std::filesystem::path& svm, const std::filesystem::path& vocab, const std::string& key) {
  std::ifstream in(vocab);
  std::string line, hash;
  if (!std::getline(in, line) || line != key || !std::getline(in, hash)) return {};
  std::vector<std::string> terms;
  while (std::getline(in, line)) terms.push_back(line);
  if (hash != hash_line(detail::read_file(kLoader, svm), terms)) return {};
  LibsvmOptions o{.n_features = static_cast<std::int64_t>(terms.size()),
                  .index_base = IndexBase::zero,
                  .num_classes = static_cast<std::int64_t>(kLexNames.size()),
                  .minus_one_is_zero = false};
  SparseDataset loaded = load_libsvm_sparse(svm, o);
  // The parser read the file again: a file replaced in between is not believed either.
  if (hash != hash_line(detail::read_file(kLoader, svm), terms)) return {};
  loaded.feature_names = std::move(terms);
  return loaded;
}

// Each file written whole or not at all (write_file_atomically); the vocabulary, which
// holds the key, last, so a cache whose LIBSVM part failed is never taken as valid. A
// cache that cannot be written is skipped: it only saves time.
void write_cache(const SparseDataset& ds, const std::filesystem::path& svm, const std::filesystem::path& vocab,
                 const std::string& key) {
  const std::vector<double> v = ds.features.values().to_vector();
  const auto& indptr = ds.features.indptr();
  const auto& cols = ds.features.indices();
  std::string rows, terms = key + '\n';
  for (std::int64_t r = 0; r < ds.size(); ++r) {
    rows += fmt::format("{}", ds.labels[static_cast<std::size_t>(r)]);
    for (auto k = static_cast<std::size_t>(indptr[static_cast<std::size_t>(r)]);
         k < static_cast<std::size_t>(indptr[static_cast<std::size_t>(r) + 1]); ++k)
      rows += fmt::format(" {}:{}", cols[k], v[k]);  // {}: the shortest form that reads back exactly
    rows += '\n';
  }
  terms += hash_line(rows, ds.feature_names) + '\n';
  for (const std::string& t : ds.feature_names) terms += t + '\n';
  try {
    std::error_code ec;
    std::filesystem::remove(vocab, ec);
    bilevel::write_file_atomically(svm.string(), rows, std::string(kLoader));
    bilevel::write_file_atomically(vocab.string(), terms, std::string(kLoader));
  } catch (const Error&) {
  }
}

}  // namespace

std::filesystem::path wordnet_dir(const std::filesystem::path& dir) {
  const std::filesystem::path where = dir.empty() ? std::filesystem::path(kWordnetDir) : dir;
  std::string missing;
  std::error_code ec;
  for (std::string_view f : kDataFiles)
    if (!std::filesystem::is_regular_file(where / f, ec)) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", f);
  if (missing.empty()) return where;
  throw DataError(fmt::format("{}: WordNet not found in \"{}\" (missing {}). {}", kLoader, where.string(), missing,
                              where == std::filesystem::path(kWordnetDir)
                                  ? "Install Debian's package: `apt-get install wordnet-base` as root, or run "
                                    "scripts/setup.sh as root."
                                  : "Point to a WordNet 3.0 database directory (as installed by Debian's "
                                    "wordnet-base at /usr/share/wordnet)."),
                  where.string());
}

SparseDataset wordnet_glosses(const WordnetOptions& options) {
  if (options.min_df < 1) throw ValueError(fmt::format("{}: min_df = {}, expected at least 1", kLoader, options.min_df));
  const std::filesystem::path dir = wordnet_dir(options.dir);
  const std::filesystem::path cache = cache_dir(options.cache_dir);
  const std::string key = cache_key(dir, options.min_df);
  const std::string stem = fmt::format("wordnet_glosses_min_df{}", options.min_df);
  const std::filesystem::path svm = cache / (stem + ".svm"), vocab = cache / (stem + ".vocab");

  SparseDataset ds;
  if (!cache.empty()) {
    try {
      ds = load_cache(svm, vocab, key);
    } catch (const Error&) {
      ds = {};  // a damaged cache is rebuilt
    }
  }
  if (ds.size() == 0) {
    ds = build(dir, options.min_df);
    std::error_code ec;
    if (!cache.empty() && (std::filesystem::create_directories(cache, ec), std::filesystem::is_directory(cache, ec)))
      write_cache(ds, svm, vocab, key);
  }
  ds.features = ds.features.to(options.dtype);
  ds.targets = ds.targets.to(options.dtype);
  ds.target_name = "lexicographer file";
  ds.class_names.assign(kLexNames.begin(), kLexNames.end());
  ds.num_classes = static_cast<std::int64_t>(kLexNames.size());
  ds.source = fmt::format("WordNet glosses ({}, min_df {})", dir.string(), options.min_df);
  return ds;
}

}  // namespace hyperad::problems
