#!/usr/bin/env bash
# scripts/setup.sh: install mmsage's Debian dependencies (as root, or with sudo)
# and build it into build/ (or $MMS_BUILD_DIR). Idempotent: a second run only
# rebuilds what changed. Never run inside a SLURM job: build first, then submit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MMS_BUILD_DIR:-$here/build}"

PKGS=(build-essential cmake pkg-config
      libopenmpi-dev openmpi-bin libmetis-dev libscalapack-openmpi-dev libopenblas-dev
      libmsgpack-dev libjansson-dev libjpeg-dev libxxhash-dev
      slurm-wlm munge gnuplot-nox python3 valgrind clang libclang-rt-14-dev)

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

echo "setup: building in $build" >&2
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MMS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
echo "setup: done: $build/app/mmsage" >&2
