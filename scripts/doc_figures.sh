#!/usr/bin/env bash
# The figures quoted in docs/problems/*.md ("measured default run" tables): runs each
# documented command and prints one line per run — wall time, the outer objective at the
# first and last step, and every evaluation entry at λ0 → at the final λ. The docs copy
# their numbers from this output; rerun it after a change that moves them.
#
#   bash scripts/doc_figures.sh [hyperparameters|poisoning|all] [path/to/hyperad]
#
# Uses build/release/cli/hyperad unless a binary is given (build it with scripts/demo.sh or
# `cmake --build --preset release --target hyperad_cli_exe`). Runs on one thread, as the
# docs' figures do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

which=${1:-all}
bin=${2:-build/release/cli/hyperad}
case "$which" in hyperparameters | poisoning | all) ;; *)
  echo "doc_figures.sh: unknown set '$which' (hyperparameters, poisoning or all)" >&2
  exit 2
  ;;
esac
if [[ ! -x "$bin" ]]; then
  echo "doc_figures.sh: no hyperad binary at '$bin'; build it first or pass its path" >&2
  exit 2
fi

# run LABEL ARGS...: one `hyperad run` and its line of figures.
run() {
  local label=$1
  shift
  local out
  if ! out=$("$bin" run "$@" --threads 1 -q 2>&1); then
    echo "doc_figures.sh: '$label' failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v label="$label" '
    /^  outer objective/ { objective = $(NF-1) " → " $NF }
    /^  evaluation/      { in_eval = 1; next }
    in_eval && NF == 0   { in_eval = 0 }
    in_eval              { evals = evals sprintf("; %s %s → %s", $1, $2, $3) }
    /^time /             { time = $2 " " $3 }
    END { printf "%-40s %s; outer objective %s%s\n", label, time, objective, evals }
  ' <<<"$out"
}

if [[ $which == hyperparameters || $which == all ]]; then
  echo "## docs/problems/hyperparameters.md, 'measured default run'"
  run "logreg" logreg
  run "logreg --dataset synthetic" logreg --dataset synthetic
  run "ridge" ridge
  run "multinomial" multinomial
  run "multinomial --dataset wine" multinomial --dataset wine
  run "kernel_ridge" kernel_ridge
fi
if [[ $which == poisoning || $which == all ]]; then
  echo "## docs/problems/poisoning.md, 'Measured'"
  run "poisoning --warm-start none" poisoning --warm-start none
  run "poisoning --dataset digits --warm-start none" poisoning --dataset digits --warm-start none
  run "poisoning (CLI default warm start)" poisoning
  run "poisoning --dataset digits" poisoning --dataset digits
fi
