#!/usr/bin/env bash
# The README's main-job command: sets up a fresh machine, builds, and runs the
# benchmark on the default device (GPU if any, else lavapipe with the CPU path's
# rows beside its own, else CPU).
# Extra arguments go to the bench (e.g. --quick --json out.json --html out.html).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p "$XDG_RUNTIME_DIR"
pnpm install --frozen-lockfile
pnpm build
pnpm bench "$@"
