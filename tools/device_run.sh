#!/usr/bin/env bash
# The one script run on the GPU machine (an H100), from the repository root:
#
#   bash tools/device_run.sh [unpack|build] [test] [python] [sanitize] [bench] [peers]
#   (no stage: build test python sanitize bench peers)
#
#   unpack    instead of build: extract FLASH_PREBUILT (a tar of build-dev/ made on another machine
#             at FLASH_PREBUILT_ROOT, default /work/main) and link that path to this tree, so that
#             the build's absolute paths (CTest files, the CLI path in test_npy_roundtrip) hold
#   build     CMake + Ninja build of everything into build-dev/ (ptxas spill report)   -> build.log
#   test      CTest on build-dev/                                                       -> ctest.log
#   python    `pip install .` offline from carried wheels into build-python-site/, then pytest
#             python/tests with CuPy, FLASH_EXEC=build-dev/apps/flash_attention_exec (the CLI
#             .npy round trip, bit for bit); appended to ctest.log, so run it after test
#   sanitize  compute-sanitizer on every kernel instance                            -> sanitizer.log
#   bench     flash_bench --grid all, with the GPU's clock and power per point (tools/bench_clocks.py)
#                                                                           -> bench.json, bench.log
#   peers     bench/compare_peers.py (cuDNN, FA2 via PyTorch)    -> peers.json, peers.png, bench.log
#   baseline  the bench stage's run with FLASH_BASELINE_BENCH, another commit's flash_bench (carried),
#             for a comparison on the same machine in the same call    -> baseline.json, baseline.log
#   profile   ncu sections of the CLI calls in PROFILE_CASES (not in the default run) -> profile.txt
#
# Everything it keeps goes to $OUT (default ./out), at most 8 files, the transfer limit:
#   build.log ctest.log sanitizer.log bench.json bench.log peers.json peers.png summary.txt
#   (profile.txt is a ninth: a call with the profile stage leaves out another, or removes peers.png)
# Each stage ends with one PASS/FAIL line, also collected in summary.txt. A failed stage does not
# stop the others; the exit status is non-zero when any stage failed.
#
# Environment:
#   OUT               output folder (default ./out)
#   FLASH_GIT_COMMIT  commit recorded in bench.json (a copy of the tree without .git cannot know it)
#   FLASH_BUILD_JOBS  parallel compile jobs of build and python (default 16, the machine's cores)
#   SANITIZE_TOOLS    compute-sanitizer tools to run (default "memcheck racecheck synccheck")
#   SANITIZE_KERNELS  instances to sanitize, "dtype head_dim variant" separated by ';' (default: all,
#                     from tools/generate_kernels.py --list; the full set takes longer than one call)
#   PROFILE_CASES     CLI flags per profiled call, separated by ';' (default: decode batch 1 x 16k and
#                     the vision windows)
#   FLASH_BENCH_ARGS  extra flash_bench arguments, e.g. "--grid qwen --iters 20"
#   FLASH_CTEST_ARGS  extra ctest arguments of the test stage, e.g. "-L gpu" (the GPU tests only)
#   FLASH_PREBUILT    the unpack stage's tar of build-dev/; FLASH_PREBUILT_ROOT where it was built
#   FLASH_BASELINE_BENCH  the baseline stage's flash_bench binary
#   FLASH_ANCHORS     peers anchor file (default: shared/anchors/h100_attention_peers.json if present)
#   FLASH_PY_WHEELS   folder of the wheels that `pip install .` needs offline (scikit-build-core,
#                     nanobind, packaging, pathspec; ninja as a fallback); a relative path is taken
#                     from the directory the script was started in. Default: .carry/wheels of this
#                     tree, else ../wheels (this tree exported to .carry/tree beside .carry/wheels)
#   FLASH_PYTHON      interpreter of the python stage (default python3: the machine's, with CuPy,
#                     numpy and pytest)
# shellcheck disable=SC2317  # the stage functions are called through "stage_$stage"
set -uo pipefail

