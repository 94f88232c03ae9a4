// Where the datasets live: the CSVs bundled in problems/data and Debian's Fashion-MNIST.
#include <array>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "data_util.hpp"

namespace hyperad::problems {
namespace {

constexpr std::array<BuiltinDataset, 4> kBuiltin{{
    {"breast_cancer", "breast_cancer.csv", Task::classification,
     "569 x 30, benign (1) vs malignant (0) tumours; UCI Breast Cancer Wisconsin (Diagnostic)"},
    {"digits", "digits.csv", Task::classification, "1797 x 64, 8x8 handwritten digits 0-9 (pixels 0-16); UCI"},
    {"wine", "wine.csv", Task::classification, "178 x 13, chemical analysis of wines of 3 cultivars; UCI"},
    {"diabetes", "diabetes.csv", Task::regression,
     "442 x 10, disease progression after one year (regression); Efron et al. 2004"},
}};

constexpr std::array<std::string_view, 4> kFashionFiles{
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// `name.gz` (as Debian ships it) or else the uncompressed `name`; empty when neither exists.
std::filesystem::path find_idx(const std::filesystem::path& dir, std::string_view name) {
  std::error_code ec;
  for (const std::string& candidate : {std::string(name) + ".gz", std::string(name)})
    if (std::filesystem::is_regular_file(dir / candidate, ec)) return dir / candidate;
  return {};
}

}  // namespace

std::span<const BuiltinDataset> builtin_datasets() { return kBuiltin; }

namespace {
// Set once, before main, by the installed package's generated file (never in the build tree).
std::string& installed_data_dir() {
  static std::string dir;
  return dir;
}
}  // namespace

void detail::register_installed_data_dir(const char* dir) {
  if (dir) installed_data_dir() = dir;
}

std::filesystem::path data_dir() {
  std::error_code ec;
  if (const char* env = std::getenv("HYPERAD_DATA_DIR"); env && *env) {
    if (!std::filesystem::is_directory(env, ec))
      throw DataError(fmt::format("data_dir: HYPERAD_DATA_DIR = \"{}\" is not a directory", env), env);
    return env;
  }
  const std::filesystem::path installed = installed_data_dir();
  if (!installed.empty()) {
    if (std::filesystem::is_directory(installed, ec)) return installed;
    throw DataError(fmt::format("data_dir: the installed package's datasets are not at \"{}\" (the prefix was "
                                "moved or partly removed after this program was configured); reinstall, "
                                "reconfigure, or set HYPERAD_DATA_DIR",
                                installed.string()),
                    installed.string());
  }
  // Built in hyperad's own tree: this file is problems/src/data_sources.cpp, the CSVs are in
  // problems/data.
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "data";
  if (!std::filesystem::is_directory(dir, ec))
    throw DataError(fmt::format("data_dir: the bundled datasets are not at \"{}\" (the source tree this library "
                                "was built from); link against the installed package (find_package(hyperad)), "
                                "or set HYPERAD_DATA_DIR to a copy of hyperad's problems/data",
                                dir.string()),
                    dir.string());
  return dir;
}

Dataset load_builtin(std::string_view name, Dtype dtype) {
  for (const BuiltinDataset& b : kBuiltin) {
    if (b.name != name) continue;
    CsvOptions options;
    options.task = b.task;
    options.dtype = dtype;
    Dataset ds = load_csv(data_dir() / b.file, options);
    if (name == "breast_cancer") ds.class_names = {"malignant", "benign"};
    return ds;
  }
  std::string names;
  for (const BuiltinDataset& b : kBuiltin) names += (names.empty() ? "" : ", ") + std::string(b.name);
  throw ValueError(fmt::format("load_builtin: unknown dataset \"{}\"; the bundled datasets are {}", name, names));
}

std::filesystem::path fashion_mnist_dir(const std::filesystem::path& dir) {
  const std::filesystem::path where = dir.empty() ? std::filesystem::path(kFashionMnistDir) : dir;
  std::string missing;
  for (std::string_view f : kFashionFiles)
    if (find_idx(where, f).empty()) missing += fmt::format("{}{}[.gz]", missing.empty() ? "" : ", ", f);
  if (missing.empty()) return where;
  const bool system_dir = where == std::filesystem::path(kFashionMnistDir);
  throw DataError(
      fmt::format("Fashion-MNIST not found in \"{}\" (missing {}). {}", where.string(), missing,
                  system_dir ? "Install Debian's package: `apt-get install dataset-fashion-mnist` as root, "
                               "or run scripts/setup.sh as root."
                             : fmt::format("Point to a directory holding these four IDX files, or install them "
                                           "at {} with `apt-get install dataset-fashion-mnist` as root (or run "
                                           "scripts/setup.sh as root).",
                                           kFashionMnistDir)),
      where.string());
}

Dataset load_fashion_mnist(FashionMnistPart part, IdxOptions options, const std::filesystem::path& dir) {
  const std::filesystem::path where = fashion_mnist_dir(dir);
  const bool train = part == FashionMnistPart::train;
  options.num_classes = 10;
  Dataset ds = load_idx(find_idx(where, kFashionFiles[train ? 0 : 2]), find_idx(where, kFashionFiles[train ? 1 : 3]),
                        options);
  ds.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return ds;
}

}  // namespace hyperad::problems
