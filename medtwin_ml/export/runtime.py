"""Run a bundle on cases: from a twin's cases to the surrogate's answer.

Serving and validation both go through :class:`SurrogateRunner`, so the way a case
becomes ``p`` and ``u`` exists once. Needs numpy and onnxruntime only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from threading import Lock

import numpy as np

from medtwin_ml.export.bundle import BundleCard, load_bundle
from medtwin_ml.twin import Case, TwinSpec

__all__ = ["SurrogateRunner"]


# Batches of more than this many cases run in chunks of this many (see
# :meth:`SurrogateRunner.run`).
CHUNK_ROWS = 128


def _session(model: bytes, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class SurrogateRunner:
    """One verified bundle, ready to answer.

    Args:
        bundle: the bundle folder.
        threads: onnxruntime intra-op threads (explicit, never "all cores").
        bulk_threads: threads that share the chunks of a large batch (a cohort,
            say), each chunk one onnxruntime call on the same session.
    """

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        threads: int = 1,
        bulk_threads: int = 1,
    ):
        if bulk_threads < 1:
            raise ValueError(f"bulk_threads {bulk_threads}; expected 1 or more")
        self.path = Path(bundle)
        self.card, model = load_bundle(self.path)
        self.session = _session(model, threads)
        self.bulk_threads = bulk_threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = Lock()
        self._twin: TwinSpec | None = None

    @property
    def twin(self) -> TwinSpec:
        if self._twin is None:
            from medtwin_ml.registry import get_twin

            self._twin = get_twin(self.card.twin)
        return self._twin

    @property
    def step(self) -> float:
        return self.card.integration.step

    @property
    def max_steps(self) -> int:
        return int(self.card.input_domain.get("horizon_steps", 0)) or 10**9

    def n_steps_for(self, duration: float) -> int:
        """Steps that fit in ``duration`` (time unit of the card)."""
        n = int(np.floor(duration / self.step + 1e-9))
        if n < 1:
            raise ValueError(
                f"duration {duration:g} {self.card.integration.time_unit} is shorter "
                f"than one surrogate step of {self.step:g}"
            )
        return n

    def parameters(self, cases: Sequence[Case]) -> np.ndarray:
        """``p`` of shape ``(cases, n_params)`` in the card's order and units."""
        names = [s.name for s in self.card.parameters]
        rows = [[float(getattr(case.params, n)) for n in names] for case in cases]
        return np.asarray(rows, dtype=np.float32).reshape(len(cases), len(names))

    def controls(self, cases: Sequence[Case], n_steps: int) -> np.ndarray:
        """``u`` of shape ``(cases, n_steps, n_controls)``: step means of the twin's
        exogenous signals."""
        if self.twin.exogenous_inputs is None:
            raise ValueError(f"twin {self.twin.name} declares no exogenous inputs")
        ratio = round(self.step / self.card.integration.data_step)
        signals = self.twin.exogenous_inputs(cases, n_steps, every=ratio)
        u = np.empty((len(cases), n_steps, len(self.card.controls)), np.float32)
        for k, s in enumerate(self.card.controls):
            u[:, :, k] = signals[s.name]
        return u

    def run(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``y (batch, n_steps + 1, n_outputs)`` from arrays.

        Up to :data:`CHUNK_ROWS` cases are one onnxruntime call. A larger batch is
        cut into chunks of that many, which ``bulk_threads`` threads run side by
        side on the one session (rows are independent, so the answer is the same
        to the bit). Chunks cost no more per case than one large call, use every
        bulk thread, and keep onnxruntime's memory at a chunk's size: a call with
        more rows than any before grows its arena, which took 0.4 to 1.2 s at
        1,000 to 2,000 rows.
        """
        p = np.ascontiguousarray(p, dtype=np.float32)
        u = np.ascontiguousarray(u, dtype=np.float32)
        n = len(p)
        if n <= CHUNK_ROWS:
            return self._call(p, u)
        starts = range(0, n, CHUNK_ROWS)
        chunks = [(p[a : a + CHUNK_ROWS], u[a : a + CHUNK_ROWS]) for a in starts]
        # The last chunk is filled up with copies of its last case, so that every
        # chunk has the shape onnxruntime has seen (a new shape costs its first
        # call extra); the copies' rows are dropped below.
        tail = len(chunks[-1][0])
        if tail < CHUNK_ROWS:
            fill = np.minimum(np.arange(CHUNK_ROWS), tail - 1)
            chunks[-1] = (chunks[-1][0][fill], chunks[-1][1][fill])
        if self.bulk_threads == 1:
            ys = [self._call(*c) for c in chunks]
        else:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.bulk_threads, thread_name_prefix=f"bulk-{self.card.name}"
                    )
                pool = self._pool
            ys = list(pool.map(lambda c: self._call(*c), chunks))
        return np.concatenate(ys)[:n]

    def _call(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        io = self.card.onnx
        (y,) = self.session.run(None, {io.parameters: p, io.controls: u})
        return y

    def warm_up(self) -> None:
        """Run a chunk per bulk thread, twice, over the trained horizon: the first
        calls of a session set up its memory, which a server does before it
        answers rather than in its first cohort query."""
        n_steps = int(self.card.input_domain.get("horizon_steps", 0)) or 1
        rows = CHUNK_ROWS * self.bulk_threads  # a chunk for each thread
        p = np.zeros((rows, len(self.card.parameters)), np.float32)
        u = np.zeros((rows, n_steps, len(self.card.controls)), np.float32)
        for _ in range(2):
            self.run(p, u)

    def close(self) -> None:
        """Stop the bulk threads (a later large batch starts them again)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def predict(
        self, cases: Sequence[Case], duration: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Times ``(n_steps + 1,)`` and outputs ``(cases, n_steps + 1, n_outputs)``."""
        n_steps = self.n_steps_for(duration)
        y = self.run(self.parameters(cases), self.controls(cases, n_steps))
        return np.arange(n_steps + 1) * self.step, y

    def outcomes(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """The twin's scalar outcomes of predicted trajectories, ``{name: (n,)}``."""
        if self.twin.outcomes is None:
            return {}
        outputs = {s.name: y[..., k] for k, s in enumerate(self.card.outputs)}
        return self.twin.outcomes(outputs, self.step)

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Columns of ``p`` with trained bounds, the bounds and their slack."""
        bounds = self.card.input_domain.get("parameters", {})
        cols = [j for j, s in enumerate(self.card.parameters) if s.name in bounds]
        box = np.array(
            [bounds[self.card.parameters[j].name] for j in cols], dtype=float
        ).reshape(-1, 2)
        slack = 1e-6 * np.maximum(1.0, np.abs(box).max(axis=1, initial=0.0))
        return np.array(cols, dtype=int), box[:, 0], box[:, 1], slack

    def outside_bounds(
        self, cases: Sequence[Case], n_steps: int, p: np.ndarray | None = None
    ) -> list[list[str]]:
        """Per case, the reasons it lies outside the training data's box.

        ``p`` is :meth:`parameters` of ``cases`` when the caller already has it.
        """
        if p is None:
            p = self.parameters(cases)
        reasons: list[list[str]] = [[] for _ in cases]
        cols, lo, hi, slack = self._bounds
        if cols.size:
            values = p[:, cols]
            outside = (values < lo - slack) | (values > hi + slack)
            for i, k in zip(*np.nonzero(outside), strict=True):
                name = self.card.parameters[cols[k]].name
                reasons[i].append(
                    f"parameter {name} = {values[i, k]:g} outside "
                    f"[{lo[k]:g}, {hi[k]:g}]"
                )
        if n_steps > self.max_steps:
            for r in reasons:
                r.append(
                    f"horizon of {n_steps} steps beyond the {self.max_steps} trained"
                )
        return reasons


def card_of(bundle: str | os.PathLike[str]) -> BundleCard:
    return load_bundle(bundle)[0]
