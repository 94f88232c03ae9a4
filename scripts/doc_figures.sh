#!/usr/bin/env bash
# The figures quoted in docs/problems/*.md ("measured default run" tables): runs each
# documented command and prints one line per run — wall time, the outer objective at the
# first and last step, and every evaluation entry at λ0 → at the final λ. The docs copy
# their numbers from this output; rerun it after a change that moves them.
#
#   bash scripts/doc_figures.sh [hyperparameters|poisoning|meta-learning|equilibrium|all] [path/to/hyperad]
#
# Uses build/release/cli/hyperad unless a binary is given (build it with scripts/demo.sh or
# `cmake --build --preset release --target hyperad_cli_exe`). Runs on one thread, as the
# docs' figures do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

which=${1:-all}
bin=${2:-build/release/cli/hyperad}
case "$which" in hyperparameters | poisoning | meta-learning | equilibrium | all) ;; *)
  echo "doc_figures.sh: unknown set '$which' (hyperparameters, poisoning, meta-learning, equilibrium or all)" >&2
  exit 2
  ;;
esac
if [[ ! -x "$bin" ]]; then
  echo "doc_figures.sh: no hyperad binary at '$bin'; build it first or pass its path" >&2
  exit 2
fi

# invoke LABEL ARGS...: `hyperad run ARGS` on one thread, quietly, its output into $out;
# the script stops with that output when the run fails.
invoke() {
  local label=$1
  shift
  if ! out=$("$bin" run "$@" --threads 1 -q 2>&1); then
    echo "doc_figures.sh: '$label' failed:" >&2
    echo "$out" >&2
    exit 1
  fi
}

# run LABEL ARGS...: one `hyperad run` and its line of figures.
run() {
  local label=$1
  invoke "$@"
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

# seeds LABEL ARGS...: a `hyperad run --seeds N` and the rows of its summary over seeds.
seeds() {
  local label=$1
  invoke "$@"
  echo "$label"
  grep -E "median|final objective|outer steps|samples|test_accuracy|baseline_accuracy|initial_accuracy|raw_features" <<<"$out"
}

if [[ $which == meta-learning || $which == all ]]; then
  echo "## docs/problems/meta-learning.md, 'Measured' (episodic defaults: 4 fresh tasks per step)"
  run "meta_biased" meta_biased
  run "meta_biased seed 1" meta_biased --seed 1
  run "meta_biased head=ridge" meta_biased -o head=ridge
  run "meta_biased fashion_mnist" meta_biased --dataset fashion_mnist
  run "meta_hyperrep" meta_hyperrep
  run "meta_hyperrep seed 1" meta_hyperrep --seed 1
  run "meta_hyperrep meta_test=examples" meta_hyperrep -o meta_test=examples
  run "meta_hyperrep map=mlp" meta_hyperrep -o map=mlp
  run "meta_hyperrep fashion_mnist" meta_hyperrep --dataset fashion_mnist
  echo "## docs/problems/meta-learning.md, 'Warm starts at an equal budget'"
  for warm in none naive full; do
    seeds "--warm-start $warm" meta_hyperrep --dataset fashion_mnist -o task_pool=200 -t 10 -K 10 --warm-start "$warm" \
      --budget-samples 3000000 --seeds 3
  done
fi
if [[ $which == equilibrium || $which == all ]]; then
  echo "## docs/problems/equilibrium.md, 'Minibatches of examples'"
  run "equilibrium full batch (AID-GMRES)" equilibrium -o radius=0.5
  run "equilibrium SID 100 examples T=K=3" equilibrium -o radius=0.5 --meta-batch 100
  run "equilibrium SID 100 examples, full warm start" equilibrium -o radius=0.5 --meta-batch 100 --warm-start full
  run "equilibrium SID full batch T=K=3" equilibrium -o radius=0.5 --meta-batch 1000
fi
