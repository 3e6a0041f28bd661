# Prepared in session 17 for the next device call: MXFP4 (and int4) at one row per pass, 16-byte chunks ('rows2')
# against code words interleaved over the lanes ('rows2i') now that e8m0 scales are decoded without exp2; GPT-OSS
# read 0.102 -> 0.147 ms interleaved in s17 call 3 (H100). Decides KERNEL_CROSSOVERS.gemvPackedKernel.byFormat.mxfp4.oneRow.
# Kit: .gpu-kit/gemv-bench.mjs built from this commit (node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs).
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv
timeout 280 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --split --models gpt-oss,qwen3,mixtral --formats int4,mxfp4 --tokens 1 --kernels rows2,rows2i --iters 30 > $OUT/gemv-mxfp4.txt 2>&1
sed -n '/== ranking/,$p' $OUT/gemv-mxfp4.txt | grep -v '^{'
