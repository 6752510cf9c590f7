#!/usr/bin/env bash
# Builds (tools/build.sh) and runs every test under CTest, then builds the Python package
# (`pip install .`, scikit-build-core + nanobind) into a throwaway virtualenv and runs its pytest
# suite (python/tests). Without an SM90 GPU the GPU tests are reported as skipped; the CPU tests
# run everywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"

# Python package: a fresh virtualenv each run, removed afterwards. The CUTLASS headers come from
# .deps/ (tools/build.sh put them there), so pip downloads only the build requirements.
venv="$(mktemp -d "${TMPDIR:-/tmp}/flash_sm90_venv.XXXXXX")"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# One nvcc job per core, as tools/build.sh does (each kernel instance needs a few GB in nvcc).
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$venv/bin/python" -m pip install --quiet .
"$venv/bin/python" -m pip install --quiet pytest numpy
# Run from python/tests so that the installed package, not the source folder, is imported.
(cd python/tests && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider .)
