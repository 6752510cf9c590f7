#!/usr/bin/env bash
# Installs the dependencies (tools/setup_deps.sh) and builds everything in build/ (Release).
# One compile job per core: each CUTLASS kernel instance needs a few GB of memory in nvcc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
