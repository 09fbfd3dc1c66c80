"""The pipeline: reader → one queue per lane → calls → one ledger writer, bounded at every step.

::

    reader (thread: polars + validation + resume lookup)
        │ invalid rows ──────────────────────────────────────────────┐
        ▼ rows to send, by lane (bulk.engine.lanes: memory, or spilled) ▼
    one sender per lane ── lane limiter ── call slot (× concurrency) ── target ──► outcomes
                                                                    (bounded stream) ──► ledger

Invariants:
- every row of the input ends this run in exactly one of: skipped (settled earlier), recorded
  (one ledger record), or pending (not sent: interrupt, quota stop, its lane stopped, abort);
- every attempt, first or retry, takes a token from its lane's limiter for the operation, and
  only then one of the run's ``concurrency`` call slots: a lane waiting on its limit holds
  none, so it never holds up another lane;
- a lane whose calls cannot succeed (credentials, permissions, an endpoint that does not
  answer) stops alone: its rows stay pending, the other lanes go on, and the run exits 3;
- only the writer task appends to the ledger, so records are never interleaved (housekeeping
  tasks fsync it and save its resume index at intervals, which the ledger allows beside
  appends).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import polars as pl
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulk.engine.intake import Batch, Intake, Send
from bulk.engine.lanes import LaneQueue, Scheduler
from bulk.engine.sender import Sender, put
from bulk.engine.stopping import Halt, RunControl
from bulk.engine.summary import RunStats, Summary
from bulk.engine.target import (
    CREATE,
    ClientSettings,
    TargetPool,
    Targets,
)
from bulk.errors import LedgerWriteError, user_errors_unwrapped
from bulk.input.columns import PROFILE_COLUMN, REGION_COLUMN, ROLE_COLUMN, ROUTING_COLUMNS
from bulk.input.destinations import load_event_destinations
from bulk.input.regions import RunRegion
from bulk.input.source import Source, open_source, tally_rows
from bulk.input.validate import Validator
from bulk.ledger.writer import Ledger
from bulk.models import Destination, Lane, Outcome, Row, redact_url
from bulk.settings import Settings

# Dummy keys for the emulator: it accepts any signature, and no real credential is looked up.
EMULATOR_CREDENTIALS = ("AKIDBULKEMULATOR", "bulk-emulator-not-a-secret")

_T = TypeVar("_T")

_WRITE_BATCH = 256  # most records in one ledger write
_SYNC_INTERVAL = 1.0  # seconds between ledger fsyncs
_CHECKPOINT_INTERVAL = 30.0  # seconds between checks whether the resume index is worth saving
_RATE_RECORD_INTERVAL = 30.0  # seconds between learned-rate records
_DRAIN_TIMEOUT = 15.0  # bounded wait for in-flight calls after an interrupt


class Engine:
    """One provisioning run over one input file. Use :func:`provision` rather than this.

    ``targets`` gives each lane's target (see :class:`~bulk.engine.target.Targets`); by default
    a :class:`~bulk.engine.target.TargetPool` of aiobotocore clients built from ``settings``.
    The engine closes it when the run ends; a dry run sends nothing through it. ``retry_sleep``
    replaces ``anyio.sleep`` for the waits between a row's attempts (a stop cuts them short).
    """

    def __init__(
        self,
        input_path: Path,
        settings: Settings,
        *,
        targets: Targets | None = None,
        on_start: Callable[[RunStats], None] | None = None,
        on_interrupt: Callable[[], None] | None = None,
        handle_signals: bool = False,
        retry_sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.input_path = input_path
        # Resolved once, here (a Region that does not exist is refused before anything is
        # read); the settings then carry it, so the ledger records where the run went.
        self._run_region = settings.run_region()
        self.settings = replace(settings, region=self._run_region.region)
        self.control = RunControl()
        self._targets = targets
        self._on_start = on_start
        self._on_interrupt = on_interrupt
        self._handle_signals = handle_signals
        self._retry_sleep = retry_sleep

    @property
    def run_region(self) -> RunRegion:
        """The run's Region and where it was found; ``str()`` gives ``eu-west-1 (AWS_REGION)``.

        Its ``region`` is None when there is none anywhere and every row names its own.
        """
        return self._run_region

    def destination(self) -> Destination:
        """The target the ledger is bound to (see :func:`ledger_target`)."""
        return ledger_target(self.settings)

    async def run(self) -> Summary:
        """Run to completion, interruption or abort, and return the summary.

        Task groups wrap what their tasks raise; a user's error is raised as itself.
        """
        with user_errors_unwrapped():
            return await self._run()

    async def _run(self) -> Summary:
        s = self.settings
        source, routing, total, validator = await open_input(self.input_path, s)
        ledger_path = s.ledger_path(self.input_path)
        stats = self._stats = RunStats(total=total, ledger=ledger_path, dry_run=s.dry_run)
        # Shown before the first call: the run's Region and where it came from, and the
        # endpoint when it is not AWS's (without any password the URL carries).
        where = [f"Region {self._run_region}"]
        if s.role_arn:
            where.append(f"role {s.role_arn}")
        if s.emulator and s.endpoint_url:
            where.append(f"emulator at {s.endpoint_url}")
        elif s.endpoint_url:
            where.append(f"endpoint {redact_url(s.endpoint_url)}")
        stats.where = " · ".join(where)
        async with self._open_targets() as pool:
            if pool is not None and s.region is not None and not routing:
                # Every row is in the run's lane: its credentials and endpoint are proven
                # before the first row is read, and before the ledger is touched, so a run
                # that cannot start leaves no trace. (Rows routed by their cells: each lane
                # is proven before its first row, and one that fails stops alone.)
                await pool.get(validator.default_lane)
            with Ledger.open(
                ledger_path,
                input_name=self.input_path.name,
                target=self.destination(),
                settings=s.header(),
                dry_run=s.dry_run,
            ) as ledger:
                stats.notes.extend(ledger.notes)
                sender = self._sender = Sender(
                    s,
                    self.control,
                    stats,
                    ledger.index,
                    intend=None if s.dry_run else self._intend(ledger),
                    retry_sleep=self._retry_sleep,
                )
                stats.current_rate = sender.current_rate
                stats.lanes = lambda: [str(lane) for lane in sender.lanes]
                stats.lane_rates = sender.lane_rates
                if self._on_start is not None:
                    self._on_start(stats)
                intake = Intake(source.columns, validator, ledger.index, stats)
                lanes = LaneCounter(validator, routing)
                expected = lanes.count(source.tallied) if routing else {}
                stats.lane_totals = {str(lane): rows for lane, rows in expected.items()}
                await self._pipeline(source.frames(), intake, lanes, expected, ledger, pool, stats)
                summary = self._finish(ledger, stats)
        if isinstance(self.control.abort, LedgerWriteError):
            raise self.control.abort
        return summary

    def _intend(self, ledger: Ledger) -> Callable[[Sequence[Row]], None]:
        """Write rows' intent lines; a ledger that cannot take them stops the run."""

        def intend(rows: Sequence[Row]) -> None:
            try:
                ledger.append_intents(rows)
            except LedgerWriteError as exc:
                self.control.stop(abort=exc)
                raise Halt from exc  # the call must not go out without its intent

        return intend

    def _finish(self, ledger: Ledger, stats: RunStats) -> Summary:
        """Record each lane's learned rate and the run's summary; return the summary."""
        writable = not self.settings.dry_run and not isinstance(
            self.control.abort, LedgerWriteError
        )
        sender = self._sender
        for state in sender.lanes.values():
            create = state.limiters.get(CREATE)  # None: the lane never sent
            stats.rates[str(state.lane)] = None if create is None else create.rate
        if writable:
            sender.record_rates(ledger)
        summary = stats.summary(
            interrupted=self.control.interrupted,
            aborted=str(self.control.abort) if self.control.abort else None,
            quota_stops=tuple(sender.quota_stops),
        )
        if writable:
            ledger.append_end(summary.as_record())
        return summary

    @asynccontextmanager
    async def _open_targets(self) -> AsyncIterator[Targets | None]:
        """The run's targets (``None`` in a dry run: none made, a given one closed unused)."""
        dry_run = self.settings.dry_run
        if dry_run and self._targets is None:
            yield None
            return
        async with open_targets(self.settings, self._targets) as targets:
            yield None if dry_run else targets

    async def _pipeline(
        self,
        frames: Iterator[pl.DataFrame],
        intake: Intake,
        lanes: LaneCounter,
        expected: dict[Lane, int],
        ledger: Ledger,
        pool: Targets | None,
        stats: RunStats,
    ) -> None:
        s = self.settings
        out_send, out_recv = anyio.create_memory_object_stream[Outcome](s.concurrency * 4)
        drain_scope = anyio.CancelScope()
        housekeeping = anyio.CancelScope()
        with tempfile.TemporaryDirectory(prefix="bulk-lanes-") as spill_dir:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, out_recv, ledger, stats)
                tg.start_soon(self._housekeeping, housekeeping, drain_scope, ledger)
                async with out_send:
                    with drain_scope:
                        async with anyio.create_task_group() as senders:

                            def start_lane(queue: LaneQueue) -> None:
                                senders.start_soon(
                                    self._sender.send_lane, queue, out_send.clone(), pool
                                )

                            scheduler = Scheduler(start_lane, Path(spill_dir))
                            scheduler.expect(expected)
                            try:
                                await self._reader(
                                    frames, intake, lanes, scheduler, out_send, stats
                                )
                            finally:
                                scheduler.close()
                    scheduler.remove_files()
                housekeeping.cancel()

    async def _housekeeping(
        self, scope: anyio.CancelScope, drain_scope: anyio.CancelScope, ledger: Ledger
    ) -> None:
        """Signals (first: stop taking rows; second: exit now), fsyncs and the bounded drain."""
        with scope:
            async with anyio.create_task_group() as tg:
                if self._handle_signals:
                    tg.start_soon(self.control.handle_signals, self._on_interrupt)
                if not self.settings.dry_run:
                    tg.start_soon(self._syncer, ledger)
                    tg.start_soon(self._checkpointer, ledger)
                await self._drain_after_stop(drain_scope)
                tg.cancel_scope.cancel()

    async def _syncer(self, ledger: Ledger) -> None:
        """fsync the ledger at intervals in a thread, beside the writer, never holding it up.

        Each record already reached the OS when it was appended; this bounds what a power
        loss could take. The final fsync happens when the ledger is closed.
        """
        while True:
            await anyio.sleep(_SYNC_INTERVAL)
            try:
                await anyio.to_thread.run_sync(ledger.sync)
            except LedgerWriteError as exc:
                self.control.stop(abort=exc)
                return

    async def _checkpointer(self, ledger: Ledger) -> None:
        """Save the resume index at intervals in a thread, so that a long run killed outright
        (no close) leaves one: its next run then parses only what was appended since.

        A save is rare (the ledger has 50,000 row records and an eighth of them are not in
        the saved index) and reads only whole records: the writer goes on meanwhile.
        """
        while True:
            await anyio.sleep(_CHECKPOINT_INTERVAL)
            await anyio.to_thread.run_sync(ledger.checkpoint)

    async def _drain_after_stop(self, drain_scope: anyio.CancelScope) -> None:
        await self.control.stopping.wait()
        self._stats.stopping = True
        await anyio.sleep(_DRAIN_TIMEOUT)
        drain_scope.cancel()

    async def _reader(
        self,
        frames: Iterator[pl.DataFrame],
        intake: Intake,
        lanes: LaneCounter,
        scheduler: Scheduler,
        out_send: MemoryObjectSendStream[Outcome],
        stats: RunStats,
    ) -> None:
        def next_batch() -> tuple[Batch, dict[Lane, int]] | None:
            """Read and decide one batch of rows, in the worker thread."""
            frame = next(frames, None)
            if frame is None:
                return None
            read = lanes.count(tally_rows(frame, lanes.routing)) if lanes.routing else {}
            return intake.take(frame), read

        while not self.control.stopping.is_set():
            taken = await anyio.to_thread.run_sync(next_batch)
            if taken is None:
                break
            batch, read = taken
            for status, count in batch.skipped.items():
                stats.note_skip(status, count)
            if read:
                _note_lane_skips(stats, batch, read)
            for item in batch.items:
                if self.control.stopping.is_set():
                    return
                if isinstance(item, Outcome):
                    await put(out_send, item)
                elif self.settings.dry_run:
                    stats.note_would_send(item.prior.status if item.prior else None)
                    if item.row.tenants or item.row.destinations:
                        stats.note_would_chain(item.row)
                else:
                    await scheduler.put(item, self.control.wait)
            scheduler.read(read)

    async def _writer(
        self, out_recv: MemoryObjectReceiveStream[Outcome], ledger: Ledger, stats: RunStats
    ) -> None:
        """The only task that writes the ledger: every outcome waiting for it in one write."""
        last_rate = time.monotonic()
        failed = False
        async with out_recv:
            while True:
                try:
                    batch = [await _take(out_recv)]
                except anyio.EndOfStream:
                    return
                with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                    while len(batch) < _WRITE_BATCH:
                        batch.append(out_recv.receive_nowait())
                if failed:
                    continue
                if not self.settings.dry_run:
                    try:
                        ledger.append_many(batch)
                    except LedgerWriteError as exc:
                        failed = True
                        self.control.stop(abort=exc)
                        continue
                for outcome in batch:
                    stats.note_outcome(outcome)
                now = time.monotonic()
                if self.settings.dry_run:
                    continue
                if now - last_rate >= _RATE_RECORD_INTERVAL:
                    last_rate = now
                    self._sender.record_rates(ledger)


