"""Throughput of the respiratory twin's batched path.

Runs ``--cases`` ventilated patients (normal cohort, volume control, settings from
the input domain) for ``--duration`` simulated seconds at the default 5 ms step and
reports cases and simulated seconds per wall second. Usage::

    python bench/bench_respiratory.py --cases 1024 --duration 60
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from medtwin_ml.solvers.respiratory import TWIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1024)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    patients = TWIN.sample_cohort("normal", args.cases, args.seed)
    design = TWIN.input_domain.sample(args.cases, seed=args.seed)
    cases = TWIN.cases_from_design(design, patients, {"duration_s": args.duration})
    start = time.perf_counter()
    TWIN.simulate_batch(cases)
    wall = time.perf_counter() - start
    print(
        f"respiratory batched: {args.cases} cases x {args.duration:g} s simulated "
        f"(5 ms step) in {wall:.2f} s wall: {args.cases / wall:.1f} cases/s, "
        f"{args.cases * args.duration / wall:.0f} simulated s per wall s "
        f"[{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs]"
    )


if __name__ == "__main__":
    main()
