#!/usr/bin/env bash
# The README's test command: sets up a fresh machine (lavapipe, pnpm,
# chromium), installs, builds and runs every package's tests, the browser
# test included. With CI=true, GPU tests fail when no WebGPU adapter exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p "$XDG_RUNTIME_DIR"
pnpm install --frozen-lockfile
pnpm build
pnpm test
pnpm test:browser
