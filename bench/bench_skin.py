"""Throughput of the skin twin's batched path.

Usage: python bench/bench_skin.py [--cases 32] [--geometry 1d|axisymmetric]

Prints cases per wall second and simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import time

from medtwin_ml.solvers.skin import TWIN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--geometry", choices=["1d", "axisymmetric"], default="1d")
    parser.add_argument("--duration-s", type=float, default=180.0)
    args = parser.parse_args()
    patients = TWIN.sample_cohort("adult", args.cases, seed=0)
    design = TWIN.input_domain.sample(args.cases, seed=0)
    options = {"duration_s": args.duration_s, "geometry": args.geometry}
    cases = TWIN.cases_from_design(design, patients, options)
    start = time.perf_counter()
    TWIN.simulate_batch(cases)
    wall = time.perf_counter() - start
    print(
        f"skin ({args.geometry}): {args.cases} cases x {args.duration_s:g} s "
        f"(dt 0.1 s) in {wall:.2f} s: {args.cases / wall:.2f} cases/s, "
        f"{args.cases * args.duration_s / wall:.1f} simulated s per wall s"
    )


if __name__ == "__main__":
    main()
