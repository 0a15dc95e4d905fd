"""Micro-batching: concurrent small requests share one onnxruntime call.

A 24-h rollout of one case costs about as much as a rollout of eight (the per-operator
overhead of a small tensor dwarfs its arithmetic), so a server that runs each request
on its own spends most of its time in overhead. :class:`MicroBatcher` gives each model
one worker thread. A request puts its ``p`` and ``u`` on the worker's queue and waits;
the worker takes everything waiting (up to ``max_rows`` cases), runs it as one batch
per horizon and hands each request its rows back.

There is no batching window: an idle worker runs a lone request at once, so a quiet
server adds no latency, and batches grow by themselves as load rises (while one batch
runs, the next one gathers). onnxruntime releases the GIL while it runs, so the event
loop keeps parsing requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MicroBatcher"]

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    p: np.ndarray
    u: np.ndarray
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """One worker thread running ``run(p, u) -> y`` on batches of queued requests.

    Args:
        run: the model, ``p (n, n_p), u (n, K, n_u) -> y (n, K + 1, n_y)``.
        max_rows: most cases in one call; a request with more runs alone.
        name: for the thread's name and the log.
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
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.requests = 0

    def submit(self, p: np.ndarray, u: np.ndarray) -> Future:
        """Queue one request; the future's result is its ``y``. The worker starts
        with the first request (and again after :meth:`close`)."""
        job = _Job(p, u)
        with self._lock:
            if self._thread is None:
                # Each worker has its own queue, so a closing one never takes the
                # jobs of its successor.
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._work,
                    args=(self._queue,),
                    name=f"batcher-{self.name}",
                    daemon=True,
                )
                self._thread.start()
            self._queue.put(job)
        return job.future

    async def run(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Await the answer to one request from an event loop."""
        return await asyncio.wrap_future(self.submit(p, u))

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then stop the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    # The worker

    def _work(self, jobs_in: queue.SimpleQueue[_Job | None]) -> None:
        carry: list[_Job] = []
        while True:
            job = carry.pop(0) if carry else jobs_in.get()
            if job is None:
                return
            jobs, rows = [job], job.p.shape[0]
            stop = False
            while rows < self.max_rows:
                try:
                    nxt = jobs_in.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if rows + nxt.p.shape[0] > self.max_rows:
                    carry.append(nxt)
                    break
                jobs.append(nxt)
                rows += nxt.p.shape[0]
            # One call per horizon: the graph takes one step count per call.
            by_steps: dict[int, list[_Job]] = {}
            for j in jobs:
                by_steps.setdefault(j.u.shape[1], []).append(j)
            for group in by_steps.values():
                self._run_group(group)
            if stop:
                for j in carry:
                    self._run_group([j])
                return

    def _run_group(self, jobs: list[_Job]) -> None:
        live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            if len(live) == 1:
                ys = [self._run(live[0].p, live[0].u)]
            else:
                y = self._run(
                    np.concatenate([j.p for j in live]),
                    np.concatenate([j.u for j in live]),
                )
                ends = np.cumsum([j.p.shape[0] for j in live])[:-1]
                ys = np.split(y, ends)
        except Exception as exc:  # the requests get the error; the worker lives on
            logger.exception("batch of %d requests failed", len(live))
            for j in live:
                j.future.set_exception(exc)
            return
        self.batches += 1
        self.requests += len(live)
        for j, y in zip(live, ys, strict=True):
            j.future.set_result(y)