def ledger_target(settings: Settings) -> Destination:
    """The target a ledger is bound to: the default lane's service, Region (the resolved
    one; "" when the run has none and every row names its own), profile, endpoint, role."""
    s = settings
    return Destination(
        service=s.service,
        region=s.region or "",
        profile=s.profile,
        endpoint="emulator" if s.emulator else s.endpoint_url,
        role_arn=s.role_arn,
    )


async def open_input(
    input_path: Path, settings: Settings
) -> tuple[Source, tuple[str, ...], int, Validator]:
    """An input file as a run reads it: its source, its routing columns, its rows counted
    and its validator, with ``settings``' Region (already resolved) as the default lane's.

    Raises the user's errors (a ledger path that cannot be one, a bad input file, a bad
    ``--event-destinations`` file) before a row is read or a call made.
    """
    s = settings
    Ledger.check_path(s.ledger_path(input_path), input_path)
    source = open_source(input_path, service=s.service)
    # Before the rows are counted: a bad file stops the run before anything is read.
    destinations = load_event_destinations(s.event_destinations, s.service)
    routing = tuple(c for c in ROUTING_COLUMNS if c in source.columns)
    total = await anyio.to_thread.run_sync(source.count, routing)
    validator = Validator(
        s.service,
        region=s.region,
        profile=s.profile,
        role_arn=s.role_arn,
        expected_rows=total,
        known_only=s.known_regions_only,
        columns=source.columns,
        default_destinations=destinations,
    )
    return source, routing, total, validator


