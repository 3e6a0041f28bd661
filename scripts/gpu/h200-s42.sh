#!/usr/bin/env bash
# Device calls prepared in session 42 (no machine was lent then): re-measurements that may move target rows, each a
# call of its own so that whatever budget comes first buys the likeliest change.
#   o: #11's ">= 4x onnxruntime QMoE wall, int4 T = 1" (last measured in session 9: DeepSeek-V3/e32 3.3x, our wall
#      0.453 ms = 0.248 device + 0.2 host in/out, ORT 1.50): the bench with --peer onnxruntime, int4, T = 1, the five
#      layers of that run. Kit: `WITH_ORT=1 bash ../shared/gpu/make-kit.sh .gpu-kit-ort`, then
#      `pnpm --filter @webmoe/bench bundle:gpu && cp .gpu-kit/bench.mjs .gpu-kit/check-worker.js .gpu-kit-ort/`;
#      run with carry [".gpu-kit-ort"] (48 MB: the two kits do not fit one call). ~150 s.
#   b: session 41's GpuContext.reclaimMemory and the stack budget on a card filled by a chain (h200-s41.sh b with
#      BENCH_ONLY=1): Mixtral bf16 then int4, --stack 60 --stack-gib 200. Kit: .gpu-kit with bench.mjs. ~70 s.
#   p: #12's "int4 / mxfp4 / fp8 prefill <= 1.3x bf16, T >= 512" (int4 / MXFP4 last measured in session 28): the
#      bench's layer, Mixtral, Qwen3 and GPT-OSS at T = 512 and 4096 in the four dtypes. Kit: .gpu-kit. ~250 s.
#   t: the whole GPU test bundle (#12's "0 failures"; last run at session 40's library, 987 / 0; since then session
#      41's reclaimMemory, stack headroom and error order, session 42's graph-key move). Kit: .gpu-kit with
#      gpu-tests.mjs.gz (`node scripts/gpu/build-gpu-tests.mjs`, then `rm -rf .gpu-kit/fixtures; gzip -9f
#      .gpu-kit/gpu-tests.mjs`). ~400 s.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
rows() { grep -E "^(model|mixtral|qwen3|gpt|deepseek)|FAILED|rc=" "$1" | cut -c1-240; }
for part in ${1:-o}; do
case "$part" in
  o)
    timeout 330 bash .gpu-kit-ort/enter.sh node .gpu-kit-ort/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite,deepseek-v3/e32 \
      --dtypes int4 --tokens 1 --iters 20 --stack 4 --peer onnxruntime --json "$OUT/ort.json" > "$OUT/ort.txt" 2> "$OUT/ort.err"
    echo "bench rc=$?" >> "$OUT/ort.txt"; rows "$OUT/ort.txt"; tail -3 "$OUT/ort.err"
    ;;
  b)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b --dtypes bf16,int4 --tokens 1,16 --iters 20 --stack 60 --stack-gib 200 --json "$OUT/reclaim.json" > "$OUT/reclaim.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/reclaim.txt"; rows "$OUT/reclaim.txt"
    ;;
  p)
    timeout 330 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes bf16,int4,mxfp4,fp8 \
      --tokens 512,4096 --iters 5 --stack 2 --json "$OUT/packed-prefill.json" > "$OUT/packed-prefill.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/packed-prefill.txt"; rows "$OUT/packed-prefill.txt"
    ;;
esac
done