caller_dir="$PWD"   # relative paths in the environment (FLASH_PY_WHEELS) are taken from here
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
OUT="${OUT:-$root/out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

build_dir="$root/build-dev"
py_build_dir="$root/build-python"        # scikit-build-core's CMake build of the extension
py_site="$root/build-python-site"        # pip install --target: the installed flash_sm90
build_jobs="${FLASH_BUILD_JOBS:-16}"     # the machine's cores
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
    cmake --build "$build_dir" -j "$build_jobs" -- -k 0 >> "$log" 2>&1   # -k 0: build what compiles
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

stage_unpack() {
  local tarball="${FLASH_PREBUILT:-}" built_at="${FLASH_PREBUILT_ROOT:-/work/main}"
  if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
    report unpack FAIL "FLASH_PREBUILT='$tarball' is not a file"
    return
  fi
  tar -xf "$tarball" -C "$root" || { report unpack FAIL "tar -xf $tarball failed"; return; }
  local linked="same path"
  if [ "$(cd "$built_at" 2>/dev/null && pwd -P)" != "$(pwd -P)" ]; then
    if [ -e "$built_at" ]; then
      report unpack FAIL "$built_at exists and is not this tree: the build's absolute paths would point there"
      return
    fi
    mkdir -p "$(dirname "$built_at")" && ln -s "$root" "$built_at" && linked="linked $built_at -> $root"
  fi
  report unpack PASS "$(basename "$tarball"), $linked"
}

