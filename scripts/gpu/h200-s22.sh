#!/usr/bin/env bash
# Prepared in session 22 for the next calls (session 22's H200 calls: docs/perf-h200/2026-12-06-s22).
#   1: the down GEMM split along K (#12's Mixtral T = 128 / 512, 3% and 52% slower than HF grouped_mm in session 22):
#      prefill-bench in rounds, the planner's tile against the same tile split 2 / 3 / 4 ways (random routing; bf16 and
#      int4; Mixtral, DeepSeek-V3-e32, Qwen3, GPT-OSS at T = 128 / 512), then the GPU tests of the split-K cases and
#      of session 22's goldens (hf-blocks).
#   5: make-hf-blocks.py again (now with golden-large, T = 600, for each block): $OUT/hf-blocks.tar.gz, and whether
#      each regenerated golden.safetensors equals the committed one byte for byte (the generator's determinism) (~90 s).
#   all: 5 then 1 in one call (~530 s); second: 4 then 3 (~450 s).
#   2: the layer at T = 128 / 512 beside HF grouped_mm after a split-K rule (as h200-s21.sh 8's first half).
#   3: where a forward's host time goes on the lent machine (session 22 measured 2-3x session 16's host us per forward
#      with the same JavaScript): host-cost.mjs on the qwen3_moe fixture (WebGPU calls per forward and the host us
#      inside each method; MoEStack of 8), with --cpu-prof into $OUT/prof, once as is and once with Dawn's validation
#      off (WEBMOE_DAWN_ENABLE=skip_validation), ~60 s.
#   4: the decode GEMVs' ablation again, with their passes back to back (gemv-bench --chain 8, as the layer runs them)
#      beside lone passes (--chain 1, session 22's way, whose packed rows took 2-3.6x the layer's GEMV time): as they
#      are and without decode, x and scale loads; Mixtral and Qwen3, bf16 / int4 / fp8, T = 1; then full DeepSeek-V3's
#      bf16 / fp8 GEMVs on rows1 / rows2 / rows4 / split-K kernels, chained (~290 s).
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    SK="=sgmat-default"
    for t in m144n256k32v m128n192k64va; do SK="$SK,=sgmat-$t-xh,=sgmat-$t-sk2-xh,=sgmat-$t-sk3-xh,=sgmat-$t-sk4-xh"; done
    SK="$SK,=sgmat-m64n128k32v,=sgmat-m64n128k32v-sk2,=sgmat-m64n128k32v-sk3,=sgmat-m64n128k32v-sk4"
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB splitk-512 200 240 6 "$SK" "mixtral,deepseek-v3-e32,qwen3,gpt-oss" "128,512" bf16,int4
    GPU_TESTS 200 grouped-gemm-fast hf-blocks
    ;;
  3)
    mkdir -p /tmp/webmoe-fx "$OUT/prof" && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    for dv in "" skip_validation; do
      WEBMOE_DAWN_ENABLE=$dv WEBMOE_TIME_CALLS=1 WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures timeout 60 bash .gpu-kit/enter.sh node --cpu-prof --cpu-prof-dir "$OUT/prof" .gpu-kit/host-cost.mjs qwen3_moe 3000 1 8 > "$OUT/host-cost${dv:+-$dv}.txt" 2>&1
      echo "host-cost rc=$?" >> "$OUT/host-cost${dv:+-$dv}.txt"; grep -E "calls per forward|inside WebGPU|calls, host|rc=" "$OUT/host-cost${dv:+-$dv}.txt" | cut -c1-300
    done
    (cd "$OUT" && tar czf prof.tgz prof && rm -rf prof)
    ;;
  4)
    for ch in 8 1; do ABLATE_ARGS="--chain $ch" ABLATE_TAG=chain$ch ABLATE 60 none decode+x+scale+nan; done
    # full DeepSeek-V3's fp8 GEMVs (60% of copy in the layer, short 2 KiB down rows): more outputs per 32-lane group
    # or split K, chained
    f="$OUT/dsv3-fp8-kernels.txt"
    timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models deepseek-v3 --formats bf16,fp8 --tokens 1 --kernels rows1,rows2,rows4,rows2k2,rows4k2 --iters 20 --chain 8 --split > "$f" 2>&1
    echo "gemv-bench rc=$?" >> "$f"; grep -E "T=1 +rows|rc=" "$f" | cut -c1-200
    ;;
  5)
    GOLDENS 150
    for d in /tmp/hf-blocks/*/; do n=$(basename "$d"); cmp -s "$d/golden.safetensors" "packages/moe/test/fixtures/hf-blocks/$n/golden.safetensors" && echo "$n golden: same bytes" || echo "$n golden: DIFFERS"; done
    ;;
  all)
    # one call of ~530 s: 5 then 1
    for m in 5 1; do echo "=== mode $m"; bash "$0" "$m"; done
    ;;
  second)
    # one call of ~450 s: 4 then 3
    for m in 4 3; do echo "=== mode $m"; bash "$0" "$m"; done
    ;;
  2)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512
    ;;
esac
