#pragma once
// Temporaries left next to an output file: write_file_atomically names them
// "<file>.tmp.<pid>.<n>", and none may survive a write, whether it succeeded or failed.
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

}  // namespace hyperad::testing