stage_test() {
  local log="$OUT/ctest.log"
  local args=(--test-dir "$build_dir" -j "$ctest_jobs" --output-on-failure)
  local extra=()
  read -r -a extra <<< "${FLASH_CTEST_ARGS:-}"
  args+=("${extra[@]}")
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

# The wheels folder of the python stage (see FLASH_PY_WHEELS above); empty when none is found.
python_wheels_dir() {
  local dir="${FLASH_PY_WHEELS:-}" candidate
  if [ -n "$dir" ]; then
    case "$dir" in /*) ;; *) dir="$caller_dir/$dir" ;; esac
    echo "$dir"
    return
  fi
  for candidate in "$root/.carry/wheels" "$root/../wheels"; do
    if [ -d "$candidate" ]; then (cd "$candidate" && pwd); return; fi
  done
}

# COUNT of WORD ("passed", "failed", ...) in pytest's closing lines, 0 when absent.
pytest_count() {   # summed over the closing lines given
  grep -oE "[0-9]+ $1" <<< "$2" | awk '{s += $1} END {print s + 0}'
}

stage_python() {
  local log="$OUT/ctest.log"   # $OUT holds at most 8 files: the pytest log follows CTest's
  local py="${FLASH_PYTHON:-python3}" wheels
  wheels=$(python_wheels_dir)
  echo "=== python: $py ($("$py" --version 2>&1)), wheels ${wheels:-none found}" >> "$log"
  if [ -z "$wheels" ] || ! compgen -G "$wheels/*.whl" > /dev/null; then
    report python FAIL "no wheels in '${wheels:-$root/.carry/wheels or $root/../wheels}': set FLASH_PY_WHEELS"
    return
  fi
  ls "$wheels" >> "$log"
  local missing
  if ! missing=$("$py" -c 'import numpy, pytest' 2>&1); then
    echo "$missing" >> "$log"
    report python FAIL "$py cannot import numpy and pytest; see ctest.log"
    return
  fi
  # The CLI for test_cli_npy_roundtrip_bitwise (the test fails, not skips, when it is not there).
  export FLASH_EXEC="$build_dir/apps/flash_attention_exec"
  [ -x "$FLASH_EXEC" ] || echo "warning: $FLASH_EXEC is not built: run the build stage first" >> "$log"

  # No index and no build isolation: the build requirements (pyproject.toml) are installed from the
  # wheels folder into their own target folder first, then `pip install .` runs the backend from
  # there. (With isolation, scikit-build-core did not accept the machine's CMake and asked pip for
  # the cmake wheel, which no offline folder has.) A target folder rather than a virtualenv: a venv
  # made from a venv's python (the machine's python3 is /opt/torch/.venv's) would not see that
  # venv's CuPy and numpy, even with --system-site-packages.
  local py_deps="$root/build-python-deps"
  echo "=== python: build requirements from $wheels into $py_deps; pip install --no-build-isolation --target $py_site ." >> "$log"
  rm -rf "$py_site" "$py_deps"
  local start=$SECONDS
  "$py" -m pip install --no-index --no-deps --no-cache-dir --no-compile --disable-pip-version-check \
      --target "$py_deps" "$wheels"/*.whl >> "$log" 2>&1 &&
    PYTHONPATH="$py_deps${PYTHONPATH:+:$PYTHONPATH}" PATH="$py_deps/bin:$PATH" \
    CMAKE_BUILD_PARALLEL_LEVEL="$build_jobs" SKBUILD_BUILD_DIR="$py_build_dir" \
    "$py" -m pip install --no-index --no-deps --no-build-isolation --no-cache-dir --no-compile \
      --disable-pip-version-check --target "$py_site" . >> "$log" 2>&1
  local rc=$?
  local install_s=$((SECONDS - start))
  if [ "$rc" -ne 0 ]; then
    report python FAIL "pip install . exit $rc after ${install_s}s; see ctest.log"
    return
  fi

  # From python/tests, so that the installed package (not python/flash_sm90) is imported; the
  # machine's pytest plugins stay off.
  echo "=== python: pytest -q -rs python/tests (FLASH_EXEC=$FLASH_EXEC)" >> "$log"
  local pytest_log="$py_build_dir/pytest.log"   # its own copy, to count from
  mkdir -p "$py_build_dir"
  start=$SECONDS
  # One pytest process per file, the GPU tests first: a crash in one file cannot hide the other's
  # results (-v names the test that was running).
  : > "$pytest_log"
  rc=0
  local file
  for file in test_gpu.py test_cpu.py; do
    (cd python/tests &&
       PYTHONPATH="$py_site${PYTHONPATH:+:$PYTHONPATH}" PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
         "$py" -m pytest -v -rs -p no:cacheprovider "$file") 2>&1 | tee -a "$pytest_log" >> "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  done
  local test_s=$((SECONDS - start))
  local closing passed skipped failed errors gpu_skipped gpu_reason
  closing=$(grep -E '(passed|failed|skipped|error|no tests ran).* in [0-9.]+s' "$pytest_log")
  passed=$(pytest_count passed "$closing")
  skipped=$(pytest_count skipped "$closing")
  failed=$(pytest_count failed "$closing")
  errors=$(pytest_count error "$closing")
  # -rs lists skips as "SKIPPED [N] test_gpu.py:LINE: reason": on this machine none may skip.
  local gpu_skip_lines='^SKIPPED \[[0-9]+\] ([^ ]*/)?test_gpu\.py'
  gpu_skipped=$(grep -E "$gpu_skip_lines" "$pytest_log" | sed -E 's/^SKIPPED \[([0-9]+)\].*/\1/' |
                  awk '{s += $1} END {print s + 0}')
  gpu_reason=$(grep -m 1 -E "$gpu_skip_lines" "$pytest_log" | sed -E 's/^SKIPPED \[[0-9]+\] [^:]+:[0-9]+: //')
  local detail="$passed passed, $skipped skipped, $failed failed, $errors errors"
  detail="$detail; install ${install_s}s, pytest ${test_s}s"
  if [ "$gpu_skipped" -gt 0 ]; then
    detail="$detail; GPU TESTS SKIPPED ($gpu_skipped in test_gpu.py): $gpu_reason"
  else
    detail="$detail; test_gpu.py ran, none skipped"
  fi
  if [ "$rc" -eq 0 ] && [ "$gpu_skipped" -eq 0 ]; then
    report python PASS "$detail"
  else
    report python FAIL "pytest exit $rc; $detail; see ctest.log"
  fi
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
  local kernels="${SANITIZE_KERNELS:-}"
  kernels="${kernels//;/$'\n'}"
  if [ -z "$kernels" ] && ! kernels=$(python3 tools/generate_kernels.py --list) || [ -z "$kernels" ]; then
    report sanitize FAIL "tools/generate_kernels.py --list gave no kernels"
    return
  fi
  # Dense instances: odd lengths cross tile tails, seqlen_q != seqlen_k exercises the bottom-right
  # causal offset, GQA heads the KV-head indexing, --lse the LSE store; the shape has more tiles
  # than SMs (each persistent CTA runs several) and, causal with seqlen_q > seqlen_k, tiles whose
  # rows see no key. 2100 queries: past every dense_short kernel's range (FP8 d128: 2048), so that
  # the dense kernel runs.
  # General instances: packed variable lengths (an empty query entry, an empty key entry, 1-token
  # and multi-tile entries) with softcap, seqused_k and causal, then with a two-sided window.
  local dense_shape="--batch 2 --heads 8 --heads-k 2 --seqlen-q 2100 --seqlen-k 700"
  # dense_short instances serve short calls (dense_short_max_seqlen in launch_plan.h: d64 causal up
  # to 1024 queries and keys, FP8 d128 up to 2048): the same checks on shorter lengths, with rows
  # that see no key, then more keys than queries. --num-splits 1: the CLI passes a workspace, and a
  # split call would run on the general kernel.
  local short_runs=("--batch 2 --heads 8 --heads-k 2 --seqlen-q 1000 --seqlen-k 700 --causal --num-splits 1"
                    "--batch 3 --heads 8 --heads-k 2 --seqlen-q 333 --seqlen-k 1024 --causal --num-splits 1")
  local packed="--heads 4 --heads-k 2 --varlen-q-lens 1,300,0,129,700 --varlen-k-lens 5,700,17,0,333"
  # Decode: GQA packing, split keys (the combine kernel) and paged caches (pages of 48 keys, not
  # whole key blocks, and of 256), partly used. At head dims with a decode kernel these 12-row
  # tiles run there; elsewhere on the general kernel.
  local decode="--heads 8 --heads-k 2 --batch 3 --seqlen-q 3 --seqlen-k 700 --seqused-k 700,1,333 --num-splits 3"
  # Short packed entries (the vision windows' shape: every entry fits a 64-row tile, so the
  # decode plan's persistent grid runs them, two CTAs per SM at d80), an empty one included.
  local windows="--heads 4 --heads-k 4 --varlen-q-lens 64,17,0,64,33,1,64,48 --varlen-k-lens 64,17,5,64,33,1,64,48"
  local general_runs=("$packed --causal --softcap 30 --seqused-k 5,650,17,0,200"
                      "$packed --no-causal --window-left 64 --window-right 17"
                      "$windows --no-causal"
                      "$decode --causal --page-size 48"
                      "$decode --no-causal --page-size 256")
  # memcheck covers every instance and run; racecheck and synccheck (slow) the first run of the bf16
  # head dims 64/80/128/256 and of every FP8 instance (its producer writes V^T with plain stores).
  # Each run takes ~25 s on the H100 (24 kernels to instrument).
  local deep_dims=" 64 80 128 256 " deep_dtypes=" bf16 fp8 "
  local common=(--lse --iters 1 --warmup 0 --no-check)
  local runs=0 bad=0 dtype head_dim variant tool flags
  # sanitize_one TOOL DTYPE HEAD_DIM FLAGS: one CLI run under compute-sanitizer, logged.
  sanitize_one() {
    runs=$((runs + 1))
    echo "=== compute-sanitizer --tool $1: $2 head_dim $3 $4" >> "$log"
    # shellcheck disable=SC2086  # FLAGS is a list of flags
    "$sanitizer" --tool "$1" --error-exitcode 99 "$exe" $4 "${common[@]}" --dtype "$2" --head-dim "$3" >> "$log" 2>&1
    local rc=$? verdict=PASS
    if [ "$rc" -ne 0 ]; then verdict=FAIL; bad=$((bad + 1)); fi
    echo "sanitize $1 $2 d$3 [$4]: $verdict (exit $rc)" | tee -a "$log"
  }
  while read -r dtype head_dim variant; do
    local runs_of_instance=("$dense_shape --no-causal" "$dense_shape --causal")
    [ "$variant" = general ] && runs_of_instance=("${general_runs[@]}")
    [ "$variant" = dense_short ] && runs_of_instance=("${short_runs[@]}")
    # The decode instances serve tiles of at most 64 query rows: the short windows and the decode
    # runs (12 rows).
    [ "$variant" = decode ] && runs_of_instance=("$windows --no-causal" "$decode --causal --page-size 48"
                                                 "$decode --no-causal --page-size 256")
    local first=1
    for flags in "${runs_of_instance[@]}"; do
      for tool in $tools_to_run; do
        if [ "$tool" != memcheck ] && { [ "$first" -eq 0 ] || [[ "$deep_dtypes" != *" $dtype "* ]] || [[ "$deep_dims" != *" $head_dim "* ]]; }; then
          continue
        fi
        sanitize_one "$tool" "$dtype" "$head_dim" "$flags"
      done
      first=0
    done
  done <<< "$kernels"
  # Head dims without a kernel of their own run padded on the next wider one (full list only).
  if [ -z "${SANITIZE_KERNELS:-}" ]; then
    for head_dim in 72 200; do
      for tool in $tools_to_run; do sanitize_one "$tool" bf16 "$head_dim" "$dense_shape --causal"; done
    done
  fi
  if [ "$bad" -eq 0 ]; then report sanitize PASS "$runs runs"; else report sanitize FAIL "$bad of $runs runs failed; see sanitizer.log"; fi
}

