#pragma once
// Temporaries left next to an output file: write_file_atomically names them
// "<file>.tmp.<pid>.<n>", and none may survive a write, whether it succeeded or failed.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace hyperad::testing {

/// How many entries of path's directory are named "<path's name>.tmp*".
inline int leftover_temporaries(const std::string& path) {
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.parent_path().empty() ? "." : p.parent_path();
  const std::string prefix = p.filename().string() + ".tmp";
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  return n;
}

/// A fresh directory under the system temp dir ("<prefix><pid>_<n>"), removed with its
/// contents at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "hyperad_test_") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

}  // namespace hyperad::testing
