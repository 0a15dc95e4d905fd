"""Throughput of the musculoskeletal twin's batched path.

Usage: python bench/bench_musculoskeletal.py [--cases 64] [--duration-s 3]

Prints cases per wall second and simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import time

from medtwin_ml.solvers.musculoskeletal import TWIN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=3.0)
    args = parser.parse_args()
    patients = TWIN.sample_cohort("korean_adult", args.cases, seed=0)
    design = TWIN.input_domain.sample(args.cases, seed=0)
    cases = TWIN.cases_from_design(design, patients, {"duration_s": args.duration_s})
    start = time.perf_counter()
    TWIN.simulate_batch(cases)
    wall = time.perf_counter() - start
    print(
        f"musculoskeletal: {args.cases} cases x {args.duration_s:g} s in {wall:.2f} s: "
        f"{args.cases / wall:.1f} cases/s, "
        f"{args.cases * args.duration_s / wall:.1f} simulated s per wall s"
    )


if __name__ == "__main__":
    main()
