#!/usr/bin/env bash
# The packages as a consumer gets them: packs every publishable package,
# installs each tarball alone (its @webmoe dependencies as tarballs) with npm
# and with pnpm, type-checks a strict TypeScript consumer, runs each README's
# examples (GPU ones on the machine's WebGPU adapter: lavapipe in CI), runs
# publint and are-the-types-wrong, and a publish dry run. Needs `pnpm build`'s
# toolchain (pnpm install) and the npm registry. scripts/consumer-check.mjs
# says what each step checks; arguments go to it (--pm npm, --only moe,
# --no-examples, --keep). A few minutes: npm and pnpm run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p "$XDG_RUNTIME_DIR"
exec node scripts/consumer-check.mjs "$@"
