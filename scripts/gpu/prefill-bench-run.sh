# Sourced by the h200-*.sh call scripts (PB, GPU_TESTS, LAYER_VS_HF, UPLOAD_PROBE, GOLDENS, ABLATE and AB_RUNS below). PB NAME MAX_S TIMEOUT_S ARGS... runs the kit's prefill-bench (or the bundle
# $PBIN names) with a time budget of MAX_S seconds under a TIMEOUT_S timeout, writes $OUT/NAME.txt and prints its
# result lines (per-T rows, rows per expert with random routing, WRONG flags, the exit status). Two rounds unless
# PREFILL_BENCH_ROUNDS says otherwise: a path's first timing after its compile is sometimes 1.5-2.5x slow (session 19).
PB() {
  local name=$1 maxs=$2 to=$3
  shift 3
  PREFILL_BENCH_ROUNDS=${PREFILL_BENCH_ROUNDS:-2} PREFILL_BENCH_MAX_S=$maxs timeout "$to" bash .gpu-kit/enter.sh node ".gpu-kit/${PBIN:-prefill-bench}.mjs" "$@" > "$OUT/$name.txt" 2>&1
  echo "prefill rc=$?" >> "$OUT/$name.txt"
  grep -E "T=[0-9]+:|rows per|WRONG|rc=" "$OUT/$name.txt" | cut -c1-400
}

# GPU_TESTS TIMEOUT_S [FILTERS...]: the card's name and driver to $OUT/gpu.txt, the fixtures unpacked, the kit's GPU test
# bundle (CI=true: a missing adapter fails) under a TIMEOUT_S timeout into $OUT/gpu-tests.txt; prints its failures,
# totals and exit status.
GPU_TESTS() {
  local to=$1
  shift
  mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
  WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout "$to" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs "$@" > "$OUT/gpu-tests.txt" 2>&1
  echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"
  grep -E "^FAILED|passed, .* failed|rc=" "$OUT/gpu-tests.txt" | cut -c1-300 | tail -12
}

# LAYER_VS_HF MODELS TOKENS: the bench's layer in bf16 ($OUT/layer-bf16.*) and HF grouped_mm in the same call
# ($OUT/torch-prefill.*, torch_baseline.py), T = TOKENS; prints the rows and both exit statuses.
LAYER_VS_HF() {
  local models=$1 tokens=$2
  timeout 130 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$models" --dtypes bf16 --tokens "$tokens" --iters 10 --stack 2 --json "$OUT/layer-bf16.json" > "$OUT/layer-bf16.txt" 2>&1
  echo "bench rc=$?" >> "$OUT/layer-bf16.txt"; grep -hE "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT/layer-bf16.txt" | cut -c1-160
  timeout 100 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models "$models" --tokens "$tokens" --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
  echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | cut -c1-200
}

# UPLOAD_PROBE: the kit's upload-probe (host writes and read backs by size, scripts/gpu/upload-probe.ts) into
# $OUT/upload-probe.txt; prints its rows and exit status.
UPLOAD_PROBE() {
  timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/upload-probe.mjs > "$OUT/upload-probe.txt" 2>&1
  echo "upload-probe rc=$?" >> "$OUT/upload-probe.txt"; grep -E "MiB|rc=" "$OUT/upload-probe.txt"
}

# GOLDENS TIMEOUT_S: the hf-blocks fixtures with their transformers goldens (scripts/fixtures/make-hf-blocks.py) into
# /tmp/hf-blocks (emptied first) and $OUT/hf-blocks.tar.gz; prints the goldens written, failures and the exit status.
GOLDENS() {
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  rm -rf /tmp/hf-blocks
  timeout "$1" python3 scripts/fixtures/make-hf-blocks.py /tmp/hf-blocks > "$OUT/make-hf-blocks.txt" 2>&1
  echo "make-hf-blocks rc=$?" >> "$OUT/make-hf-blocks.txt"; grep -E "golden|failed|rc=" "$OUT/make-hf-blocks.txt" | cut -c1-200
  tar czf "$OUT/hf-blocks.tar.gz" -C /tmp hf-blocks
}

# ABLATE TIMEOUT_S ABLATIONS...: gemv-bench at T = 1 (Mixtral, Qwen3; bf16 / int4 / fp8; rows2, rows2i) once per
# ablation ('none': as they are; 'norobust': Dawn's bounds clamps off), one process each, into $OUT/ablate.tgz;
# ABLATE_ARGS: gemv-bench options (default --split), ABLATE_TAG: a tag in the file names (ablate-TAG.tgz).
ABLATE() {
  local to=$1 i=0 ab f pre="ablate${ABLATE_TAG:+-$ABLATE_TAG}"
  shift
  for ab in "$@"; do
    i=$((i + 1)); A=(); DE=; case "$ab" in none) ;; norobust) DE=disable_robustness ;; *) A=(--ablate "$ab") ;; esac
    f="$OUT/$pre-$i-$ab.txt"
    # shellcheck disable=SC2086 # ABLATE_ARGS: words
    WEBMOE_DAWN_ENABLE=$DE timeout "$to" bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3 --formats bf16,int4,fp8 --tokens 1 --kernels rows2,rows2i --iters 20 ${ABLATE_ARGS---split} ${A[@]+"${A[@]}"} > "$f" 2>&1
    echo "gemv-bench rc=$?" >> "$f"
    echo "== ${ABLATE_TAG:+$ABLATE_TAG }$ab"; grep -E "T=1 +rows|rc=" "$f" | cut -c1-200
  done
  (cd "$OUT" && tar czf "$pre.tgz" "$pre"-[0-9]* && rm -f "$pre"-[0-9]*)
}

# AB_RUNS NAME ROUNDS BUILDS PATTERN TIMEOUT_S SCRIPT ARGS...: the kit's SCRIPT bundle (bench, decode-probe, ...) of
# each build in BUILDS (space separated; 'head' is .gpu-kit/SCRIPT.mjs, any other B .gpu-kit/SCRIPT-B.mjs) with ARGS,
# ROUNDS rounds alternating the builds, each under a TIMEOUT_S timeout into $OUT/NAME-B-ROUND.txt (the bench also its
# --json beside it); prints each run's exit status and its lines matching the extended regex PATTERN.
AB_RUNS() {
  local name=$1 rounds=$2 builds=$3 pattern=$4 to=$5 script=$6
  shift 6
  local r b bin json
  for r in $(seq 1 "$rounds"); do
    for b in $builds; do
      bin=.gpu-kit/$script.mjs; [ "$b" = head ] || bin=.gpu-kit/$script-$b.mjs
      json=(); [ "$script" = bench ] && json=(--json "$OUT/$name-$b-$r.json")
      timeout "$to" bash .gpu-kit/enter.sh node "$bin" "$@" ${json[@]+"${json[@]}"} > "$OUT/$name-$b-$r.txt" 2>&1
      echo "== $name $b $r rc=$?"; grep -hE "$pattern" "$OUT/$name-$b-$r.txt" | cut -c1-120
    done
  done
}
