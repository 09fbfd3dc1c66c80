"""Sending each lane's rows: its limiter per operation, the run's call slots, retries, and what
the last answer makes of each row.

Invariants (see also :mod:`bulk.engine.pipeline`):
- every attempt, first or retry, takes a token from its lane's limiter for the operation, and
  only then one of the run's ``concurrency`` call slots: a lane waiting on its limit holds
  none, so it never holds up another lane;
- a lane whose calls cannot succeed (credentials, permissions, an endpoint that does not
  answer) stops alone: its rows stay pending and the other lanes go on;
- before a lane's first row, the lane lists its live names (:mod:`bulk.engine.live`): a row
  whose name is live is ``exists`` without a create call (``created`` when an earlier
  attempt of ours may have made it), and the live set's options are read and compared with
  the row (drift); so a set that was live before the run is never recorded ``created``;
- before a row's first call whose outcome the ledger does not hold (no earlier attempt
  may have created it), its intent line is in the ledger; a row whose intent was written
  ends the run recorded (``failed`` when no answer settled it), so that an intent with no
  record after it always means a call that was in flight when the process died.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from bulk.engine.chain import Chain
from bulk.engine.http import LEAVING
from bulk.engine.intake import Send
from bulk.engine.lanes import LaneQueue
from bulk.engine.limiter import AdaptiveLimiter, WireWatch
from bulk.engine.live import LISTED, list_names, read_set
from bulk.engine.outcomes import judge, unsettled
from bulk.engine.retry import RetryPolicy
from bulk.engine.stopping import Halt, LaneState, RunControl
from bulk.engine.summary import RunStats
from bulk.engine.target import CREATE, MAYBE_DONE, CallKind, CallResult, Target, Targets
from bulk.errors import TargetError
from bulk.ledger.index import ResumeIndex
from bulk.ledger.rules import carries_ambiguity
from bulk.ledger.writer import Ledger
from bulk.live.drift import as_record, drift
from bulk.models import Lane, Outcome, Row, Status
from bulk.settings import Settings

__all__ = ["LaneCalls", "RowCalls", "Sender", "put"]

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
        self._wire = WireWatch()  # every lane's limiters: spacing by departures, once jitter
        self.quota_stops: list[str] = []
        self._chain = Chain(self)

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
                    s.rate or None,
                    s.burst,
                    initial_rate=learned,
                    adaptive=s.adaptive,
                    wire=self._wire,
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
        listed = False
        async with out_send, anyio.create_task_group() as tg:
            while True:
                item = await queue.get()
                if item is None or self.control.stopping.is_set() or pool is None:
                    return
                if not listed:  # before the lane's first row
                    listed = True
                    await self._list_live(lane, pool)
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

        A row with tenants or event destinations is a chain of steps
        (:mod:`bulk.engine.chain`); any other is its set's one step, made here without a
        single await or allocation more than that step needs. Raises :class:`TargetError`
        when the row's lane cannot be used.
        """
        row = item.row
        target = await pool.get(row.lane)
        calls = RowCalls(self, row, lane, target, carries_ambiguity(item.prior))
        # The row's task (its own context): each call it makes tells its limiter as it leaves.
        LEAVING.set(calls.on_wire)
        live = lane.live
        if live is not None and row.name in live:
            calls.listed = True
            if not calls.prior_ambiguous:  # not ours: nothing is made, nothing changed
                outcome = self.verdict(calls, LISTED, quota=False)
                assert outcome is not None  # exists
                extra: dict[str, Any] = {"listed": True}
                if row.tenants or row.destinations:
                    extra["steps"] = {"set": "exists"}
                outcome = replace(outcome, message=LISTED.message, extra=extra)
                return await self._with_drift(calls, outcome)
        if row.tenants or row.destinations:
            outcome = await self._chain.send(calls)
        elif calls.listed:  # made by an earlier attempt of ours
            outcome = self.verdict(calls, LISTED, quota=False)
        else:
            try:
                result = await self._policy.run(
                    calls.attempt, should_stop=calls.should_stop, sleep=calls.backoff
                )
            except (Halt, TargetError) as exc:
                ended = self.unanswered(calls, exc)
                if not isinstance(ended, CallResult):
                    return ended
                result = ended
            outcome = self.verdict(calls, result, quota=True)
        if outcome is None:
            return None
        if calls.listed:
            outcome = replace(outcome, extra={**outcome.extra, "listed": True})
        if outcome.status is Status.EXISTS:
            return await self._with_drift(calls, outcome)
        return outcome

    async def _list_live(self, lane: LaneState, pool: Targets) -> None:
        """Learn the names live in ``lane`` (see :mod:`bulk.engine.live`); a lane that cannot
        list sends as if it had none, noting why once."""
        try:
            target = await pool.get(lane.lane)
            calls = LaneCalls(self, lane, target)
            LEAVING.set(calls.on_wire)
            names, why = await list_names(calls)
        except TargetError as exc:
            self.fail_lane(lane, exc)
            return
        except Halt:
            return
        finally:
            LEAVING.set(None)
        lane.live = names
        if names is None:
            self._stats.note_unlisted(lane.name, why)
        else:
            self._stats.note_listed(lane.name, len(names))

    async def _with_drift(self, calls: RowCalls, outcome: Outcome | None) -> Outcome | None:
        """``outcome`` (a row whose set existed before the run) with how the live set differs
        from the row, read through the lane's limiter: ``drift`` (column → live and input
        cells), or ``drift_unread`` saying why it could not be read. A stop leaves it as is."""
        if outcome is None:
            return None
        row = calls.row
        try:
            live = await read_set(calls, row.name, tags="Tags" in row.request)
        except Halt:
            return outcome
        except TargetError as exc:
            self.fail_lane(calls.lane, exc)
            return outcome
        extra = dict(outcome.extra)
        if live.options is not None:
            found = drift(row.lane.service, row.request, live.options, live.tags)
            if found:
                extra["drift"] = as_record(found)
        if live.problem:
            extra["drift_unread"] = live.problem
        return replace(outcome, attempts=calls.attempts, extra=extra)

    def unanswered(self, calls: RowCalls, error: Halt | TargetError) -> CallResult | Outcome | None:
        """What a step that ended without an answer settling it leaves of its row.

        ``error`` is :class:`Halt` (the run or the lane stopped before an attempt went out)
        or :class:`TargetError` (the lane's credentials failed as a call was signed; the lane
        stops). The row stays pending (``None``), unless an earlier attempt may have done the
        step (then its last answer is returned, to be judged as ambiguous) or its intent line
        was written (then it is recorded ``failed``, see
        :func:`~bulk.engine.outcomes.unsettled`).
        """
        last = calls.last
        if isinstance(error, TargetError):
            self.fail_lane(calls.lane, error)
            if calls.intended and not calls.ambiguous:
                return unsettled(calls.row, last, calls.attempts, error)
            if last is None or not calls.ambiguous:
                return None
            return last
        if last is None or not calls.ambiguous:
            return unsettled(calls.row, last, calls.attempts) if calls.intended else None
        return last

    def verdict(
        self, calls: RowCalls, result: CallResult, *, quota: bool, ambiguous: bool | None = None
    ) -> Outcome | None:
        """The record :func:`~bulk.engine.outcomes.judge` makes of a step's last answer, and
        what it means for the lane: a quota stop (when the step is ``quota``'s: the set's),
        an abort. ``ambiguous`` defaults to whether the step may have been done already."""
        verdict = judge(
            calls.row,
            result,
            attempts=calls.step_attempts,
            ambiguous=calls.ambiguous if ambiguous is None else ambiguous,
            stopping=self.control.stopping.is_set(),
        )
        lane = calls.lane
        if quota and verdict.quota and lane.stop_quota():
            self.quota_stops.append(lane.name)
        if verdict.abort is not None:
            self.fail_lane(lane, verdict.abort)
        if verdict.outcome is None and calls.intended:
            return unsettled(calls.row, result, calls.attempts)
        return verdict.outcome


