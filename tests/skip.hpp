#pragma once
// Skipping a test whose data is absent: skip("why") prints the reason, and the executable
// then exits with 77 (ctest's SKIP_RETURN_CODE, "skipped") instead of 0 — unless a check
// failed, which still fails it. So a missing dataset is never reported as a pass.
#include <string>

namespace hyperad::testing {

/// Marks this test executable as skipped (see the file comment) and prints why.
void skip(const std::string& why);
/// Whether skip() was called.
bool skipped();

}  // namespace hyperad::testing
