#!/usr/bin/env bash
# Builds (tools/build.sh) and runs every test under CTest. Without an SM90 GPU the GPU tests are
# reported as skipped; the CPU tests run everywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
