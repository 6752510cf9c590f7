#!/usr/bin/env bash
# Installs the project's build dependencies into .deps/ (ignored by git):
#   .deps/cutlass    CUTLASS/CuTe 4.2.0 C++ headers from PyPI's nvidia-cutlass wheel
#   .deps/googletest GoogleTest sources, copied from Debian's googletest package when present
# Idempotent: a second run only checks what is there. `--cutlass-only` skips GoogleTest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/.deps"
mkdir -p "$deps"

cutlass_version="4.2.0.0"
if [ ! -f "$deps/cutlass/include/cute/tensor.hpp" ]; then
  tmp="$(mktemp -d)"
  python3 -m pip install --quiet --no-deps --target "$tmp" "nvidia-cutlass==$cutlass_version"
  src="$tmp/cutlass_library/source"
  rm -rf "$deps/cutlass"
  mkdir -p "$deps/cutlass"
  cp -r "$src/include" "$deps/cutlass/include"
  cp -r "$src/tools/util/include/." "$deps/cutlass/include/"
  echo "$cutlass_version" > "$deps/cutlass/VERSION"
  rm -rf "$tmp"
fi

# --cutlass-only: the headers alone (what the Python package build, `pip install .`, needs).
if [ "${1:-}" = "--cutlass-only" ]; then
  echo "deps ready: cutlass $(cat "$deps/cutlass/VERSION") in $deps/cutlass"
  exit 0
fi

# GoogleTest: the system package is used when CMake finds it; a source copy lets machines without
# libgtest-dev (the GPU machine) build it from .deps/googletest.
if [ ! -f "$deps/googletest/CMakeLists.txt" ]; then
  if [ -f /usr/src/googletest/CMakeLists.txt ]; then
    cp -r /usr/src/googletest "$deps/googletest"
  elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq googletest >/dev/null
    cp -r /usr/src/googletest "$deps/googletest"
  fi
fi
echo "deps ready: cutlass $(cat "$deps/cutlass/VERSION") in $deps/cutlass"