# run_bench NAME EXE: EXE --grid all FLASH_BENCH_ARGS -> NAME.json, NAME.log; reported as stage NAME.
# Every log line is prefixed with the Unix time it was printed at (the bench's stdout line-buffered),
# and nvidia-smi samples the SM clock, power and clock event reasons every 20 ms meanwhile (into the
# build folder: $OUT holds 8 files); tools/bench_clocks.py then adds each point's clock and power
# to NAME.json and its table to NAME.log, so that a slow point can be told from a slow clock.
run_bench() {
  local name="$1" exe="$2"
  local extra=()
  read -r -a extra <<< "${FLASH_BENCH_ARGS:-}"
  local clocks="$build_dir/clocks_$name.csv" smi="" reasons="" power=power.draw no_samples=""
  # The bench's GPU: CUDA device 0 in PCI order (the bench runs with that order), which is
  # nvidia-smi's index 0, or the first of CUDA_VISIBLE_DEVICES (an index, UUID or bus id).
  local gpu="${CUDA_VISIBLE_DEVICES:-0}"
  gpu="${gpu%%,*}"
  if ! command -v nvidia-smi > /dev/null; then
    no_samples="nvidia-smi is not on PATH"
  else
    for reasons in clocks_event_reasons.active clocks_throttle_reasons.active ""; do
      [ -n "$reasons" ] && nvidia-smi -i "$gpu" --query-gpu="$reasons" --format=csv,noheader > /dev/null 2>&1 && break
    done
    # power.draw is a one-second average on recent GPUs; the instant reading where there is one.
    nvidia-smi -i "$gpu" --query-gpu=power.draw.instant --format=csv,noheader > /dev/null 2>&1 && power=power.draw.instant
    if [ -z "$reasons" ]; then
      no_samples="nvidia-smi has neither clocks_event_reasons nor clocks_throttle_reasons"
    else
      nvidia-smi -i "$gpu" --query-gpu="timestamp,clocks.sm,$power,$reasons" --format=csv,noheader,nounits -lms 20 \
        > "$clocks" 2>/dev/null &
      smi=$!
    fi
  fi
  local line_buffered=()
  command -v stdbuf > /dev/null && line_buffered=(stdbuf -oL)
  CUDA_DEVICE_ORDER=PCI_BUS_ID "${line_buffered[@]}" "$exe" --grid all --json "$OUT/$name.json" "${extra[@]}" 2>&1 |
    while IFS= read -r line || [ -n "$line" ]; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  local detail
  detail=$(tail -n 1 "$OUT/$name.log" 2>/dev/null | cut -d ' ' -f 2-)
  if [ -n "$smi" ]; then
    kill "$smi" 2> /dev/null
    wait "$smi" 2> /dev/null
    if [ -f "$OUT/$name.json" ]; then
      python3 tools/bench_clocks.py --json "$OUT/$name.json" --log "$OUT/$name.log" --clocks "$clocks" \
        > "$build_dir/clocks_$name.txt" 2>&1
      cat "$build_dir/clocks_$name.txt" >> "$OUT/$name.log"
    fi
  else
    echo "no clock samples: $no_samples" >> "$OUT/$name.log"
  fi
  if [ "$rc" -eq 0 ]; then report "$name" PASS "$detail"; else report "$name" FAIL "exit $rc; $detail; see $name.log"; fi
}

