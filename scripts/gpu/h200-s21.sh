#!/usr/bin/env bash
# Session 21's calls (the machine goes back after 30 s idle, so each call runs several of session 20's modes).
#   1: session 20's mode 6 (DeepSeek-V2 / MiniMax-M2 / ERNIE goldens from transformers) and mode 5's decode ablations
#      (as they are, the weight loads, the decode, the x loads, all but the weights, Dawn's bounds clamps off).
#   2: session 20's mode 1 (the whole GPU test bundle; the bf16 layer vs HF grouped_mm at T = 128 / 512 / 4096).
#   3: (one call where starts keep failing) the goldens of 1, the whole GPU test bundle, and the decode GEMVs as they
#      are and without their decode, x and scale loads (the ablation that tells per-value work from latency).
#   5: call 3 within ~400 s (the budget left after failed starts): the goldens, the GPU tests of what changed since
#      the last whole bundle (router kinds, route_decode, the GEMVs' NaN check, DeepSeek-V2 and the fixtures,
#      prefill goldens, random layers), the decode GEMVs as they are and without their decode, x and scale loads.
#   6: call 5 within ~280 s: the goldens, the GPU tests of the router kinds, the GEMVs' NaN check and DeepSeek-V2,
#      and the decode ablation (as they are / without decode, x and scale loads).
#   7: only the goldens of 1 (the budget's last ~200 s).
#   8: (session 22) #12's H200 rows: the bf16 layer at T = 128 / 512 / 4096 (Mixtral, Qwen3-30B, GPT-OSS-20B,
#      DeepSeek-V2-Lite) with HF grouped_mm in the same call, then the packed layer (Mixtral, GPT-OSS-20B; bf16 beside
#      int4 / MXFP4 / fp8) at T = 512 / 4096 (~400 s).
#   4: the bench's new rows (GLM-4.5-Air, MiniMax-M2, ERNIE-4.5-21B-A3B, DeepSeek-V2; bf16, MiniMax-M2 fp8 too) at
#      T = 1 / 16 / 512 beside their PyTorch peers (grouped_mm and eager) from the same call.
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=$(dirname "$0")
. "$D/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    GOLDENS 120
    ABLATE 65 none weights decode x decode+x+scale+nan norobust
    ;;
  2)
    bash "$D/h200-s20.sh" 1
    ;;
  3)
    GOLDENS 100
    GPU_TESTS 320
    gzip -9 "$OUT/gpu-tests.txt"
    ABLATE 60 none decode+x+scale+nan
    ;;
  5)
    GOLDENS 60
    GPU_TESTS 200 router decode-grouping moe-gemv deepseek-v2 fixtures.gpu prefill-golden moe/test/random.gpu granite jamba
    gzip -9 "$OUT/gpu-tests.txt"
    ABLATE 50 none decode+x+scale+nan
    ;;
  6)
    GOLDENS 50
    GPU_TESTS 130 router moe-gemv-quant deepseek-v2 granite jamba
    ABLATE 40 none decode+x+scale+nan
    ;;
  7)
    GOLDENS 60
    ;;
  8)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512,4096
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4,mxfp4,fp8 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-packed.json" > "$OUT/layer-packed.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-packed.txt"; grep -hE "^(model|mixtral|gpt)|rc=" "$OUT/layer-packed.txt" | cut -c1-160
    ;;
  4)
    M=glm-4.5-air,minimax-m2,ernie-4.5-21b-a3b,deepseek-v2
    timeout 300 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$M" --tokens 1,16,512 --iters 10 --stack 8 --json "$OUT/new-models.json" > "$OUT/new-models.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/new-models.txt"; grep -hE "^(model|glm|minimax|ernie|deepseek)|rc=" "$OUT/new-models.txt" | cut -c1-200
    timeout 200 python3 .gpu-kit/torch_baseline.py "$OUT/torch-new.json" --models "$M" --tokens 1,16,512 --impls eager,grouped_mm --iters 10 --stack 8 --stack-gib 60 > "$OUT/torch-new.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-new.txt"; grep -E "T=|rc=|failed" "$OUT/torch-new.txt" | cut -c1-200
    ;;
esac
