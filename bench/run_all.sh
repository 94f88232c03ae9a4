#!/usr/bin/env bash
# Builds the benchmarks (Release; the library with -march=native) and runs every
# bench/bench_* executable. Each writes bench/results/<name>.csv; bench_gemm runs a second
# time against OpenBLAS's AVX-512 (SkylakeX) kernels. All CSVs are then rendered as
# Markdown tables into bench/results/summary.md, headed by the machine's CPU.
#
#   bench/run_all.sh [build-dir]        (default: build/bench)
#   HYPERAD_BENCH_ONLY="gemm overhead" bench/run_all.sh ...   runs only those benchmarks
#   (the summary still renders every CSV in bench/results/).
#
# Run it on an otherwise idle machine: the thread-scaling numbers need both cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build/bench}
results=$here/results
mkdir -p "$results"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHYPERAD_BUILD_BENCH=ON \
  -DHYPERAD_BUILD_TESTS=OFF -DHYPERAD_BUILD_EXAMPLES=OFF -DHYPERAD_PORTABLE=OFF >/dev/null
cmake --build "$build" -j2

selected() { [[ -z ${HYPERAD_BENCH_ONLY:-} || " $HYPERAD_BENCH_ONLY " == *" ${1#bench_} "* ]]; }
for exe in "$build"/bench/bench_*; do
  [[ -x $exe && -f $exe ]] || continue
  selected "$(basename "$exe")" || continue
  echo "== $(basename "$exe")"
  "$exe"
done
if [[ -x $build/bench/bench_gemm ]] && selected bench_gemm; then
  echo "== bench_gemm (OpenBLAS forced to its SkylakeX / AVX-512 kernels)"
  OPENBLAS_CORETYPE=SkylakeX "$build/bench/bench_gemm" --out gemm_openblas_skylakex.csv
fi

# CSV -> Markdown, one section per file.
summary=$results/summary.md
{
  echo "# Benchmark results"
  echo
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') ($(nproc) cores)"
  echo "- Compiler: $(${CXX:-c++} --version | head -1)"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  for csv in "$results"/*.csv; do
    echo
    echo "## $(basename "$csv" .csv)"
    echo
    awk -F, 'NR == 1 { printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n|";
                       for (i = 1; i <= NF; i++) printf "---|"; printf "\n"; next }
             { printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$csv"
  done
} >"$summary"
echo "wrote $summary"