stage_bench() { run_bench bench "$build_dir/bench/flash_bench"; }

stage_baseline() {
  local exe="${FLASH_BASELINE_BENCH:-}"
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    report baseline FAIL "FLASH_BASELINE_BENCH='$exe' is not an executable"
    return
  fi
  run_bench baseline "$exe"
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

# Nsight Compute on a few CLI calls (not part of the default run): where a kernel's time goes.
stage_profile() {
  local log="$OUT/profile.txt"
  local exe="$build_dir/apps/flash_attention_exec"
  local ncu
  ncu=$(command -v ncu || ls "${CUDA_HOME:-/usr/local/cuda}/bin/ncu" 2>/dev/null)
  if [ -z "$ncu" ]; then
    report profile FAIL "ncu not found on PATH or in ${CUDA_HOME:-/usr/local/cuda}/bin"
    return
  fi
  : > "$log"
  local cases="${PROFILE_CASES:---preset qwen2.5-vl-3b-llm-decode --batch 1 --seqlen-k 16384;--preset qwen2.5-vl-3b-vit-window}"
  cases="${cases//;/$'\n'}"
  # The sections' summaries, each stall reason's share of the cycles between issues, and each
  # pipe's busy share (tensor, FMA, ALU, XU: where the exponentials run).
  local sections=(--section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats
                  --section SchedulerStats --section MemoryWorkloadAnalysis
                  --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__pipe_.*_cycles_active\.avg\.pct_of_peak_sustained_active,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active')
  local runs=0 bad=0 flags
  while read -r flags; do
    runs=$((runs + 1))
    echo "=== ncu (clocks not locked): $flags" >> "$log"
    # shellcheck disable=SC2086  # flags is a list of flags
    "$ncu" --clock-control none "${sections[@]}" "$exe" $flags --iters 1 --warmup 0 --no-check >> "$log" 2>&1 ||
      bad=$((bad + 1))
  done <<< "$cases"
  if [ "$bad" -eq 0 ]; then report profile PASS "$runs calls"; else report profile FAIL "$bad of $runs calls failed; see profile.txt"; fi
}

if [ -z "${FLASH_GIT_COMMIT:-}" ] && commit=$(git rev-parse HEAD 2>/dev/null); then
  export FLASH_GIT_COMMIT="$commit"
fi

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build test python sanitize bench peers)
for stage in "${stages[@]}"; do
  case "$stage" in
    unpack|build|test|python|sanitize|bench|baseline|peers|profile) "stage_$stage" ;;
    *) report "$stage" FAIL "unknown stage (expected unpack, build, test, python, sanitize, bench, baseline, peers or profile)" ;;
  esac
done

echo "--- summary ($OUT/summary.txt)"
cat "$summary"
exit "$failed"
