// `hyperad list`: the problems with their datasets and options, the methods, the datasets.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/protocol.hpp"

namespace hyperad::cli {

namespace {

void list_problems() {
  const auto& ps = problems::all_problems();
  fmt::print("Problems ('hyperad run NAME', 'hyperad check NAME'; options as --option key=value):\n");
  if (ps.empty()) fmt::print("  (none registered in this build)\n");
  for (const problems::ProblemInfo& p : ps) {
    fmt::print("\n  {}  [{}]\n    {}\n    datasets: {}\n    warm start: {} — {}\n", p.name, p.family, p.summary,
               fmt::join(p.datasets, ", "), p.warm_start, p.warm_start_why);
    if (p.data_parallel)
      fmt::print("    data parallel: under mpirun its examples are spread over the ranks (--chunks C)\n");
    if (p.options.empty()) continue;
    Table t({"option", "default", "meaning"}, "lll");
    for (const problems::OptionInfo& o : p.options) t.add({o.key, o.default_value, o.help});
    fmt::print("{}", t.str("    "));
  }
}

void list_methods() {
  fmt::print("Methods (--method NAME):\n");
  // Both columns left-aligned (Table right-aligns all but the first).
  std::size_t w = 0;
  for (const auto& m : problems::method_names()) w = std::max(w, m.name.size());
  for (const auto& m : problems::method_names()) fmt::print("  {:<{}}  {}\n", m.name, w, m.description);
  fmt::print("\nVariants of the JMLR 2023 comparison (--variant NAME; problems with a stochastic version):\n");
  w = 0;
  for (const auto& v : problems::variants()) w = std::max(w, v.name.size());
  for (const auto& v : problems::variants()) fmt::print("  {:<{}}  {}\n", v.name, w, v.description);
}

void list_datasets() {
  fmt::print("Datasets:\n");
  std::string where;
  try {
    where = problems::data_dir().string();
  } catch (const Error& e) {
    where = std::string("not found: ") + e.what();
  }
  fmt::print("  bundled CSVs ({}):\n", where);
  for (const problems::BuiltinDataset& d : problems::builtin_datasets())
    fmt::print("    {:<14} {:<15} {}\n", d.name,
               d.task == problems::Task::classification ? "classification" : "regression", d.description);
  try {
    fmt::print("  fashion_mnist: found in {}\n", problems::fashion_mnist_dir().string());
  } catch (const Error& e) {
    fmt::print("  fashion_mnist: not found. {}\n", e.what());
  }
  try {
    fmt::print("  wordnet (glosses as tf-idf text, for text_hpo): found in {}\n", problems::wordnet_dir().string());
  } catch (const Error& e) {
    fmt::print("  wordnet: not found. {}\n", e.what());
  }
}

}  // namespace

int list_command(const ListArgs& args) {
  const bool all = args.what == "all";
  if (all || args.what == "problems") list_problems();
  if (all) fmt::print("\n");
  if (all || args.what == "methods") list_methods();
  if (all) fmt::print("\n");
  if (all || args.what == "datasets") list_datasets();
  return 0;
}

}  // namespace hyperad::cli
