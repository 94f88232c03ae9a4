#!/usr/bin/env bash
# Makes sure the Debian packages hyperad needs are installed.
#
# As root: installs whatever is missing (apt-get update + install, non-interactive).
# Otherwise: lists what is missing with the exact command to run, and exits 1.
# Nothing is touched (and apt-get is not called) when everything is already present.
set -euo pipefail

# Compiler, build tool, and the libraries found by CMake (see cmake/HyperadDependencies.cmake,
# tests/ and bench/), the Fashion-MNIST and WordNet data of problems/, and Open MPI for the
# MPI layer (the presets build it, HYPERAD_MPI=ON). OpenMP is g++'s own libgomp.
PACKAGES=(
  g++
  cmake
  make
  libxsimd-dev
  libfmt-dev
  doctest-dev
  libcli11-dev
  libbenchmark-dev
  zlib1g-dev
  doxygen
  dataset-fashion-mnist
  wordnet-base
  libopenmpi-dev
  openmpi-bin
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: dpkg-query not found; this script expects Debian 12 (or a derivative)." >&2
  echo "setup.sh: install these packages (or their equivalents) by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all required packages are installed."
  exit 0
fi

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: missing Debian packages: ${missing[*]}" >&2
  echo "setup.sh: install them as root with:" >&2
  echo "  sudo sh -c '$install_cmd'" >&2
  exit 1
fi

echo "setup.sh: installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# Re-check, so a package that apt-get could not provide is reported here and not as a
# confusing CMake error later.
still_missing=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || still_missing+=("$pkg")
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
  echo "setup.sh: still missing after apt-get install: ${still_missing[*]}" >&2
  exit 1
fi
echo "setup.sh: done."
