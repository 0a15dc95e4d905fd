"""Throughput of the cardiovascular twin's batched path.

Runs ``--cases`` Korean adults (paced, LVAD on, from the input domain) for
``--duration`` simulated seconds at the default 1 ms step and reports cases and
simulated seconds per wall second. Usage::

    python bench/bench_cardiovascular.py --cases 256 --duration 10
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from medtwin_ml.solvers.cardiovascular import TWIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=256)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    patients = TWIN.sample_cohort("korean_adult", args.cases, args.seed)
    design = TWIN.input_domain.sample(args.cases, seed=args.seed)
    cases = TWIN.cases_from_design(design, patients, {"duration_s": args.duration})
    start = time.perf_counter()
    TWIN.simulate_batch(cases)
    wall = time.perf_counter() - start
    print(
        f"cardiovascular batched: {args.cases} cases x {args.duration:g} s simulated "
        f"(1 ms step) in {wall:.2f} s wall: {args.cases / wall:.1f} cases/s, "
        f"{args.cases * args.duration / wall:.0f} simulated s per wall s "
        f"[{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs]"
    )


if __name__ == "__main__":
    main()
