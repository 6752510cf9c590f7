#!/bin/bash
# The one device call of docs/next/README.md, run from the repository root on the GPU machine:
#   LIMIT=585 bash docs/next/ab_call.sh      (run's carry: [".carry"]; the files come back in all.tgz)
# Carried in .carry/ (built on the CPU machine, see README.md): prebuilt.tar.xz (build-dev of the
# tree: CTest files, test binaries, CLI, flash_bench), commit (its git commit), bench_rot and
# bench_pref (flash_bench linked with the patched instances), optionally bench_oinv and test_fp8_oinv;
# each variant binary as NAME.xz (the carry holds 64 MiB). Every bench run goes through
# tools/device_run.sh, so each point carries its SM clock and power (tools/bench_clocks.py).
set -u
W=/tmp/w; rm -rf $W; mkdir -p $W
FLASH_GIT_COMMIT=$(cat .carry/commit)
export FLASH_GIT_COMMIT
export FLASH_PREBUILT=$PWD/.carry/prebuilt.tar.xz
OUT=$W/unpack bash tools/device_run.sh unpack > $W/stages.txt 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv > $W/gpu.txt
for f in .carry/bench_*.xz .carry/test_*.xz; do [ -f "$f" ] && xz -d -f "$f"; done   # the variants travel compressed
chmod +x .carry/bench_* .carry/test_* 2>/dev/null
C="--check-rows 16 --iters 30 --warmup 5"
B=$PWD/build-dev/bench/flash_bench
# variant NAME BENCH ARGS...: one bench run of BENCH through the baseline stage into $W/NAME
variant() {
  local name=$1 exe=$2; shift 2
  OUT=$W/$name FLASH_BASELINE_BENCH=$exe FLASH_BENCH_ARGS="$*" timeout 110 bash tools/device_run.sh baseline >> $W/stages.txt 2>&1
  echo "$name done at $SECONDS s" >> $W/stages.txt
}
# 1. The tree's FA3-paper grid with cuDNN in the same run, before anything heats the GPU.
OUT=$W/base FLASH_BENCH_ARGS="--grid fa3paper $C" timeout 170 bash tools/device_run.sh bench peers >> $W/stages.txt 2>&1
# FP8 d256 on 128 x 128 tiles with O staged in V's ring, both masks, beside the baseline; then
# the FP8 GPU tests of the head dims it serves, linked with it (the test source of that tree).
if [ -x .carry/bench_oinv ]; then
  variant oinv "$PWD"/.carry/bench_oinv --grid fa3paper --dtype fp8 --head-dim 256 "$C"
  variant base_d256 "$B" --grid fa3paper --dtype fp8 --head-dim 256 "$C"
  (cd build-dev/tests && timeout 150 "$OLDPWD"/.carry/test_fp8_oinv --gtest_filter="*d256*:*d240*:*d192*:*d160*:Fp8GpuSaturation*" > $W/test_fp8_oinv.log 2>&1; echo "test_fp8_oinv rc $?" >> $W/stages.txt)
fi
# 2. Rotation, non-causal, bracketed by the baseline; prefetch on the bf16 grid beside the baseline.
variant base_nc1 "$B" --grid fa3paper --no-causal --dtype bf16 "$C"
variant rot_nc "$PWD"/.carry/bench_rot --grid fa3paper --no-causal --dtype bf16 "$C"
variant base_nc2 "$B" --grid fa3paper --no-causal --dtype bf16 "$C"
variant pref "$PWD"/.carry/bench_pref --grid fa3paper --dtype bf16 "$C"
variant base_bf16 "$B" --grid fa3paper --dtype bf16 "$C"
variant rot_fp8 "$PWD"/.carry/bench_rot --grid fa3paper --no-causal --dtype fp8 --head-dim 128 "$C"
variant base_fp8 "$B" --grid fa3paper --no-causal --dtype fp8 --head-dim 128 "$C"
# 3. The GPU tests of the tree.
OUT=$W/test FLASH_CTEST_ARGS="-L gpu" timeout $((LIMIT - SECONDS - 20)) bash tools/device_run.sh test >> $W/stages.txt 2>&1
echo "all done at $SECONDS s" >> $W/stages.txt
tar czf "$OUT"/all.tgz -C /tmp w
