#!/usr/bin/env bash
# On the GPU machine (session 10, call 5): vector staging (16-byte staging stores, SgmatShape.vs) against the scalar
# staging of plan.ts's tiles: the GEMM tests with the real builtins, then prefill-bench bf16 on four models at
# T = 128, 512, 4096 and int4 / fp8 on two at T = 512, 4096. Outputs under $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs grouped-gemm-fast > "$OUT/gpu-tests.txt" 2>&1
echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"; grep -E "FAIL|not ok|passed|failed|rc=" "$OUT/gpu-tests.txt" | tail -8
PB="sgmat-default,sgmat-m128n256k32-xh,sgmat-m128n256k32v-xh,sgmat-m128n128k32v-xh,sgmat-m64n128k32v,sgmat-m32n128k32,sgmat-m32n128k32v"
PREFILL_BENCH_MAX_S=170 timeout 230 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "$PB" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "128,512,4096" bf16 > "$OUT/prefill-bf16.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill-bf16.txt"; grep -E "T=[0-9]+:|rc=|budget" "$OUT/prefill-bf16.txt" | cut -c1-330
PREFILL_BENCH_MAX_S=90 timeout 140 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "sgmat-m128n256k32-xh,sgmat-m128n256k32v-xh" "mixtral,deepseek-v3-e32" "512,4096" int4,fp8 > "$OUT/prefill-packed.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill-packed.txt"; grep -E "T=[0-9]+:|rc=|budget" "$OUT/prefill-packed.txt" | cut -c1-330
true
