# Session 17, call 4: the rest of the GPU test bundle that call 3's 270 s did not reach (the moe package's layer tests:
# HF goldens, quantized layers, combined down GEMV, stacks, ...), kit at the planner rule of this commit (int4 rows2i,
# MXFP4 rows2i above one row).
set -u
. scripts/gpu/prefill-bench-run.sh
GPU_TESTS 200 moe/test/fixtures moe/test/quant moe/test/down-combine moe/test/stack moe/test/shared-slots moe/test/random moe/test/properties moe/test/graph moe/test/streamed moe/test/faults moe/test/sharded-quant packages/nn packages/sharding packages/tensor apps/
grep -E "^(packages|apps)/" $OUT/gpu-tests.txt
