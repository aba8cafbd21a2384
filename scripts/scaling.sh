#!/usr/bin/env bash
# Data-parallel training of the particle-flow model over MPI ranks on this machine (docs/distributed.md):
#   - samples per second at 1 and 2 ranks, 1 OpenMP thread each, the same global batch (4 micro-shards, one
#     event each per step), median of 3 runs; the allreduce share of a step from rank 0's timeline;
#   - the fast mode's overhead at 1 rank against the plain single-process trainer (one event per step both);
#   - reproducible mode: weights at 1 and 2 ranks compared bit for bit;
#   - kill and resume: a 2-rank job killed with SIGKILL after its first checkpoints, resumed, against the same job
#     never interrupted (bit for bit).
# Usage: scripts/scaling.sh [--metrics-out FILE] [--events N]   (installs what it needs; builds build-scaling/)
set -euo pipefail
cd "$(dirname "$0")/.."
metrics="" events=128
while [ $# -gt 0 ]; do
  case $1 in
    --metrics-out) metrics=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    *) echo "usage: $0 [--metrics-out FILE] [--events N]"; exit 2 ;;
  esac
done
bash scripts/setup.sh
build=build-scaling
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEPGNN_BUILD_TESTS=OFF -DHEPGNN_BUILD_BENCHMARKS=OFF \
  -DHEPGNN_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target example_particle_flow
