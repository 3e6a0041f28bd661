#!/usr/bin/env bash
# Session 21's calls (the machine goes back after 30 s idle, so each call runs several of session 20's modes).
#   1: session 20's mode 6 (DeepSeek-V2 / MiniMax-M2 / ERNIE goldens from transformers) and mode 5's decode ablations
#      (as they are, the weight loads, the decode, the x loads, all but the weights, Dawn's bounds clamps off).
#   2: session 20's mode 1 (the whole GPU test bundle; the bf16 layer vs HF grouped_mm at T = 128 / 512 / 4096).
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=$(dirname "$0")
case "${1:-1}" in
  1)
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    timeout 120 python3 scripts/fixtures/make-hf-blocks.py /tmp/hf-blocks > "$OUT/make-hf-blocks.txt" 2>&1
    echo "make-hf-blocks rc=$?" >> "$OUT/make-hf-blocks.txt"; tail -5 "$OUT/make-hf-blocks.txt"
    tar czf "$OUT/hf-blocks.tar.gz" -C /tmp hf-blocks
    i=0
    for ab in none weights decode x decode+x+scale+nan norobust; do
      i=$((i + 1)); A=(); DE=; case "$ab" in none) ;; norobust) DE=disable_robustness ;; *) A=(--ablate "$ab") ;; esac
      WEBMOE_DAWN_ENABLE=$DE timeout 65 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3 --formats bf16,int4,fp8 --tokens 1 --kernels rows2,rows2i --iters 20 --split ${A[@]+"${A[@]}"} > "$OUT/ablate-$i-$ab.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/ablate-$i-$ab.txt"
      echo "== $ab"; grep -E "T=1 +rows|rc=" "$OUT/ablate-$i-$ab.txt" | cut -c1-200
    done
    (cd "$OUT" && tar czf ablate.tgz ablate-* && rm -f ablate-*)
    ;;
  2)
    bash "$D/h200-s20.sh" 1
    ;;
esac
