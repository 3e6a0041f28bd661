# Session 17, H200 call 3 (kit at e4ed87b; bench-old.mjs is 14ca0e9's bench): the whole GPU test bundle (the
# interleaved 'rows2i' GEMV now the planner's for int4 / MXFP4, reached by the int4 / MXFP4 goldens); the layer with
# it against the old planner (4-bit formats, old / new alternating); the combined down GEMV (WEBMOE_DOWN_COMBINE=fused)
# against the down GEMV + combine at T = 1. Raw outputs in $OUT/call3.tgz (the device returns few files).
set -u
. scripts/gpu/prefill-bench-run.sh
mkdir -p /tmp/raw
GPU_TESTS 270
mv $OUT/gpu-tests.txt $OUT/gpu.txt /tmp/raw/
B() { # B NAME BUNDLE ARGS...: one bench run into /tmp/raw/NAME.txt / .json, its moe rows printed
  local name=$1 bundle=$2; shift 2
  timeout $((585 - SECONDS)) bash .gpu-kit/enter.sh node .gpu-kit/$bundle.mjs "$@" --json /tmp/raw/$name.json > /tmp/raw/$name.txt 2>&1
  echo "== $name ($bundle $*) rc=$? at $SECONDS s"
  grep -E "^[a-z0-9-]+ +(bf16|int4|mxfp4|fp8) +[0-9]+ +moe" /tmp/raw/$name.txt | cut -c1-125
}
FOURBIT="--models qwen3-30b-a3b,mixtral-8x7b,gpt-oss-20b --dtypes int4,mxfp4 --tokens 1,16 --iters 30 --stack 8"
B new1 bench $FOURBIT
B old1 bench-old $FOURBIT
END="--models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b,mixtral-8x7b --dtypes bf16,int4 --tokens 1 --iters 30 --stack 8"
WEBMOE_DOWN_COMBINE=fused B fused1 bench $END
B separate1 bench $END
tar czf $OUT/call3.tgz -C /tmp/raw .
