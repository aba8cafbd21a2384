#!/usr/bin/env bash
# Peak resident memory (max RSS, getrusage) of W2 (EdgeConv, WORKLOADS.md) in hepgnn and in each PyTorch form,
# one process per implementation, in the environment of compare.sh (jemalloc with page retention, OpenMP OpenBLAS).
# Usage: benchmarks/compare/rss.sh [WORKLOAD...]   (default: W2/train/max W2/train/mean)
# Env: HEPGNN_COMPARE_BUILD (build folder with compare_edge_conv, default build-compare), THREADS (default "1 2").
# Prints `<workload> <implementation> <threads> <max_rss_MiB> <MiB before the first call>`; the second figure is the
# process after imports, inputs and graph, so max - before is what the computation itself holds at its peak.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${HEPGNN_COMPARE_BUILD:-$root/build-compare}
[ -x "$build/benchmarks/compare_edge_conv" ] || {
  echo "rss.sh: $build/benchmarks/compare_edge_conv is missing (run compare.sh W2/train/max first)" >&2; exit 2; }
[ $# -gt 0 ] || set -- W2/train/max W2/train/mean
jem=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ "${REFBENCH_ALLOCATOR:-}" != system ] && [ -e "$jem" ]; then
  export LD_PRELOAD=$jem MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1
fi
omp_blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$omp_blas" ] && export LD_LIBRARY_PATH=$omp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPENBLAS_CORETYPE=SkylakeX
# `<w> <impl...>: max RSS <a> MiB (<b> MiB before the first call)` on stderr -> `<w> <impl> <T> <a> <b>`
rss_line() { sed -n "s/^\([^ ]*\) \(.*\): max RSS \([0-9.]*\) MiB (\([0-9.]*\) MiB before.*/\1 \2 $1 \3 \4/p" | tr -d '()' ; }
for w in "$@"; do
  case "$w" in W2/*) ;; *) echo "rss.sh: only W2 workloads, got $w" >&2; exit 2 ;; esac
  for T in ${THREADS:-1 2}; do
    export OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T MKL_NUM_THREADS=$T
    "$build/benchmarks/compare_edge_conv" "$w" 2>&1 >/dev/null | rss_line "$T"
    for form in scatter decomposed decomposed+dense; do
      /usr/bin/python3 "$here/edge_conv.py" "$w" "$form" 2>&1 >/dev/null | rss_line "$T" | sed "s/ torch / torch-/"
    done
  done
done
