#!/usr/bin/env bash
# The one script run on the GPU machine (an H100), from the repository root:
#
#   bash tools/device_run.sh [build] [test] [sanitize] [bench] [peers]     (no stage: all five)
#
# Everything it keeps goes to $OUT (default ./out), at most 8 files, the transfer limit:
#   build.log ctest.log sanitizer.log bench.json bench.log peers.json peers.png summary.txt
# Each stage ends with one PASS/FAIL line, also collected in summary.txt. A failed stage does not
# stop the others; the exit status is non-zero when any stage failed.
#
# Environment:
#   OUT               output folder (default ./out)
#   FLASH_GIT_COMMIT  commit recorded in bench.json (a copy of the tree without .git cannot know it)
#   SANITIZE_TOOLS    compute-sanitizer tools to run (default "memcheck racecheck synccheck")
#   FLASH_BENCH_ARGS  extra flash_bench arguments, e.g. "--grid qwen --iters 20"
#   FLASH_ANCHORS     peers anchor file (default: shared/anchors/h100_attention_peers.json if present)
# shellcheck disable=SC2317  # the stage functions are called through "stage_$stage"
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
OUT="${OUT:-$root/out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

build_dir="$root/build-dev"
build_jobs=16       # the machine's cores
ctest_jobs=8        # half of them: the GPU tests share one GPU
summary="$OUT/summary.txt"
: > "$summary"
failed=0

# One summary line per stage: report STAGE PASS|FAIL DETAIL
report() {
  local line="$1: $2 ($3)"
  echo "$line"
  echo "$line" >> "$summary"
  [ "$2" = PASS ] || failed=1
}