@asynccontextmanager
async def open_targets(
    settings: Settings, targets: Targets | None = None
) -> AsyncIterator[Targets]:
    """``targets``, or a :class:`~bulk.engine.target.TargetPool` of aiobotocore clients built
    from ``settings``; closed on the way out either way."""
    s = settings
    if targets is None:
        targets = TargetPool(
            ClientSettings(
                endpoint_url=s.endpoint_url,
                timeout=s.timeout,
                pool_size=max(s.concurrency, 10),
                static_credentials=EMULATOR_CREDENTIALS if s.emulator else None,
                # The embedded emulator answers STS too; else botocore's conventions.
                sts_endpoint_url=s.endpoint_url if s.emulator else None,
            )
        )
    async with contextlib.aclosing(targets):
        yield targets


def _note_lane_skips(stats: RunStats, batch: Batch, read: Mapping[Lane, int]) -> None:
    """Per lane, the rows of ``batch`` that earlier runs settled: those read and not decided
    now (a restated record is such a row, said again)."""
    decided: Counter[Lane] = Counter(
        item.row.lane if isinstance(item, Send) else item.lane
        for item in batch.items
        if isinstance(item, Send) or not item.restated
    )
    for lane, count in read.items():
        skipped = count - decided[lane]
        if skipped > 0:
            stats.note_lane_skipped(str(lane), skipped)


