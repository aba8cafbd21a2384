#!/usr/bin/env bash
# Builds hepgnn's libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time, starting from the
# committed seed corpus in tests/fuzz/corpus/<target>/ (left unchanged: new inputs go to $BUILD_DIR/corpus/<target>/,
# which later runs with the same BUILD_DIR start from too).
# Exits non-zero when a target crashes; the reproducer is written to $BUILD_DIR/artifacts/<target>/.
#
# Usage: tests/fuzz/run_fuzzers.sh [seconds per target]        (default 30, or $FUZZ_SECONDS)
# Environment: BUILD_DIR (default ${TMPDIR:-/tmp}/hepgnn-fuzz-build), CXX_FUZZ (default clang++), JOBS (default 2).
# Reproduce a crash: $BUILD_DIR/tests/fuzz/fuzz_<target> <artifact file>
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-30}}
build=${BUILD_DIR:-${TMPDIR:-/tmp}/hepgnn-fuzz-build}
cxx=${CXX_FUZZ:-clang++}
targets=(safetensors npy csv torch_pt gzip model_metadata)

command -v "$cxx" >/dev/null || { echo "run_fuzzers.sh: $cxx not found (libFuzzer needs clang)" >&2; exit 2; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHEPGNN_BUILD_TESTS=OFF -DHEPGNN_BUILD_BENCHMARKS=OFF -DHEPGNN_BUILD_EXAMPLES=OFF -DHEPGNN_BUILD_FUZZERS=ON \
  -DHEPGNN_NATIVE=OFF >/dev/null
cmake --build "$build" --target "${targets[@]/#/fuzz_}" -j "${JOBS:-2}"

status=0
for t in "${targets[@]}"; do
  grown="$build/corpus/$t"
  log="$build/fuzz_$t.log"
  mkdir -p "$grown"
  artifacts="$build/artifacts/$t/"
  mkdir -p "$artifacts"
  dict=()
  [[ -f "$here/$t.dict" ]] && dict=(-dict="$here/$t.dict")
  echo "== fuzz_$t: ${seconds}s from $(ls "$here/corpus/$t" | wc -l) seed files"
  if "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
       -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" "$grown" "$here/corpus/$t" 2>"$log"; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+[[:space:]]+DONE" "$log" || true
    echo "== fuzz_$t: no crash"
  else
    tail -n 60 "$log"
    echo "== fuzz_$t: CRASH (reproducer in $artifacts)" >&2
    status=1
  fi
done
exit $status
