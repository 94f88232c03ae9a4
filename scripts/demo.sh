#!/usr/bin/env bash
# The demo: set up, build the `hyperad` tool (Release), then tune one ℓ2 strength per
# feature of a logistic regression on breast_cancer by hypergradient descent (the
# validation loss falls), check the hypergradients against finite differences and the
# exact answer, and say where the plot was written.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake --preset release
cmake --build --preset release --target hyperad_cli_exe -j2

hyperad=build/release/cli/hyperad
out=build/release/demo
mkdir -p "$out"

echo
echo "==> hyperad run logreg: per-feature regularization of logistic regression on breast_cancer"
"$hyperad" run logreg --csv "$out/logreg.csv" --plot "$out/logreg.svg"

echo
echo "==> hyperad check logreg: every method's hypergradient vs finite differences and the exact one"
"$hyperad" check logreg --tolerance 1e-6

echo
echo "Plot of the run: $out/logreg.svg (per-step log: $out/logreg.csv)"
echo "More: $hyperad list, $hyperad run --help, docs/cli.md"