async def _take(stream: MemoryObjectReceiveStream[_T]) -> _T:
    """The next item, yielding to the event loop only when none is waiting.

    A checkpoint per item (what ``receive`` does) costs an event-loop pass per row at each
    hop; at thousands of rows a second that is a large share of the engine's CPU.
    """
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        return await stream.receive()


class LaneCounter:
    """Rows per lane, from rows per combination of the routing cells (Region, Profile,
    RoleArn)."""

    def __init__(self, validator: Validator, routing: tuple[str, ...]) -> None:
        self.routing = routing
        self._validator = validator
        self._lanes: dict[tuple[Any, ...], Lane | None] = {}

    def count(self, tallied: Mapping[tuple[Any, ...], int]) -> dict[Lane, int]:
        counts: dict[Lane, int] = {}
        for cells, rows in tallied.items():
            lane = self._lanes.get(cells, _UNKNOWN)
            if lane is _UNKNOWN:
                values = dict(zip(self.routing, cells, strict=True))
                lane = self._lanes[cells] = self._validator.lane_of(
                    values.get(REGION_COLUMN), values.get(PROFILE_COLUMN), values.get(ROLE_COLUMN)
                )
            if isinstance(lane, Lane):
                counts[lane] = counts.get(lane, 0) + rows
        return counts


_UNKNOWN: Any = object()
