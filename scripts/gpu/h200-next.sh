#!/usr/bin/env bash
# On the GPU machine, the next session's first call (prepared in session 10, not yet run): the vector-array probe
# (f32 result stores into vec4<u32> arrays, what the `oa` shapes need), the matrix-tile tests with the real builtins,
# prefill-bench on the `oa` shapes against plan.ts's tiles (bf16 at T = 512 / 4096; int4 / fp8 / mxfp4 at T = 512), and
# the bench's packed layer rows under plan.ts's rule (int4 with 2-byte staging stores on the 128 x 256 tile).
#   cp scripts/gpu/sgmat-*.mjs .gpu-kit/ && node scripts/gpu/build-gpu-tests.mjs && node scripts/gpu/build-one.mjs \
#     scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs && pnpm --filter @webmoe/bench bundle:gpu
# The tree and the kit travel together under 64 MiB: the kit is ~57 MiB with onnxruntime-node, which this call does not
# need (move .gpu-kit/node_modules/{onnxruntime-node,onnxruntime-common,protobufjs,@protobufjs} aside for it).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
bash .gpu-kit/enter.sh node .gpu-kit/sgmat-vec-probe.mjs > "$OUT/vec-probe.txt" 2>&1; grep -v Warning "$OUT/vec-probe.txt" | tail -3
mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout 180 bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs grouped-gemm-fast sgmat-wide-staging > "$OUT/gpu-tests.txt" 2>&1
echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"; grep -E "not ok|passed|failed|rc=" "$OUT/gpu-tests.txt" | tail -8
PB="sgmat-default,sgmat-m128n256k32v-xh,sgmat-m128n256k32va-xh,sgmat-m128n192k64va-xh,sgmat-m128n192k32va-xh,sgmat-m128n128k32v-xh"
PREFILL_BENCH_MAX_S=150 timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "$PB" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "512,4096" bf16 > "$OUT/prefill-bf16.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill-bf16.txt"; grep -E "T=[0-9]+:|rc=" "$OUT/prefill-bf16.txt" | cut -c1-330
PREFILL_BENCH_MAX_S=60 timeout 110 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "sgmat-default,sgmat-m128n256k32-xh,sgmat-m128n256k32v-xh" mixtral 512 int4,fp8,mxfp4 > "$OUT/prefill-packed.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill-packed.txt"; grep -E "T=[0-9]+:|rc=" "$OUT/prefill-packed.txt" | cut -c1-330
timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b --dtypes bf16,int4 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-packed.json" > "$OUT/bench-packed.txt" 2> "$OUT/bench-packed.err"
echo "bench rc=$?" >> "$OUT/bench-packed.txt"; grep -E "^(model|mixtral)|rc=" "$OUT/bench-packed.txt" | grep -v linear | cut -c1-200
# warm-up compiles only plan.ts's tiles since session 10 (sgmatTilesOf): any compile failure falls back loudly
grep -h "failed to compile" "$OUT"/*.err "$OUT"/*.txt | head -3
true
