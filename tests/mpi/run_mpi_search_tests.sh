#!/usr/bin/env bash
# ctest's mpi/search_* tests: tests/mpi/mpi_search.cpp (run_search_mpi) at several rank counts on this machine.
# Usage: run_mpi_search_tests.sh <mpiexec> <mpi_search> <test>, test one of:
#   asha          ASHA + random sampler at 1, 2 and 4 ranks: the reference's best configuration (the whole table at
#                 1 and 2 ranks), the throwing and the NaN trial failed, units_used = units really trained
#   asha_load     the same at 3 and 4 ranks with a load callback that restores even trials only
#   resume        a search stopped after 1, 17 and 40 journal events (and 17 with the load callback), resumed in a
#                 second job at 2 ranks: the reference's table
#   resume_4      the same at 4 ranks: the reference's best configuration
#   thread_level  3 ranks with MPI_THREAD_FUNNELED: refused with a message naming MPI_THREAD_MULTIPLE
set -euo pipefail
mpiexec=$1 prog=$2 test=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # ranks, arguments... (--oversubscribe: 4 ranks on 2 cores; root allowed: CI runs as root)
  local n=$1
  shift
  OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 "$mpiexec" --allow-run-as-root --oversubscribe -np "$n" \
    "$prog" "$@"
}

case $test in
  asha)
    for n in 1 2 4; do run "$n" asha; done
    ;;
  asha_load)
    for n in 3 4; do run "$n" asha --load; done
    ;;
  resume | resume_4)
    n=$([ "$test" = resume ] && echo 2 || echo 4)
    for case in "1" "17" "40" "17 --load"; do
      set -- $case
      rm -f "$work/j"
      run "$n" resume --journal "$work/j" --stop-after "$@"
      run "$n" resume --journal "$work/j" "${@:2}" $([ "$1" -gt 1 ] && echo --replayed || true)
    done
    ;;
  thread_level)
    if run 3 asha --funneled >"$work/log" 2>&1; then
      echo "FAIL: 3 ranks ran with MPI_THREAD_FUNNELED"; cat "$work/log"; exit 1
    fi
    grep -q "MPI_THREAD_MULTIPLE" "$work/log" || { echo "FAIL: no message about the thread level:"; cat "$work/log"; exit 1; }
    echo "thread_level: 3 ranks with MPI_THREAD_FUNNELED refused"
    ;;
  *)
    echo "unknown test $test"; exit 2
    ;;
esac
