#!/usr/bin/env bash
# Session 18's device calls (run from the repository root on the GPU machine, kit in .gpu-kit; OUT set by the tool).
#   1: the GEMV GPU tests (the e8m0 scale decoder of ef98098 had run on lavapipe only) and the HF goldens; MXFP4 / int4
#      at one row per pass, 16-byte chunks ('rows2') against interleaved words ('rows2i') (decides
#      KERNEL_CROSSOVERS.gemvPackedKernel.byFormat.mxfp4.oneRow); prefill-bench bf16: plan.ts's tile against the
#      never-measured shapes with the epilogue in the staging memory (`oa`: 128 x 256 in 32 KiB, 128 x 192 with 64-wide
#      K slices = half the barriers per K) and the 16-subgroup tiles, evenly spread rows and (Mixtral T = 512) the
#      router's uneven rows.
#   2: prefill-bench bf16 with the router's uneven rows: plan.ts's tile against the 144-row tiles (one row tile for an
#      expert of up to 144 rows; Mixtral T = 512's experts past 128 rows pay a second 128-row tile), Mixtral / Qwen3 /
#      GPT-OSS / DeepSeek-V3-e32 at T = 512 / 4096, then Mixtral T = 512 / 4096 with evenly spread rows.
#   3: the layer at the new tile rule (bench.mjs, 94e5b2b) against the old (bench-old.mjs, e80aca1), alternating, bf16
#      prefill T = 512 / 4096 of Mixtral, Qwen3, GPT-OSS, DeepSeek-V2-Lite; HF grouped_mm on the same shapes.
#      bench-old.mjs: git worktree add /tmp/wm-old e80aca1 and the bundle:gpu esbuild command run there.
#   4: packed prefill (int4 / fp8 / MXFP4, the router's uneven rows) on plan.ts's tile against the 128 x 192 k64 and
#      144 x 256 tiles; MXFP4 decode T = 1 at the new rule ('rows2i') against the old ('rows2'), the layer, alternating;
#      the GPU tests of the prefill tiles and the HF goldens (T = 16 and 600) at the new rule.
#   5: the whole GPU test bundle at 738346c; the layer at T = 512 with packed weights (int4 on the 144 x 256 tile, MXFP4 on
#      128 x 192 k64) against 94e5b2b (bench-old.mjs), bf16 beside them, Mixtral and GPT-OSS-20B.
#   6: packed prefill at 52-81 rows per expert (GPT-OSS-20B T = 512, uneven rows), where packed weights still take the
#      64 x 128 tile: the wide tiles against it.
#   7: GPT-OSS-20B packed at T = 1024 (128 rows per expert), where 738346c's rule gives int4 the 144 x 256 tile and MXFP4
#      the 128 x 192 k64 tile: against the tiles before it (int4 128 x 256 scalar-staged, MXFP4 64 x 128 gathered).
# Kit: bash ../shared/gpu/make-kit.sh .gpu-kit; node scripts/gpu/build-gpu-tests.mjs;
#   node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs;
#   node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs;
#   tar cJf .gpu-kit/fixtures.tar.xz -C ../shared fixtures
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
SHAPES="=sgmat-default,sgmat-m128n256k32va-xh,sgmat-m128n192k64va-xh,sgmat-m128n192k32va-xh,sgmat-m128n256k32v16-xh,sgmat-m128n128k32v16-xh"
case "${1:-1}" in
  1)
    GPU_TESTS 150 moe-gemv fixtures.gpu prefill-golden
    timeout 110 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --split --models gpt-oss,qwen3,mixtral --formats int4,mxfp4 --tokens 1 --kernels rows2,rows2i --iters 30 > "$OUT/gemv-mxfp4.txt" 2>&1
    echo "gemv rc=$?" >> "$OUT/gemv-mxfp4.txt"; sed -n '/== ranking/,$p' "$OUT/gemv-mxfp4.txt" | grep -v '^{' | cut -c1-220
    PB prefill-oa 150 190 10 "$SHAPES" "mixtral,qwen3,gpt-oss" "512,4096" bf16
    PREFILL_BENCH_ROUTING=random PB prefill-oa-uneven 60 80 10 "$SHAPES" "mixtral" "512" bf16
    ;;
  2)
    GPU_TESTS 150 grouped-gemm-fast
    T144="=sgmat-default,sgmat-m144n256k32v-xh,sgmat-m144n192k32v-xh,sgmat-m144n192k32va-xh,sgmat-m144n128k32v-xh"
    PREFILL_BENCH_ROUTING=random PB prefill-144-uneven 200 240 10 "$T144" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "512,4096" bf16
    PB prefill-144-even 80 110 10 "$T144" "mixtral" "512,4096" bf16
    ;;
  3)
    M=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite
    for run in bench-old:512,4096:130 bench:512,4096:130 bench-old:512:60 bench:512:60; do
      IFS=: read -r b toks to <<< "$run"
      timeout "$to" bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models $M --dtypes bf16 --tokens "$toks" --iters 10 --stack 2 --json "$OUT/layer-$b-$RANDOM.json" >> "$OUT/layer-$b.txt" 2>&1
      echo "$b rc=$?" >> "$OUT/layer-$b.txt"
    done
    grep -hE "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT"/layer-bench-old.txt | grep -v linear | cut -c1-160
    grep -hE "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT"/layer-bench.txt | grep -v linear | cut -c1-160
    timeout 100 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models $M --tokens 512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -10 | cut -c1-200
    ;;
  4)
    PREFILL_BENCH_ROUTING=random PB prefill-packed 150 190 10 "=sgmat-default,sgmat-m128n192k64va-xh,sgmat-m144n256k32v-xh" "mixtral,deepseek-v3-e32" "512,4096" int4,fp8,mxfp4
    for b in bench-old bench bench-old bench; do
      timeout 45 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models gpt-oss-20b,qwen3-30b-a3b,mixtral-8x7b --dtypes mxfp4 --tokens 1 --iters 30 --stack 8 --json "$OUT/decode-$b-$RANDOM.json" >> "$OUT/decode-$b.txt" 2>&1
      echo "$b rc=$?" >> "$OUT/decode-$b.txt"
    done
    grep -hE "^(model|mixtral|qwen3|gpt)|rc=" "$OUT"/decode-bench-old.txt "$OUT"/decode-bench.txt | grep -v linear | cut -c1-160
    GPU_TESTS 190 fixtures.gpu prefill-golden grouped-gemm-fast
    ;;
  5)
    GPU_TESTS 330
    for b in bench-old bench; do
      timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4,mxfp4,fp8 --tokens 512 --iters 10 --stack 2 --json "$OUT/packed-$b.json" > "$OUT/packed-$b.txt" 2>&1
      echo "$b rc=$?" >> "$OUT/packed-$b.txt"
      grep -hE "^(model|mixtral|gpt)|rc=" "$OUT/packed-$b.txt" | grep -v linear | cut -c1-150
    done
    ;;
  6)
    PREFILL_BENCH_ROUTING=random PB prefill-packed-r64 60 85 8 "=sgmat-default,sgmat-m128n192k64va-xh,sgmat-m144n256k32v-xh,sgmat-m128n256k32-xh,sgmat-m128n256k32v-xh" "gpt-oss" "512" int4,mxfp4,fp8
    ;;
  7)
    PREFILL_BENCH_ROUTING=random PB prefill-packed-gptoss-1024 45 70 8 "=sgmat-default,=sgmat-m128n256k32-xh,=sgmat-m64n128k32,=sgmat-m144n256k32v-xh,=sgmat-m128n192k64va-xh" "gpt-oss" "1024" int4,mxfp4
    ;;
esac
