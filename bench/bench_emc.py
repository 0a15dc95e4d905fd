"""Cell updates per second of the EMC FDTD backends, beside a memory-bandwidth bound.

Run: ``python bench/bench_emc.py [--n 1024] [--steps 200] [--out FILE.json]``.

One "cell update" is one Yee cell advanced one time step (all three field components
of TMz). The grid is ``n x n`` cells plus CPML, lit by a TF/SF plane wave, in
float32 (numpy also in float64). The bound: a 2D TMz cell update streams at least
five float32 arrays (ez, hx, hy read and written, ca and cb read), so about
``2 * 3 * 4 + 2 * 4 = 32`` bytes per cell per step when nothing stays in cache;
dividing a measured STREAM-like triad bandwidth by that gives the rate that memory
traffic alone would allow.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

from medtwin_ml.solvers.emc._cpml import CpmlProfile, courant_dt
from medtwin_ml.solvers.emc._engine import Fdtd, Waveform

BYTES_PER_CELL_UPDATE = 32


def triad_bandwidth_gb_per_s(n: int = 20_000_000, repeats: int = 5) -> dict[str, float]:
    """Best-of copy (``b[:] = a``) and triad (``a = b + s c``) bandwidth, GB/s."""
    a = np.ones(n, dtype=np.float32)
    b = np.ones(n, dtype=np.float32)
    c = np.ones(n, dtype=np.float32)
    best_copy = best_triad = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        best_copy = min(best_copy, time.perf_counter() - t)
        t = time.perf_counter()
        np.multiply(c, np.float32(0.5), out=a)
        np.add(a, b, out=a)
        best_triad = min(best_triad, time.perf_counter() - t)
    # copy moves 2 arrays; the two-pass triad moves 5 (read c, write a, read a, b,
    # write a).
    return {
        "copy_gb_per_s": 2 * 4 * n / best_copy / 1e9,
        "triad_gb_per_s": 5 * 4 * n / best_triad / 1e9,
    }


def cell_updates_per_s(
    backend: str, precision: str, device: str, n: int, steps: int, threads: int = 1
):
    m = 12
    shape = (n + 2 * (m + 4), n + 2 * (m + 4))
    f = 1e9
    dx = 3e8 / f / 20
    sim = Fdtd(
        "TMz",
        np.ones(shape),
        np.zeros(shape),
        np.zeros(shape, dtype=bool),
        cell_m=dx,
        dt_s=courant_dt(dx, 2, 0.99),
        cpml=CpmlProfile(m),
        omega_ref=2 * math.pi * f,
        backend=backend,
        device=device,
        precision=precision,
        threads=threads,
    )
    i0 = m + 4
    sim.add_plane_wave(
        Waveform(f, "cw", ramp_s=0.0), 1.0, (0.8, 0.6), [(i0, i0 + n)] * 2, (i0, i0)
    )
    sim.step(10)  # warm-up (compilation for numba, allocator for torch)
    sim.bk.synchronize()
    t = time.perf_counter()
    sim.step(steps)
    sim.bk.synchronize()
    return sim.cells * steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="")
    parser.add_argument("--only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        backend, precision, device, threads = args.only.split("-")
        rate = cell_updates_per_s(
            backend, precision, device, args.n, args.steps, int(threads)
        )
        print(rate)
        return

    runs = [("numpy", "float64", "cpu", 1), ("numpy", "float32", "cpu", 1)]
    runs.append(("torch", "float32", "cpu", 1))
    try:
        import numba  # noqa: F401

        runs += [("numba", "float32", "cpu", 1), ("numba", "float32", "cpu", 2)]
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            runs.append(("torch", "float32", "cuda", 1))
    except ImportError:
        pass

    bw = triad_bandwidth_gb_per_s()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "grid_cells": (args.n + 32) ** 2,
        "steps": args.steps,
        **bw,
        "bandwidth_bound_mcups": bw["triad_gb_per_s"]
        * 1e9
        / BYTES_PER_CELL_UPDATE
        / 1e6,
        "backends": {},
    }
    for backend, precision, device, threads in runs:
        key = f"{backend}-{precision}-{device}-{threads}"
        # One process per backend: torch's and numba's OpenMP thread pools would
        # otherwise compete for the same cores.
        proc = subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--steps", str(args.steps),
             "--only", key],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rate = float(proc.stdout.strip().splitlines()[-1])
        result["backends"][key] = rate / 1e6
        line = f"{key:24s} {rate / 1e6:8.1f} M cell updates/s"
        print(line)
    print(
        f"bandwidth: copy {bw['copy_gb_per_s']:.1f} GB/s, triad "
        f"{bw['triad_gb_per_s']:.1f} GB/s -> bound "
        f"{result['bandwidth_bound_mcups']:.0f} M cell updates/s"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
