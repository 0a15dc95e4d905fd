"""The micro-batcher: requests ready in one turn of the event loop share one call,
and each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.batcher import MicroBatcher


class _Model:
    """``y[i, k] = p[i, 0] + sum(u[i, :k, 0])``; records its calls."""

    def __init__(self, fail_on: float | None = None):
        self.fail_on = fail_on
        self.calls: list[tuple[int, int]] = []
        self.during_call = None  # called inside the first call, once

    def __call__(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        self.calls.append((p.shape[0], u.shape[1]))
        if self.during_call is not None:
            hook, self.during_call = self.during_call, None
            hook()
        if self.fail_on is not None and np.any(p[:, 0] == self.fail_on):
            raise ValueError("refused")
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


def test_requests_ready_together_share_one_call_and_get_their_own_rows():
    model = _Model()
    batcher = MicroBatcher(model, max_rows=64, name="t")

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.run(*_request(i)) for i in range(40)))

    for i, y in enumerate(asyncio.run(many())):
        np.testing.assert_array_equal(y, _expected(i))
    assert model.calls == [(40, 4)]
    assert (batcher.batches, batcher.requests) == (1, 40)


def test_a_lone_request_runs_alone_in_its_own_turn():
    model = _Model()
    batcher = MicroBatcher(model, name="t")

    async def one() -> np.ndarray:
        return await batcher.run(*_request(3))

    np.testing.assert_array_equal(asyncio.run(one()), _expected(3))
    np.testing.assert_array_equal(asyncio.run(one()), _expected(3))
    assert model.calls == [(1, 4), (1, 4)]


def test_horizons_are_never_mixed_and_rows_are_capped():
    model = _Model()
    batcher = MicroBatcher(model, max_rows=5, name="t")
    jobs = [(i, 3 + i % 2, 2) for i in range(1, 9)]

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.run(*_request(*j)) for j in jobs))

    for (i, s, r), y in zip(jobs, asyncio.run(many()), strict=True):
        np.testing.assert_array_equal(y, _expected(i, s, r))
    assert all(n <= 5 for n, _ in model.calls)
    assert sorted(model.calls) == [(4, 3), (4, 3), (4, 4), (4, 4)]


def test_requests_that_arrive_during_a_call_share_the_next_one():
    model = _Model()
    batcher = MicroBatcher(model, name="t")
    later: list[asyncio.Task] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        # While the first call runs (the loop is busy), five more requests come in.
        model.during_call = lambda: later.extend(
            loop.create_task(batcher.run(*_request(i))) for i in range(1, 6)
        )
        np.testing.assert_array_equal(await batcher.run(*_request(0)), _expected(0))
        for i, y in enumerate(await asyncio.gather(*later), start=1):
            np.testing.assert_array_equal(y, _expected(i))

    asyncio.run(scenario())
    assert model.calls == [(1, 4), (5, 4)]


def test_a_failing_batch_fails_its_requests_and_the_next_turn_goes_on():
    model = _Model(fail_on=2.0)
    batcher = MicroBatcher(model, name="t")

    async def scenario() -> tuple[list, np.ndarray]:
        outcomes = await asyncio.gather(
            *(batcher.run(*_request(i)) for i in range(4)), return_exceptions=True
        )
        return outcomes, await batcher.run(*_request(7))

    outcomes, later = asyncio.run(scenario())
    assert all(isinstance(o, ValueError) for o in outcomes)
    np.testing.assert_array_equal(later, _expected(7))


def test_a_cancelled_request_is_left_out_of_the_call():
    model = _Model()
    batcher = MicroBatcher(model, name="t")

    async def scenario() -> np.ndarray:
        gone = asyncio.ensure_future(batcher.run(*_request(1)))
        kept = asyncio.ensure_future(batcher.run(*_request(2)))
        await asyncio.sleep(0)  # both are waiting now
        gone.cancel()
        return await kept

    np.testing.assert_array_equal(asyncio.run(scenario()), _expected(2))
    assert model.calls == [(1, 4)]


def test_each_event_loop_gets_its_own_answers():
    model = _Model()
    batcher = MicroBatcher(model, name="t")
    answers: dict[int, list[np.ndarray]] = {}

    def in_thread(k: int) -> None:
        async def many() -> list[np.ndarray]:
            return await asyncio.gather(
                *(batcher.run(*_request(10 * k + i)) for i in range(5))
            )

        answers[k] = asyncio.run(many())

    threads = [threading.Thread(target=in_thread, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        for i, y in enumerate(answers[k]):
            np.testing.assert_array_equal(y, _expected(10 * k + i))


def test_max_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_rows 0"):
        MicroBatcher(_Model(), max_rows=0)
