#!/usr/bin/env bash
# Quick start 1/2: install what is missing, build and run the quickstart example (a graph-network jet tagger, trained in about 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEPGNN_BUILD_TESTS=OFF -DHEPGNN_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build --target example_quickstart
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ./build/examples/example_quickstart
