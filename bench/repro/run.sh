#!/usr/bin/env bash
# Regenerates the paper-reproduction figures (docs/figures/) and CSVs (bench/results/repro_*.csv):
# builds the repro targets in BUILD_DIR (default /tmp/build_repro) and runs them.
#   bench/repro/run.sh [--quick]     (--quick: repro_sid_error, repro_sample_complexity,
#                                     repro_poisoning and repro_equilibrium run their quick
#                                     modes, writing *_quick files; the other drivers have none
#                                     and run in full)
set -euo pipefail
MODE=full
case "${1:-}" in
  "") ;;
  --quick) MODE=quick ;;
  *) echo "usage: bench/repro/run.sh [--quick]" >&2; exit 2 ;;
esac
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

# The stochastic hypergradient's error terms (AISTATS 2021) and the equilibrium model's
# minibatch error: 5 minutes (quick: 19 s).
build repro_sid_error
"$BUILD_DIR/bench/repro/repro_sid_error" --mode "$MODE"

# Sample complexity without warm start (JMLR 2023): samples to reach ε against ε for SID
# without and with warm start, the deterministic method and a fixed-t control: 17 minutes (quick: 78 s).
build repro_sample_complexity
"$BUILD_DIR/bench/repro/repro_sample_complexity" --mode "$MODE"

# The poisoning comparison (JMLR 2023): the six variants tuned by random search at one
# sample budget, then compared on the retrained model's test accuracy over 5 seeds: 9 minutes
# (quick: 73 s).
build repro_poisoning
"$BUILD_DIR/bench/repro/repro_poisoning" --mode "$MODE"

# The equilibrium-model experiment (JMLR 2023): batch sizes 600 / 6000 / 59 500 with and
# without warm start of the per-example states, 5 seeds, on Fashion-MNIST: 16 minutes (quick: 125 s).
build repro_equilibrium
"$BUILD_DIR/bench/repro/repro_equilibrium" --mode "$MODE"
