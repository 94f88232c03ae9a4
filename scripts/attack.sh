#!/usr/bin/env bash
# A hostile user's session against the `hyperad` tool: bad options, bad values, bad data
# files, bad and foreign state files, unwritable and colliding outputs. Each attempt must be
# refused with one clear line naming the cause (exit 1 or 2), never crash, never succeed
# silently, and never destroy a file that was there before. Prints every failure and a
# summary:  tried / clear errors / unclear errors / crashes / silent acceptances / data lost.
#
#   bash scripts/attack.sh [path/to/hyperad]     # default build/release/cli/hyperad
#
# Best run against a sanitizer build (build/sanitize/cli/hyperad): a sanitizer report
# counts as a crash. Exit status 0 iff every attempt was refused cleanly.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-build/release/cli/hyperad}
[[ -x "$bin" ]] || { echo "attack.sh: no hyperad binary at '$bin'" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=$(mktemp -d /tmp/hyperad_attack.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1

tried=0 clear=0 unclear=0 crashes=0 silent=0 lost=0

# refuse NAME REGEX ARGS...: the tool must fail with exit 1 or 2 and one
# "hyperad: error: ..." line matching REGEX (extended, case-insensitive).
refuse() {
  local name=$1 regex=$2
  shift 2
  tried=$((tried + 1))
  local rc
  (cd "$work" && "$bin" "$@" >"$work/out" 2>"$work/err")
  rc=$?
  if grep -qE "AddressSanitizer|runtime error:|LeakSanitizer|Segmentation|terminate called" "$work/err" || ((rc >= 128)); then
    crashes=$((crashes + 1))
    echo "CRASH   [$name] exit $rc: $(head -c 300 "$work/err")"
  elif ((rc == 0)); then
    silent=$((silent + 1))
    echo "SILENT  [$name] accepted: hyperad $*"
  elif grep -qiE "^hyperad: error: .*($regex)" "$work/err" && [[ $(wc -l <"$work/err") -le 1 ]]; then
    clear=$((clear + 1))
  else
    unclear=$((unclear + 1))
    echo "UNCLEAR [$name] exit $rc, expected /$regex/: $(head -c 300 "$work/err")"
  fi
}

# unchanged NAME FILE COPY: FILE must still equal COPY (the attempt before must not have
# destroyed or altered it).
unchanged() {
  if ! cmp -s "$2" "$3"; then
    lost=$((lost + 1))
    echo "LOST    [$1] $2 was changed or removed by a refused run"
  fi
}

small=(--small -n 3 -q)

# ---- the command line ------------------------------------------------------------------
refuse "unknown subcommand" "frobnicate" frobnicate
refuse "unknown problem" "nosuch" run nosuch
refuse "unknown method" "nosuch" run logreg -m nosuch
refuse "unknown option" "--bogus" run logreg --bogus
refuse "negative outer steps" "outer-steps|-n" run logreg -n -1
refuse "huge outer steps" "outer-steps|-n" run logreg -n 99999999999999999999
refuse "zero inner steps" "inner|-t" run logreg -t 0 "${small[@]}"
refuse "negative linear steps" "linear|-K" run logreg -K -5 "${small[@]}"
refuse "NaN step size" "step.size|-a" run logreg -a nan "${small[@]}"
refuse "negative step size" "step.size|-a" run logreg -a -1 "${small[@]}"
refuse "overflowing step size" "step.size|-a" run logreg -a 1e400 "${small[@]}"
refuse "negative seed" "seed" run logreg --seed -1 "${small[@]}"
refuse "23-digit seed" "seed" run logreg --seed 12345678901234567890123 "${small[@]}"
refuse "negative threads" "threads" run logreg --threads -3 "${small[@]}"
refuse "batch size without SID" "batch" run logreg --batch-size 10 "${small[@]}"
refuse "negative batch size" "batch" run logreg -m sid --batch-size -1 "${small[@]}"
refuse "zero cross batches" "cross|-J" run logreg -m sid -J 0 "${small[@]}"
refuse "reverse steps with AID" "reverse" run logreg -m aid-cg -T 5 "${small[@]}"
refuse "zero reverse steps" "reverse|-T" run logreg -m itd-truncated -T 0 "${small[@]}"
refuse "unknown update" "update" run logreg --update nosuch "${small[@]}"
refuse "unknown warm start" "warm" run logreg --warm-start nosuch "${small[@]}"
refuse "CG on a non-symmetric map" "symmetric" run equilibrium -m aid-cg "${small[@]}"
refuse "SID without a stochastic version" "stochastic" run kernel_ridge -m sid "${small[@]}"
refuse "unknown problem option" "nosuch" run logreg -o nosuch=1 "${small[@]}"
refuse "option without a value" "lambda0" run logreg -o lambda0 "${small[@]}"
refuse "non-numeric option" "lambda0" run logreg -o lambda0=abc "${small[@]}"
refuse "overflowing option" "lambda0" run logreg -o lambda0=1e999 "${small[@]}"
refuse "NaN option" "lambda0" run logreg -o lambda0=nan "${small[@]}"
refuse "option outside its box" "lambda0" run logreg -o lambda0=50 "${small[@]}"
refuse "option for another dataset" "synthetic|n" run logreg -o n=100 "${small[@]}"
refuse "negative synthetic n" "\bn\b" run logreg --dataset synthetic -o n=-5 "${small[@]}"
refuse "zero features" "\bd\b" run logreg --dataset synthetic -o d=0 "${small[@]}"
refuse "label noise above 1" "noise" run logreg --dataset synthetic -o noise=2 "${small[@]}"
refuse "unknown dataset" "nosuch" run logreg --dataset nosuch "${small[@]}"
refuse "unknown regularization" "reg" run multinomial -o reg=nosuch "${small[@]}"
refuse "one-way tasks" "ways" run meta_biased -o ways=1 "${small[@]}"
refuse "zero shots" "shots" run meta_biased -o shots=0 "${small[@]}"
refuse "more ways than classes" "ways|classes" run meta_hyperrep -o ways=100 "${small[@]}"
refuse "kernel regularization outside its box" "log_reg0" run kernel_ridge -o log_reg0=100 "${small[@]}"
refuse "check: negative inner steps" "inner|-t" check logreg -t -1
refuse "check: negative max-fd" "max-fd" check logreg --max-fd -1
refuse "check: negative tolerance" "tolerance" check logreg --tolerance -1

# ---- outputs ----------------------------------------------------------------------------
mkdir -p "$work/adir"
refuse "CSV in a missing directory" "/nonexistent" run logreg "${small[@]}" --csv /nonexistent/dir/x.csv
refuse "CSV on a full disk" "/dev/full" run logreg "${small[@]}" --csv /dev/full
refuse "plot on a full disk" "/dev/full" run logreg "${small[@]}" --plot /dev/full
refuse "state on a full disk" "/dev/full" run logreg "${small[@]}" --save-state /dev/full
refuse "CSV is a directory" "directory" run logreg "${small[@]}" --csv "$work/adir"
refuse "state is a directory" "directory" run logreg "${small[@]}" --save-state "$work/adir"
echo "precious" >"$work/keep.csv"
cp "$work/keep.csv" "$work/keep.copy"
refuse "CSV and plot collide" "same|different|collide" run logreg "${small[@]}" --csv "$work/keep.csv" --plot "$work/keep.csv"
unchanged "CSV and plot collide" "$work/keep.csv" "$work/keep.copy"
refuse "CSV and state collide" "same|different|collide" run logreg "${small[@]}" --csv "$work/keep.csv" --save-state "$work/keep.csv"
unchanged "CSV and state collide" "$work/keep.csv" "$work/keep.copy"
refuse "resume without a state path" "save-state" run logreg "${small[@]}" --resume

# ---- state files ------------------------------------------------------------------------
if (cd "$work" && "$bin" run logreg --small -n 4 -q --save-state good.state --csv good.csv >/dev/null 2>&1); then
  cp "$work/good.state" "$work/good.copy"
  cp "$work/good.csv" "$work/good.csv.copy"
  refuse "resume another problem" "problem" run ridge --small -n 6 -q --save-state good.state --resume
  unchanged "resume another problem" "$work/good.state" "$work/good.copy"
  refuse "resume another seed" "seed" run logreg --small -n 6 -q --seed 7 --save-state good.state --resume
  refuse "resume another step size" "step" run logreg --small -n 6 -q -a 0.01 --save-state good.state --resume
  refuse "resume another method" "method" run logreg --small -n 6 -q -m itd --save-state good.state --resume
  refuse "resume another option" "lambda0" run logreg --small -n 6 -q -o lambda0=-1 --save-state good.state --resume
  refuse "resume past the end" "step|outer" run logreg --small -n 2 -q --save-state good.state --resume
  unchanged "resume refusals" "$work/good.state" "$work/good.copy"
  unchanged "resume refusals (CSV)" "$work/good.csv" "$work/good.csv.copy"
  head -c 100 "$work/good.state" >"$work/cut.state"
  refuse "truncated state" "cut.state" run logreg --small -n 6 -q --save-state cut.state --resume
  cp "$work/good.state" "$work/flip.state"
  printf '\x55' | dd of="$work/flip.state" bs=1 seek=200 conv=notrunc status=none
  refuse "corrupted state" "checksum|corrupt" run logreg --small -n 6 -q --save-state flip.state --resume
  head -c 4096 /dev/urandom >"$work/noise.state"
  refuse "random bytes as state" "noise.state" run logreg --small -n 6 -q --save-state noise.state --resume
  refuse "state directory on resume" "directory" run logreg --small -n 6 -q --save-state adir --resume
else
  echo "attack.sh: the reference run for the state-file attacks failed" >&2
  unclear=$((unclear + 1))
fi

# ---- data files -------------------------------------------------------------------------
data() { # data NAME: a copy of the bundled CSVs in $work/NAME (a HYPERAD_DATA_DIR)
  rm -rf "${work:?}/$1" && mkdir -p "$work/$1" && cp problems/data/*.csv "$work/$1/"
}
with_data() { # with_data DIR NAME REGEX ARGS...
  local dir=$1
  shift
  HYPERAD_DATA_DIR="$work/$dir" refuse "$@"
}
HYPERAD_DATA_DIR=/nonexistent refuse "HYPERAD_DATA_DIR missing" "HYPERAD_DATA_DIR" run logreg "${small[@]}"
data text && sed -i '5s/.*/1.0,abc,2.0/' "$work/text/breast_cancer.csv"
with_data text "a word in a cell" "line 5" run logreg "${small[@]}"
data nan && sed -i '7s/^[^,]*,/nan,/' "$work/nan/breast_cancer.csv"
with_data nan "a NaN cell" "line 7" run logreg "${small[@]}"
data short && sed -i '9s/,[^,]*$//' "$work/short/breast_cancer.csv"
with_data short "a missing column" "line 9" run logreg "${small[@]}"
data huge && sed -i '4s/^[^,]*,/1e999,/' "$work/huge/breast_cancer.csv"
with_data huge "an overflowing cell" "line 4" run logreg "${small[@]}"
data one && head -n 3 "$work/one/breast_cancer.csv" >"$work/one/x" && mv "$work/one/x" "$work/one/breast_cancer.csv"
with_data one "two examples" "rows|examples" run logreg "${small[@]}"
data class && awk -F, 'NR == 1 || $NF == 1' problems/data/breast_cancer.csv >"$work/class/breast_cancer.csv"
with_data class "one class" "class" run logreg "${small[@]}"
data const && awk -F, 'BEGIN { OFS = "," } NR > 1 { $NF = 150 } { print }' problems/data/diabetes.csv >"$work/const/diabetes.csv"
with_data const "a constant target" "constant" run ridge "${small[@]}"
data empty && : >"$work/empty/wine.csv"
with_data empty "an empty file" "wine.csv" run multinomial --dataset wine "${small[@]}"
data binary && head -c 3000 /dev/urandom >"$work/binary/digits.csv"
with_data binary "random bytes" "digits.csv" run multinomial "${small[@]}"
mkdir -p "$work/fashion"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  head -c 2000 /dev/urandom | gzip >"$work/fashion/$f.gz"
done
refuse "Fashion-MNIST of random bytes" "magic|idx|gzip|fashion" run poisoning --dataset fashion_mnist "${small[@]}" --data-dir "$work/fashion"
refuse "Fashion-MNIST missing" "/nonexistent" run poisoning --dataset fashion_mnist "${small[@]}" --data-dir /nonexistent
refuse "a Fashion-MNIST directory the run would ignore" "fashion_mnist.*digits|digits" run poisoning "${small[@]}" --data-dir "$work/fashion"

echo
echo "attack.sh: $tried tried, $clear clear errors, $unclear unclear, $crashes crashes, $silent silent acceptances, $lost data lost"
((unclear + crashes + silent + lost == 0))
