#!/usr/bin/env bash
# Regenerates the paper-reproduction figures (docs/figures/) and CSVs (bench/results/repro_*.csv):
# builds the repro targets in BUILD_DIR (default /tmp/build_repro) and runs them.
#   bench/repro/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/build_repro}"
JOBS="${JOBS:-2}"
LAUNCHER=(); command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$ROOT" -B "$BUILD_DIR" "${LAUNCHER[@]}" -DCMAKE_BUILD_TYPE=Release -DHYPERAD_BUILD_BENCH=ON \
      -DHYPERAD_BUILD_TESTS=OFF -DHYPERAD_BUILD_EXAMPLES=OFF >/dev/null
build() { cmake --build "$BUILD_DIR" -j"$JOBS" --target "$@"; }

# Iteration complexity of hypergradients (Grazzi et al. 2020): error vs t = K, AID's two terms.
build repro_rates
"$BUILD_DIR/bench/repro/repro_rates"

# Outer optimization with ITD / AID / SID (and AID warm start) on logreg, poisoning and
# equilibrium (~40 s), and peak memory / time of one hypergradient against t (~5 s).
build repro_outer repro_memory
"$BUILD_DIR/bench/repro/repro_outer"
"$BUILD_DIR/bench/repro/repro_memory"
