#!/usr/bin/env bash
# Next device calls after session 27 (docs/perf-h200/2026-12-06-s27). Kit: bash scripts/gpu/build-kit.sh
#   1: upload-probe (queue.writeBuffer whole against pieces under 2 MiB, 2-16 MiB: whether Dawn's own staging
#      allocation past its 4 MiB upload ring is what made session 27's `wallHost` jump past 4 MiB of input), then the
#      bf16 layer beside HF at T = 512 / 4096 (prefill graphs at T = 4096 not yet measured: session 27 call 2 had
#      4.9 ms of host per Mixtral forward there, before them) (~200 s).
#   2: the whole GPU test bundle at the session's code (ForwardGraphs' outputs through the shared scratch cache and the
#      fp8 activation quantiser's output from scratch came after session 27's bundle), 420 s.
#   4: after writeBufferStaged and forward(x, { out }): upload-probe (its writeBufferStaged column beside queue.writeBuffer),
#      the bf16 layer at T = 512 / 4096 (wallHost and its `out` column), then 3 (~330 s).
#   5: fp8 e4m3 staged a load of code words at a time (NaN codes looked for by two integer operations a word, a load
#      with one decoded again) against one value at a time (plan.ts's sgmatValueDecodeFor), the layer A/B in one call:
#      bench-words.mjs is the bench built with the word staging chosen; fp8 T = 128 / 512 / 1024, Mixtral, Qwen3,
#      GPT-OSS; then the staging and prefill golden GPU tests (~300 s).
#   6: after the planner's word staging on those tiles: the fp8 layer (bench, the planner's choice) at T = 128 / 512 beside
#      bf16, and the wide-staging GPU tests with the two new fp8 tile cases (~150 s).
#   3: the packed layers at T = 512 (Mixtral, Qwen3, GPT-OSS; bf16 / int4 / fp8 / MXFP4) with prefill graphs: the
#      caller's columns beside the device time (~150 s).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    UPLOAD_PROBE
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 512,4096
    ;;
  2)
    GPU_TESTS 420
    ;;
  4)
    UPLOAD_PROBE
    timeout 130 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-bf16.json" > "$OUT/layer-bf16.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-bf16.txt"; grep -hE "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT/layer-bf16.txt" | cut -c1-170
    bash "$0" 3
    ;;
  5)
    for b in bench bench-words; do
      timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes fp8 --tokens 128,512,1024 --iters 8 --stack 2 --json "$OUT/layer-fp8-$b.json" > "$OUT/layer-fp8-$b.txt" 2>&1
      echo "$b rc=$?"; grep -hE "^(model|mixtral|qwen3|gpt)\S* +(dtype|fp8) " "$OUT/layer-fp8-$b.txt" | cut -c1-150
    done
    GPU_TESTS 120 packed-staging sgmat-wide-staging
    ;;
  6)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes bf16,fp8 --tokens 128,512 --iters 8 --stack 2 --json "$OUT/layer-fp8.json" > "$OUT/layer-fp8.txt" 2>&1
    echo "bench rc=$?"; grep -hE "^(model|mixtral|qwen3|gpt)\S* +(dtype|bf16|fp8) " "$OUT/layer-fp8.txt" | cut -c1-150
    GPU_TESTS 100 sgmat-wide-staging plan.test
    ;;
  3)
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes bf16,int4,fp8,mxfp4 --tokens 512 --iters 8 --stack 2 --json "$OUT/layer-packed-512.json" > "$OUT/layer-packed-512.txt" 2>&1
    echo "bench rc=$?"; grep -hE "^(model|mixtral|qwen3|gpt)\S* +(dtype|bf16|int4|fp8|mxfp4) " "$OUT/layer-packed-512.txt" | cut -c1-150
    ;;
esac
