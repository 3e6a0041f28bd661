#!/usr/bin/env bash
# Builds .gpu-kit/bench-lin<N>.mjs: the bench with the one-token router linear inside route_decode for routers of at
# most 2^N weights on GPUs (plan.ts KERNEL_CROSSOVERS.routerLinearInRouting.gpu.maxWeights; none: never, as before
# session 39), or with KIND=software on software adapters (bench-software-lin<N>.mjs), then plan.ts as it was
# (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs from it again.
#   bash scripts/gpu/build-bench-lin.sh 18                 # Qwen3-30B's 262 K weights too
#   KIND=software bash scripts/gpu/build-bench-lin.sh none # lavapipe: the router linear always its own dispatch
n=${1:?usage: build-bench-lin.sh N|none}
value=$([ "$n" = none ] && echo 0 || echo "1 << $n")
kind=${KIND:-gpu}
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "$value" "$kind" <<'PYEOF'
import re, sys
path, value, kind = sys.argv[1:]
s = open(path).read()
pat = re.compile(r'(routerLinearInRouting: \{.*?\b' + kind + r': \{ maxWeights: )[^}]*?( \})')
if len(pat.findall(s)) != 1:
    sys.exit(f"build-bench-lin: {path} no longer holds routerLinearInRouting's {kind} maxWeights")
open(path, 'w').write(pat.sub(lambda m: m.group(1) + value + m.group(2), s))
PYEOF
out=bench-$([ "$kind" = gpu ] || echo "$kind-")lin$n.mjs
bench_as "$out"
bench_planner
echo ".gpu-kit/$out and .gpu-kit/bench.mjs built"
