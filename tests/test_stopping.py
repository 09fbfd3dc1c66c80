"""How a run stops sending: a stop cuts every wait short, and no call goes out after it."""

from __future__ import annotations

import time

import anyio
import pytest

from bulk.engine.limiter import AdaptiveLimiter
from bulk.engine.stopping import Halt, LaneState, RunControl
from bulk.engine.target import CREATE
from bulk.errors import LedgerWriteError, TargetError
from bulk.models import Lane


def slow_lane(region: str = "us-east-1") -> LaneState:
    """A lane at 1 call/s whose first token is already taken: the next call waits a second."""
    limiter = AdaptiveLimiter(1, 1, adaptive=False)
    return LaneState(Lane("sesv2", region), lambda operation: limiter)


async def outcome(control: RunControl, lane: LaneState, log: dict[str, str], key: str) -> None:
    """Take a token for one call of ``lane``; note in ``log`` whether it may go out."""
    try:
        await control.acquire(lane, CREATE)
    except Halt:
        log[key] = "halted"
    else:
        log[key] = "sent"


class TestRunControl:
    async def test_after_a_stop_no_call_takes_a_token(self) -> None:
        control, lane = RunControl(), slow_lane()
        control.stop(interrupted=True)
        with pytest.raises(Halt):
            await control.acquire(lane, CREATE)
        assert lane.limiter(CREATE).statistics().acquired == 0

    async def test_a_stop_halts_a_call_waiting_for_its_token(self) -> None:
        control, lane = RunControl(), slow_lane()
        await control.acquire(lane, CREATE)
        log: dict[str, str] = {}
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(outcome, control, lane, log, "waiting")
            await anyio.wait_all_tasks_blocked()
            control.stop(interrupted=True)
        assert log == {"waiting": "halted"}
        assert time.monotonic() - start < 0.5, "the wait was not cut short"
        assert lane.limiter(CREATE).statistics().acquired == 1
        assert not control.waiting and not lane.waiting

    async def test_a_quota_stop_halts_only_its_own_lanes_calls(self) -> None:
        control = RunControl()
        full, other = slow_lane("us-east-1"), slow_lane("eu-west-1")
        await control.acquire(full, CREATE)
        log: dict[str, str] = {}
        start = time.monotonic()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(outcome, control, full, log, "full")
                tg.start_soon(outcome, control, other, log, "other")
                await anyio.wait_all_tasks_blocked()
                assert full.stop_quota() and not full.stop_quota()  # True the first time only
        assert log == {"full": "halted", "other": "sent"}
        assert time.monotonic() - start < 0.5, "the wait was not cut short"
        assert not control.stopping.is_set()
        with pytest.raises(Halt):
            await control.acquire(full, CREATE)

    async def test_a_stop_cuts_a_retrys_backoff_short(self) -> None:
        control = RunControl()
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(control.backoff, 30.0)
            await anyio.wait_all_tasks_blocked()
            control.stop(interrupted=True)
        assert time.monotonic() - start < 1.0
        assert not control.waiting

    async def test_backoff_waits_with_the_sleep_it_is_given(self) -> None:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        await RunControl().backoff(2.5, sleep)
        assert waits == [2.5]

    async def test_the_first_abort_is_the_one_reported(self) -> None:
        control = RunControl()
        first = TargetError("credentials refused")
        control.stop(abort=first)
        control.stop(abort=LedgerWriteError("disk full"))
        control.stop()
        assert control.abort is first
        assert control.stopping.is_set() and not control.interrupted
        control.stop(interrupted=True)
        control.stop()
        assert control.interrupted, "a stop never clears a flag"
