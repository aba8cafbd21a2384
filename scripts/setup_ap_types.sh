#!/usr/bin/env bash
# Test-only: installs Xilinx's ap_types headers (ap_fixed.h and friends, Apache-2.0), which hls4ml vendors in its
# PyPI wheel under hls4ml/templates/vivado/ap_types, for the bit-exactness test of hepgnn::quant (tests/quant_ap).
# Nothing of hepgnn's build needs them; the test is built only when CMake is given their folder.
#
# Usage: scripts/setup_ap_types.sh [DEST]      (DEST default: build-ap-types)
#   then: cmake ... -DHEPGNN_AP_TYPES_DIR=DEST/ap_types && ninja quant_ap_fixed_exact && ctest -R quant_ap
# Environment: HLS4ML_VERSION (default 1.3.0: the version checked), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build-ap-types}
version=${HLS4ML_VERSION:-1.3.0}
python=${PYTHON:-python3}
mkdir -p "$dest/wheel"
if ! ls "$dest/wheel"/hls4ml-"$version"-*.whl >/dev/null 2>&1; then
  # the wheel only (no dependencies: nothing of hls4ml is imported or run)
  "$python" -m pip download --no-deps --only-binary=:all: -d "$dest/wheel" "hls4ml==$version"
fi
wheel=$(ls "$dest/wheel"/hls4ml-"$version"-*.whl | head -n 1)
rm -rf "$dest/ap_types"
"$python" - "$wheel" "$dest/ap_types" <<'EOF'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "hls4ml/templates/vivado/ap_types/"
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(out, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as dst:
                dst.write(src.read())
            count += 1
if not os.path.isfile(os.path.join(out, "ap_fixed.h")):
    sys.exit(f"setup_ap_types: {wheel} has no {prefix}ap_fixed.h")
print(f"setup_ap_types: {count} files from {os.path.basename(wheel)} in {out}")
EOF
echo "configure with: -DHEPGNN_AP_TYPES_DIR=$(cd "$dest/ap_types" && pwd)"
