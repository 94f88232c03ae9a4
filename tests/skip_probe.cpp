// Exercises testing::skip() for tests/check_skip.cmake: "skips" exits 77 (ctest: skipped),
// "skips then fails" must still fail, "passes" exits 0. Not a test_*.cpp: run only by that
// script, with doctest's -tc filter choosing the case.
#include <doctest/doctest.h>

#include "skip.hpp"

TEST_CASE("skips") { hyperad::testing::skip("probe: data absent"); }

TEST_CASE("skips then fails") {
  hyperad::testing::skip("probe: data absent");
  CHECK(1 + 1 == 3);
}

TEST_CASE("passes") { CHECK(hyperad::testing::skipped() == false); }
