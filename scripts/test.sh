#!/usr/bin/env bash
# Quick start 2/2: install what is missing, build every test and run the whole suite with ctest.
# Real-data tests find ../shared/data beside the clone (or -DHEPGNN_DATA_DIR=...) and skip with a message without it.
# Env: BUILD_DIR (default build-tests), CMAKE_ARGS (extra configure arguments), JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BUILD_DIR:-build-tests}
# shellcheck disable=SC2086
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEPGNN_BUILD_TESTS=ON -DHEPGNN_BUILD_BENCHMARKS=OFF \
  -DHEPGNN_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${JOBS:-$(nproc)}"
# One OpenMP thread per ctest job (ctest runs nproc jobs); tests of thread-count independence set 1 and 2
# threads themselves. Passive waiting keeps oversubscribed OpenMP teams from spinning.
cd "$build" && OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} ctest --output-on-failure --no-tests=error -j"${JOBS:-$(nproc)}" --timeout 600
