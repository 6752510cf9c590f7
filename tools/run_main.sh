#!/usr/bin/env bash
# Builds (tools/build.sh) and runs the CLI; arguments go to flash_attention_exec (default: the seed
# preset). Without an SM90 GPU it prints one line saying why and exits 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
exec ./build/apps/flash_attention_exec "$@"