class LaneCalls:
    """Calls of one lane, step after step: each attempt through the lane's limiter for the
    step's operation, then one of the run's call slots, retried by the run's policy.

    Per step (:meth:`step` resets them): ``operation``, ``request``, ``step_attempts``,
    ``last`` (the last answer), and ``ambiguous``, true once an attempt at the step may have
    gone through; ``attempts`` counts every call. Used as it is for calls that change
    nothing (lists, reads: :mod:`bulk.engine.live`); a row's calls are :class:`RowCalls`.
    """

    __slots__ = (
        "_holding",
        "_intent_due",
        "_sender",
        "ambiguous",
        "attempts",
        "lane",
        "last",
        "limiter",
        "operation",
        "request",
        "step_attempts",
        "target",
    )

    def __init__(self, sender: Sender, lane: LaneState, target: Target) -> None:
        self._sender = sender
        self.lane = lane
        self.target = target
        self._intent_due = False
        self._holding = False
        self.attempts = 0
        self.operation = CREATE
        self.request: Mapping[str, Any] = {}
        self.limiter = lane.limiter(CREATE)
        self.ambiguous = False
        self.step_attempts = 0
        self.last: CallResult | None = None

    @property
    def control(self) -> RunControl:
        """The run's stop flags and waits."""
        return self._sender.control

    async def step(
        self, operation: str, request: Mapping[str, Any], *, ambiguous: bool
    ) -> CallResult:
        """Make ``operation`` until a definite answer, the attempts run out, or a stop.

        ``ambiguous``: whether the step may already be done (an earlier run's attempt).
        Raises :class:`Halt` when the run or the lane stopped before an attempt went out,
        and :class:`TargetError` when the lane's credentials fail.
        """
        self.operation = operation
        self.request = request
        self.limiter = self.lane.limiter(operation)
        self.ambiguous = ambiguous
        self.step_attempts = 0
        self.last = None
        return await self._sender._policy.run(
            self.attempt, should_stop=self.should_stop, sleep=self.backoff
        )

    async def attempt(self) -> CallResult:
        """One attempt at the step: a token, a call slot, the intent line if due, the call."""
        sender = self._sender
        lane = self.lane
        await sender.control.acquire(lane, self.operation)
        self._holding = True  # a token whose call has not left (see on_wire)
        try:
            self.attempts += 1
            self.step_attempts += 1
            slots = sender._calls
            await _acquire(slots)
            if self._intent_due:
                try:
                    self._intend()
                except BaseException:
                    slots.release()
                    raise
            stats = sender._stats
            stats.in_flight += 1
            try:
                result = await self.target.call(self.operation, self.request)
            finally:
                stats.in_flight -= 1
                slots.release()
        finally:
            if self._holding:  # it never said it left
                self._holding = False
                self.limiter.not_sent()
        stats.note_attempt(result, retry=self.step_attempts > 1, lane=lane.name)
        if result.kind is CallKind.THROTTLED:
            self.limiter.on_throttle()
        else:
            self.limiter.on_success()
        if result.kind in MAYBE_DONE:
            self.ambiguous = True
        self.last = result
        return result

    def _intend(self) -> None:
        """Write the intent line before the first call (a row's calls only)."""
        raise AssertionError("calls that change nothing have no intent line")

    def on_wire(self) -> None:
        """The step's call is leaving now (see :data:`~bulk.engine.http.LEAVING`)."""
        if self._holding:
            self._holding = False
            self.limiter.on_wire()

    def should_stop(self) -> bool:
        """No retry once the run or the lane is stopping."""
        return self._sender.control.stopping.is_set() or self.lane.stopped

    async def backoff(self, seconds: float) -> None:
        """A retry's wait, cut short by a stop; none after a 429 the limiter took for jitter
        (it gave the token back, and paces the retry itself)."""
        last = self.last
        if last is not None and last.kind is CallKind.THROTTLED and self.limiter.quick_retry:
            return
        sender = self._sender
        await sender.control.backoff(seconds, sender._retry_sleep)


