#!/usr/bin/env bash
# Next device calls after session 25 (docs/perf-h200/2026-12-06-s25). Kit: bash scripts/gpu/build-kit.sh
#   1: prefill-bench, the router's rows, three rounds: the 128-wide K slice candidates (m32n128k128va over f16 x rows,
#      m64n128k128vaxd / m128n128k128vaxd over x loaded directly, the down GEMM split 2 / 3 ways) and the two-slices-in-
#      registers ones (pf2: the planner's 128 x 192 k64 tile as m128n192k64vap2, and m32n128k64vap2) against the planner's
#      tile, bf16, Mixtral at T = 128 / 512 (32 / 128 rows per expert; HF 1.53 / 2.36 ms in session 25) and
#      DeepSeek-V3-e32 and GPT-OSS at T = 128, then the banded work order at T = 512 (~200 s). A win is a planner rule
#      to write.
#   2: the same candidates with packed weights (int4, fp8, MXFP4) at Mixtral T = 128 / 512 (~150 s).
#   3: the whole GPU test bundle (~230-330 s by host: give it 420).
#   4: the layer beside HF at T = 128 / 512 / 4096 (h200-s24.sh 1's LAYER_VS_HF, ~250 s): the target table's cells.
#   5: int4 with the bench layer's 32-input blocks (int4g32) against prefill-bench's 128 (int4), 8-value loads (the
#      planner's for int4) against 16-byte ones (+wide: one scale per load = one 32-input block), GPT-OSS and Mixtral at
#      T = 512 / 4096: session 25's GPT-OSS int4 layer GEMMs took 1.73 ms at T = 512 where prefill-bench's (blocks of
#      128) took 1.45 (~150 s).
#   6: gemv-bench on full DeepSeek-V3 bf16 / fp8 at T = 1, every kernel, with session 25's warm-up until steady (its
#      rankings did not carry to the layer in sessions 22-23, when its passes ran after idle gaps), then the layer's own
#      per-kernel profile in the same call: if the planner's kernel times the same in both (the layer's fp8 GEMVs 0.225
#      ms, session 25 call 1), gemv-bench's winners are worth a layer A/B for #13's fp8 <= 0.6x bf16 (~150 s).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
K128="=sgmat-default,=sgmat-m32n128k128va-xh,=sgmat-m32n128k128va-sk2-xh,=sgmat-m32n128k128va-sk3-xh,=sgmat-m64n128k128vaxd,=sgmat-m64n128k128vaxd-sk3,=sgmat-m128n128k128vaxd,=sgmat-m128n128k128vaxd-sk3,=sgmat-m128n192k64vap2-xh,=sgmat-m128n192k64vap2-sk3-xh,=sgmat-m32n128k64vap2-xh,=sgmat-m32n128k64vap2-sk3-xh"
case "${1:-1}" in
  1)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1; cat "$OUT/gpu.txt"
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB k128-mixtral 110 150 5 "$K128" mixtral 128,512 bf16
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB k128-others 60 90 5 "$K128" "deepseek-v3-e32,gpt-oss" 128 bf16
    # the banded work order again (an expert's row tiles on one weight tile consecutive: a second, nearly empty row tile
    # reads its weights from L2): last measured in session 17 by single timings, 1.2-1.7x slower, before prefill-bench
    # timed in rounds and warmed each path until steady (a path's first timing was 1.3-3.4x its second, session 25)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB band-512 60 90 5 "=sgmat-default,=sgmat-default-band2,=sgmat-default-band4,=sgmat-rowskip-band2" mixtral,deepseek-v3-e32 512 bf16
    ;;
  2)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB k128-packed 150 200 5 "$K128" mixtral 128,512 int4,fp8,mxfp4
    ;;
  3)
    GPU_TESTS 420
    ;;
  4)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512,4096
    ;;
  6)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models deepseek-v3 --formats bf16,fp8 --tokens 1 --iters 20 > "$OUT/gemv-dsv3.txt" 2>&1
    echo "gemv-bench rc=$?"; grep -E "T=1 " "$OUT/gemv-dsv3.txt" | cut -c1-160 | head -40
    timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1 > "$OUT/layer-dsv3.txt" 2>&1
    echo "bench rc=$?"; grep -E "^deepseek-v3 " "$OUT/layer-dsv3.txt" | cut -c1-200
    ;;
  7)
    # where the 32-row pf2 tile's band ends (session 26: it won at 16 and 32 rows per expert, lost at 128): rows per
    # expert 8 / 32 / 64 (Qwen3 T = 128 / 512 / 1024), 64 / 96 (GPT-OSS T = 512 / 768, Mixtral T = 256 / 384)
    P7="=sgmat-default,=sgmat-m32n128k64vap2-xh,=sgmat-m32n128k64vap2-sk3-xh"
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB pf2-range-bf16 120 160 5 "$P7" qwen3 128,512,1024 bf16
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB pf2-range-bf16b 120 160 5 "$P7" gpt-oss,mixtral 256,384,512,768 bf16
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB pf2-range-packed 150 200 5 "$P7" gpt-oss,mixtral,qwen3 256,384,512,768 int4,fp8,mxfp4
    ;;
  8)
    # the pf2 band in the planner (session 26): its tests on the card's builtins, the layer beside HF at T = 128 / 512,
    # and the packed layers there (their ratio to bf16)
    GPU_TESTS 220 grouped-gemm-fast.gpu quant.gpu fixtures.gpu prefill-golden
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512
    timeout 170 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes int4,fp8,mxfp4 --tokens 128,512 --iters 8 --stack 2 --json "$OUT/layer-packed.json" > "$OUT/layer-packed.txt" 2>&1
    echo "bench rc=$?"; grep -hE "^(mixtral|qwen3|gpt)" "$OUT/layer-packed.txt" | cut -c1-120
    ;;
  5)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB int4-blocks 150 200 5 "=sgmat-default,=sgmat-default+wide" "gpt-oss,mixtral" 512,4096 int4,int4g32
    ;;
esac
