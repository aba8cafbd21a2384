#!/usr/bin/env bash
# Runs named workloads (../shared/benchmarks/WORKLOADS.md and the issues) in hepgnn and in the reference
# tools on identical inputs, at 1 and 2 threads, and prints `<workload> <implementation> <threads> <median_s>`.
# Usage: benchmarks/compare/compare.sh WORKLOAD...     e.g. compare.sh mlp_train W1a W2/train/max
# Env: HEPGNN_COMPARE_BUILD (build folder, default build-compare), THREADS (default "1 2"), HEPGNN_COMPARE_JOBS,
#      REFBENCH_ALLOCATOR=system to skip the jemalloc preload of MEASURING.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${HEPGNN_COMPARE_BUILD:-$root/build-compare}
[ $# -gt 0 ] || { echo "usage: $0 WORKLOAD..." >&2; exit 2; }

# The reference side: Debian's PyTorch and POT, jemalloc and the OpenMP OpenBLAS of MEASURING.md, nanoflann, FAISS.
bash "$root/scripts/setup.sh" libbenchmark-dev python3-torch python3-pot python3-numpy libjemalloc2 \
  libopenblas0-openmp libnanoflann-dev libfaiss-dev
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHEPGNN_BUILD_TESTS=OFF -DHEPGNN_BUILD_EXAMPLES=OFF \
  -DHEPGNN_BUILD_BENCHMARKS=ON >/dev/null
# Only the programs of the workloads asked for (HEPGNN_COMPARE_JOBS: build parallelism, default nproc).
targets=$(for w in "$@"; do
  while read -r glob cmd; do
    case "$glob" in ''|'#'*) continue ;; esac
    # shellcheck disable=SC2254
    case "$w" in $glob) echo "$cmd" ;; esac
  done < "$here/workloads.txt"
done | sed -n 's/.*{build}\/benchmarks\/\(compare_[A-Za-z0-9_]*\).*/\1/p' | sort -u)
[ -z "$targets" ] || cmake --build "$build" -j"${HEPGNN_COMPARE_JOBS:-$(nproc)}" --target $targets >/dev/null

# Measurement environment of MEASURING.md: jemalloc with page retention, OpenMP OpenBLAS with AVX-512 kernels.
if [ "${REFBENCH_ALLOCATOR:-}" != system ]; then
  jem=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || true)
  if [ -n "$jem" ]; then
    export LD_PRELOAD=$jem MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1
  fi
fi
omp_blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$omp_blas" ] && export LD_LIBRARY_PATH=$omp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPENBLAS_CORETYPE=SkylakeX

for w in "$@"; do
  found=0
  while read -r glob cmd; do
    case "$glob" in ''|'#'*) continue ;; esac
    # shellcheck disable=SC2254
    case "$w" in $glob) ;; *) continue ;; esac
    found=1
    for T in ${THREADS:-1 2}; do
      line=${cmd//\{w\}/$w}; line=${line//\{T\}/$T}; line=${line//\{build\}/$build}; line=${line//\{here\}/$here}
      OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T MKL_NUM_THREADS=$T bash -c "$line" || echo "$w ${line%% *} $T FAILED"
    done
  done < "$here/workloads.txt"
  [ $found = 1 ] || { echo "unknown workload: $w (see $here/workloads.txt)" >&2; exit 2; }
done
