#!/usr/bin/env bash
# Next device calls after session 26 (docs/perf-h200/2026-12-06-s26). Kit: bash scripts/gpu/build-kit.sh
#   1: the whole GPU test bundle at the session's code (~230-330 s by host: give it 420); session 26 ran it before the
#      pf2 band and the int4 load rule (887 passed), and the tile / golden files after the band (281 passed).
#   2: the bf16 layer beside HF at T = 128 / 512 / 4096 (~250 s): the target table's cells with the pf2 band and its
#      split; the bench's `host us` at T = 128 / 512 with prefill outputs from the output pool (session 26 call 5,
#      before it: 1.05-1.77 ms per forward, growing with T: the output buffer made and destroyed each forward).
#   3: the packed layers (bf16 / int4 / fp8 / MXFP4; Mixtral, GPT-OSS, Qwen3) at T = 128 / 512, then 4096 (~300 s):
#      GPT-OSS int4 with 16-byte loads for its 32-input blocks (session 26's rule, measured on the GEMMs only: 1.74 ->
#      1.40 ms at T = 512; the layer was 1.61x bf16 in session 25).
#   4: prefill-bench, the pf2 tile's down GEMM unsplit / split 2 / 3 against the planner's (3 ways where K / 3 >= 2048
#      since session 26, `sgmatSplitK.tileSplits`, from Mixtral T = 128 alone: 1.39 ms against 1.53 unsplit), Mixtral
#      T = 128 / 192 / 256 and DeepSeek-V3-e32 T = 128, bf16 and int4 (~150 s): whether 2 ways beats 3, and T = 192.
#   5: the partial row tile at Mixtral T = 512: one expert at 145 rows (the bench router's; shift:17), the planner's
#      order against the banded order (an expert's row tiles in a row on one weight tile: the 1-row tile's weights
#      from L2), bf16 and int4 (~100 s): the layer's GEMMs take 2.61 ms there, prefill-bench's router rows (max 133)
#      2.35.
#   6: the GPU test bundle with prefill graphs (every T replays a captured graph; the layers' graphs share their
#      scratch: GraphScratch), 420 s.
#   7: the bf16 layer beside HF at T = 128 / 512 with prefill graphs: `wallGpu` and `host us` (call 2 before them:
#      host 523-1082 us per prefill forward, Qwen3 T = 512 wallGpu 1.21 ms against device 0.690 and HF's chain 0.87);
#      host-cost on Qwen3-30B's layer at T = 128 / 512 (WebGPU calls and host us per forward, ~60 s).
#   8: the GPU test files of graphs and goldens with prefill graphs (graph-paths: golden-large through captured and
#      replayed prefill graphs; output-pool: two layers sharing their graph scratch; prefill-golden, fixtures, stack),
#      240 s: the session's correctness check where the budget left no room for the whole bundle (mode 6).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    GPU_TESTS 420
    ;;
  2)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512,4096
    ;;
  3)
    for t in 128,512 4096; do
      timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes bf16,int4,fp8,mxfp4 --tokens $t --iters 8 --stack 2 --json "$OUT/layer-packed-${t%%,*}.json" > "$OUT/layer-packed-${t%%,*}.txt" 2>&1
      echo "bench T=$t rc=$?"; grep -hE "^(mixtral|qwen3|gpt)\S* +(bf16|int4|fp8|mxfp4) " "$OUT/layer-packed-${t%%,*}.txt" | cut -c1-70
    done
    ;;
  4)
    PF2="=sgmat-default,=sgmat-m32n128k64vap2-sk1-xh,=sgmat-m32n128k64vap2-sk2-xh,=sgmat-m32n128k64vap2-sk3-xh"
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB pf2-split 120 160 5 "$PF2" mixtral 128,192,256 bf16,int4
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB pf2-split-dsv3 40 60 5 "$PF2" deepseek-v3-e32 128 bf16
    ;;
  6)
    GPU_TESTS 420
    ;;
  8)
    GPU_TESTS 240 graph output-pool prefill-golden fixtures.gpu stack
    ;;
  7)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512
    for t in 128 512; do
      timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs qwen3-30b-a3b 300 "$t" > "$OUT/host-cost-$t.txt" 2>&1
      echo "host-cost rc=$?" >> "$OUT/host-cost-$t.txt"; grep -E "calls, host|calls per|rc=" "$OUT/host-cost-$t.txt" | cut -c1-300
    done
    ;;
  5)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=shift:17 PB band-145 80 110 5 "=sgmat-default,=sgmat-default-band2,=sgmat-default-band4" mixtral 512 bf16,int4
    ;;
esac
