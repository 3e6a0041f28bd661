#!/usr/bin/env bash
# Prepared in session 19 for the next session (session 19's six calls all ran on H100s): the rules of sessions 18-19
# on the card the targets name, and the candidates session 19's data left open.
#   1: the whole GPU test bundle; the layer bf16 T = 128 / 512 / 4096 (Mixtral / Qwen3-30B / GPT-OSS-20B /
#      DeepSeek-V2-Lite) with HF grouped_mm in the same call (#12's T = 4096 share and T = 512 rows on the H200).
#   2: the packed layer (int4 / MXFP4 / fp8, T = 512 / 1024 / 4096, Mixtral and GPT-OSS-20B, bf16 beside them in the
#      same call: #12's 1.3x target with bf16 from the same call).
#   3: prefill-bench in rounds: fp8 e4m3 word decoding without the NaN branch against value decoding; fp8 decoded first against the 144-row tile at 256 rows per expert (Mixtral and
#      DeepSeek-V3-e32 T = 1024, where session 19 saw 6.53 vs 7.26 ms for Mixtral only), int4 with 16-byte loads
#      (mixed in session 19).
#   4: the 160-row tile candidate (m160n256k32v) at 144-160 rows per expert, and the full DeepSeek-V3 fp8 at T = 4096
#      (128 rows per expert: now the 144-row tile).
#   5: (session 20, no device lent) where the packed decode GEMVs' time goes at T = 1 (#11's int4 / MXFP4 at 60% of
#      copy, #13's fp8 at 0.6x bf16): gemv-bench on the planner's row-blocked kernels, once as they are and once per
#      ablation (gemv-ablate.ts: the weight loads, the decode, the x loads, the scale loads, all but the weights), same machine, one process each.
#   6: (session 20) the DeepSeek-V2 and MiniMax-M2 fixtures with transformers' goldens (scripts/fixtures/make-hf-blocks.py: greedy
#      and group-limited greedy routers, two shared experts; sigmoid + bias), written to $OUT/hf-blocks.tar.gz: unpack into
#      packages/moe/test/fixtures/hf-blocks and add their golden tests (CPU and GPU).
# Kit: bash scripts/gpu/build-kit.sh (everything these calls run; 39 MB, with the tree ~51 MB of the 64 MiB that travel).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    # as session 19's first call (run there on an H100)
    bash "$(dirname "$0")/h200-s19.sh" 1
    ;;
  2)
    timeout 280 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4,mxfp4,fp8 --tokens 512,1024,4096 --iters 8 --stack 2 --json "$OUT/layer-packed.json" > "$OUT/layer-packed.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-packed.txt"; grep -hE "^(model|mixtral|gpt)[^:]*$|rc=" "$OUT/layer-packed.txt" | cut -c1-160
    ;;
  3)
    F="=sgmat-default,=sgmat-dequant,=sgmat-m144n256k32v-xh+wide+words,=sgmat-m144n256k32v-xh+narrow+words"
    # fp8 e4m3 word decoding without its NaN branch (session 19) against value decoding, on the tiles plan.ts takes
    PREFILL_BENCH_ROUTING=random PB fp8-words 120 150 6 "=sgmat-default,=sgmat-m144n256k32v-xh+wide+words,=sgmat-m144n256k32v-xh+wide+vdec,=sgmat-m128n256k32v-xh+wide+words,=sgmat-m128n256k32v-xh+wide+vdec" "mixtral,gpt-oss,deepseek-v3-e32" "512" fp8
    PREFILL_BENCH_ROUTING=random PB dequant-256 150 180 6 "$F" "mixtral,deepseek-v3-e32" "1024,2048" fp8,int4
    ;;
  4)
    # session 19's 160-row candidate where an expert passes 144 rows (Mixtral T = 576: mean 144; the layer's router at T = 512 gives one 145)
    PREFILL_BENCH_ROUTING=random PB tile-160 120 150 6 "=sgmat-default,=sgmat-m144n256k32v-xh,=sgmat-m160n256k32v-xh,=sgmat-m128n192k64va-xh" "mixtral,deepseek-v3-e32" "512,576,640" bf16,int4
    PREFILL_BENCH_ROUTING=random PB dsv3-full-fp8 200 240 4 "=sgmat-default,=sgmat-m128n256k32v-xh,=sgmat-dequant" "deepseek-v3-full" "4096" fp8
    ;;
  5)
    # the same rows without each part of the kernel's work, and ('norobust') with Dawn's bounds clamps off (at most 7 x 70 s)
    i=0
    for ab in none weights decode x scale decode+x+scale+nan norobust; do
      i=$((i + 1)); A=(); D=; case "$ab" in none) ;; norobust) D=disable_robustness ;; *) A=(--ablate "$ab") ;; esac
      WEBMOE_DAWN_ENABLE=$D timeout 70 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3 --formats bf16,int4,fp8 --tokens 1 --kernels rows2,rows2i --iters 20 --split ${A[@]+"${A[@]}"} > "$OUT/ablate-$i-$ab.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/ablate-$i-$ab.txt"
      echo "== $ab"; grep -E "T=1 +rows|rc=" "$OUT/ablate-$i-$ab.txt" | cut -c1-200
    done
    ;;
  6)
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    timeout 300 python3 scripts/fixtures/make-hf-blocks.py /tmp/hf-blocks > "$OUT/make-hf-blocks.txt" 2>&1
    echo "make-hf-blocks rc=$?" >> "$OUT/make-hf-blocks.txt"; tail -5 "$OUT/make-hf-blocks.txt"
    tar czf "$OUT/hf-blocks.tar.gz" -C /tmp hf-blocks && ls -la /tmp/hf-blocks/*
    ;;
esac
