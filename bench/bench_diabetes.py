"""Patient-days simulated per second by the diabetes twin, batched and reference.

Usage: ``python bench/bench_diabetes.py [--patients 1000] [--reference 3]``

The batched path (RK4, two steps a minute, NumPy over all cases) runs ``--patients``
open-loop adult days (three meals with boluses, sampled from the input domain); the
reference path (adaptive DOP853 at relative tolerance 1e-10) runs ``--reference`` of
the same cases one at a time, as ``medtwin simulate`` does. Prints one line per path.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from medtwin_ml.cohorts.diabetes import sample_cohort
from medtwin_ml.solvers.diabetes import (
    INPUT_DOMAIN,
    cases_from_design,
    run_batch,
    simulate,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--reference", type=int, default=3)
    parser.add_argument("--substeps", type=int, default=2)
    args = parser.parse_args()

    n = args.patients
    patients = sample_cohort("adult", n, seed=0)
    design = INPUT_DOMAIN.sample(n, seed=0)
    cases = cases_from_design(design, patients, {"duration_min": 1440})

    start = time.perf_counter()
    batch = run_batch(cases, method="rk4", substeps=args.substeps)
    batched_s = time.perf_counter() - start
    assert np.all(np.isfinite(batch.outputs["plasma_glucose_mg_dl"]))

    start = time.perf_counter()
    for case in cases[: args.reference]:
        simulate(case)
    reference_s = time.perf_counter() - start

    print(
        f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}"
    )
    print(
        f"batched (rk4, {args.substeps} steps/min): {n} patient-days in "
        f"{batched_s:.2f} s = {n / batched_s:.1f} patient-days/s"
    )
    print(
        f"reference (DOP853, rtol 1e-10): {args.reference} patient-days in "
        f"{reference_s:.2f} s = {args.reference / reference_s:.2f} patient-days/s"
    )


if __name__ == "__main__":
    main()
