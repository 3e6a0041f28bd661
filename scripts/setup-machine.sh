#!/usr/bin/env bash
# Gives a fresh Debian bookworm machine what the project needs: pnpm, a WebGPU
# adapter without a GPU (Mesa lavapipe >= 25 from bookworm-backports; Dawn
# refuses bookworm's Mesa 22), Debian's chromium for the browser tests, and
# MPICH (libmpich.so.12 + mpiexec) for the multi-process expert-parallel tests.
# Idempotent: each step is skipped when already done.
set -euo pipefail
need_apt=()
have_lvp() {
  for f in /usr/share/vulkan/icd.d/lvp_icd*.json; do [ -e "$f" ] && return 0; done
  return 1
}
mesa_ok() {
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25 && have_lvp
}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
have_mpi() {
  command -v mpiexec >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libmpich\.so\.12\|libmpi\.so\.40'
}
if ! mesa_ok || ! command -v chromium >/dev/null 2>&1 || ! have_mpi; then
  if [ ! -f /etc/apt/sources.list.d/bookworm-backports.list ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if ! mesa_ok; then
    $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq chromium >/dev/null || echo "setup: chromium could not be installed" >&2
  fi
  if ! have_mpi; then
    $SUDO apt-get install -y -qq mpich >/dev/null
  fi
fi
# pnpm: the version package.json's packageManager names (one place), installed
# globally when missing or different (pnpm 10 is the newest line that runs on Node 20).
root=$(cd "$(dirname "$0")/.." && pwd)
pnpm_want=$(node -p "require(process.argv[1]).packageManager.replace(/^pnpm@/, '')" "$root/package.json")
if [ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_want" ]; then
  npm install -g "pnpm@$pnpm_want" >/dev/null
  hash -r
  [ "$(pnpm --version)" = "$pnpm_want" ] || { echo "setup: pnpm $pnpm_want was installed but \`pnpm --version\` says $(pnpm --version)" >&2; exit 1; }
fi
mkdir -p "${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}"
echo "setup: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null), pnpm $(pnpm --version), chromium $(command -v chromium || echo missing), mpich $(dpkg-query -W -f='${Version}' mpich 2>/dev/null || echo missing)"
