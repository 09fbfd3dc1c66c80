"""Sending each lane's rows: its limiter per operation, the run's call slots, retries, and what
the last answer makes of each row.

Invariants (see also :mod:`bulk.engine.pipeline`):
- every attempt, first or retry, takes a token from its lane's limiter for the operation, and
  only then one of the run's ``concurrency`` call slots: a lane waiting on its limit holds
  none, so it never holds up another lane;
- a lane whose calls cannot succeed (credentials, permissions, an endpoint that does not
  answer) stops alone: its rows stay pending and the other lanes go on;
- before a row's first call whose outcome the ledger does not hold (no earlier attempt
  may have created it), its intent line is in the ledger; a row whose intent was written
  ends the run recorded (``failed`` when no answer settled it), so that an intent with no
  record after it always means a call that was in flight when the process died.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from bulk.engine.intake import Send
from bulk.engine.lanes import LaneQueue
from bulk.engine.limiter import AdaptiveLimiter
from bulk.engine.outcomes import judge
from bulk.engine.retry import RetryPolicy
from bulk.engine.stopping import Halt, LaneState, RunControl
from bulk.engine.summary import RunStats
from bulk.engine.target import CREATE, MAYBE_DONE, CallKind, CallResult, Targets
from bulk.errors import TargetError
from bulk.ledger.index import ResumeIndex
from bulk.ledger.rules import carries_ambiguity
from bulk.ledger.writer import Ledger
from bulk.models import Lane, Outcome, Row, Status
from bulk.settings import Settings

__all__ = ["Sender", "put"]

_T = TypeVar("_T")


class Sender:
    """The lanes of one run, and the sending of their rows.

    ``index`` gives each limiter the rate an earlier run learned; ``intend`` writes rows'
    intent lines (:meth:`~bulk.ledger.writer.Ledger.append_intents`); ``retry_sleep``
    replaces ``anyio.sleep`` for the waits between a row's attempts (a stop cuts them short).
    """

    def __init__(
        self,
        settings: Settings,
        control: RunControl,
        stats: RunStats,
        index: ResumeIndex,
        *,
        intend: Callable[[Sequence[Row]], None] | None = None,
        retry_sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self._settings = settings
        self.control = control
        self._stats = stats
        self._index = index
        self._policy = RetryPolicy(max_attempts=settings.max_attempts)
        self._retry_sleep = retry_sleep
        self._intend = intend
        self._calls = anyio.CapacityLimiter(settings.concurrency)
        self.lanes: dict[Lane, LaneState] = {}
        self.quota_stops: list[str] = []

    def current_rate(self) -> float | None:
        """The sum of the sending lanes' create rates (None while any lane is unlimited)."""
        sending = [state for state in self.lanes.values() if not state.stopped]
        rates = [state.limiters[CREATE].rate for state in sending if CREATE in state.limiters]
        if not rates or any(rate is None for rate in rates):
            return None
        return sum(rate for rate in rates if rate is not None)

    def lane_rates(self) -> dict[str, float | None]:
        """Each lane's current create rate (None: unlimited, or the lane stopped)."""
        return {
            str(lane): state.limiters[CREATE].rate
            if CREATE in state.limiters and not state.stopped
            else None
            for lane, state in self.lanes.items()
        }

    def lane(self, lane: Lane) -> LaneState:
        """``lane``'s state, made at its first use."""
        state = self.lanes.get(lane)
        if state is None:
            s = self._settings

            def new_limiter(operation: str) -> AdaptiveLimiter:
                learned = self._index.learned_rate(lane, None if operation == CREATE else operation)
                return AdaptiveLimiter(
                    s.rate or None, s.burst, initial_rate=learned, adaptive=s.adaptive
                )

            state = self.lanes[lane] = LaneState(lane, new_limiter)
        return state

    def fail_lane(self, lane: LaneState, error: TargetError) -> None:
        """Stop ``lane`` alone, saying why once; its rows stay pending, other lanes go on."""
        if lane.fail(str(error)):
            self._stats.note_lane_stopped(lane.name, str(error))

    def record_rates(self, ledger: Ledger) -> None:
        """Record every lane's learned rates, so that a resumed run starts there."""
        for lane in self.lanes.values():
            for operation, limiter in lane.limiters.items():
                if limiter.rate is not None:
                    op = None if operation == CREATE else operation
                    ledger.append_rate(lane.lane, limiter.rate, op)

    async def send_lane(
        self,
        queue: LaneQueue,
        out_send: MemoryObjectSendStream[Outcome],
        pool: Targets | None,
    ) -> None:
        """Send one lane's rows until its queue ends; after a stop, rows left stay pending.

        Up to ``concurrency`` of the lane's rows are under way at once, each waiting for the
        lane's token and then for one of the run's ``concurrency`` call slots: a lane waiting
        on its limit holds no slot another lane could use.
        """
        under_way = anyio.Semaphore(self._settings.concurrency)
        lane = self.lane(queue.lane)
        async with out_send, anyio.create_task_group() as tg:
            while True:
                item = await queue.get()
                if item is None or self.control.stopping.is_set() or pool is None:
                    return
                if lane.failed is not None:
                    continue  # the lane stopped: its rows stay pending (the reader goes on)
                await _acquire(under_way)
                tg.start_soon(self._send_row, item, lane, under_way, out_send, pool)

    async def _send_row(
        self,
        item: Send,
        lane: LaneState,
        under_way: anyio.Semaphore,
        out_send: MemoryObjectSendStream[Outcome],
        pool: Targets,
    ) -> None:
        try:
            if self.control.stopping.is_set() or lane.stopped:
                return
            try:
                outcome = await self._send(item, lane, pool)
            except TargetError as exc:
                self.fail_lane(lane, exc)
                return
            if outcome is not None:
                await put(out_send, outcome)
        finally:
            under_way.release()

    async def _send(self, item: Send, lane: LaneState, pool: Targets) -> Outcome | None:
        """Send one row with retries; ``None`` leaves it pending for the next run.

        Raises :class:`TargetError` when the row's lane cannot be used.
        """
        row = item.row
        if row.tenants or row.destinations:
            return _steps_not_made(row)
        target = await pool.get(row.lane)
        limiter = lane.limiter(CREATE)
        ambiguous = carries_ambiguity(item.prior)
        intended = False
        attempts = 0
        last: CallResult | None = None
        stats = self._stats

        async def attempt() -> CallResult:
            nonlocal attempts, ambiguous, last, intended
            await self.control.acquire(lane, CREATE)
            attempts += 1
            await _acquire(self._calls)
            if not (intended or ambiguous) and self._intend is not None:
                try:
                    self._intend((row,))
                except BaseException:
                    self._calls.release()
                    raise
                intended = True
            stats.in_flight += 1
            try:
                result = await target.call(CREATE, row.request)
            finally:
                stats.in_flight -= 1
                self._calls.release()
            stats.note_attempt(result, retry=attempts > 1, lane=lane.name)
            if result.kind is CallKind.THROTTLED:
                limiter.on_throttle()
            else:
                limiter.on_success()
            ambiguous = ambiguous or result.kind in MAYBE_DONE
            last = result
            return result

        try:
            result = await self._policy.run(
                attempt,
                should_stop=lambda: self.control.stopping.is_set() or lane.stopped,
                sleep=lambda seconds: self.control.backoff(seconds, self._retry_sleep),
            )
        except Halt:
            # Stopped before this attempt was sent: the row stays pending, unless an
            # earlier attempt may have created it (then it is recorded, ambiguous).
            if last is None or not ambiguous:
                return _unsettled(row, last, attempts) if intended else None
            result = last
        except TargetError as exc:
            # The lane cannot be used (its credentials failed as this call was signed).
            self.fail_lane(lane, exc)
            if intended and not ambiguous:
                return _unsettled(row, last, attempts, exc)
            if last is None or not ambiguous:
                return None
            result = last
        verdict = judge(
            row,
            result,
            attempts=attempts,
            ambiguous=ambiguous,
            stopping=self.control.stopping.is_set(),
        )
        if verdict.quota and lane.stop_quota():
            self.quota_stops.append(lane.name)
        if verdict.abort is not None:
            self.fail_lane(lane, verdict.abort)
        if verdict.outcome is None and intended:
            return _unsettled(row, result, attempts)
        return verdict.outcome


