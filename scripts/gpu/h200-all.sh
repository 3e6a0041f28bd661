#!/usr/bin/env bash
# On the GPU machine, from the repository root with the kit carried: the bench with
# its peers (scripts/gpu/h200-bench.sh), then the GPU test bundle
# (scripts/gpu/h200-tests.sh arguments filter the test files); outputs under $OUT.
set -u
here=$(dirname "$0")
bash "$here/h200-bench.sh"
PREFILL_S=0 bash "$here/h200-tests.sh" "$@"