class RowCalls(LaneCalls):
    """One row's calls (see :class:`LaneCalls`), with its intent line before the first.

    Per row: ``intended`` (its intent line is written) and ``prior_ambiguous`` (an earlier
    run's attempt may have created its set, so the ledger already says so and no intent line
    is needed). Made for each row, it starts as the set's step: the one step of most rows.
    ``listed``: the lane's listing found the row's set live (its create is answered by
    :data:`~bulk.engine.live.LISTED`, without a call).
    """

    __slots__ = ("intended", "listed", "prior_ambiguous", "row")

    def __init__(
        self, sender: Sender, row: Row, lane: LaneState, target: Target, prior_ambiguous: bool
    ) -> None:
        super().__init__(sender, lane, target)
        self.row = row
        self.prior_ambiguous = prior_ambiguous
        # The intent line is due before the row's first call, unless the ledger already
        # reads the row as ambiguous (it would add nothing) or no ledger takes intents.
        self._intent_due = not prior_ambiguous and sender._intend is not None
        self.intended = False
        self.request = row.request
        self.ambiguous = prior_ambiguous
        self.listed = False

    def _intend(self) -> None:
        self._sender._intend((self.row,))  # type: ignore[misc]  # due only with a ledger
        self._intent_due = False
        self.intended = True


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
