"""The deterministic input generator of shared/benchmarks/WORKLOADS.md ("rb" PRNG), bit-identical to rb.hpp."""
import os
import statistics
import sys
import time

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def rb_u64(seed, n):
    """z_i for i in [0, n)."""
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(np.uint64(seed) + (i + np.uint64(1)) * GOLDEN)


def rb_u01(seed, n):
    return (rb_u64(seed, n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def rb_upm1(seed, n):
    return np.float32(2.0) * rb_u01(seed, n) - np.float32(1.0)


def rb_randint(seed, n, hi):
    z = rb_u64(seed, n) >> np.uint64(32)
    with np.errstate(over="ignore"):
        return ((z * np.uint64(hi)) >> np.uint64(32)).astype(np.int64)


def linear_params(fan_in, fan_out, seed):
    """(W [out, in], bias [out]) per WORKLOADS.md."""
    b = np.float32(1.0 / np.sqrt(fan_in))
    w = (b * rb_upm1(seed, fan_in * fan_out)).reshape(fan_out, fan_in)
    bias = b * rb_upm1(seed + 1, fan_out)
    return w.astype(np.float32), bias.astype(np.float32)


def median_seconds(fn, min_reps=7, min_seconds=1.0, clock=time.perf_counter):
    """One warm-up call, then at least min_reps timed calls and about min_seconds of timed work (at most 1000);
    the median of the `clock` intervals."""
    fn()
    t = []
    while len(t) < min_reps or sum(t) < min_seconds:
        a = clock()
        fn()
        t.append(clock() - a)
        if len(t) >= 1000:
            break
    return statistics.median(t)


def median_time(fn, min_reps=7, min_seconds=1.0):
    """median_seconds, on process CPU time with REFBENCH_CPU_TIME=1 (rb.hpp's rule for a loaded machine)."""
    cpu = os.environ.get("REFBENCH_CPU_TIME") == "1"
    return median_seconds(fn, min_reps, min_seconds, time.process_time if cpu else time.perf_counter)


def report(workload, impl, threads, seconds):
    print(f"{workload} {impl} {threads} {seconds:.6g}", flush=True)


def threads_from_env():
    return int(os.environ.get("OMP_NUM_THREADS", "1"))
