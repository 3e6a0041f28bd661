# Session 17, H200 call 1: the decode GEMVs alone and split (gate_up, down) per kernel, the row-blocked kernels with
# 16-byte chunks per lane against code words interleaved over the lanes ('rows...i'); then the layer (bench) with the
# planner's kernels (bench.mjs, HEAD) and with the interleaved ones as defaults (bench-il.mjs: plan.ts's
# gemvPackedKernel rows2i / rows4i and gemvDenseKernelFor's rows2i / rows4i), alternating.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt 2>&1
timeout 280 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --split --models mixtral,qwen3,deepseek-v3 --formats bf16,int4,fp8,mxfp4 --tokens 1,16 --kernels table,rows2,rows4,rows2i,rows4i,rows4k2i --iters 20 --burn-each 20 > $OUT/gemv-split.txt 2>&1; echo "gemv rc=$?" >> $OUT/gemv-split.txt
grep -E "^copy|rc=" $OUT/gemv-split.txt; sed -n '/== ranking/,$p' $OUT/gemv-split.txt | grep -v '^{' | cut -c1-300
for b in bench bench-il bench bench-il; do
  timeout $((590 - SECONDS)) bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models qwen3-30b-a3b,mixtral-8x7b --dtypes bf16,int4,fp8 --tokens 1,16 --iters 30 --stack 8 --json "$OUT/$b-$SECONDS.json" > "$OUT/$b-$SECONDS.txt" 2>&1
  echo "$b rc=$? at $SECONDS s"
done
grep -hE "^(qwen3|mixtral)-[^ ]+ +(bf16|int4|fp8) +(1|16) +moe" $OUT/bench*.txt | cut -c1-120
