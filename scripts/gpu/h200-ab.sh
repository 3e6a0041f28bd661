#!/usr/bin/env bash
# On the GPU machine: A/B of two bench bundles (.gpu-kit/bench-old.mjs vs .gpu-kit/bench.mjs) on the same rows, one call.
#   AB_ARGS: the rows (default Mixtral bf16+int4 at T=1,16); NEW_ARGS: extra args for the new bundle only.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
ARGS=${AB_ARGS:---models mixtral-8x7b --tokens 1,16 --dtypes bf16,int4 --iters 20}
timeout "${OLD_S:-150}" bash .gpu-kit/enter.sh node .gpu-kit/bench-old.mjs $ARGS --json "$OUT/old.json" > "$OUT/old.txt" 2> "$OUT/old.err"
echo "old rc=$?" >> "$OUT/old.txt"
timeout "${NEW_S:-300}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs $ARGS ${NEW_ARGS:-} --json "$OUT/new.json" > "$OUT/new.txt" 2> "$OUT/new.err"
echo "new rc=$?" >> "$OUT/new.txt"
cat "$OUT/old.txt"; tail -3 "$OUT/old.err"; cat "$OUT/new.txt"; tail -3 "$OUT/new.err"
