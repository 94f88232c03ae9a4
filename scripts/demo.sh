#!/usr/bin/env bash
# Setup, Release build, then the demo: examples/train_mlp.cpp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake --preset release
cmake --build --preset release -j2
./build/release/examples/train_mlp "$@"
