"""The micro-batcher: each request gets its own rows back, batches form under load."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batcher import MicroBatcher


class _Model:
    """``y[i, k] = p[i, 0] + sum(u[i, :k, 0])``, slow enough for a queue to form."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None):
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def __call__(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append((p.shape[0], u.shape[1]))
        if self.fail_on is not None and np.any(p[:, 0] == self.fail_on):
            raise ValueError("refused")
        time.sleep(self.delay)
        cum = np.concatenate(
            [np.zeros((u.shape[0], 1)), np.cumsum(u[:, :, 0], axis=1)], axis=1
        )
        return (p[:, :1] + cum)[:, :, None]


def _request(i: int, steps: int = 4, rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    p = np.full((rows, 1), float(i))
    u = np.ones((rows, steps, 1))
    return p, u


def _expected(i: int, steps: int = 4, rows: int = 1) -> np.ndarray:
    return np.tile((i + np.arange(steps + 1.0))[None, :, None], (rows, 1, 1))


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    model = _Model(delay=0.01)
    batcher = MicroBatcher(model, max_rows=64, name="t")
    futures = [batcher.submit(*_request(i)) for i in range(40)]
    for i, f in enumerate(futures):
        np.testing.assert_array_equal(f.result(timeout=10), _expected(i))
    batcher.close()
    # The first call runs alone; the rest wait and go together.
    assert len(model.calls) < 40
    assert sum(n for n, _ in model.calls) == 40
    assert batcher.requests == 40


def test_a_lone_request_runs_at_once():
    model = _Model()
    batcher = MicroBatcher(model, name="t")
    t0 = time.perf_counter()
    y = batcher.submit(*_request(3)).result(timeout=10)
    assert time.perf_counter() - t0 < 1.0
    np.testing.assert_array_equal(y, _expected(3))
    assert model.calls == [(1, 4)]
    batcher.close()


def test_horizons_are_never_mixed_and_rows_are_capped():
    model = _Model(delay=0.02)
    batcher = MicroBatcher(model, max_rows=5, name="t")
    blocker = batcher.submit(*_request(0))  # keeps the worker busy while we queue
    jobs = [(i, 3 + i % 2, 2) for i in range(1, 9)]
    futures = [batcher.submit(*_request(i, s, r)) for i, s, r in jobs]
    blocker.result(timeout=10)
    for (i, s, r), f in zip(jobs, futures, strict=True):
        np.testing.assert_array_equal(f.result(timeout=10), _expected(i, s, r))
    batcher.close()
    assert all(n <= 5 for n, _ in model.calls)
    assert {s for _, s in model.calls} == {3, 4}


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on():
    model = _Model(delay=0.01, fail_on=2.0)
    batcher = MicroBatcher(model, name="t")
    futures = [batcher.submit(*_request(i)) for i in range(4)]
    outcomes = []
    for f in futures:
        try:
            f.result(timeout=10)
            outcomes.append("ok")
        except ValueError:
            outcomes.append("refused")
    assert outcomes[2] == "refused"
    later = batcher.submit(*_request(7)).result(timeout=10)
    np.testing.assert_array_equal(later, _expected(7))
    batcher.close()


def test_close_then_submit_starts_a_new_worker():
    batcher = MicroBatcher(_Model(), name="t")
    batcher.submit(*_request(1)).result(timeout=10)
    batcher.close()
    np.testing.assert_array_equal(
        batcher.submit(*_request(2)).result(timeout=10), _expected(2)
    )
    batcher.close()


def test_awaitable_from_an_event_loop():
    batcher = MicroBatcher(_Model(delay=0.005), name="t")

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.run(*_request(i)) for i in range(10)))

    for i, y in enumerate(asyncio.run(many())):
        np.testing.assert_array_equal(y, _expected(i))
    batcher.close()


def test_max_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_rows 0"):
        MicroBatcher(_Model(), max_rows=0)
