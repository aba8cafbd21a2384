#!/usr/bin/env bash
# ctest's mpi/* tests: several ranks of tests/mpi/mpi_train.cpp on this machine.
# Usage: run_mpi_tests.sh <mpiexec> <mpi_train> <test>, test one of:
#   collectives   allreduce/broadcast/allgather at 1, 2 and 4 ranks
#   reproducible  reproducible mode: the same weight bits at 1, 2 and 4 ranks; fast mode at 1, 2, 4 close to them
#   resume        a job killed with SIGKILL (one rank, then all) and resumed from its checkpoint ends with the
#                 bits of a job never interrupted
#   rank_throws   a rank that throws stops the whole job with its message, in bounded time (ctest's timeout)
set -euo pipefail
mpiexec=$1 prog=$2 test=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --oversubscribe: 4 ranks on 2 cores; root is allowed (CI runs as root); one OpenMP thread per rank.
run() {  # ranks, arguments...
  local n=$1
  shift
  OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 "$mpiexec" --allow-run-as-root --oversubscribe -np "$n" \
    "$prog" "$@"
}
same() { cmp -s "$1" "$2" || { echo "FAIL: $1 and $2 differ"; exit 1; }; }

case $test in
  collectives)
    for n in 1 2 4; do run "$n" collectives; done
    ;;
  reproducible)
    for n in 1 2 4; do run "$n" train --reduction reproducible --epochs 3 --out "$work/repro$n.bin"; done
    same "$work/repro1.bin" "$work/repro2.bin"
    same "$work/repro1.bin" "$work/repro4.bin"
    echo "reproducible: identical weights at 1, 2 and 4 ranks"
    for n in 1 2 4; do run "$n" train --reduction fast --epochs 3 --out "$work/fast$n.bin"; done
    python3 - "$work" <<'EOF'
import struct, sys
def load(p):
    b = open(p, "rb").read()
    return struct.unpack("%df" % (len(b) // 4), b)
ref = load(sys.argv[1] + "/repro1.bin")
for n in (1, 2, 4):
    w = load(sys.argv[1] + "/fast%d.bin" % n)
    worst = max(abs(a - b) for a, b in zip(w, ref))
    assert len(w) == len(ref) and worst < 1e-4, (n, worst)
    print("fast mode at %d ranks: max |w - w_reproducible| = %.2e" % (n, worst))
EOF
    ;;
  resume)
    for reduction in reproducible fast; do
      run 2 train --reduction "$reduction" --epochs 3 --out "$work/whole.bin"
      # one rank killed (rank 1 at step 5), then the whole job restarted from rank 0's checkpoint
      if run 2 train --reduction "$reduction" --epochs 3 --checkpoint "$work/ckpt.safetensors" --kill-rank 1 \
        --kill-at 5 --out "$work/never.bin" >"$work/killed.log" 2>&1; then
        echo "FAIL: the killed job exited 0"; cat "$work/killed.log"; exit 1
      fi
      [ ! -e "$work/never.bin" ] || { echo "FAIL: the killed job finished"; exit 1; }
      ls "$work" | grep -q '\.tmp' && { echo "FAIL: a temporary checkpoint was left"; exit 1; }
      run 2 train --reduction "$reduction" --epochs 3 --checkpoint "$work/ckpt.safetensors" --resume \
        --out "$work/resumed.bin"
      same "$work/whole.bin" "$work/resumed.bin"
      # every rank killed at once (rank 0 at step 9 of the resumed-from-scratch run)
      rm -f "$work/ckpt.safetensors" "$work/resumed.bin"
      run 2 train --reduction "$reduction" --epochs 3 --checkpoint "$work/ckpt.safetensors" --kill-rank 0 \
        --kill-at 9 >/dev/null 2>&1 && { echo "FAIL: the killed job exited 0"; exit 1; }
      run 2 train --reduction "$reduction" --epochs 3 --checkpoint "$work/ckpt.safetensors" --resume \
        --out "$work/resumed.bin"
      same "$work/whole.bin" "$work/resumed.bin"
      echo "resume ($reduction): killed and resumed runs end with the bits of the uninterrupted one"
    done
    ;;
  rank_throws)
    if run 2 train --epochs 3 --throw-rank 1 --throw-at 4 >"$work/log" 2>&1; then
      echo "FAIL: the job exited 0 although rank 1 threw"; cat "$work/log"; exit 1
    fi
    grep -q "rank 1 of 2 failed: an injected failure at step 4" "$work/log" ||
      { echo "FAIL: the failing rank's message is missing:"; cat "$work/log"; exit 1; }
    echo "rank_throws: the job stopped with the failing rank's message"
    ;;
  *)
    echo "unknown test $test"; exit 2
    ;;
esac
