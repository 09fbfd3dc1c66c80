"""How a run stops sending: after a signal, an abort, or a lane's quota or failure, no new call
starts (in the run, or in that lane).

A call waits at most twice before it goes out: for its lane's token, and before a retry for
the retry's backoff. Each wait runs in a cancel scope that a stop cancels, and the flags are
checked again after it, so a call that was waiting when the stop came is not sent
(:class:`Halt`). Calls already sent finish; the engine bounds how long it waits for them.

Invariant: every flag here is set once and never cleared.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from bulk.engine.limiter import AdaptiveLimiter
from bulk.errors import BulkError
from bulk.models import Lane

__all__ = ["Halt", "LaneState", "RunControl", "each_at_once"]

_T = TypeVar("_T")


class Halt(Exception):
    """The row must not be sent: the run is stopping, or its lane stopped."""


@dataclass
class LaneState:
    """A lane's live state: a limiter per operation, and whether the lane stopped.

        A lane stops when its quota of sets is used up (``quota_stopped``) or when its calls
        cannot succeed (``failed``: why; credentials, permissions, an endpoint that does not
        answer); other lanes go on. ``new_limiter`` makes the limiter of an operation the lane
        has not called yet (SES does not say whether operations share a bucket: one adaptive
        limiter each copes with both). ``live``: the names of the sets live in the lane before its
    first row was sent (None: not known). ``waiting`` holds the cancel scopes of the calls waiting
        for a token: a stop cancels them, so that no call leaves the lane after it.
    """

    lane: Lane
    new_limiter: Callable[[str], AdaptiveLimiter]
    limiters: dict[str, AdaptiveLimiter] = field(default_factory=dict)
    quota_stopped: bool = False
    failed: str | None = None
    waiting: set[anyio.CancelScope] = field(default_factory=set)
    live: frozenset[str] | None = None
    name: str = field(init=False)  # str(lane), made once: records and counters use it per call

    def __post_init__(self) -> None:
        self.name = str(self.lane)

    def limiter(self, operation: str) -> AdaptiveLimiter:
        """The limiter of the lane's ``operation`` calls."""
        limiter = self.limiters.get(operation)
        if limiter is None:
            limiter = self.limiters[operation] = self.new_limiter(operation)
        return limiter

    @property
    def stopped(self) -> bool:
        """No call may leave the lane any more."""
        return self.quota_stopped or self.failed is not None

    def stop_quota(self) -> bool:
        """Stop the lane's sending; True the first time."""
        if self.quota_stopped:
            return False
        self.quota_stopped = True
        self._cancel_waits()
        return True

    def fail(self, reason: str) -> bool:
        """Stop the lane for good, saying why (the first reason stays); True the first time."""
        if self.failed is not None:
            return False
        self.failed = reason
        self._cancel_waits()
        return True

    def _cancel_waits(self) -> None:
        for scope in self.waiting:
            scope.cancel()


@dataclass
class RunControl:
    """Run-wide flags the tasks share, and the waits a stop cuts short.

    ``waiting`` holds the cancel scopes of every call waiting for a token (or a retry's
    backoff): a stop cancels them, so that after the first signal no new call starts.
    """

    stopping: anyio.Event = field(default_factory=anyio.Event)
    interrupted: bool = False
    abort: BulkError | None = None
    waiting: set[anyio.CancelScope] = field(default_factory=set)

    def stop(self, *, interrupted: bool = False, abort: BulkError | None = None) -> None:
        """Stop sending; the first ``abort`` given is the one the run reports."""
        self.interrupted = self.interrupted or interrupted
        if abort is not None and self.abort is None:
            self.abort = abort
        self.stopping.set()
        for scope in self.waiting:
            scope.cancel()

    async def acquire(self, lane: LaneState, operation: str) -> None:
        """Take a token for one ``operation`` call of ``lane``, or raise :class:`Halt` if it
        must not go out.

        Checked again after the wait: a stop (a signal, an abort, the lane's quota or failure)
        that came while the call waited cancels the wait, and the call is not sent.
        """
        if self.stopping.is_set() or lane.stopped:
            raise Halt
        limiter = lane.limiter(operation)
        if limiter.try_acquire():  # no limit: nothing to wait for, nothing to cancel
            return
        granted = False
        with anyio.CancelScope() as scope:
            self.waiting.add(scope)
            lane.waiting.add(scope)
            try:
                await limiter.acquire()
                granted = True
            finally:
                self.waiting.discard(scope)
                lane.waiting.discard(scope)
        if scope.cancel_called or self.stopping.is_set() or lane.stopped:
            if granted:
                limiter.not_sent()  # its token goes unused
            raise Halt

    async def wait(self, event: anyio.Event) -> None:
        """Wait for ``event``, cut short by a stop (the caller checks for one after)."""
        if self.stopping.is_set():
            return
        with anyio.CancelScope() as scope:
            self.waiting.add(scope)
            try:
                await event.wait()
            finally:
                self.waiting.discard(scope)

    async def backoff(
        self, seconds: float, sleep: Callable[[float], Awaitable[object]] | None = None
    ) -> None:
        """A retry's wait (``sleep``, else ``anyio.sleep``), cut short by a stop.

        It returns either way: tenacity then asks whether to stop.
        """
        with anyio.CancelScope() as scope:
            self.waiting.add(scope)
            try:
                if sleep is not None:
                    await sleep(seconds)
                else:
                    await anyio.sleep(seconds)
            finally:
                self.waiting.discard(scope)

    async def handle_signals(self, on_interrupt: Callable[[], None] | None = None) -> None:
        """First SIGINT/SIGTERM: stop sending; second: exit the process at once (130)."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async for _ in received:
                if on_interrupt is not None:
                    on_interrupt()
                if self.interrupted:
                    # Second signal: leave at once. Every record already written is a whole
                    # line, so the ledger stays readable.
                    os._exit(130)
                self.stop(interrupted=True)


async def each_at_once(
    items: Iterable[_T],
    limit: int,
    work: Callable[[_T], Awaitable[object]],
    stopped: Callable[[], bool],
) -> None:
    """``work(item)`` for each of ``items`` in order, at most ``limit`` at once; no item is
    started once ``stopped()`` (a stop, a lane that failed): those left are not done."""
    slots = anyio.Semaphore(max(1, limit))

    async def one(item: _T) -> None:
        try:
            await work(item)
        finally:
            slots.release()

    async with anyio.create_task_group() as tg:
        for item in items:
            await slots.acquire()
            if stopped():
                slots.release()
                return
            tg.start_soon(one, item)
