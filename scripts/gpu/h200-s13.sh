#!/usr/bin/env bash
# On the GPU machine, session 13's calls (kit: see h200-next.sh; outputs under $OUT):
#   1: the whole GPU test bundle (the float32 fix of 44d25c7 with the real builtins); prefill-bench bf16 with random
#      routing (PREFILL_BENCH_ROUTING=random: uneven rows per expert, the layer's partial row tiles) at Mixtral / GPT-OSS
#      T = 128 / 512 over the tiles that fit ~128 rows per expert; the T = 4096 bf16 shapes of h200-next.sh b.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PB() { # name, time budget (s), timeout (s), then prefill-bench's arguments
  local name=$1 maxs=$2 to=$3
  shift 3
  PREFILL_BENCH_MAX_S=$maxs timeout "$to" bash .gpu-kit/enter.sh node ".gpu-kit/${PBIN:-prefill-bench}.mjs" "$@" > "$OUT/$name.txt" 2>&1
  echo "prefill rc=$?" >> "$OUT/$name.txt"
  grep -E "T=[0-9]+:|rows per|WRONG|rc=" "$OUT/$name.txt" | cut -c1-400
}
case "${1:-1}" in
  1)
    mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
    WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout 270 bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs > "$OUT/gpu-tests.txt" 2>&1
    echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"; grep -E "^FAILED|passed, .* failed|rc=" "$OUT/gpu-tests.txt" | cut -c1-300 | tail -12
    PREFILL_BENCH_ROUTING=random PB prefill-uneven 110 150 10 "=sgmat-default,sgmat-default-band2,sgmat-m128n256k32v-xh,sgmat-m128n128k32v-xh,=sgmat-m64n128k32v,=sgmat-m64n256k32v,=sgmat-m32n256k32v,=sgmat-m32n128k32v,sgmat-m128n256k32v16-xh" "mixtral,gpt-oss" "128,512" bf16
    PB prefill-4096 120 150 10 "=sgmat-default,sgmat-default-band,sgmat-m128n256k32va-xh,sgmat-m128n192k64va-xh,sgmat-m128n256k32v16-xh" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "4096" bf16
    ;;
esac
grep -h "failed to compile" "$OUT"/*.txt 2>/dev/null | head -3
true
