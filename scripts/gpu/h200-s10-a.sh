#!/usr/bin/env bash
# On the GPU machine (session 10, first call): the subgroup-matrix GEMM tests (the 48 KiB tile shapes with the real
# builtins), prefill-bench on the 48 KiB shapes against the default, a decomposition of the 128-row tile's time
# (WEBMOE_SGMAT_PROBE: no global loads / no staging stores / neither; a trial bundle, wrong results by design), the
# bind-group cache's host cost (host-cost.ts with per-method times) and the bench's prefill rows. Outputs under $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/smi.txt" 2>&1
mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout "${TESTS_S:-120}" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs grouped-gemm-fast > "$OUT/gpu-tests.txt" 2>&1
echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"; grep -E "FAIL|passed|failed|rc=" "$OUT/gpu-tests.txt" | tail -8
PB="sgmat-default,sgmat-m128n128k32-xh,sgmat-m128n256k32-xh,sgmat-m128n128k64-xh,sgmat-m128n128k32db-xh"
PREFILL_BENCH_MAX_S=150 timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "$PB" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "512,4096" bf16 > "$OUT/prefill.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill.txt"; grep -E "bf16 T=[0-9]+:|rc=|budget" "$OUT/prefill.txt" | cut -c1-500
for m in noglobal nostore both; do
  WEBMOE_SGMAT_PROBE=$m PREFILL_BENCH_MAX_S=30 timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "sgmat-m128n128k32-xh" mixtral 4096 bf16 > "$OUT/probe-$m.txt" 2>&1
  echo "probe $m: $(grep -E 'bf16 T=4096:' "$OUT/probe-$m.txt" | cut -c1-300)"
done
for T in 512 4096; do
  WEBMOE_TIME_CALLS=1 WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs qwen3_moe 40 $T > "$OUT/host-cost-$T.txt" 2>&1
  echo "host-cost T=$T rc=$?"; grep -vE "Warning" "$OUT/host-cost-$T.txt" | head -30
done
timeout "${BENCH_S:-110}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b --dtypes bf16 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; grep -E "^(model|mixtral|qwen3)|rc=" "$OUT/bench-prefill.txt" | grep -v "linear" | cut -c1-210
true
