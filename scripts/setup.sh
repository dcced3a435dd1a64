#!/usr/bin/env bash
# scripts/setup.sh: install mmsage's Debian dependencies (as root, or with sudo)
# and build it into build/ (or $MMS_BUILD_DIR). Idempotent: a second run only
# rebuilds what changed. Never run inside a SLURM job: build first, then submit.
#   scripts/setup.sh           mmsage's dependencies and the build
#   scripts/setup.sh --peers   also the peers the benchmarks compare against
#                              (Debian's python3-faiss, python3-hnswlib,
#                              python3-torch: bench/peers_ann.py, ../shared/peers);
#                              never a dependency of mmsage itself
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MMS_BUILD_DIR:-$here/build}"

PKGS=(build-essential cmake pkg-config
      libopenmpi-dev openmpi-bin libmetis-dev libscalapack-openmpi-dev libopenblas-dev
      libmsgpack-dev libjansson-dev libjpeg-dev libxxhash-dev
      slurm-wlm munge gnuplot-nox python3 valgrind clang libclang-rt-14-dev
      libmicrohttpd-dev chromium fonts-dejavu-core curl jq man-db groff-base time)
case "${1:-}" in
  "") ;;
  --peers) PKGS+=(python3-numpy python3-scipy python3-faiss python3-hnswlib python3-torch) ;;
  *) echo "usage: scripts/setup.sh [--peers]" >&2; exit 2 ;;
esac
# node and npm for the browser tests (tests/web/): Debian's, unless the machine
# already has them (a nodejs from elsewhere may bundle npm and conflict with
# Debian's npm package)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# puppeteer-core for tests/web (drives the chromium above: no browser
# download), installed from the lock file; skipped when node_modules already
# matches it
web="$here/tests/web"
if [ -f "$web/package-lock.json" ]; then
  stamp="$web/node_modules/.mms-lock-sha256"
  want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: npm ci in $web" >&2
    (cd "$web" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
fi

echo "setup: building in $build" >&2
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MMS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
echo "setup: done: $build/app/mmsage" >&2