# The code of a row that asks for tenants or event destinations, which this engine does not
# make yet: it is not sent (its set alone would lose them), and the next run tries it again.
STEPS_NOT_MADE = "StepsNotSupported"


def _steps_not_made(row: Row) -> Outcome:
    """The record of a row whose tenants or event destinations this engine cannot make."""
    asked = [
        what
        for what, wanted in (("tenants", row.tenants), ("event destinations", row.destinations))
        if wanted
    ]
    return row.outcome(
        Status.FAILED,
        code=STEPS_NOT_MADE,
        message=f"not sent: this version of bulk checks {' and '.join(asked)} but does not "
        "create them yet, and the set alone would go without them",
    )


def _unsettled(
    row: Row, last: CallResult | None, attempts: int, error: TargetError | None = None
) -> Outcome:
    """The record of a row whose calls all got answers that leave it unsent (a 429, a
    refused connection, refused credentials) when the run stopped sending it: ``failed``, so
    that its intent line is not read as a call in flight (the next run sends it again)."""
    code = last.code if last is not None else "LaneStopped"
    said = str(error) if error is not None else (last.message if last is not None else "")
    return row.outcome(
        Status.FAILED,
        code=code,
        message=f"stopped before an answer settled it: {said}".rstrip(": "),
        attempts=attempts,
    )


async def _acquire(slots: anyio.Semaphore | anyio.CapacityLimiter) -> None:
    """Take one of ``slots``, yielding to the event loop only when none is free.

    anyio's ``acquire`` always passes through the event loop; per row and per call, that is
    an event-loop pass each, which spreads the calls a batch could send in one pass over as
    many passes (and wakes the server once per call instead of once per batch).
    """
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        await slots.acquire()


async def put(stream: MemoryObjectSendStream[_T], item: _T) -> None:
    """Send ``item``, yielding to the event loop only when the stream is full."""
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)
