#!/usr/bin/env bash
# The whole test suite: setup, Release build + ctest, then an ASan/UBSan build + ctest.
# HYPERAD_SKIP_SANITIZE=1 skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

run_preset() {
  local preset=$1
  echo "==> [$preset] configure"
  cmake --preset "$preset"
  echo "==> [$preset] build"
  cmake --build --preset "$preset" -j2
  echo "==> [$preset] test"
  ctest --preset "$preset" --output-on-failure -j2
}

run_preset release

if [[ "${HYPERAD_SKIP_SANITIZE:-0}" == "1" ]]; then
  echo "==> [sanitize] skipped (HYPERAD_SKIP_SANITIZE=1)"
else
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  run_preset sanitize
fi
echo "==> all tests passed"
