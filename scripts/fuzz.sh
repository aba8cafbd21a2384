#!/usr/bin/env bash
# Fuzzes every file parser (tests/fuzz: safetensors, npy/npz, CSV, PyTorch .pt, gzip, model metadata) for SECONDS
# each (default 300) with clang's libFuzzer + ASan + UBSan; new inputs and reproducers stay in BUILD_DIR
# (default build-fuzz), so later runs start from what earlier ones found.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh clang libclang-rt-14-dev
BUILD_DIR=${BUILD_DIR:-$PWD/build-fuzz} bash tests/fuzz/run_fuzzers.sh "${1:-300}"
