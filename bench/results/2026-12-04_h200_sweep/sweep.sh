#!/bin/bash
# Session-8 experiment (not committed): early Q release (variant e), 4 stages at d64 (s) and exp2 on
# the FMA pipe (k of every 8 scores, with the early release), against build-dev (base).
set -u
cd "$(dirname "$0")/.."
FLASH_PREBUILT=.carry/prebuilt.tar.xz bash tools/device_run.sh unpack > $OUT/unpack.log 2>&1 || { tail -20 $OUT/unpack.log; exit 1; }
rm -f $OUT/summary.txt $OUT/unpack.log
NVCC="nvcc -DCUDA_VECTOR_TYPE_ALIGNMENT_16_32_ENABLED=1 -DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED -DNDEBUG -Iinclude -Isrc -isystem .deps/cutlass/include -O3 -Xcompiler=-fPIC -gencode=arch=compute_90a,code=sm_90a --use_fast_math --expt-relaxed-constexpr -Xptxas=-v,--warn-on-spills -std=c++17"
for v in e s 1 2 3 4; do
  mkdir -p sw/$v
  case $v in
    e) insts="bf16_hdim80_general fp8_hdim128_dense fp8_hdim64_dense bf16_hdim64_dense bf16_hdim80_dense bf16_hdim128_dense"; def="" ;;
    s) insts="fp8_hdim64_dense bf16_hdim64_dense"; def="-DFLASH_DEV_STAGES64=4" ;;
    4) insts="fp8_hdim64_dense fp8_hdim128_dense"; def="-DFLASH_DEV_POLY_EXP2=4" ;;
    *) insts="fp8_hdim128_dense fp8_hdim64_dense bf16_hdim64_dense bf16_hdim80_dense"; def="-DFLASH_DEV_POLY_EXP2=$v" ;;
  esac
  for i in $insts; do
    ( $NVCC $def -c src/instances/fwd_${i}_sm90.cu -o sw/$v/fwd_${i}_sm90.cu.o > sw/$v/$i.log 2>&1; echo "$v $i rc=$? $(grep -o '[0-9]* bytes spill stores' sw/$v/$i.log | sort -n | tail -1)" >> $OUT/compile.txt ) &
  done
done
wait
echo "compiled at ${SECONDS}s" >> $OUT/compile.txt
head -c 3000 sw/e/fp8_hdim128_dense.log >> $OUT/compile.txt
L=.carry/sweeplibs
xz -dk $L/libflash_attention.a.xz
CUDART=$(find /usr/local/cuda/ -name libcudart_static.a | head -1)
mkdir -p sw/base && cp build-dev/bench/flash_bench sw/base/flash_bench
for v in e s 1 2 3 4; do
  cp $L/libflash_attention.a sw/$v/lib.a
  if [ $v != e ]; then for o in sw/e/*.o; do [ -f sw/$v/$(basename $o) ] || cp $o sw/$v/; done; fi
  (cd sw/$v && ar r lib.a *.o)
  c++ -O3 $L/flash_bench.cpp.o -o sw/$v/flash_bench $L/libflash_cli_options.a $L/libflash_app_support.a $L/libflash_npy_io.a $L/libflash_host.a sw/$v/lib.a $CUDART -ldl -lrt $L/libflash_reference.a -lpthread -ldl || echo "link $v failed" >> $OUT/compile.txt
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv > $OUT/gpu.txt
R="--iters 20 --warmup 3"
b() {  # variant, name, flags...
  local v=$1 n=$2; shift 2
  [ $SECONDS -gt 560 ] && { echo "skipped $v $n at ${SECONDS}s" >> $OUT/gpu.txt; return; }
  sw/$v/flash_bench "$@" $R --json $OUT/${n}_k$v.json > /dev/null 2>&1
  (cd $OUT && tar -rf sweep.tar ${n}_k$v.json && rm -f ${n}_k$v.json)
}
for v in base e; do
  b $v fp8d128 --grid fa3paper --dtype fp8 --head-dim 128
  b $v bf16d128 --grid fa3paper --dtype bf16 --head-dim 128
  b $v vit --grid vit
done
for v in 2 1 3; do
  b $v fp8d128 --grid fa3paper --dtype fp8 --head-dim 128 --no-causal
  b $v fp8d64 --grid fa3paper --dtype fp8 --head-dim 64 --no-causal
  b $v bf16d64 --grid fa3paper --dtype bf16 --head-dim 64 --no-causal
  b $v vit --grid vit
done
b 4 fp8d64 --grid fa3paper --dtype fp8 --head-dim 64 --no-causal
b 4 fp8d128 --grid fa3paper --dtype fp8 --head-dim 128 --no-causal
for v in base e s; do
  b $v fp8d64 --grid fa3paper --dtype fp8 --head-dim 64
  b $v bf16d64 --grid fa3paper --dtype bf16 --head-dim 64
done
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv >> $OUT/gpu.txt
echo "done at ${SECONDS}s" >> $OUT/gpu.txt
cat $OUT/compile.txt | head -40; cat $OUT/gpu.txt
