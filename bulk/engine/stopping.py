"""How a run stops sending: after a signal, an abort or a lane's quota stop, no new call starts.

A call waits at most twice before it goes out: for its lane's token, and before a retry for
the retry's backoff. Each wait runs in a cancel scope that a stop cancels, and the flags are
checked again after it, so a call that was waiting when the stop came is not sent
(:class:`Halt`). Calls already sent finish; the engine bounds how long it waits for them.

Invariant: every flag here is set once and never cleared.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from bulk.engine.limiter import AdaptiveLimiter
from bulk.errors import BulkError
from bulk.models import Lane

__all__ = ["Halt", "LaneState", "RunControl"]


class Halt(Exception):
    """The row must not be sent: the run is stopping, or its lane's quota is used up."""


@dataclass
class LaneState:
    """A lane's live state: its limiter, and whether its quota of sets is used up.

    ``waiting`` holds the cancel scopes of the calls waiting for a token: a quota stop
    cancels them, so that no call leaves the lane after the service said its quota is used.
    """

    lane: Lane
    limiter: AdaptiveLimiter
    quota_stopped: bool = False
    waiting: set[anyio.CancelScope] = field(default_factory=set)

    def stop_quota(self) -> bool:
        """Stop the lane's sending; True the first time."""
        if self.quota_stopped:
            return False
        self.quota_stopped = True
        for scope in self.waiting:
            scope.cancel()
        return True


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

    async def acquire(self, lane: LaneState) -> None:
        """Take a token for one call of ``lane``, or raise :class:`Halt` if it must not go out.

        Checked again after the wait: a stop (a signal, an abort, the lane's quota) that
        came while the call waited cancels the wait, and the call is not sent.
        """
        if self.stopping.is_set() or lane.quota_stopped:
            raise Halt
        with anyio.CancelScope() as scope:
            self.waiting.add(scope)
            lane.waiting.add(scope)
            try:
                await lane.limiter.acquire()
            finally:
                self.waiting.discard(scope)
                lane.waiting.discard(scope)
        if scope.cancel_called or self.stopping.is_set() or lane.quota_stopped:
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