version_at_least() {   # version_at_least HAVE NEED
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

stage_build() {
  local log="$OUT/build.log"
  : > "$log"
  if [ ! -f .deps/cutlass/include/cute/tensor.hpp ]; then
    bash tools/setup_deps.sh >> "$log" 2>&1
  fi
  cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFLASH_CUTLASS_DIR="$root/.deps/cutlass" >> "$log" 2>&1 &&
    cmake --build "$build_dir" -j "$build_jobs" >> "$log" 2>&1
  local rc=$?
  # ptxas -v prints "0 bytes spill" for every kernel; --warn-on-spills / --warn-on-local-memory-usage
  # turn the real ones into warnings. An incremental build only reports what it recompiled.
  local spills local_mem serialised
  spills=$(grep -c 'Registers are spilled' "$log")
  local_mem=$(grep -c 'Local memory used' "$log")
  serialised=$(grep -c -E 'C75(08|10)' "$log")
  local detail="ptxas: $spills spill warnings, $local_mem local-memory warnings, $serialised C7508/C7510 warnings"
  if [ "$rc" -eq 0 ]; then report build PASS "$detail"; else report build FAIL "exit $rc; $detail; see build.log"; fi
}

stage_test() {
  local log="$OUT/ctest.log"
  local args=(--test-dir "$build_dir" -j "$ctest_jobs" --output-on-failure)
  # The JUnit file stays in the build folder: $OUT holds at most 8 files.
  if version_at_least "$(ctest --version | head -n 1 | awk '{print $3}')" 3.21; then
    args+=(--output-junit "$build_dir/ctest-junit.xml")
  fi
  ctest "${args[@]}" > "$log" 2>&1
  local rc=$?
  local totals skipped
  totals=$(grep -E 'tests passed|tests failed' "$log" | tail -n 1)
  skipped=$(grep -c -E '\(Skipped\)' "$log")
  local detail="${totals:-no test summary}; $skipped skipped"
  if [ "$rc" -eq 0 ]; then report test PASS "$detail"; else report test FAIL "exit $rc; $detail; see ctest.log"; fi
}

stage_sanitize() {
  local log="$OUT/sanitizer.log"
  local exe="$build_dir/apps/flash_attention_exec"
  local tools_to_run="${SANITIZE_TOOLS:-memcheck racecheck synccheck}"
  : > "$log"
  local cuda_bin="${CUDA_HOME:-/usr/local/cuda}/bin" sanitizer
  sanitizer=$(command -v compute-sanitizer || ls "$cuda_bin/compute-sanitizer" 2>/dev/null)
  if [ -z "$sanitizer" ]; then
    report sanitize FAIL "compute-sanitizer not found on PATH or in $cuda_bin"
    return
  fi
  local kernels
  if ! kernels=$(python3 tools/generate_kernels.py --list) || [ -z "$kernels" ]; then
    report sanitize FAIL "tools/generate_kernels.py --list gave no kernels"
    return
  fi
  # Per instance: odd lengths cross tile tails, seqlen_q != seqlen_k exercises the bottom-right
  # causal offset, GQA heads the KV-head indexing, --lse the LSE store.
  # The second shape has more tiles than SMs (each persistent CTA runs several) and, causal with
  # seqlen_q > seqlen_k, tiles whose rows see no key.
  local shapes=("--batch 1 --heads 2 --heads-k 1 --seqlen-q 113 --seqlen-k 239"
                "--batch 2 --heads 8 --heads-k 2 --seqlen-q 1100 --seqlen-k 700")
  local common=(--lse --iters 1 --warmup 0 --no-check)
  local runs=0 bad=0 dtype head_dim mask tool shape
  # sanitize_one TOOL DTYPE HEAD_DIM SHAPE MASK: one CLI run under compute-sanitizer, logged.
  sanitize_one() {
    runs=$((runs + 1))
    echo "=== compute-sanitizer --tool $1: $2 head_dim $3 $4 $5" >> "$log"
    # shellcheck disable=SC2086  # the shape is a list of flags
    "$sanitizer" --tool "$1" --error-exitcode 99 "$exe" $4 "${common[@]}" --dtype "$2" --head-dim "$3" "$5" >> "$log" 2>&1
    local rc=$? verdict=PASS
    if [ "$rc" -ne 0 ]; then verdict=FAIL; bad=$((bad + 1)); fi
    echo "sanitize $1 $2 d$3 [$4] $5: $verdict (exit $rc)" | tee -a "$log"
  }
  while read -r dtype head_dim; do
    for shape in "${shapes[@]}"; do
      for mask in --no-causal --causal; do
        for tool in $tools_to_run; do sanitize_one "$tool" "$dtype" "$head_dim" "$shape" "$mask"; done
      done
    done
  done <<< "$kernels"
  # Head dims without a kernel of their own run padded on the next wider one.
  for head_dim in 80 200; do
    for tool in $tools_to_run; do sanitize_one "$tool" bf16 "$head_dim" "${shapes[1]}" --causal; done
  done
  if [ "$bad" -eq 0 ]; then report sanitize PASS "$runs runs"; else report sanitize FAIL "$bad of $runs runs failed; see sanitizer.log"; fi
}

stage_bench() {
  local extra=()
  read -r -a extra <<< "${FLASH_BENCH_ARGS:-}"
  "$build_dir/bench/flash_bench" --grid all --json "$OUT/bench.json" "${extra[@]}" > "$OUT/bench.log" 2>&1
  local rc=$?
  local detail
  detail=$(tail -n 1 "$OUT/bench.log" 2>/dev/null)
  if [ "$rc" -eq 0 ]; then report bench PASS "$detail"; else report bench FAIL "exit $rc; $detail; see bench.log"; fi
}

stage_peers() {
  if [ ! -f "$OUT/bench.json" ]; then
    report peers FAIL "no $OUT/bench.json: run the bench stage first"
    return
  fi
  local anchors="${FLASH_ANCHORS:-}"
  if [ -z "$anchors" ]; then
    for candidate in shared/anchors/h100_attention_peers.json ../shared/anchors/h100_attention_peers.json; do
      if [ -f "$candidate" ]; then anchors="$candidate"; break; fi
    done
  fi
  local args=(--bench "$OUT/bench.json" --out "$OUT/peers.json" --png "$OUT/peers.png")
  [ -n "$anchors" ] && args+=(--anchors "$anchors")
  # The peers table follows the bench table in bench.log.
  echo "=== bench/compare_peers.py" >> "$OUT/bench.log"
  python3 bench/compare_peers.py "${args[@]}" >> "$OUT/bench.log" 2>&1
  local rc=$?
  if [ "$rc" -eq 0 ]; then report peers PASS "peers.json${anchors:+, anchors $anchors}"; else report peers FAIL "exit $rc; see bench.log"; fi
}

if [ -z "${FLASH_GIT_COMMIT:-}" ] && commit=$(git rev-parse HEAD 2>/dev/null); then
  export FLASH_GIT_COMMIT="$commit"
fi

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build test sanitize bench peers)
for stage in "${stages[@]}"; do
  case "$stage" in
    build|test|sanitize|bench|peers) "stage_$stage" ;;
    *) report "$stage" FAIL "unknown stage (expected build, test, sanitize, bench or peers)" ;;
  esac
done

echo "--- summary ($OUT/summary.txt)"
cat "$summary"
exit "$failed"
