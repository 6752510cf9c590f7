#!/bin/bash
# Session 16's device call, from the repository root on the GPU machine:
#   LIMIT=<seconds> bash docs/next/call16.sh      (run's carry: [".carry"]; results in $OUT/all.tgz)
# The tree is fp8_d256_wide.patch applied (commit in .carry/commit_oinv, its build-dev in
# .carry/prebuilt_oinv.tar.xz, built at /tmp/var/oinv); .carry/bench_base.xz is flash_bench of the
# commit it applies to, bench_rot.xz and bench_pref.xz the other two patches'. Stages in order of
# value, each only if LIMIT leaves it time: the FP8 d256 A B A, the tree's GPU tests, the
# sanitizers on FP8 d256, the FA3-paper grid with cuDNN, then the rotation and prefetch A/Bs.
set -u
W=/tmp/w; rm -rf $W; mkdir -p $W
FLASH_GIT_COMMIT=$(cat .carry/commit_oinv)
export FLASH_GIT_COMMIT FLASH_PREBUILT=$PWD/.carry/prebuilt_oinv.tar.xz FLASH_PREBUILT_ROOT=/tmp/var/oinv
OUT=$W/unpack bash tools/device_run.sh unpack > $W/stages.txt 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv > $W/gpu.txt
for f in .carry/bench_*.xz; do xz -d -f "$f"; done
chmod +x .carry/bench_*
C="--check-rows 16 --iters 30 --warmup 5"
T=$PWD/build-dev/bench/flash_bench   # the tree's: FP8 d256 on 128 x 128 tiles
A=$PWD/.carry/bench_base
left() { echo $((LIMIT - SECONDS - 15)); }
# variant NAME BENCH ARGS...: one bench run of BENCH through the baseline stage into $W/NAME
variant() {
  local name=$1 exe=$2; shift 2
  [ "$(left)" -gt 40 ] || { echo "$name skipped at $SECONDS s" >> $W/stages.txt; return; }
  OUT=$W/$name FLASH_BASELINE_BENCH=$exe FLASH_BENCH_ARGS="$*" timeout $(( $(left) < 110 ? $(left) : 110 )) \
    bash tools/device_run.sh baseline >> $W/stages.txt 2>&1
  echo "$name done at $SECONDS s" >> $W/stages.txt
}
variant d256_base1 "$A" --grid fa3paper --dtype fp8 --head-dim 256 "$C"
variant d256_wide "$T" --grid fa3paper --dtype fp8 --head-dim 256 "$C"
variant d256_base2 "$A" --grid fa3paper --dtype fp8 --head-dim 256 "$C"
if [ "$(left)" -gt 150 ]; then
  OUT=$W/test FLASH_CTEST_ARGS="-L gpu" timeout 200 bash tools/device_run.sh test >> $W/stages.txt 2>&1
  echo "tests done at $SECONDS s" >> $W/stages.txt
elif [ "$(left)" -gt 30 ]; then   # short of time: the FP8 tests alone
  OUT=$W/test FLASH_CTEST_ARGS="-L gpu -R Fp8" timeout $(left) bash tools/device_run.sh test >> $W/stages.txt 2>&1
  echo "FP8 tests done at $SECONDS s" >> $W/stages.txt
fi
if [ "$(left)" -gt 60 ]; then
  OUT=$W/san SANITIZE_KERNELS="fp8 256 dense" timeout 60 bash tools/device_run.sh sanitize >> $W/stages.txt 2>&1
  echo "sanitize done at $SECONDS s" >> $W/stages.txt
fi
if [ "$(left)" -gt 180 ]; then
  OUT=$W/base FLASH_BENCH_ARGS="--grid fa3paper $C" timeout 170 bash tools/device_run.sh bench peers >> $W/stages.txt 2>&1
  echo "grid done at $SECONDS s" >> $W/stages.txt
fi
variant base_nc1 "$A" --grid fa3paper --no-causal --dtype bf16 "$C"
variant rot_nc "$PWD"/.carry/bench_rot --grid fa3paper --no-causal --dtype bf16 "$C"
variant pref "$PWD"/.carry/bench_pref --grid fa3paper --dtype bf16 "$C"
variant base_bf16 "$A" --grid fa3paper --dtype bf16 "$C"
echo "all done at $SECONDS s" >> $W/stages.txt
tar czf "$OUT"/all.tgz -C /tmp w
