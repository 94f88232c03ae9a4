// The one doctest main shared by every test executable (compiled once, see CMakeLists.txt):
// doctest's own, except that an executable that called testing::skip() and failed nothing
// exits with 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "skip.hpp"

namespace hyperad::testing {
namespace {
bool g_skipped = false;
}
void skip(const std::string& why) {
  g_skipped = true;
  std::fprintf(stderr, "skipped: %s\n", why.c_str());
}
bool skipped() { return g_skipped; }
}  // namespace hyperad::testing

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int rc = context.run();
  if (context.shouldExit() || rc != 0) return rc;
  return hyperad::testing::skipped() ? 77 : 0;
}
