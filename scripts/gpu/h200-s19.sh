#!/usr/bin/env bash
# Prepared in session 18 for the next session's first H200 call (session 18's calls all ran on H100s): session 18's
# prefill tile rule (128 x 192 k64, 144 x 256; commit 738346c and later) on the card the targets name.
#   1: the whole GPU test bundle; the layer, bf16, T = 128 / 512 / 4096, Mixtral / Qwen3-30B / GPT-OSS-20B /
#      DeepSeek-V2-Lite, with HF grouped_mm in the same call (#12's T = 4096 share and T = 512 rows).
#   2: packed prefill in the layer (int4 / MXFP4 / fp8, T = 512 / 4096, Mixtral and GPT-OSS-20B, bf16 beside them), and
#      the vector-staged packed tiles at 64 rows per expert (GPT-OSS-20B T = 512: 2-4.5x slower than the 64 x 128 tile
#      on an H100 in session 18 call 6, unexplained) with evenly spread rows too.
#   4: the staging of fp8 and MXFP4 weights (16-byte vs 8-value loads, word vs value decoding) on three tiles.
#   5: the same in three rounds in turn (PREFILL_BENCH_ROUNDS), three models, T = 512 and 1024.
#   6: the layer at session 19's packed rule against the rule before (bench-old.mjs), alternating; the wide-staging GPU tests.
#   3: prefill-bench bf16 and int4, the router's uneven rows: plan.ts's tiles against the tiles without row tables
#      (`xo`: 64-wide K slices of the 144-row tile, m144n192k64vax), Mixtral / DeepSeek-V3-e32 / GPT-OSS-20B at
#      T = 512 / 1024 / 4096.
# Kit: bash ../shared/gpu/make-kit.sh .gpu-kit; node scripts/gpu/build-gpu-tests.mjs; pnpm --filter @webmoe/bench
#   bundle:gpu; node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs;
#   tar cJf .gpu-kit/fixtures.tar.xz -C ../shared fixtures; cp ../shared/gpu/torch_baseline.py .gpu-kit/
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
M=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite
case "${1:-1}" in
  1)
    GPU_TESTS 330
    gzip -9 "$OUT/gpu-tests.txt"
    LAYER_VS_HF $M 128,512,4096
    ;;
  2)
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4,mxfp4,fp8 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-packed.json" > "$OUT/layer-packed.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-packed.txt"; grep -hE "^(model|mixtral|gpt)|rc=" "$OUT/layer-packed.txt" | cut -c1-160
    V="=sgmat-default,=sgmat-m128n256k32-xh,=sgmat-m128n256k32v-xh,=sgmat-m144n256k32v-xh"
    PREFILL_BENCH_ROUTING=random PB packed-r64-uneven 60 90 8 "$V" "gpt-oss" "512" int4,fp8
    # r = 64 on both shapes (Mixtral T = 256, GPT-OSS T = 512) and r = 128 (T = 512 / 1024): rows per expert or shape?
    PB packed-r64-even 70 100 8 "$V" "gpt-oss,mixtral" "256,512,1024" int4
    ;;
  3)
    X="=sgmat-default,sgmat-m144n192k64vax-xh,sgmat-m144n256k32v-xh,sgmat-m128n192k64va-xh,sgmat-m128n128k32vax-xh"
    PREFILL_BENCH_ROUTING=random PB prefill-xo 200 240 8 "$X" "mixtral,deepseek-v3-e32,gpt-oss" "512,1024,4096" bf16,int4
    ;;
  4)
    # session 19: why fp8 and MXFP4 staging cost 2-2.7x int4's on the same tile (Mixtral T = 512: fp8 6.4-7.3 ms, int4
    # 2.7): each tile with the staging choices crossed (16-byte vs 8-value loads, word vs value decoding), and decoding first.
    F="=sgmat-default,=sgmat-dequant"
    for t in m128n256k32v-xh m144n256k32v-xh m128n192k64va-xh; do F="$F,=sgmat-$t,=sgmat-$t+words,=sgmat-$t+vdec,=sgmat-$t+narrow+words,=sgmat-$t+narrow+vdec,=sgmat-$t+wide+words"; done
    PREFILL_BENCH_ROUTING=random PB staging-fp8-mxfp4 200 260 6 "$F" "mixtral,gpt-oss" "512" fp8,mxfp4
    ;;
  5)
    # session 19, after call 4 (identical staging choices 1.3-2.4x apart on Mixtral between paths of one run): the
    # candidates for fp8 / MXFP4 / int4 at 64-256 rows per expert, each timed in three rounds in turn.
    F="=sgmat-default,=sgmat-dequant"
    for t in m128n256k32v-xh m144n256k32v-xh m128n192k64va-xh; do F="$F,=sgmat-$t,=sgmat-$t+wide+words,=sgmat-$t+wide+vdec,=sgmat-$t+narrow+words"; done
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB staging-rounds-512 170 200 6 "$F" "mixtral,gpt-oss,deepseek-v3-e32" "512" bf16,fp8,mxfp4,int4
    PREFILL_BENCH_ROUNDS=2 PREFILL_BENCH_ROUTING=random PB staging-rounds-1024 120 150 5 "$F" "mixtral,gpt-oss" "1024" fp8,mxfp4,int4
    ;;
  6)
    # session 19's packed tile rule (144 x 256 from 64 rows per expert, MXFP4 16-byte loads) in the layer: old bundle
    # (bench-old.mjs, the rule before) and new alternating, then the GPU tests of the packed staging
    i=0
    for b in bench-old bench bench-old bench; do
      i=$((i + 1))
      timeout 110 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes int4,mxfp4,fp8 --tokens 512,1024 --iters 8 --stack 2 --json "$OUT/layer-$i-$b.json" > "$OUT/layer-$i-$b.txt" 2>&1
      echo "$b rc=$?"; grep -hE "^(mixtral|gpt)[^:]*$" "$OUT/layer-$i-$b.txt" | cut -c1-60
    done
    (cd "$OUT" && tar czf layer6.tgz layer-* && rm -f layer-*)
    GPU_TESTS 120 sgmat-wide-staging
    ;;
esac
