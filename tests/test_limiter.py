"""The adaptive limiter: aiolimiter's token bucket, in real time, at the controller's rate.

The control law itself is tested in ``test_rate_control.py``; the aiolimiter internals the
limiter writes, and the pacing of a bucket whose rate it changed, in ``test_dependencies.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import FrozenInstanceError

import anyio
import pytest
from aiolimiter import AsyncLimiter

from bulk.engine.limiter import AdaptiveLimiter, LimiterStats, WireWatch
from bulk.engine.rate_control import FLOOR, INITIAL_WINDOW, JITTER_RETRY, MARGIN

# -- the limiter: aiolimiter's bucket, in real time ---------------------------------------------


class TestAdaptiveLimiter:
    async def test_no_limit_returns_at_once_and_counts(self) -> None:
        for off in (None, 0):
            limiter = AdaptiveLimiter(off, 3)
            with anyio.fail_after(1):
                for _ in range(1000):
                    await limiter.acquire()
            assert limiter.try_acquire(), "no limit: a token without waiting"
            limiter.on_throttle()
            limiter.on_success()
            assert limiter.rate is None
            assert limiter.statistics() == LimiterStats(
                rate=None, max_rate=None, burst=3, acquired=1001, throttled=1, decreases=0
            )
        assert not AdaptiveLimiter(5, 1).try_acquire(), "a limit: acquire() decides"

    def test_negative_rate_is_refused(self) -> None:
        with pytest.raises(ValueError, match="-5"):
            AdaptiveLimiter(-5)

    def test_bucket_is_burst_tokens_at_rate(self) -> None:
        # Rate R with burst B is AsyncLimiter(B, B / R): the bucket holds B tokens, not R.
        limiter = AdaptiveLimiter(500, 5, adaptive=False)
        bucket = limiter._bucket
        assert isinstance(bucket, AsyncLimiter)
        assert bucket.max_rate == 5
        assert bucket.time_period == pytest.approx(5 / 500)

    async def test_paces_at_rate_after_the_burst(self) -> None:
        limiter = AdaptiveLimiter(500, 5, adaptive=False)
        start = time.monotonic()
        for _ in range(50):
            await limiter.acquire()
        # 5 at once, then one every 2 ms: a lower bound the bucket guarantees.
        assert time.monotonic() - start >= 45 / 500 * 0.95
        assert limiter.statistics().acquired == 50

    async def test_a_lower_rate_reaches_the_live_bucket(self) -> None:
        limiter = AdaptiveLimiter(1000, 1, initial_rate=400)
        await limiter.acquire()
        limiter.on_throttle()
        rate = limiter.rate
        assert rate is not None and rate < 400
        bucket = limiter._bucket
        assert bucket is not None
        assert bucket._rate_per_sec == pytest.approx(rate)
        assert bucket.time_period == pytest.approx(1 / rate)
        start = time.monotonic()
        for _ in range(20):
            await limiter.acquire()
        # The rate stays below the 400/s it was cut from (at 1,000/s this would take 19 ms).
        assert time.monotonic() - start >= 19 / 400

    async def test_a_waiting_call_follows_a_rate_change(self) -> None:
        # A call asleep until the old rate's next token must wake by the new rate's.
        limiter = AdaptiveLimiter(1000, 1, initial_rate=FLOOR)
        await limiter.acquire()  # the next token is 2 s away at 0.5/s
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.acquire)
            await anyio.wait_all_tasks_blocked()
            limiter.controller._rate = 200.0  # as if the controller had raised it
            limiter._sync_bucket()
        assert time.monotonic() - start < 1.5  # 5 ms at the new rate, 2 s at the old one
        assert limiter.statistics().acquired == 2

    def test_answers_outside_the_event_loop_apply_on_the_next_acquire(self) -> None:
        limiter = AdaptiveLimiter(1000, 1, initial_rate=400)
        limiter.on_throttle()  # no running loop: the bucket is left alone until acquire()
        rate = limiter.rate
        assert rate is not None and rate < 400

        async def acquire() -> None:
            await limiter.acquire()

        asyncio.run(acquire())
        assert limiter._bucket is not None
        assert limiter._bucket._rate_per_sec == limiter.rate
        assert limiter._bucket._rate_per_sec == pytest.approx(rate, rel=0.01)

    async def test_startup_window_holds_calls_until_answers(self) -> None:
        # The controller's clock stands still, so the window never gives up waiting here.
        limiter = AdaptiveLimiter(1000, 1, clock=lambda: 0.0)
        acquired: list[int] = []

        async def call(number: int) -> None:
            await limiter.acquire()
            acquired.append(number)

        async with anyio.create_task_group() as tg:
            for number in range(10):
                tg.start_soon(call, number)
            with anyio.fail_after(5):
                while len(acquired) < INITIAL_WINDOW:
                    await anyio.sleep(0.001)
                await anyio.sleep(0.02)
                assert len(acquired) == INITIAL_WINDOW
                limiter.on_success()  # one answer lets two more calls go
                while len(acquired) < INITIAL_WINDOW + 2:
                    await anyio.sleep(0.001)
                await anyio.sleep(0.02)
                assert len(acquired) == INITIAL_WINDOW + 2
            tg.cancel_scope.cancel()
        assert limiter._queued == 0

    async def test_cancelled_acquire_leaves_no_trace(self) -> None:
        limiter = AdaptiveLimiter(1, 1, adaptive=False)
        await limiter.acquire()
        with anyio.move_on_after(0.05):
            await limiter.acquire()
        assert limiter._queued == 0
        assert limiter.statistics().acquired == 1

    async def test_a_token_counts_from_when_its_call_left(self) -> None:
        """A call held up on its way (no call slot, a busy loop) reaches the service late:
        the next one must leave 1/R after it left, not 1/R after its token."""
        limiter = AdaptiveLimiter(20, 1, adaptive=False)  # a token every 50 ms
        await limiter.acquire()
        await anyio.sleep(0.04)  # the call leaves 40 ms after its token
        left = time.monotonic()
        limiter.on_wire()
        await limiter.acquire()
        assert time.monotonic() - left >= 0.05 * 0.95  # not 10 ms after it

    async def test_no_token_while_burst_calls_have_not_left(self) -> None:
        limiter = AdaptiveLimiter(100, 1, adaptive=False, wire=WireWatch(active=True))
        await limiter.acquire()
        got: list[float] = []

        async def second() -> None:
            await limiter.acquire()
            got.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            tg.start_soon(second)
            await anyio.sleep(0.1)  # ten tokens' time: the first call has not left
            assert got == []
            left = time.monotonic()
            limiter.on_wire()
        assert got and got[0] - left >= 0.01 * 0.95, "a token's time after the first left"
        assert len(limiter._unsent) == 1

    async def test_a_call_that_never_leaves_frees_its_place(self) -> None:
        limiter = AdaptiveLimiter(100, 2, adaptive=False, wire=WireWatch(active=True))
        for _ in range(2):
            await limiter.acquire()
        limiter.not_sent()
        with anyio.fail_after(1):
            await limiter.acquire()  # one place free again: at the bucket's pace
        assert len(limiter._unsent) == 2

    async def test_departures_never_reported_stall_a_lane_only_so_long(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("bulk.engine.limiter.DEPARTURE_LIMIT", 0.05)
        limiter = AdaptiveLimiter(1000, 1, adaptive=False, wire=WireWatch(active=True))
        await limiter.acquire()
        with anyio.fail_after(1):
            await limiter.acquire()  # after 50 ms the first call is taken as gone
        assert len(limiter._unsent) == 1

    async def test_after_a_jitter_429_the_next_token_comes_a_share_of_an_interval_later(
        self,
    ) -> None:
        # Held at its cap (5/s less the margin), a 429 is jitter: the service's bucket did
        # not take the call's token, so the lane's bucket gives it back but for a share.
        limiter = AdaptiveLimiter(5.0, 1, initial_rate=5.0 * (1 - MARGIN))
        interval = 1 / limiter.controller.max_rate  # type: ignore[operator]
        with anyio.fail_after(5):
            await limiter.acquire()
            limiter.on_success()
            await limiter.acquire()
            start = time.monotonic()
            limiter.on_throttle()
            assert limiter.quick_retry
            await limiter.acquire()
            waited = time.monotonic() - start
        assert waited < 0.5 * interval
        assert waited >= 0.9 * JITTER_RETRY * interval / (1 - 2 * MARGIN)
        limiter.on_success()
        assert not limiter.quick_retry

    async def test_statistics_are_a_frozen_snapshot(self) -> None:
        limiter = AdaptiveLimiter(100, 2, initial_rate=50)
        await limiter.acquire()
        limiter.on_success()
        await limiter.acquire()
        limiter.on_throttle()
        stats = limiter.statistics()
        assert stats.max_rate == 100 and stats.burst == 2
        assert (stats.acquired, stats.throttled, stats.decreases) == (2, 1, 1)
        assert stats.rate == limiter.rate
        with pytest.raises(FrozenInstanceError):
            stats.rate = 1.0  # type: ignore[misc]


def level(limiter: AdaptiveLimiter) -> float:
    """The tokens in use in the limiter's bucket now (1: the next call waits 1 / rate)."""
    bucket = limiter._bucket
    assert bucket is not None
    bucket.has_capacity(0)  # drains the level up to now
    return float(bucket._level)


class TestWireWatch:
    async def test_spacing_by_departures_waits_for_jitter_then_holds_for_every_lane(
        self,
    ) -> None:
        wire = WireWatch()
        lanes = [AdaptiveLimiter(10, 1, initial_rate=10, wire=wire) for _ in range(2)]
        await lanes[0].acquire()
        await anyio.sleep(0.05)
        lanes[0].on_wire()  # not yet: the bucket counts the token from when it was taken
        assert level(lanes[0]) < 0.6
        lanes[0].on_throttle()  # at its cap: jitter, not a lower limit
        assert lanes[0].controller.margin > 0 and wire.active
        await lanes[1].acquire()
        await anyio.sleep(0.05)
        lanes[1].on_wire()  # the other lane now counts its token from the departure
        assert level(lanes[1]) > 0.9
