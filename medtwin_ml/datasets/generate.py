"""``medtwin generate``: draw cases from a twin's input domain, solve them, store them.

The steps, for a :class:`~medtwin_ml.datasets.config.DatasetConfig`:

1. ``patients = spec.sample_cohort(cohort, n_patients, seed)``;
2. ``design = domain.sample(n_cases, seed, design)`` over the twin's input domain,
   narrowed by ``config.domain``;
3. case ``i`` pairs design row ``i`` with ``patients[i // scenarios_per_patient]``;
   the cases of one shard come from ``spec.cases_from_design`` on that shard's rows;
4. each shard is solved by ``spec.simulate_batch`` on a Dask worker (a
   ``LocalCluster`` of processes by default, or the cluster at ``scheduler``) or in
   this process (``scheduler="sync"``), and written by this process as it arrives.

A shard's cases depend only on the config and the seed, and a shard is always solved
as one batch, so its bytes never depend on timing, order or the number of workers;
re-running an interrupted generation keeps the finished shards and ends with the same
checksums as an uninterrupted run.

``cases_from_design`` is called once per shard, so it must build case ``i`` from
design row ``i``, patient ``i`` and the options alone (which is what the contract of
:class:`~medtwin_ml.twin.TwinSpec` asks).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from medtwin_ml._version import __version__
from medtwin_ml.datasets.config import DatasetConfig
from medtwin_ml.datasets.store import DatasetWriter, ShardSpan
from medtwin_ml.errors import ConfigError, DatasetError, MedtwinError, SimulationError
from medtwin_ml.registry import get_twin
from medtwin_ml.twin import BatchResult, Case, DomainVariable, InputDomain, TwinSpec
from medtwin_ml.workspace import Workspace

__all__ = ["SYNC", "case_inputs", "generate_dataset", "sampled_domain"]

logger = logging.getLogger(__name__)

SYNC = "sync"
"""The ``scheduler`` value that solves every shard in this process, in order."""

ProgressCallback = Callable[[int, int], None]


def generate_dataset(
    config: DatasetConfig,
    workspace: Workspace,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> Path:
    """Generate (or resume, or confirm) the dataset that ``config`` describes.

    Args:
        config: what to draw and solve.
        workspace: the dataset goes to ``workspace.dataset(config.name)``.
        scheduler: ``None`` for a Dask ``LocalCluster`` of ``n_workers`` processes,
            ``"sync"`` to solve in this process, or a Dask scheduler address
            (``tcp://host:8786``) to use that cluster's workers, which must have
            medtwin-ml and the twin's package installed.
        n_workers: processes of the local cluster; default ``min(2, cpu count)``.
            Ignored for ``"sync"`` and for a scheduler address.
        progress: called as ``progress(cases_done, n_cases)`` at the start and after
            every stored shard.
        overwrite: replace a stored dataset made from a different config.

    Returns:
        The dataset folder; open it with :func:`medtwin_ml.datasets.open_dataset`.

    Raises:
        ConfigError: the config does not fit the twin (unknown cohort, bounds that
            widen the domain, ...) or differs from the stored dataset's.
        UnknownTwinError: no twin of that name.
        SimulationError: the solver failed on a shard (the shard is named).
        DatasetError: the folder is held by another writer, or is not a dataset.
    """
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers = {n_workers}; expected at least 1")
    spec = get_twin(config.twin)
    domain = _check_config(config, spec)
    path = workspace.dataset(config.name)
    units = {q.name: q.unit for q in spec.outputs}

    with DatasetWriter(
        path, _header(config, spec, domain), units=units, overwrite=overwrite
    ) as writer:
        pending = writer.pending()
        total = config.n_cases
        done = writer.n_done
        if progress:
            progress(done, total)
        if pending:
            logger.info(
                "generating %s: %d of %d shards to solve",
                path,
                len(pending),
                len(writer.spans),
            )
            draw = _Draw(config, spec, domain)
            if scheduler == SYNC:
                solved = _run_sync(spec, draw, pending)
            else:
                solved = _run_dask(
                    spec, draw, pending, scheduler=scheduler, n_workers=n_workers
                )
            for span, batch in solved:
                writer.write_shard(span, draw.inputs(span), batch)
                done += span.size
                if progress:
                    progress(done, total)
        manifest = writer.finish()
    _note_absent_outputs(spec, manifest)
    logger.info("dataset %s complete: %s", path, manifest["dataset_sha256"])
    return path


# -- the config against the twin ------------------------------------------------------


def _check_config(config: DatasetConfig, spec: TwinSpec) -> InputDomain:
    source = f"dataset config {config.name!r}"
    problems: list[tuple[str, Any, str]] = []
    missing = [
        attr
        for attr in ("simulate_batch", "sample_cohort", "cases_from_design")
        if getattr(spec, attr) is None
    ]
    if missing:
        problems.append(
            (
                "twin",
                config.twin,
                f"a twin with {', '.join(missing)} (needed to generate datasets)",
            )
        )
    if spec.cohorts and config.cohort not in spec.cohorts:
        problems.append(("cohort", config.cohort, f"one of {list(spec.cohorts)}"))
    if problems:
        raise ConfigError(source, problems)
    return sampled_domain(spec.input_domain, config.domain, source=source)


def sampled_domain(
    domain: InputDomain,
    bounds: Mapping[str, tuple[float, float]],
    *,
    source: str = "domain",
) -> InputDomain:
    """``domain`` with some variables narrowed to ``bounds``; widening is refused.

    Raises:
        ConfigError: a name not in the domain, bounds out of order, or bounds that
            reach outside the twin's declared range (a surrogate is trusted only
            inside what the twin declares).
    """
    problems = []
    for name, (low, high) in bounds.items():
        key = f"domain.{name}"
        if name not in domain.names:
            problems.append((key, name, f"one of the twin's variables {domain.names}"))
            continue
        var = domain.variable(name)
        if not low <= high:
            problems.append((key, [low, high], "bounds [low, high] with low <= high"))
        elif low < var.low or high > var.high:
            problems.append(
                (
                    key,
                    [low, high],
                    f"bounds inside the twin's [{var.low:g}, {var.high:g}] {var.unit}",
                )
            )
    if problems:
        raise ConfigError(source, problems)
    variables = [
        DomainVariable(
            name=v.name,
            unit=v.unit,
            low=float(bounds[v.name][0]) if v.name in bounds else v.low,
            high=float(bounds[v.name][1]) if v.name in bounds else v.high,
            description=v.description,
        )
        for v in domain.variables
    ]
    return InputDomain(variables=variables)


def _header(config: DatasetConfig, spec: TwinSpec, domain: InputDomain) -> dict:
    return {
        "twin": spec.name,
        "solver_version": spec.solver_version,
        "medtwin_ml_version": __version__,
        "config": config.model_dump(mode="json"),
        "seed": config.seed,
        "design": config.design,
        "cohort": config.cohort,
        "n_patients": config.n_patients,
        "scenarios_per_patient": config.scenarios_per_patient,
        "n_cases": config.n_cases,
        "shard_size": config.shard_size,
        "input_domain": domain.model_dump(mode="json"),
        "quantities": [q.as_dict() for q in spec.outputs],
    }


# -- drawing the cases ----------------------------------------------------------------


class _Draw:
    """The seeded cohort and design of a config, cut into the cases of each shard."""

    def __init__(self, config: DatasetConfig, spec: TwinSpec, domain: InputDomain):
        self.config = config
        self.spec = spec
        self.patients = list(
            spec.sample_cohort(config.cohort, config.n_patients, config.seed)
        )
        if len(self.patients) != config.n_patients:
            raise DatasetError(
                f"twin {spec.name}: sample_cohort returned {len(self.patients)} "
                f"patients for n = {config.n_patients}"
            )
        self.design = domain.sample(config.n_cases, config.seed, config.design)
        self._cases: dict[int, list[Case]] = {}

    def patient_ids(self, span: ShardSpan) -> list[int]:
        spp = self.config.scenarios_per_patient
        return [i // spp for i in range(span.start, span.stop)]

    def rows(self, span: ShardSpan) -> pd.DataFrame:
        return self.design.iloc[span.start : span.stop].reset_index(drop=True)

    def cases(self, span: ShardSpan) -> list[Case]:
        if span.index not in self._cases:
            patients = [self.patients[j] for j in self.patient_ids(span)]
            cases = list(
                self.spec.cases_from_design(
                    self.rows(span), patients, dict(self.config.options)
                )
            )
            if len(cases) != span.size:
                raise DatasetError(
                    f"twin {self.spec.name}: cases_from_design returned {len(cases)} "
                    f"cases for {span.size} design rows"
                )
            self._cases[span.index] = cases
        return self._cases[span.index]

    def inputs(self, span: ShardSpan) -> pd.DataFrame:
        frame = case_inputs(
            self.cases(span),
            self.rows(span),
            case_ids=range(span.start, span.stop),
            patient_ids=self.patient_ids(span),
        )
        self._cases.pop(span.index, None)
        return frame


def case_inputs(
    cases: Sequence[Case],
    design: pd.DataFrame,
    *,
    case_ids: Sequence[int],
    patient_ids: Sequence[int],
) -> pd.DataFrame:
    """The stored inputs of some cases, one row per case.

    Columns: ``case_id``, ``patient_id``, the design variables, every numeric
    parameter field flattened as ``param_<field>[_<subfield>]`` (float64; booleans as
    0/1), and ``params_json``, ``device_json``, ``scenario_json``: the exact JSON of
    the case's models, from which the case is rebuilt.
    """
    flat = [_flatten_numeric(c.params) for c in cases]
    param_names = list(dict.fromkeys(k for row in flat for k in row))
    columns: dict[str, Any] = {
        "case_id": pd.array(list(case_ids), dtype="int64"),
        "patient_id": pd.array(list(patient_ids), dtype="int64"),
    }
    for name in design.columns:
        columns[name] = design[name].to_numpy(dtype=float)
    for name in param_names:
        columns[f"param_{name}"] = [row.get(name, float("nan")) for row in flat]
    columns["params_json"] = [c.params.model_dump_json() for c in cases]
    columns["device_json"] = [c.device.model_dump_json() for c in cases]
    columns["scenario_json"] = [c.scenario.model_dump_json() for c in cases]
    frame = pd.DataFrame(columns)
    for name in param_names:
        frame[f"param_{name}"] = frame[f"param_{name}"].astype("float64")
    return frame


def _flatten_numeric(model: BaseModel) -> dict[str, float]:
    out: dict[str, float] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}_{key}" if prefix else str(key), item)
        elif isinstance(value, bool | int | float):
            out[prefix] = float(value)

    visit("", json.loads(model.model_dump_json()))
    return out


# -- solving --------------------------------------------------------------------------


def _solve_shard(
    simulate_batch: Callable[[Sequence[Case]], BatchResult], cases: list[Case]
) -> BatchResult:
    """Run on a worker: one shard, one batch."""
    return simulate_batch(cases)


def _shard_failed(spec: TwinSpec, span: ShardSpan, exc: BaseException) -> MedtwinError:
    if isinstance(exc, MedtwinError):
        return exc
    return SimulationError(
        f"twin {spec.name} failed on {span.name} (cases {span.start}-{span.stop - 1}): "
        f"{type(exc).__name__}: {exc}"
    )


def _run_sync(
    spec: TwinSpec, draw: _Draw, pending: Sequence[ShardSpan]
) -> Iterator[tuple[ShardSpan, BatchResult]]:
    for span in pending:
        try:
            batch = _solve_shard(spec.simulate_batch, draw.cases(span))
        except Exception as exc:
            raise _shard_failed(spec, span, exc) from exc
        yield span, batch


def _run_dask(
    spec: TwinSpec,
    draw: _Draw,
    pending: Sequence[ShardSpan],
    *,
    scheduler: str | None,
    n_workers: int | None,
) -> Iterator[tuple[ShardSpan, BatchResult]]:
    from distributed import as_completed

    with _dask_client(scheduler, n_workers) as client:
        # Keep a few shards per worker in flight: enough to keep every worker busy,
        # few enough that results never pile up in this process's memory.
        n_slots = max(1, sum(client.nthreads().values()))
        window = 2 * n_slots
        queue = list(pending)
        futures: dict[Any, ShardSpan] = {}

        def submit(span: ShardSpan) -> Any:
            future = client.submit(
                _solve_shard, spec.simulate_batch, draw.cases(span), pure=False
            )
            futures[future] = span
            return future

        running = as_completed(
            [submit(queue.pop(0)) for _ in range(min(window, len(queue)))]
        )
        try:
            for future in running:
                span = futures.pop(future)
                try:
                    batch = future.result()
                except Exception as exc:
                    raise _shard_failed(spec, span, exc) from exc
                finally:
                    future.release()
                if queue:
                    running.add(submit(queue.pop(0)))
                yield span, batch
        finally:
            for future in list(futures):
                future.cancel()


@contextmanager
def _dask_client(scheduler: str | None, n_workers: int | None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if n_workers is not None:
            logger.info("n_workers is ignored with scheduler %s", scheduler)
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DatasetError(
                f"cannot reach the Dask scheduler at {scheduler!r}: {exc}"
            ) from None
        with client:
            yield client
        return
    n = n_workers or min(2, os.cpu_count() or 1)
    try:
        # The scheduler's HTTP server on a free local port: the default 8787 may be
        # taken by another cluster, which Dask answers with a warning.
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
        )
    except RuntimeError as exc:
        raise DatasetError(
            f"cannot start a local Dask cluster of {n} worker processes: {exc}; "
            "a script that starts one must guard its entry point with "
            "`if __name__ == '__main__':`, or pass scheduler='sync'"
        ) from exc
    with cluster, Client(cluster) as client:
        yield client


def _note_absent_outputs(spec: TwinSpec, manifest: Mapping[str, Any]) -> None:
    """Log the declared quantities a twin's batch solver does not return.

    Some outputs exist only for some devices (a CGM reading, say); the dataset stores
    what the batch solver returns, and the manifest lists exactly that.
    """
    stored = {o["name"] for o in manifest["outputs"]} | set(manifest["coords"])
    absent = [q.name for q in spec.outputs if q.name not in stored]
    if absent:
        logger.info("twin %s returned no %s in its batches", spec.name, absent)
