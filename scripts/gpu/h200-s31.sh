#!/usr/bin/env bash
# Device calls of session 31 (docs/perf-h200/2026-12-07-s31). Kit: bash scripts/gpu/build-kit.sh, with the kit's
# bench-old.mjs from the commit before (session 30's planner: GPUs off the skinny router linear) kept aside and put back.
#   4: the GPU test bundle, then the bf16 layer with the router rule of session 31 (bench.mjs), HF grouped_mm at T = 128
#      / 512 / 4096 and the layer before (bench-old.mjs) at T = 1 / 128 / 512 / 4096, one call (~460 s)
#   t: 4 within ~420 s (the end of a budget): the bundle under 270 s, the new layer and HF, bench-old only while the
#      call has run under 330 s
#   f: within ~230 s: the bundle's files the router rule reaches (linear, router, every moe and bench file), the new
#      layer at T = 128 / 512 / 4096 and HF, bench-old only while the call has run under 180 s
#   2: int4 and MXFP4 on the fp8 band's 128 x 256 tile and the 64 x 128 k64 tile against the planner's (session 30's
#      part 2, never run) (~150 s)
#   x: the tail dispatch (sgmatTail, off by default) on the planner's tiles: Mixtral / GPT-OSS / Qwen3 at T = 512 and
#      1024 with one expert 17 rows past the even spread (Mixtral T = 512: 145 rows, one past the 144-row tile), bf16
#      and int4, three rounds (~120 s)
#   g: within ~280 s: f's bundle files, the new layer at T = 128 / 512 / 4096 and HF, the tail on Mixtral T = 512 bf16
#   h: within ~190 s: f's bundle files, the new layer at T = 512 / 4096 and HF
#   Several parts run in one call: "4 2".
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
MODELS=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite
# LAYER B TOKENS TIMEOUT_S: the kit's bench build B (bench, bench-old) on the four models' bf16 layer into $OUT/layer-B.*
LAYER() {
  timeout "$3" bash .gpu-kit/enter.sh node ".gpu-kit/$1.mjs" --models $MODELS --dtypes bf16 --tokens "$2" --iters 10 --stack 2 --json "$OUT/layer-$1.json" > "$OUT/layer-$1.txt" 2>&1
  echo "$1 rc=$?" >> "$OUT/layer-$1.txt"; grep -hE "^(mixtral|qwen3|gpt|deepseek)\S* +bf16 |rc=" "$OUT/layer-$1.txt" | cut -c1-120
  grep -hE "T=[0-9]+: linear" "$OUT/layer-$1.txt" | cut -c1-90
}
# HF TIMEOUT_S: HF grouped_mm on the four models at T = 128 / 512 / 4096 into $OUT/torch-prefill.*
HF() {
  timeout "$1" python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models $MODELS --tokens 128,512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
  echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | cut -c1-200
}
# AB TOKENS TIMEOUT_S HF_TIMEOUT_S CUTOFF_S: the new layer, HF, then bench-old only while the call has run under CUTOFF_S
AB() {
  LAYER bench "$1" "$2"
  HF "$3"
  if [ "$SECONDS" -ge "$4" ]; then echo "bench-old skipped at ${SECONDS} s"; else LAYER bench-old "$1" "$2"; fi
}
for part in ${1:-4}; do
case "$part" in
  4)
    GPU_TESTS 320
    AB 1,128,512,4096 90 90 100000
    ;;
  t)
    GPU_TESTS 270
    AB 1,128,512,4096 70 70 330
    ;;
  f)
    GPU_TESTS 110 linear.gpu router.gpu packages/moe/ apps/bench/
    AB 128,512,4096 50 55 180
    ;;
  x)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=shift:17 PB tail 110 140 5 "=sgmat-default,=sgmat-default+tail32,=sgmat-default+tail16" mixtral,gpt-oss,qwen3 512,1024 bf16,int4g32
    ;;
  g)
    # session 32's last budget (~300 s): f's bundle files, the new layer and HF, then the tail on Mixtral T = 512 bf16
    GPU_TESTS 95 linear.gpu router.gpu packages/moe/ apps/bench/
    LAYER bench 128,512,4096 50
    HF 55
    PREFILL_BENCH_ROUNDS=2 PREFILL_BENCH_ROUTING=shift:17 PB tail 50 70 5 "=sgmat-default,=sgmat-default+tail32" mixtral 512 bf16
    ;;
  h)
    # within ~190 s: f's bundle files, the new layer at T = 512 / 4096 and HF
    GPU_TESTS 90 linear.gpu router.gpu packages/moe/ apps/bench/
    LAYER bench 512,4096 45
    HF 50
    ;;
  2)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB packed-band 150 190 5 "=sgmat-default,=sgmat-m128n256k32va-xh,=sgmat-m64n128k64-xh" gpt-oss,qwen3,mixtral 512,1024 int4g32,mxfp4
    ;;
esac
done
