#!/bin/bash
# Session-8 experiment (not committed): the softmax's row max and sum in 4 independent partials per
# row, all rows' steps issued together (headers in .carry/exp2/src), against 5b495ee (build-dev).
set -u
cd "$(dirname "$0")/.."
T0=$SECONDS
FLASH_PREBUILT=.carry/prebuilt.tar.xz bash tools/device_run.sh unpack > $OUT/run.txt 2>&1 || { cat $OUT/run.txt; exit 1; }
rm -f $OUT/summary.txt
L=.carry/sweeplibs; mkdir -p sw/t
NVCC="nvcc -DCUDA_VECTOR_TYPE_ALIGNMENT_16_32_ENABLED=1 -DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED -DNDEBUG -I.carry/exp2/src -Iinclude -Isrc -isystem .deps/cutlass/include -O3 -Xcompiler=-fPIC -gencode=arch=compute_90a,code=sm_90a --use_fast_math --expt-relaxed-constexpr -Xptxas=-v,--warn-on-spills -std=c++17"
for i in fp8_hdim64_dense fp8_hdim128_dense bf16_hdim64_dense bf16_hdim128_dense; do
  ( $NVCC -c src/instances/fwd_${i}_sm90.cu -o sw/t/fwd_${i}_sm90.cu.o > sw/t/$i.log 2>&1; echo "t $i rc=$? $(grep -o '[0-9]* bytes spill stores' sw/t/$i.log | sort -n | tail -1)" >> $OUT/run.txt ) &
done
wait
echo "compiled at $((SECONDS-T0))s" >> $OUT/run.txt
CUDART=$(find /usr/local/cuda/ -name libcudart_static.a | head -1)
xz -dkc $L/libflash_attention.a.xz > sw/t/lib.a && (cd sw/t && ar r lib.a *.o)
LIBS="$L/libflash_cli_options.a $L/libflash_app_support.a $L/libflash_npy_io.a $L/libflash_host.a sw/t/lib.a $CUDART -ldl -lrt $L/libflash_reference.a -lpthread -ldl"
c++ -O3 $L/flash_bench.cpp.o -o sw/t/flash_bench $LIBS
c++ -O3 $L/test_gpu_fp8.cpp.o -o sw/t/test_gpu_fp8 sw/t/lib.a $L/libflash_reference.a $L/libflash_host.a $L/libgtest_main.a sw/t/lib.a $CUDART -ldl -lrt $L/libgtest.a -lpthread -ldl
sw/t/test_gpu_fp8 > $OUT/test_gpu_fp8.log 2>&1; echo "t test_gpu_fp8 rc $?: $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]' $OUT/test_gpu_fp8.log | tr '\n' ' ') at $((SECONDS-T0))s" >> $OUT/run.txt
R="--iters 20 --warmup 3"
b() { local v=$1 n=$2 bin=$3; shift 3
  $bin "$@" $R --json $OUT/${n}_k$v.json > /dev/null 2>&1
  (cd $OUT && tar -rf sweep.tar ${n}_k$v.json && rm -f ${n}_k$v.json); echo "$v $n at $((SECONDS-T0))s" >> $OUT/run.txt; }
for d in 128 64; do
  b base fp8d$d build-dev/bench/flash_bench --grid fa3paper --dtype fp8 --head-dim $d
  b t fp8d$d sw/t/flash_bench --grid fa3paper --dtype fp8 --head-dim $d
  b base bf16d$d build-dev/bench/flash_bench --grid fa3paper --dtype bf16 --head-dim $d
  b t bf16d$d sw/t/flash_bench --grid fa3paper --dtype bf16 --head-dim $d
done
cat $OUT/run.txt
