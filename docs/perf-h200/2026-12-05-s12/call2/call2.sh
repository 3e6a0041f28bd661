OUT=${OUT:-/tmp/out}
PB() { n=$1; shift; PREFILL_BENCH_MAX_S=45 timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/$n.mjs 10 "=sgmat-default" "mixtral,gpt-oss" "512,4096" bf16 > $OUT/ab-$n.txt 2>&1; grep -E "T=[0-9]+: bf16" $OUT/ab-$n.txt | sed "s/^/$n /"; }
for n in prefill-bench-prev prefill-bench-p2 prefill-bench-p3 prefill-bench; do PB $n; done
for dc in separate fused separate fused; do WEBMOE_DOWN_COMBINE=$dc timeout 70 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models qwen3-30b-a3b,mixtral-8x7b --dtypes bf16 --tokens 1 --iters 20 --stack 2 --json $OUT/dc-$dc-$RANDOM.json > $OUT/dc-$dc.txt 2>&1; grep -E "^(qwen3|deepseek|mixtral)" $OUT/dc-$dc.txt | grep -v linear | cut -c1-150 | sed "s/^/$dc /"; done
