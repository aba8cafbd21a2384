#!/usr/bin/env bash
# Installs the Debian packages hepgnn's build, tests and examples need (only the missing ones; needs root).
# Usage: scripts/setup.sh [extra-package...]
set -euo pipefail
packages=(cmake g++ ninja-build ccache libeigen3-dev libxsimd-dev doctest-dev libbenchmark-dev zlib1g-dev
          libfastjet-dev libopenmpi-dev openmpi-bin "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
