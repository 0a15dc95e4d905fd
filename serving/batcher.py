"""Micro-batching on the event loop: requests that are ready together share one call.

A 24-h rollout of one case costs about as much as a rollout of eight (the per-operator
overhead of a small tensor dwarfs its arithmetic), so a server that runs each request
on its own spends most of its time in overhead under load. :class:`MicroBatcher`
collects, per model, the requests that reach it in one turn of the event loop, and
runs them in one call (per horizon, up to ``max_rows`` cases) at the end of that turn.

The call runs on the event loop itself. A thread of its own would let the model run
beside the loop, but handing each request to it and back cost about 0.2 ms of CPU
per request (queue, wake-ups, the GIL, waking the loop), a third as much as the
rollout; one server process per core (``medtwin serve --workers N``) is how a server
uses several cores. There is no batching window: a lone request runs at the end of
its own turn, so a quiet server adds no latency; under load, requests arrive while
a call runs, and the next turn takes them all, so batches grow with the load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["MicroBatcher"]

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    p: np.ndarray
    u: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """Batches of ``run(p, u) -> y`` over the requests of one event-loop turn.

    Args:
        run: the model, ``p (n, n_p), u (n, K, n_u) -> y (n, K + 1, n_y)``.
        max_rows: most cases in one call; a request with more runs alone.
        name: for the log.
    """

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        max_rows: int = 64,
        name: str = "model",
    ):
        if max_rows < 1:
            raise ValueError(f"max_rows {max_rows}; expected 1 or more")
        self._run = run
        self.max_rows = max_rows
        self.name = name
        # Waiting jobs per event loop (a process has one; tests may have several).
        self._waiting: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self.batches = 0
        self.requests = 0

    async def run(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The model's ``y`` for one request, run with the others of this turn."""
        loop = asyncio.get_running_loop()
        job = _Job(p, u, loop.create_future())
        waiting = self._waiting.get(loop)
        if waiting is None:
            self._waiting[loop] = waiting = []
        waiting.append(job)
        if len(waiting) == 1:
            # After the callbacks already due in this turn: the requests that are
            # ready now join this one.
            loop.call_soon(self._flush, loop)
        return await job.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._waiting.pop(loop, [])
        # One call per horizon (the graph takes one step count per call), at most
        # max_rows cases per call.
        by_steps: dict[int, list[_Job]] = {}
        for j in jobs:
            if not j.future.cancelled():
                by_steps.setdefault(j.u.shape[1], []).append(j)
        for group in by_steps.values():
            batch: list[_Job] = []
            rows = 0
            for j in group:
                n = j.p.shape[0]
                if batch and rows + n > self.max_rows:
                    self._run_batch(batch)
                    batch, rows = [], 0
                batch.append(j)
                rows += n
            if batch:
                self._run_batch(batch)

    def _run_batch(self, jobs: list[_Job]) -> None:
        try:
            if len(jobs) == 1:
                ys = [self._run(jobs[0].p, jobs[0].u)]
            else:
                y = self._run(
                    np.concatenate([j.p for j in jobs]),
                    np.concatenate([j.u for j in jobs]),
                )
                ends = np.cumsum([j.p.shape[0] for j in jobs])[:-1]
                ys = np.split(y, ends)
        except Exception as exc:  # the requests get the error; the batcher goes on
            logger.exception("%s: batch of %d requests failed", self.name, len(jobs))
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        self.batches += 1
        self.requests += len(jobs)
        for j, y in zip(jobs, ys, strict=True):
            if not j.future.done():
                j.future.set_result(y)