prog=$PWD/$build/examples/example_particle_flow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
mpi() { local n=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$n" "$prog" --out "$work/out" "$@"; }
common=(--train-events "$events" --epochs 1 --train-only)

echo "== throughput: 1 and 2 ranks, 4 micro-shards (median of 3)"
for run in 1 2 3; do
  for n in 1 2; do
    mpi "$n" "${common[@]}" --micro-shards 4 --metrics-out "$work/fast$n.$run.json" --trace "$work/trace$n.$run" \
      | grep -E "samples/s|timeline" || true
  done
done
echo "== overhead at 1 rank: plain trainer vs data-parallel fast mode (one event per step, median of 3)"
for run in 1 2 3; do
  "$prog" --out "$work/out" "${common[@]}" --metrics-out "$work/plain.$run.json" | grep "samples/s"
  mpi 1 "${common[@]}" --micro-shards 1 --metrics-out "$work/dp1.$run.json" | grep "samples/s"
done
echo "== reproducible mode: 1 and 2 ranks, 4 micro-shards"
for n in 1 2; do
  mpi "$n" "${common[@]}" --micro-shards 4 --reproducible --weights-out "$work/repro$n.safetensors" | grep "samples/s"
done
echo "== kill -9 and resume (2 ranks, reproducible, checkpoint every 2 steps)"
ck="$work/ckpt.safetensors"
mpi 2 "${common[@]}" --micro-shards 4 --reproducible --checkpoint "$ck" --checkpoint-every 2 &
job=$!
for _ in $(seq 600); do [ -e "$ck" ] && break; sleep 0.05; done
sleep 1
pkill -9 -f "$prog" || true
wait "$job" 2>/dev/null && { echo "the job finished before it was killed; use more --events"; exit 1; }
mpi 2 "${common[@]}" --micro-shards 4 --reproducible --checkpoint "$ck" --checkpoint-every 2 --resume \
  --weights-out "$work/resumed.safetensors" | grep -E "resumed|samples/s"

python3 - "$work" "$metrics" <<'PY'
import json, statistics, sys, glob
work, out = sys.argv[1], sys.argv[2]
def sps(pattern):
    return statistics.median(json.load(open(f))["samples_per_second"] for f in glob.glob(f"{work}/{pattern}"))
def share(n):  # rank 0's communication + waiting share of the step, over its 3 runs
    tot = {"compute": 0.0, "wait": 0.0, "communication": 0.0}
    for f in glob.glob(f"{work}/trace{n}.*.0.json"):
        for e in json.load(open(f))["traceEvents"]:
            if e.get("ph") == "X": tot[e["cat"]] += e["dur"]
    s = sum(tot.values())
    return {k: v / s for k, v in tot.items()}
same = lambda a, b: open(f"{work}/{a}", "rb").read() == open(f"{work}/{b}", "rb").read()
r = {
    "ranks": {"1": {"samples_per_second": sps("fast1.*.json")}, "2": {"samples_per_second": sps("fast2.*.json")}},
    "plain_trainer": {"samples_per_second": sps("plain.*.json")},
    "data_parallel_1rank_one_shard": {"samples_per_second": sps("dp1.*.json")},
    "reproducible": {"identical": same("repro1.safetensors", "repro2.safetensors")},
    "resume": {"identical": same("repro2.safetensors", "resumed.safetensors")},
}
r["speedup_2_ranks"] = r["ranks"]["2"]["samples_per_second"] / r["ranks"]["1"]["samples_per_second"]
r["fast_mode_overhead_1_rank"] = 1 - r["data_parallel_1rank_one_shard"]["samples_per_second"] / r["plain_trainer"]["samples_per_second"]
r["timeline_share_2_ranks"] = share(2)

# Past one machine, on paper (docs/distributed.md): weak scaling, one rank per node, b events per rank and step.
# Compute: the measured per-event gradient times (rank 0's "micro-shard" intervals at 1 rank, one event each),
# resampled: a step waits for the slowest of p ranks. Allreduce of the float gradients, alpha-beta model of a
# 100 Gb/s network (assumptions: alpha = 2 us per message, beta = 1 / 12.5 GB/s): ring 2(p-1) alpha +
# 2 (p-1)/p n beta; Rabenseifner (reduce-scatter + allgather by recursive halving) 2 log2(p) alpha + the same
# bandwidth term. Reproducible mode: an allgather of p gradients, (p-1) alpha + (p-1) n beta (ring).
import math, random
events = []
for f in glob.glob(f"{work}/trace1.*.0.json"):
    events += [e["dur"] for e in json.load(open(f))["traceEvents"] if e.get("name") == "micro-shard"]
params = json.load(open(glob.glob(f"{work}/fast1.*.json")[0]))["parameters"]
nbytes, alpha, beta = 4 * params, 2e-6, 1 / 12.5e9
mean = statistics.mean(events) * 1e-6
rnd = random.Random(1)
proj = {"assumptions": {"alpha_s": alpha, "bandwidth_bytes_per_s": 1 / beta, "gradient_bytes": nbytes,
                        "event_seconds_mean": mean, "event_seconds_cv": statistics.pstdev(events) / statistics.mean(events),
                        "events_measured": len(events)}}
for b in (1, 8):
    for p in (2, 8, 64, 512):
        slowest = statistics.mean(max(sum(rnd.choice(events) for _ in range(b)) for _ in range(p)) for _ in range(400)) * 1e-6
        ring = 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes * beta
        rab = 2 * math.log2(p) * alpha + 2 * (p - 1) / p * nbytes * beta
        gather = (p - 1) * alpha + (p - 1) * nbytes * beta
        step = slowest + min(ring, rab)
        proj[f"b{b}_p{p}"] = {"compute_mean_s": b * mean, "slowest_rank_s": slowest, "allreduce_ring_s": ring,
                              "allreduce_rabenseifner_s": rab, "reproducible_allgather_s": gather,
                              "step_s": step, "efficiency": b * mean / step,
                              "samples_per_second": p * b / step,
                              "reproducible_efficiency": b * mean / (slowest + gather)}
r["projection"] = proj
print(json.dumps(r, indent=2))
if out:
    json.dump(r, open(out, "w"), indent=2)
    print("metrics written to", out)
ok = r["reproducible"]["identical"] and r["resume"]["identical"]
sys.exit(0 if ok else 1)
PY
