#!/usr/bin/env bash
# Builds the GPU kit (.gpu-kit, git-ignored; carried to the device with `carry: [".gpu-kit"]`) with everything the
# h200-s*.sh call scripts run: Node + Dawn (../shared/gpu/make-kit.sh), the GPU test bundle, the bench, prefill-bench,
# gemv-bench, decode-probe, prefill-small-probe and host-cost bundles, the HF fixtures and the PyTorch peer (apps/bench/torch). Prints what a call carries (scripts/gpu/kit-size.sh): the working
# tree that travels must stay under 64 MiB. After `pnpm install` and `pnpm build`.
#   bash scripts/gpu/build-kit.sh            (KEEP_OLD=1: the previous bench.mjs and prefill-bench.mjs kept as
#                                             bench-old.mjs and prefill-bench-prev.mjs for A/B calls: PBIN=prefill-bench-prev)
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${WEBMOE_SHARED:-../shared}
if [ "${KEEP_OLD:-0}" = 1 ] && [ -f .gpu-kit/bench.mjs ]; then cp .gpu-kit/bench.mjs /tmp/webmoe-bench-old.mjs; fi
if [ "${KEEP_OLD:-0}" = 1 ] && [ -f .gpu-kit/prefill-bench.mjs ]; then cp .gpu-kit/prefill-bench.mjs /tmp/webmoe-prefill-bench-prev.mjs; fi
bash "$shared/gpu/make-kit.sh" .gpu-kit > /tmp/webmoe-make-kit.log 2>&1 || { tail -20 /tmp/webmoe-make-kit.log; exit 1; }
if [ -f /tmp/webmoe-bench-old.mjs ]; then mv /tmp/webmoe-bench-old.mjs .gpu-kit/bench-old.mjs; fi
if [ -f /tmp/webmoe-prefill-bench-prev.mjs ]; then mv /tmp/webmoe-prefill-bench-prev.mjs .gpu-kit/prefill-bench-prev.mjs; fi
node scripts/gpu/build-gpu-tests.mjs
pnpm --filter @webmoe/bench bundle:gpu
for s in prefill-bench gemv-bench decode-probe prefill-small-probe; do node scripts/gpu/build-one.mjs "scripts/gpu/$s.ts" ".gpu-kit/$s.mjs"; done
node scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost.mjs
node scripts/gpu/build-one.mjs scripts/gpu/upload-probe.ts .gpu-kit/upload-probe.mjs
tar cJf .gpu-kit/fixtures.tar.xz -C "$shared" fixtures
# the PyTorch peer with the bench's models and options (--models, --tokens, --impls, --stack); not ../shared/gpu's first version
cp apps/bench/torch/torch_baseline.py .gpu-kit/
# what a call will carry, against the run tool's limit (kit-size.sh: over 62 MiB gets refused)
bash scripts/gpu/kit-size.sh || true
